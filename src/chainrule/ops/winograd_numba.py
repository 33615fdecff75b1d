"""Winograd's forward and backward (ops/winograd.py) compiled by numba: the same chunk loop, run by
numba's threads without the GIL.

ops/winograd.py is the reference and explains the algebra; this file only restates its chunk loop
as compiled code, step for step: gather the padded tiles, V = B_h^T d B_w, M[e] = V[e] @ U[e],
y = A_h^T M A_w (forward), and dM = A_h dY A_w^T, dU[e] = V[e]^T dM[e], dV[e] = dM[e] U[e]^T,
dx = B_h dV B_w^T folded back tile by tile (backward). The products are BLAS calls (numba's
np.dot); the gathers and scatters are loops. Each call runs the chunks first .. last - 1 with the
GIL released for all of it: chainrule's threads (backend.parallel_map) each call it on their own
run of chunks, so each writes only its own images of y and dx, and its own share of dU and db.

Imported only when numba is (see chainrule.accelerate); the tests run both files on the same
geometries and compare.
"""
import numpy as np
from numba import njit

from ..spinpool import post

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _two_sided(mat_h, mat_w, data, out):
    """out[i, j] = sum_{k, l} mat_h[i, k] mat_w[j, l] data[k, l] for data (k, l, t, c), out (i, j, t, c)."""
    ka, la, t, c = data.shape
    tmp = np.dot(mat_h, data.reshape(ka, la * t * c))
    for i in range(mat_h.shape[0]):
        np.dot(mat_w, tmp[i].reshape(la, t * c), out[i].reshape(mat_w.shape[0], t * c))
    return out


@njit(**_JIT)
def _input_tiles(x, n0, count, top, left, tiles_h, tiles_w, m_h, m_w, bth, btw, out):
    """V (a_h, a_w, tiles, C) of images n0 .. n0 + count into `out`: each a_h x a_w tile of the padded
    input (zeros outside x), transformed."""
    _, h, w, c = x.shape
    a_h, a_w = bth.shape[0], btw.shape[0]
    t = count * tiles_h * tiles_w
    d = np.empty((a_h, a_w, t, c), x.dtype)
    for k in range(a_h):
        for l in range(a_w):
            for b in range(count):
                for ti in range(tiles_h):
                    row = ti * m_h + k - top
                    for tj in range(tiles_w):
                        col = tj * m_w + l - left
                        q = (b * tiles_h + ti) * tiles_w + tj
                        if 0 <= row < h and 0 <= col < w:
                            for ch in range(c):
                                d[k, l, q, ch] = x[n0 + b, row, col, ch]
                        else:
                            for ch in range(c):
                                d[k, l, q, ch] = 0
    return _two_sided(bth, btw, d, out)


@njit(**_JIT)
def _kept(kept, n0, count, a_h, a_w, tiles, c):
    """The chunk's block of `kept` (flat, chunk after chunk) as (a_h, a_w, tiles of the chunk, C)."""
    start = a_h * a_w * n0 * tiles * c
    return kept[start:start + a_h * a_w * count * tiles * c].reshape((a_h, a_w, count * tiles, c))


@njit(**_JIT)
def forward(x, u, bth, btw, ath, atw, bias, relu, top, left, tiles_h, tiles_w, ones, step, first, last, out, kept,
            posted, targets):
    """y (N, tiles_h*m_h, tiles_w*m_w, C_out) of whole tiles, for the images of chunks first .. last - 1
    (`step` images each), into `out`; with kept.size > 0, each chunk's V is written into `kept` (flat)
    for the backward. bias.size == 0 for no bias. First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    n, c, co = x.shape[0], x.shape[3], u.shape[2]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    zero = np.zeros(1, x.dtype)[0]  # a 0 of the data's type: a literal 0 would make the max float64
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
        m = np.empty((a_h * a_w, t, co), x.dtype)
        for e in range(a_h * a_w):
            np.dot(v2[e], u[e], m[e])
        if bias.size:
            for q in range(t):
                for o in range(co):
                    m[ones, q, o] += bias[o]
        y = _two_sided(ath, atw, m.reshape(a_h, a_w, t, co), np.empty((m_h, m_w, t, co), x.dtype))
        for b in range(count):
            for ti in range(tiles_h):
                for tj in range(tiles_w):
                    q = (b * tiles_h + ti) * tiles_w + tj
                    for i in range(m_h):
                        for j in range(m_w):
                            target = out[n0 + b, ti * m_h + i, tj * m_w + j]
                            for o in range(co):
                                value = y[i, j, q, o]
                                target[o] = max(value, zero) if relu else value


@njit(**_JIT)
def backward(g, x, u, bth, btw, ath, atw, relu_out, top, left, tiles_h, tiles_w, ones, step, first, last,
             need_x, need_w, need_b, kept, dx, du, db, posted, targets):
    """For the images of chunks first .. last - 1: their dx (N, H, W, C) into `dx`, and their share of
    dU (a_h*a_w, C, C_out) and db (C_out,) into `du` and `db` (overwritten), of `forward` for the output
    gradient g (N, Ho, Wo, C_out). relu_out.size > 0: g is masked where the forward's relu output was 0.
    kept.size == 0: V is recomputed from x. First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    n, ho, wo, co = g.shape
    c = x.shape[3]
    a_h, a_w, m_h, m_w = bth.shape[0], btw.shape[0], ath.shape[0], atw.shape[0]
    a_h_t, a_w_t = np.ascontiguousarray(ath.T), np.ascontiguousarray(atw.T)
    b_h_t, b_w_t = np.ascontiguousarray(bth.T), np.ascontiguousarray(btw.T)
    zero = np.zeros(1, g.dtype)[0]  # a 0 of the data's type: a literal 0 would make the masking float64
    if first == last:
        du[:] = 0
    db[:] = 0
    for chunk in range(first, last):
        n0 = chunk * step
        count = min(step, n - n0)
        t = count * tiles_h * tiles_w
        dy = np.zeros((m_h, m_w, t, co), g.dtype)
        for b in range(count):
            for ti in range(tiles_h):
                for tj in range(tiles_w):
                    q = (b * tiles_h + ti) * tiles_w + tj
                    for i in range(m_h):
                        row = ti * m_h + i
                        for j in range(m_w):
                            col = tj * m_w + j
                            if row < ho and col < wo:
                                source = g[n0 + b, row, col]
                                if relu_out.size:
                                    mask = relu_out[n0 + b, row, col]
                                    for o in range(co):
                                        dy[i, j, q, o] = source[o] if mask[o] > zero else zero
                                else:
                                    for o in range(co):
                                        dy[i, j, q, o] = source[o]
        dm = _two_sided(a_h_t, a_w_t, dy, np.empty((a_h, a_w, t, co), g.dtype)).reshape(a_h * a_w, t, co)
        if need_b:
            for q in range(t):
                for o in range(co):
                    db[o] += dm[ones, q, o]
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
                np.dot(dm[e], u[e].T, dv[e])
            dd = _two_sided(b_h_t, b_w_t, dv.reshape(a_h, a_w, t, c), np.empty((a_h, a_w, t, c), g.dtype))
            dx[n0:n0 + count] = 0
            h, w = dx.shape[1], dx.shape[2]
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
                                    target = dx[n0 + b, row, col]
                                    for ch in range(c):
                                        target[ch] += dd[k, l, q, ch]
