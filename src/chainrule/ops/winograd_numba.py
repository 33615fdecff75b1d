"""Winograd's forward and backward (ops/winograd.py) compiled by numba: the same chunk loop, run by
numba's threads without the GIL.

ops/winograd.py is the reference and explains the algebra; this file only restates its chunk loop
as compiled code, step for step: gather the padded tiles, V = B_h^T d B_w, M[e] = V[e] @ U[e],
y = A_h^T M A_w (forward), and dM = A_h dY A_w^T, dU[e] = V[e]^T dM[e], dV[e] = dM[e] U[e]^T,
dx = B_h dV B_w^T folded back tile by tile (backward). The channel products are BLAS calls (numba's
np.dot); the transforms are the generated loops of ops/winograd_codelets.py (BLAS for the kernel's);
the gathers and scatters are loops. Each call runs the chunks first .. last - 1 with the
GIL released for all of it: chainrule's threads (backend.parallel_map) each call it on their own
run of chunks, so each writes only its own images of y and dx, and its own share of dU and db.

Imported only when numba is (see chainrule.accelerate); the tests run both files on the same
geometries and compare.
"""
import numpy as np
from numba import njit, uint64

from ..spinpool import post
from . import winograd_codelets as codelets

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _apart(n, a, b):
    """An empty 1-D array of n elements of a's dtype that starts half a page (mod 4 KB) from a and b, or
    as far as can be. A codelet loads rows of one array while it stores rows of another; where the
    two addresses agree in their low 12 bits the CPU takes each load for one that may read the store
    just made and waits for it ("4K aliasing"). Rows of power-of-two sizes keep the agreement along the
    whole loop: the 16-channel 64x64 layer's B transform took 0.074 ms for one image so, 0.029 without."""
    page = 4096
    pa, pb = a.ctypes.data % page, b.ctypes.data % page
    gap = (pb - pa) % page      # the free arc from a to b (or the whole page when they agree)
    if gap == 0:
        gap = page
    target = pa + gap // 2 if gap >= page - gap else pb + (page - gap) // 2
    target = target // 64 * 64
    item = a.itemsize
    buf = np.empty(n + page // item, a.dtype)
    start = ((target - buf.ctypes.data) % page) // item
    return buf[start:start + n]


@njit(**_JIT)
def _along(role, mat, data, out):
    """out = mat @ data (2-D) by the transform's codelet (ops/winograd_codelets.py), or BLAS where
    there is none (the kernel's transforms G, role -1; the 1x1 of a 1-D kernel's axis)."""
    if not codelets.apply(role, mat, data, out):
        np.dot(mat, data, out)


@njit(**_JIT)
def _two_sided(mat_h, mat_w, data, out, role):
    """out[i, j] = sum_{k, l} mat_h[i, k] mat_w[j, l] data[k, l] for data (k, l, t, c), out (i, j, t, c);
    `role` names the transform (codelets.BT, B, AT, A; -1 for others)."""
    ka, la, t, c = data.shape
    tmp = _apart(mat_h.shape[0] * la * t * c, data, out).reshape(mat_h.shape[0], la * t * c)
    _along(role, mat_h, data.reshape(ka, la * t * c), tmp)
    for i in range(mat_h.shape[0]):
        _along(role, mat_w, tmp[i].reshape(la, t * c), out[i].reshape(mat_w.shape[0], t * c))
    return out


# The copy loops below index flat arrays by unsigned offsets: numba wraps a signed index that might be
# negative (x[i] for i < 0 reads from the end), and that check, inside a channel loop whose index is
# `start + ch`, keeps LLVM from vectorizing the loop; an unsigned index has no such branch. Measured
# on the U-Net's 64x64 layers, 8 images, one thread: folding dx back 1.20 -> 0.29 ms (32 channels,
# 8x8 tiles), 0.78 -> 0.23 (16, 6x6); with views of each pixel (x[b, row, col, c0:c1]) 0.93 and 0.94.


@njit(**_JIT)
def _input_tiles(x, n0, count, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw, out):
    """V (a_h, a_w, tiles, C) of images n0 .. n0 + count into `out`: each a_h x a_w tile of the padded
    input (zeros outside x), transformed."""
    _, h, w, c = x.shape
    a_h, a_w = bth.shape[0], btw.shape[0]
    t = count * tiles_h * tiles_w
    d = np.empty((a_h, a_w, t, c), x.dtype)
    xf, df = x.reshape(-1), d.reshape(-1)
    zero = np.zeros(1, x.dtype)[0]
    run = uint64(c)
    for k in range(a_h):
        for l in range(a_w):
            for b in range(count):
                for ti in range(tiles_h):
                    row = ti * m_h + k - top
                    for tj in range(tiles_w):
                        col = tj * m_w + l - left
                        to = uint64((((k * a_w + l) * t) + (b * tiles_h + ti) * tiles_w + tj) * c)
                        if 0 <= row < h and 0 <= col < w:
                            at = uint64((((n0 + b) * h + row) * w + col) * c)
                            for ch in range(run):
                                df[to + ch] = xf[at + ch]
                        else:
                            for ch in range(run):
                                df[to + ch] = zero
    return _two_sided(bth, btw, d, out, codelets.BT)


@njit(**_JIT)
def _kept(kept, n0, count, a_h, a_w, tiles, c):
    """The chunk's block of `kept` (flat, chunk after chunk) as (a_h, a_w, tiles of the chunk, C)."""
    start = a_h * a_w * n0 * tiles * c
    return kept[start:start + a_h * a_w * count * tiles * c].reshape((a_h, a_w, count * tiles, c))


@njit(**_JIT)
def _scatter_outputs(y, n0, count, tiles_h, tiles_w, o0, relu, out):
    """out[n0 + b, tile rows and columns, o0 + o] = y[i, j, q, o] (y (m_h, m_w, tiles, C), the tiles of
    images n0 .. n0 + count), or max(y, 0) with relu."""
    m_h, m_w, t, co = y.shape
    _, h, w, c_all = out.shape
    yf, of = y.reshape(-1), out.reshape(-1)
    zero = np.zeros(1, y.dtype)[0]  # a 0 of the data's type: a literal 0 would make the max float64
    run = uint64(co)
    for b in range(count):
        for ti in range(tiles_h):
            for tj in range(tiles_w):
                q = (b * tiles_h + ti) * tiles_w + tj
                for i in range(m_h):
                    for j in range(m_w):
                        to = uint64((((n0 + b) * h + ti * m_h + i) * w + tj * m_w + j) * c_all + o0)
                        at = uint64(((i * m_w + j) * t + q) * co)
                        if relu:
                            for o in range(run):
                                of[to + o] = max(yf[at + o], zero)
                        else:
                            for o in range(run):
                                of[to + o] = yf[at + o]


@njit(**_JIT)
def _gather_grads(g, relu_out, n0, count, tiles_h, tiles_w, lo, dy):
    """dy[i, j, q, o] = g[n0 + b, tile row, tile column, lo + o] for the tiles of images n0 .. n0 + count
    (dy (m_h, m_w, tiles, C); 0 for rows and columns past g's); masked where relu_out <= 0 when
    relu_out.size."""
    _, ho, wo, c_all = g.shape
    m_h, m_w, t, co = dy.shape
    gf, df = g.reshape(-1), dy.reshape(-1)
    mf = relu_out.reshape(-1)
    zero = np.zeros(1, g.dtype)[0]  # a 0 of the data's type: a literal 0 would make the masking float64
    run = uint64(co)
    for b in range(count):
        for ti in range(tiles_h):
            for tj in range(tiles_w):
                q = (b * tiles_h + ti) * tiles_w + tj
                for i in range(m_h):
                    row = ti * m_h + i
                    for j in range(m_w):
                        col = tj * m_w + j
                        to = uint64(((i * m_w + j) * t + q) * co)
                        if row < ho and col < wo:
                            at = uint64((((n0 + b) * ho + row) * wo + col) * c_all + lo)
                            if relu_out.size:
                                for o in range(run):
                                    df[to + o] = gf[at + o] if mf[at + o] > zero else zero
                            else:
                                for o in range(run):
                                    df[to + o] = gf[at + o]
                        else:
                            for o in range(run):
                                df[to + o] = zero


@njit(**_JIT)
def _fold_tiles(dd, n0, count, tiles_h, tiles_w, m_h, m_w, top, left, c0, dx):
    """dx[n0 + b, row, col, c0 + ch] += dd[k, l, q, ch]: each tile's input gradient (dd (a_h, a_w,
    tiles, C)) added back where the tile read the input; the overlaps add up."""
    a_h, a_w, t, ct = dd.shape
    _, h, w, c_all = dx.shape
    sf, xf = dd.reshape(-1), dx.reshape(-1)
    run = uint64(ct)
    for b in range(count):
        for ti in range(tiles_h):
            for tj in range(tiles_w):
                q = (b * tiles_h + ti) * tiles_w + tj
                for k in range(a_h):
                    row = ti * m_h + k - top
                    if row < 0 or row >= h:
                        continue
                    for l in range(a_w):
                        col = tj * m_w + l - left
                        if 0 <= col < w:
                            to = uint64((((n0 + b) * h + row) * w + col) * c_all + c0)
                            at = uint64(((k * a_w + l) * t + q) * ct)
                            for ch in range(run):
                                xf[to + ch] += sf[at + ch]


@njit(**_JIT)
def _products(v2, u, bias, o0, ones):
    """M[e] = V[e] @ U[e] for every transformed position e (v2 (a*a, tiles, C), u (a*a, C, C_out)),
    plus bias[o0 + o] at the all-ones position `ones` (bias.size == 0: none)."""
    e_all, t, co = v2.shape[0], v2.shape[1], u.shape[2]
    m = np.empty((e_all, t, co), v2.dtype)
    for e in range(e_all):
        np.dot(v2[e], u[e], m[e])
    if bias.size:
        mf, run = m.reshape(-1), uint64(co)
        for q in range(t):
            at = uint64((ones * t + q) * co)
            for o in range(run):
                mf[at + o] += bias[uint64(o0) + o]
    return m


@njit(**_JIT)
def _add_bias_grad(dm, ones, db):
    """db += the sum over tiles of dM at the all-ones position (dm (a*a, tiles, C_out)): the bias was
    added there, so its gradient is read there. db is float64 (thousands of float32 terms)."""
    for q in range(dm.shape[1]):
        row = dm[ones, q]
        for o in range(db.shape[0]):
            db[o] += row[o]


@njit(**_JIT)
def forward(x, u, bth, btw, ath, atw, bias, relu, top, left, tiles_h, tiles_w, ones, step, first, last, out, kept,
            posted, targets):
    """y (N, tiles_h*m_h, tiles_w*m_w, C_out) of whole tiles, for the images of chunks first .. last - 1
    (`step` images each), into `out`; with kept.size > 0, each chunk's V is written into `kept` (flat)
    for the backward. bias.size == 0 for no bias. First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    n, c, co = x.shape[0], x.shape[3], u.shape[2]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    for chunk in range(first, last):
        n0 = chunk * step
        count = min(step, n - n0)
        t = count * tiles_h * tiles_w
        if kept.size:
            v = _kept(kept, n0, count, a_h, a_w, tiles_h * tiles_w, c)
        else:
            v = np.empty((a_h, a_w, t, c), x.dtype)
        _input_tiles(x, n0, count, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw, v)
        v2 = v.reshape(a_h * a_w, t, c)
        m = _products(v2, u, bias, 0, ones)
        y = _two_sided(ath, atw, m.reshape(a_h, a_w, t, co), np.empty((m_h, m_w, t, co), x.dtype), codelets.AT)
        _scatter_outputs(y, n0, count, tiles_h, tiles_w, 0, relu, out)


@njit(**_JIT)
def backward(g, x, u, ut, bth, btw, ath, atw, relu_out, top, left, tiles_h, tiles_w, ones, step, first, last,
             need_x, need_w, need_b, kept, dx, du, db, posted, targets):
    """For the images of chunks first .. last - 1: their dx (N, H, W, C) into `dx`, and their share of
    dU (a_h*a_w, C, C_out) and db (C_out,) into `du` and `db` (overwritten), of `forward` for the output
    gradient g (N, Ho, Wo, C_out). relu_out.size > 0: g is masked where the forward's relu output was 0.
    kept.size == 0: V is recomputed from x. ut: U with its channel axes swapped, (a_h*a_w, C_out, C), for
    dV[e] = dM[e] @ ut[e] (BLAS's NN product); ut.size == 0: dM[e] @ U[e]^T. First, post(posted, targets)
    (chainrule.spinpool)."""
    post(posted, targets)
    n, co = g.shape[0], g.shape[3]
    c = x.shape[3]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    a_h_t, a_w_t = np.ascontiguousarray(ath.T), np.ascontiguousarray(atw.T)
    b_h_t, b_w_t = np.ascontiguousarray(bth.T), np.ascontiguousarray(btw.T)
    if first == last:
        du[:] = 0
    sums = np.zeros(co, np.float64)
    for chunk in range(first, last):
        n0 = chunk * step
        count = min(step, n - n0)
        t = count * tiles_h * tiles_w
        dy = np.empty((m_h, m_w, t, co), g.dtype)
        _gather_grads(g, relu_out, n0, count, tiles_h, tiles_w, 0, dy)
        dm = _two_sided(a_h_t, a_w_t, dy, np.empty((a_h, a_w, t, co), g.dtype), codelets.A).reshape(a_h * a_w, t, co)
        if need_b:
            _add_bias_grad(dm, ones, sums)
        if need_w:
            if kept.size:
                v = _kept(kept, n0, count, a_h, a_w, tiles_h * tiles_w, c)
            else:
                v = _input_tiles(x, n0, count, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw,
                                 np.empty((a_h, a_w, t, c), x.dtype))
            v2 = v.reshape(a_h * a_w, t, c)
            product = np.empty((c, co), g.dtype)
            for e in range(a_h * a_w):
                if chunk == first:  # the run's first chunk writes its product in place: no zero fill, no add
                    np.dot(v2[e].T, dm[e], du[e])
                else:
                    np.dot(v2[e].T, dm[e], product)
                    du[e] += product
        if need_x:
            dv = np.empty((a_h * a_w, t, c), g.dtype)
            for e in range(a_h * a_w):
                if ut.size:
                    np.dot(dm[e], ut[e], dv[e])
                else:
                    np.dot(dm[e], u[e].T, dv[e])
            dd = _two_sided(b_h_t, b_w_t, dv.reshape(a_h, a_w, t, c), np.empty((a_h, a_w, t, c), g.dtype), codelets.B)
            dx[n0:n0 + count] = 0
            _fold_tiles(dd, n0, count, tiles_h, tiles_w, m_h, m_w, top, left, 0, dx)
    for o in range(co):
        db[o] = sums[o]


# ---------------------------------------------------------------- threads sharing channels, not images
#
# With few tiles in the batch (the U-Net's 8x8 layers: 32 tiles of batch 8) a share of the images
# gives each thread GEMMs 16 rows thin, a pass over all of U and its own copy of dU, which are then
# added up and transformed on one thread. Here each thread takes all the tiles and a share of the
# channels instead: its output channels for y, dU and dW (and its part of the kernel's transform),
# its input channels for dx. Each writes only its own channels; nothing is added across threads.
# The transforms of the input and of dY are repeated on every thread (they are small beside U).


@njit(**_JIT)
def forward_channels(x, w, gh, gw, bth, btw, ath, atw, bias, relu, top, left, tiles_h, tiles_w, ones, o0, o1,
                     out, kept, u_part, posted, targets):
    """y[..., o0:o1] of every image (whole tiles) into `out`; this share's transformed kernel
    U[..., o0:o1] = G_h w[..., o0:o1] G_w^T into u_part (a_h*a_w, C, o1 - o0); V of every tile into
    `kept` when kept.size (one thread's call), for the backward. First, post(posted, targets)."""
    post(posted, targets)
    n, c = x.shape[0], x.shape[3]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    co = o1 - o0
    t = n * tiles_h * tiles_w
    v = kept.reshape((a_h, a_w, t, c)) if kept.size else np.empty((a_h, a_w, t, c), x.dtype)
    _input_tiles(x, 0, n, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw, v)
    _two_sided(gh, gw, np.ascontiguousarray(w[:, :, :, o0:o1]), u_part.reshape(a_h, a_w, c, co), -1)
    v2 = v.reshape(a_h * a_w, t, c)
    m = _products(v2, u_part, bias, o0, ones)
    y = _two_sided(ath, atw, m.reshape(a_h, a_w, t, co), np.empty((m_h, m_w, t, co), x.dtype), codelets.AT)
    _scatter_outputs(y, 0, n, tiles_h, tiles_w, o0, relu, out)


@njit(**_JIT)
def backward_channels(g, x, u_flat, bounds, bth, btw, ath, atw, gh_t, gw_t, relu_out, top, left, tiles_h, tiles_w,
                      ones, share, c0, c1, need_x, need_w, need_b, kept, dx, dw, db, posted, targets):
    """One thread's share of the backward of `forward_channels`: dW[..., o0:o1] into dw and db[o0:o1]
    into db for its output channels (o0, o1 = bounds[share], bounds[share + 1]), dx[..., c0:c1] into
    dx for its input channels. u_flat holds the threads' parts of U one after another, part p
    (a_h*a_w, C, bounds[p + 1] - bounds[p]). kept.size == 0: V is recomputed from x. First,
    post(posted, targets)."""
    post(posted, targets)
    n, co_all = g.shape[0], g.shape[3]
    c = x.shape[3]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    e_all = a_h * a_w
    t = n * tiles_h * tiles_w
    a_h_t, a_w_t = np.ascontiguousarray(ath.T), np.ascontiguousarray(atw.T)
    b_h_t, b_w_t = np.ascontiguousarray(bth.T), np.ascontiguousarray(btw.T)
    parts = bounds.size - 1
    dm_flat = np.empty(e_all * t * co_all, g.dtype)
    for p in range(parts):   # dM of every part: this thread's for dU and db, all of them for dV
        lo, hi = bounds[p], bounds[p + 1]
        if not need_x and p != share:
            continue
        dy = np.empty((m_h, m_w, t, hi - lo), g.dtype)
        _gather_grads(g, relu_out, 0, n, tiles_h, tiles_w, lo, dy)
        start = e_all * t * lo
        _two_sided(a_h_t, a_w_t, dy, dm_flat[start:start + e_all * t * (hi - lo)].reshape(a_h, a_w, t, hi - lo),
                   codelets.A)
    o0, o1 = bounds[share], bounds[share + 1]
    co = o1 - o0
    own = dm_flat[e_all * t * o0:e_all * t * o1].reshape(e_all, t, co)
    if need_b:
        sums = np.zeros(co, np.float64)
        _add_bias_grad(own, ones, sums)
        for o in range(co):
            db[o0 + o] = sums[o]
    if need_w and co:
        if kept.size:
            v = kept.reshape((a_h, a_w, t, c))
        else:
            v = _input_tiles(x, 0, n, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw, np.empty((a_h, a_w, t, c), x.dtype))
        v2 = v.reshape(e_all, t, c)
        du = np.empty((e_all, c, co), g.dtype)
        for e in range(e_all):
            np.dot(v2[e].T, own[e], du[e])
        dw_part = _two_sided(gh_t, gw_t, du.reshape(a_h, a_w, c, co),
                             np.empty((gh_t.shape[0], gw_t.shape[0], c, co), g.dtype), -1)
        dw[:, :, :, o0:o1] = dw_part
    if need_x and c1 > c0:
        ct = c1 - c0
        dv = np.empty((e_all, t, ct), g.dtype)
        product = np.empty((t, ct), g.dtype)
        for p in range(parts):
            lo, hi = bounds[p], bounds[p + 1]
            if hi == lo:
                continue
            u_p = u_flat[e_all * c * lo:e_all * c * hi].reshape(e_all, c, hi - lo)
            dm_p = dm_flat[e_all * t * lo:e_all * t * hi].reshape(e_all, t, hi - lo)
            for e in range(e_all):
                if p == 0:
                    np.dot(dm_p[e], u_p[e][c0:c1].T, dv[e])
                else:
                    np.dot(dm_p[e], u_p[e][c0:c1].T, product)
                    dv[e] += product
        dd = _two_sided(b_h_t, b_w_t, dv.reshape(a_h, a_w, t, ct), np.empty((a_h, a_w, t, ct), g.dtype), codelets.B)
        dx[:, :, :, c0:c1] = 0
        _fold_tiles(dd, 0, n, tiles_h, tiles_w, m_h, m_w, top, left, c0, dx)
