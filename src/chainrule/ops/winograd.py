"""Winograd's minimal filtering: stride-1 convolutions with 4 to 6 times fewer multiplications.

One axis first. m outputs of an r-tap correlation, y_i = sum_j d_{i+j} g_j, need m*r products
done directly; Winograd's F(m, r) needs only a = m + r - 1, one per point at which it evaluates
the polynomials d(x) and g(x) (Cook-Toom: a - 1 finite points and infinity):

    y = A^T [ (G g) * (B^T d) ]          A^T (m, a), G (a, r), B^T (a, a), * elementwise

G evaluates the filter at the points, B^T the input tile (a samples, overlapping the next tile
by r - 1), A^T interpolates the product back. Nested over height and width, a tile of
a_h x a_w pixels gives m_h x m_w outputs, and for C_in -> C_out channels the products become a
batch of a_h*a_w matrix products, one per transformed position e:

    V[e] = (B_h^T d B_w)[e]    (tiles, C_in)     the input, tile by tile
    U[e] = (G_h w G_w^T)[e]    (C_in, C_out)     the kernel, once per call
    M[e] = V[e] @ U[e]         (tiles, C_out)    the GEMMs
    y    = A_h^T M A_w         per tile

F(4, 3) (a 3x3 kernel, 6x6 tiles, 4x4 outputs) makes 36 products do the work of 144; F(4, 5) (a
5x5 kernel, 8x8 tiles) makes 64 do the work of 400; F(6, 3) (8x8 tiles, for layers with many more
input than output channels) 64 the work of 324; F(3, 3) (5x5 tiles, for sides that 3s fit better
than 4s, as a 3x3 output) 25 the work of 81. The backward is the same chain read backwards
(each step is linear), so it reuses the transforms and shares dM between the two gradients:

    dM = A_h dY A_w^T,   dU[e] = V[e]^T @ dM[e]  -> dW = G_h^T dU G_w,
                         dV[e] = dM[e] @ U[e]^T  -> dx = B_h dV B_w^T added back tile by tile.

Why this is faster here than im2col although it copies more: the im2col GEMMs run at most at
BLAS peak; these do a quarter of the arithmetic. The batch is taken in chunks whose
transformed tiles (~1 MB) stay in the CPU's L2 cache, so the transforms (small GEMMs with a
6x6 matrix) run at cache speed (measured on CNN-B's second layer, forward: 16.5 ms im2col,
41.5 ms Winograd in one piece, 9.2 ms in 2-image chunks); the chunks are shared out over
chainrule's threads. The compiled kernels (ops/winograd_numba.py) run the transforms as
straight-line loops that use the matrices' zeros and +-p symmetry (ops/winograd_codegen.py):
1.2-5x faster than those GEMMs.

Accuracy: the points 0, +-1, +-2 (and +-1/2 for 8x8 tiles) keep float32 results within ~1e-5 of
the output's largest value (the tests compare with the im2col path and with PyTorch).
"""
import functools
import math

import numpy as np

from .. import accelerate, backend

__all__ = ["transforms", "plan", "kernel_transform", "forward", "backward", "kernel_grad", "flops_saved"]

_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
_TILE = {1: 1, 3: 4, 5: 4}          # kernel size -> outputs per tile, m (a = m + r - 1: 1, 6 or 8)
_SMALL_TILE = 3                     # m for 3x3 kernels on sides that 3s fit better than 4s: F(3, 3), a = 5
_WIDE_TILE = 6                      # m for 3x3 kernels on input-heavy layers: F(6, 3), a = 8
_CHUNK_BYTES = 1 << 20              # the transformed tiles of one chunk: about an L2 cache
_CHUNK_TILES = 64                   # at least this many tiles (GEMM rows) per chunk
_MIN_TILES = 32                     # fewer tiles in the batch: thin GEMMs, a kernel transform as big as the data
_MIN_SAVING = 2.5                   # ragged tiles (a 3x3 output in a 4x4 tile) waste the saving
_SHARE_CHANNELS = 8                 # threads share out the channels (few tiles) when each gets this many
_NN_TILES = 128                     # from this many tiles in the batch, dV = dM @ U^T reads a transposed copy of U


@functools.lru_cache(maxsize=None)
def transforms(m, r):
    """(A^T, G, B^T) of F(m, r) in float64: Cook-Toom with points 0, 1, -1, 2, -2, ... and infinity.

    A^T[i, k] = p_k^i and G[k, j] = p_k^j / prod_{l != k}(p_k - p_l) for the finite points; the point at
    infinity adds the column (0,..,0,1) to A^T and the row (0,..,0,1) to G. B^T is then the one matrix
    that makes y = A^T[(G g) * (B^T d)] the correlation for every d and g: for each k, l
    sum_k A^T[i, k] G[k, j] B^T[k, l] = [l == i + j], a linear system solved (and checked) here.
    """
    a = m + r - 1
    if a == 1:
        one = np.ones((1, 1))
        return one, one, one
    p = np.array(_POINTS[:a - 1])
    at = np.zeros((m, a))
    at[:, :a - 1] = p[None, :] ** np.arange(m)[:, None]
    at[m - 1, a - 1] = 1.0
    scale = np.array([np.prod([pk - pl for pl in p if pl != pk]) for pk in p])
    g = np.zeros((a, r))
    g[:a - 1] = p[:, None] ** np.arange(r)[None, :] / scale[:, None]
    g[a - 1, r - 1] = 1.0
    system = (at[:, None, :] * g.T[None, :, :]).reshape(m * r, a)      # row (i, j), column k
    target = np.zeros((m * r, a))
    for i in range(m):
        for j in range(r):
            target[i * r + j, i + j] = 1.0
    bt, *_ = np.linalg.lstsq(system, target, rcond=None)
    assert np.abs(system @ bt - target).max() < 1e-9, "Winograd transform is not exact"
    return at, g, np.round(bt, 12)


class _Axis:
    """One spatial axis of a Winograd convolution: tile sizes and its three matrices in `dtype`."""

    __slots__ = ("m", "r", "a", "at", "g", "bt", "tiles", "padded")

    def __init__(self, r, out_len, dtype, m=None):
        self.r, self.m = r, m or _tile(r, out_len)
        self.a = self.m + r - 1
        self.at, self.g, self.bt = (t.astype(dtype) for t in transforms(self.m, r))
        self.tiles = -(-out_len // self.m)
        self.padded = self.tiles * self.m + r - 1   # the input rows every tile reads


def _tile(r, n):
    """Outputs per tile along an axis of n outputs for an r-tap kernel: F(4, 3) for 3 taps unless
    F(3, 3) transforms fewer rows for that side, ceil(n / 3) * 5 < ceil(n / 4) * 6 (n = 3, 5, 6, 9, 21:
    a 3x3 output is one 5x5 tile, not a 6x6 one two-thirds wasted; CNN-B's last convolution,
    128->256 channels on 5x5 images, forward + backward 24.7 ms by im2col, 14.4 ms so)."""
    m = _TILE[r]
    if r == 3 and -(-n // _SMALL_TILE) * (_SMALL_TILE + r - 1) < -(-n // m) * (m + r - 1):
        return _SMALL_TILE
    return m


class _Plan:
    __slots__ = ("geom", "h", "w", "step", "work", "ones")

    def __init__(self, geom, dtype):
        self.geom = geom
        self.h, self.w = _Axis(geom.kh, geom.ho, dtype), _Axis(geom.kw, geom.wo, dtype)
        if geom.c >= 2 * geom.co:
            # Input-heavy layers (the concatenations of a U-Net's decoder) spend most in the input's
            # transforms: 8x8 tiles for 6x6 outputs expand the input 1.8x, 6x6 tiles for 4x4 2.25x
            # (measured: 48->16 channels on 64x64, 10.9 -> 9.4 ms; 32->16, 7.3 -> 6.7). Only where
            # the tiles fit the output closely (a 3x3 kernel, at most 1/16 of the rows or columns
            # computed in vain: 66 for 64 gains, 18 for 16 loses). Elsewhere F(6, 3) measured no
            # faster (16->16 on 64x64, 32->64 on 24x24) for twice the float32 rounding.
            self.h, self.w = (_Axis(r, n, dtype, _WIDE_TILE)
                              if r == 3 and -(-n // _WIDE_TILE) * _WIDE_TILE <= n * 17 // 16 else axis
                              for axis, r, n in ((self.h, geom.kh, geom.ho), (self.w, geom.kw, geom.wo)))
        # The transformed position whose A^T columns are all ones (the point 1 on both axes): a value
        # added to M there is added to every output of the tile, so the bias costs a pass over 1/a^2
        # of M instead of one over the output.
        self.ones = _ones_index(self.h.m, self.h.r) * self.w.a + _ones_index(self.w.m, self.w.r)
        tiles = self.h.tiles * self.w.tiles
        per_image = self.h.a * self.w.a * tiles * max(geom.c, geom.co) * 4
        # enough tiles that each GEMM amortizes its pass over the transformed kernel, few enough
        # that the chunk's transformed tiles stay in cache
        self.step = max(1, min(geom.n, max(_CHUNK_BYTES // per_image, -(-_CHUNK_TILES // tiles))))
        self.work = geom.n * tiles * self.h.a * self.w.a * (geom.c + geom.co)  # transformed floats
        self.step = backend.balanced_step(geom.n, self.step, self.work)


@functools.lru_cache(maxsize=None)
def _ones_index(m, r):
    """The column of F(m, r)'s A^T that is all ones (the point 1)."""
    at = transforms(m, r)[0]
    return int(np.flatnonzero((at == 1).all(axis=0))[0])


def plan(geom, dtype):
    """A Winograd plan for a conv2d geometry, or None when im2col is the better (or only) choice:
    it needs stride 1, no dilation, kernel sides of 1, 3 or 5 (not 1x1), at least 8 channels in
    and out (with fewer the GEMMs are too thin to pay for the transforms), at least 32 tiles in the
    batch, and a saving of at least 2.5x in multiplications (tiles mostly inside the output)."""
    if (geom.sh, geom.sw, geom.dh, geom.dw) != (1, 1, 1, 1) or geom.kh not in _TILE or geom.kw not in _TILE:
        return None
    if geom.kh * geom.kw == 1 or min(geom.c, geom.co) < 8 or dtype.kind != "f":
        return None
    p = _Plan(geom, dtype)
    if geom.n * p.h.tiles * p.w.tiles < _MIN_TILES or flops_saved(p) < _MIN_SAVING:
        return None
    return p


def _along(mat, data, bufs=None, name="", fresh=False):
    """out[i, j] = sum_{k, l} mat_h[i, k] mat_w[j, l] data[k, l] for `mat` = (mat_h, mat_w): mat_h along
    the first axis of `data`, mat_w along the second; data is (k, l, rest) or anything of that size.
    The two products go into bufs(name + "1"), bufs(name + "2") when `bufs` is given; with `fresh`
    the result is a new array all the same."""
    mh, mw = mat
    xp = backend.array_module(data)
    rest = data.size // (mh.shape[1] * mw.shape[1])
    last_h = mw.shape == (1, 1)
    if mh.shape != (1, 1):
        out = None if bufs is None or (fresh and last_h) else bufs(name + "1", (mh.shape[0], mw.shape[1] * rest))
        data = xp.matmul(mh, data.reshape(mh.shape[1], -1), out=out)
    elif fresh and last_h:
        data = data.copy()
    data = data.reshape(mh.shape[0], mw.shape[1], rest)
    if not last_h:
        out = None if bufs is None or fresh else bufs(name + "2", (mh.shape[0], mw.shape[0], rest))
        data = xp.matmul(mw, data, out=out)
    return data


def kernel_transform(w, p):
    """U = G_h w G_w^T per channel pair: (a_h*a_w, C_in, C_out)."""
    xp = backend.array_module(w)
    u = _along_kernel((p.h.g, p.w.g), xp.ascontiguousarray(w))
    return u.reshape(p.h.a * p.w.a, w.shape[2], w.shape[3])


def _along_kernel(mat, data):
    """`_along(mat, data)` for a kernel or its gradient, (k, l, C_in * C_out) in any shape of that size,
    its columns (the channel pairs) shared out over the threads when there are many: each product
    is thin (3 to 8 deep) and bound by memory (the U-Net's 256->128 kernel on two threads: transform
    0.35 -> 0.19 ms, gradient 0.58 -> 0.30 ms; that layer 4.33 -> 3.82 ms)."""
    mh, mw = mat
    xp = backend.array_module(data)
    rest = data.size // (mh.shape[1] * mw.shape[1])
    touched = (mh.shape[1] + mh.shape[0]) * mw.shape[1] * rest    # floats the first product reads and writes
    if xp is not np or (1, 1) in (mh.shape, mw.shape) or not backend.worth_threads(touched, backend.FACTOR_PASS):
        return _along(mat, data)   # (1, 1): a 1-D kernel's axis, which `_along` skips
    first = np.empty((mh.shape[0], mw.shape[1] * rest), dtype=data.dtype)
    flat = np.ascontiguousarray(data).reshape(mh.shape[1], -1)
    backend.parallel_slices(first.shape[1], lambda s: np.matmul(mh, flat[:, s], out=first[:, s]),
                            touched, backend.FACTOR_PASS)
    first = first.reshape(mh.shape[0], mw.shape[1], rest)
    out = np.empty((mh.shape[0], mw.shape[0], rest), dtype=data.dtype)
    backend.parallel_slices(rest, lambda s: np.matmul(mw, first[:, :, s], out=out[:, :, s]),
                            touched, backend.FACTOR_PASS)
    return out


def _input_tiles(xbuf, p, count, bufs, keep=False):
    """V = B_h^T d B_w for every tile of the padded chunk `xbuf` (count, Hp, Wp, C): (a_h*a_w, tiles, C);
    a new array when `keep`, else scratch."""
    xp = backend.array_module(xbuf)
    c = xbuf.shape[3]
    sn, sh, sw, sc = xbuf.strides
    shape = (p.h.a, p.w.a, count, p.h.tiles, p.w.tiles, c)
    view = xp.lib.stride_tricks.as_strided(xbuf, shape, (sh, sw, sn, sh * p.h.m, sw * p.w.m, sc),
                                           writeable=False)
    tiles = bufs("tiles", shape)
    xp.copyto(tiles, view)
    return _along((p.h.bt, p.w.bt), tiles, bufs, "v", fresh=keep).reshape(p.h.a * p.w.a, -1, c)


def _fill(buf, x, top, left):
    """Copy x into the interior of a zero-bordered buffer (the borders are never written, so stay 0)."""
    buf[:x.shape[0], top:top + x.shape[1], left:left + x.shape[2]] = x


def _tiled(arr, p, count):
    """`arr` (count, tiles_h*m_h, tiles_w*m_w, C) seen as (m_h, m_w, count, tiles_h, tiles_w, C): no copy."""
    return arr.reshape(count, p.h.tiles, p.h.m, p.w.tiles, p.w.m, arr.shape[3]).transpose(2, 4, 0, 1, 3, 5)


def forward(x, u, p, bias=None, keep=False, relu=False):
    """(y, kept): y (N, Ho, Wo, C_out) of the stride-1 convolution planned by `p` (plus `bias`, then
    max(., 0) with `relu`, both on each chunk in cache); x is (N, H, W, C_in) unpadded, u the
    transformed kernel from `kernel_transform`. With `keep`, `kept` holds each chunk's
    transformed input V for `backward` (None otherwise).

    Keeping V costs 2.25x the input's memory (4x for 5x5 kernels) and saves the backward a padding
    copy, a gather and two transforms per chunk: reading V back was faster than recomputing it
    (CNN-B's second layer: backward 24 -> 18 ms)."""
    if accelerate.wants_numba(x, u):
        return _compiled_forward(x, u, p, bias, keep, relu)
    xp = backend.array_module(x)
    geom = p.geom
    (top, _), (left, _) = geom.pads
    co = u.shape[2]
    # whole tiles: the output rounded up to a multiple of the tile, cropped once at the end if ragged
    out = xp.empty((geom.n, p.h.tiles * p.h.m, p.w.tiles * p.w.m, co), dtype=x.dtype)
    starts = list(enumerate(range(0, geom.n, p.step)))
    kept = [None] * len(starts) if keep else None

    def run(chunks):  # a run of chunks on one thread, with that thread's scratch buffers
        bufs = backend.Scratch(xp, x.dtype)
        xbuf = bufs.zeros("xbuf", (p.step, p.h.padded, p.w.padded, geom.c))
        for index, n0 in chunks:
            count = min(p.step, geom.n - n0)
            _fill(xbuf, x[n0:n0 + count], top, left)
            v = _input_tiles(xbuf[:count], p, count, bufs, keep)
            if keep:
                kept[index] = v
            m = xp.matmul(v, u, out=bufs("m", (v.shape[0], v.shape[1], co)))       # (a*a, tiles, C_out)
            if bias is not None:
                m[p.ones] += bias
            y = _along((p.h.at, p.w.at), m, bufs, "y")                                # (m_h, m_w, tiles*C_out)
            y = y.reshape(p.h.m, p.w.m, count, p.h.tiles, p.w.tiles, co)
            target = _tiled(out[n0:n0 + count], p, count)
            if relu:  # the max written straight into place: one pass over the block, not two
                xp.maximum(y, 0, out=target)
            else:
                xp.copyto(target, y)
        bufs.release()

    backend.parallel_map(run, backend.share(starts, p.work))
    if out.shape[1:3] != (geom.ho, geom.wo):
        out = xp.ascontiguousarray(out[:, :geom.ho, :geom.wo])
    return out, kept


def _fold(dd, p, into):
    """Add the overlapping tiles' gradients dd (a_h, a_w, count, tiles_h, tiles_w, C) into `into`, the
    padded input gradient by tap, (m_h, m_w, count, tiles_h + 1, tiles_w + 1, C).

    Tile t's tap i lands on row t*m + i: taps below m in tile t, the r - 1 taps past it in tile t + 1
    (r - 1 <= m for every transform used), so one copy and three slab adds replace a_h*a_w strided
    adds. Laid out by tap, each slab is runs of tiles_w*C floats (by pixel they were runs of C)."""
    (mh, rh, th), (mw, rw, tw) = (p.h.m, p.h.r, p.h.tiles), (p.w.m, p.w.r, p.w.tiles)
    into[:, :, :, :th, :tw] = dd[:mh, :mw]
    into[:, :, :, th] = 0
    into[:, :, :, :th, tw] = 0
    if rh > 1:
        into[:rh - 1, :, :, 1:, :tw] += dd[mh:, :mw]
    if rw > 1:
        into[:, :rw - 1, :, :th, 1:] += dd[:mh, mw:]
    if rh > 1 and rw > 1:
        into[:rh - 1, :rw - 1, :, 1:, 1:] += dd[mh:, mw:]


def backward(g, x, u, p, need_x, need_w, kept=None, relu_out=None, need_b=False):
    """(dx, dU, db) of `forward` for the output gradient g (N, Ho, Wo, C_out); dU is in the
    transformed domain (turn it into dW with `kernel_grad`). Each is None when not asked for. `kept`
    is what forward(keep=True) returned; without it V is recomputed from x. `relu_out` is the output
    of a forward with relu=True: g is masked by relu_out > 0 chunk by chunk, and db summed there too
    (each a pass over a block in cache instead of over the whole gradient)."""
    if isinstance(kept, np.ndarray) or (kept is None and accelerate.wants_numba(g, x, u)):
        return _compiled_backward(g, x, u, p, need_x, need_w, kept, relu_out, need_b)
    xp = backend.array_module(g)
    geom = p.geom
    (top, _), (left, _) = geom.pads
    co, c = g.shape[3], geom.c
    ragged = (p.h.tiles * p.h.m, p.w.tiles * p.w.m) != (geom.ho, geom.wo)
    dx = xp.empty((geom.n, geom.h, geom.w, c), dtype=g.dtype) if need_x else None
    ut = u.transpose(0, 2, 1) if need_x else None
    ath_t, atw_t = p.h.at.T, p.w.at.T
    bth_t, btw_t = p.h.bt.T, p.w.bt.T

    def run(chunks):  # a run of chunks on one thread: its dx slices, and its share of dU and db
        bufs = backend.Scratch(xp, g.dtype)
        gbuf = bufs.zeros("gbuf", (p.step, p.h.tiles * p.h.m, p.w.tiles * p.w.m, co)) if ragged else None
        xbuf = bufs.zeros("xbuf", (p.step, p.h.padded, p.w.padded, c)) if need_w and kept is None else None
        du = None  # the first chunk's product itself: no zero-filled dU (as big as the kernel's transform)
        db = xp.zeros(co, dtype=g.dtype) if need_b else None
        for index, n0 in chunks:
            count = min(p.step, geom.n - n0)
            if ragged:
                _fill(gbuf, g[n0:n0 + count], 0, 0)
                if relu_out is not None:
                    gbuf[:count, :geom.ho, :geom.wo] *= relu_out[n0:n0 + count] > 0
                dy = _tiled(gbuf[:count], p, count)
            else:
                dy = _tiled(g[n0:n0 + count], p, count)
            dy_c = bufs("dy", dy.shape)
            if relu_out is not None and not ragged:
                xp.multiply(dy, _tiled(relu_out[n0:n0 + count], p, count) > 0, out=dy_c)
            else:
                xp.copyto(dy_c, dy)
            dm = _along((ath_t, atw_t), dy_c, bufs, "dm").reshape(p.h.a * p.w.a, -1, co)
            if need_b:  # dM at the all-ones position is each tile's sum of dY: 1/a^2 of dM, not a pass over dY
                ones = bufs("ones", (dm.shape[1],))
                ones.fill(1)
                db += ones @ dm[p.ones]
            if need_w:
                if kept is None:
                    _fill(xbuf, x[n0:n0 + count], top, left)
                    v = _input_tiles(xbuf[:count], p, count, bufs)
                else:
                    v = kept[index]
                if du is None:
                    du = xp.matmul(v.transpose(0, 2, 1), dm)
                else:
                    du += xp.matmul(v.transpose(0, 2, 1), dm, out=bufs("du", du.shape))
            if need_x:
                dv = xp.matmul(dm, ut, out=bufs("dv", (dm.shape[0], dm.shape[1], c)))   # (a*a, tiles, C_in)
                dd = _along((bth_t, btw_t), dv, bufs, "dd").reshape(p.h.a, p.w.a, count, p.h.tiles, p.w.tiles, c)
                acc = bufs("acc", (p.h.m, p.w.m, count, p.h.tiles + 1, p.w.tiles + 1, c))
                _fold(dd, p, acc)
                padded = bufs("dxpad", (count, p.h.tiles + 1, p.h.m, p.w.tiles + 1, p.w.m, c))
                xp.copyto(padded, acc.transpose(2, 3, 0, 4, 1, 5))
                rows, cols = (p.h.tiles + 1) * p.h.m, (p.w.tiles + 1) * p.w.m
                dx[n0:n0 + count] = padded.reshape(count, rows, cols, c)[:, top:top + geom.h, left:left + geom.w]
        bufs.release()
        return du, db

    parts = backend.parallel_map(run, backend.share(enumerate(range(0, geom.n, p.step)), p.work))
    du, db = parts[0]
    for du_i, db_i in parts[1:]:
        if du_i is not None:
            du += du_i
        if db is not None:
            db += db_i
    return dx, du, db


def _compiled_args(p, dtype):
    """What both compiled kernels take from the plan: the transforms (contiguous, in `dtype`), the
    padding, the tile counts, the all-ones position and the chunk size; and the runs of chunks the
    threads take. The chunks are no bigger than the plan's and at least one per thread: a compiled
    run holds no GIL, so the threads stay busy however small their share."""
    geom = p.geom
    threads = backend.num_threads() if backend.worth_threads(p.work) else 1
    step = max(1, min(p.step, -(-geom.n // threads)))
    runs = backend.slices(-(-geom.n // step), threads)
    mats = tuple(np.ascontiguousarray(m, dtype=dtype) for m in (p.h.bt, p.w.bt, p.h.at, p.w.at))
    return mats, (geom.pads[0][0], geom.pads[1][0], p.h.tiles, p.w.tiles, p.ones, step), runs


def _compiled_forward(x, u, p, bias, keep, relu):
    """`forward` by the compiled kernel (ops/winograd_numba.py); `kept` is one flat array."""
    from . import winograd_numba
    geom, dtype = p.geom, x.dtype
    mats, sizes, runs = _compiled_args(p, dtype)
    x, u = np.ascontiguousarray(x), np.ascontiguousarray(u)
    out = np.empty((geom.n, p.h.tiles * p.h.m, p.w.tiles * p.w.m, u.shape[2]), dtype=dtype)
    kept = np.empty(p.h.a * p.w.a * geom.n * p.h.tiles * p.w.tiles * geom.c if keep else 0, dtype=dtype)
    bias = np.empty(0, dtype=dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    backend.parallel_map(lambda run, post: winograd_numba.forward(x, u, *mats, bias, bool(relu), *sizes,
                                                                  run.start, run.stop, out, kept, *post),
                         runs, handoff=True)
    if out.shape[1:3] != (geom.ho, geom.wo):
        out = np.ascontiguousarray(out[:, :geom.ho, :geom.wo])
    return out, (kept if keep else None)


def _compiled_backward(g, x, u, p, need_x, need_w, kept, relu_out, need_b):
    """`backward` by the compiled kernel (ops/winograd_numba.py): each run of chunks gives its share of
    dU and db, added up here."""
    from . import winograd_numba
    geom, dtype = p.geom, g.dtype
    mats, sizes, runs = _compiled_args(p, dtype)
    g, x, u = np.ascontiguousarray(g), np.ascontiguousarray(x), np.ascontiguousarray(u)
    relu_out = np.empty((0, 0, 0, 0), dtype=dtype) if relu_out is None else np.ascontiguousarray(relu_out)
    kept = np.empty(0, dtype=dtype) if kept is None else kept
    dx = np.empty((geom.n, geom.h, geom.w, geom.c) if need_x else (0, 0, 0, 0), dtype=dtype)
    # BLAS's NN product takes dV = dM @ U^T in 0.64x the time of the NT one (U-Net 64x64 32->16, per
    # image); the transposed copy is a pass over U, paid back from ~128 tiles (the layers there
    # measured 0.88-1.01x the time, median 0.94; the 32-tile 8x8 layers 1.18-1.25x on one thread)
    tiles = geom.n * p.h.tiles * p.w.tiles
    ut = np.ascontiguousarray(u.transpose(0, 2, 1)) if need_x and tiles >= _NN_TILES else np.empty((0, 0, 0), dtype)

    def run(chunks, post):
        du = np.empty((p.h.a * p.w.a, geom.c, u.shape[2]) if need_w else (0, 0, 0), dtype=dtype)
        db = np.empty(u.shape[2], dtype=dtype)
        winograd_numba.backward(g, x, u, ut, *mats, relu_out, *sizes, chunks.start, chunks.stop,
                                bool(need_x), bool(need_w), bool(need_b), kept, dx, du, db, *post)
        return du, db
    (du, db), *rest = backend.parallel_map(run, runs, handoff=True)
    for du_i, db_i in rest:
        du += du_i
        db += db_i
    return (dx if need_x else None), (du if need_w else None), (db if need_b else None)


def kernel_grad(du, p, c_in, c_out):
    """dW = G_h^T dU G_w: (kh, kw, C_in, C_out) from the transformed-domain gradient."""
    return _along_kernel((p.h.g.T, p.w.g.T), du).reshape(p.h.r, p.w.r, c_in, c_out)


def flops_saved(p):
    """Multiplications of im2col over those of Winograd for this plan (4.0 for F(4x4, 3x3))."""
    direct = p.geom.ho * p.geom.wo * p.geom.kh * p.geom.kw
    return direct / (p.h.tiles * p.w.tiles * p.h.a * p.w.a) if direct else math.nan


# ------------------------------------------------------------------ from the kernel itself
#
# conv2d goes through these two: the kernel's transform, the forward and the backward (dW, not dU)
# chosen together, so that a plan may also share out the channels instead of the images (see
# "threads sharing channels" in ops/winograd_numba.py).


def forward_kernel(x, w, p, bias=None, keep=False, relu=False):
    """(y, state): `forward` from the kernel w (kh, kw, C_in, C_out) itself; `state` is what
    `backward_kernel` takes."""
    shares = _channel_shares(p, x, w)
    if shares is not None:
        return _forward_channels(x, w, p, bias, keep, relu, shares)
    u = kernel_transform(w, p)
    y, kept = forward(x, u, p, bias, keep=keep, relu=relu)
    return y, (u, kept)


def backward_kernel(g, x, state, p, need_x, need_w, relu_out=None, need_b=False):
    """(dx, dW, db) of `forward_kernel` for the output gradient g, each None when not asked for."""
    if isinstance(state[0], str):   # ("channels", ...) from _forward_channels
        return _backward_channels(g, x, state, p, need_x, need_w, relu_out, need_b)
    u, kept = state
    dx, du, db = backward(g, x, u, p, need_x, need_w, kept, relu_out, need_b)
    return dx, (None if du is None else kernel_grad(du, p, p.geom.c, p.geom.co)), db


def _channel_shares(p, x, w):
    """The output-channel bounds and input-channel slices of each thread's share when the threads should
    split the channels (compiled kernels, several threads, fewer than _CHUNK_TILES tiles per thread,
    at least _SHARE_CHANNELS channels each); else None. Measured on two threads, forward + backward,
    against sharing out the images: the U-Net's 8x8 layers 128->128 0.79-0.93x the time, 256->128
    0.94-1.05x (four runs: no loss, no clear gain)."""
    geom = p.geom
    threads = backend.num_threads() if backend.worth_threads(p.work) else 1
    if threads < 2 or not accelerate.wants_numba(x, w) or min(geom.c, geom.co) < _SHARE_CHANNELS * threads \
            or geom.n * p.h.tiles * p.w.tiles >= threads * _CHUNK_TILES:
        return None
    return [s.start for s in backend.slices(geom.co, threads)] + [geom.co], backend.slices(geom.c, threads)


def _forward_channels(x, w, p, bias, keep, relu, shares):
    from . import winograd_numba
    geom, dtype = p.geom, x.dtype
    bounds, c_slices = shares
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w, dtype=dtype)
    e_all = p.h.a * p.w.a
    tiles = geom.n * p.h.tiles * p.w.tiles
    out = np.empty((geom.n, p.h.tiles * p.h.m, p.w.tiles * p.w.m, geom.co), dtype=dtype)
    kept = np.empty(e_all * tiles * geom.c if keep else 0, dtype=dtype)
    u_flat = np.empty(e_all * geom.c * geom.co, dtype=dtype)
    bias = np.empty(0, dtype=dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    mats = tuple(np.ascontiguousarray(m, dtype=dtype) for m in (p.h.g, p.w.g, p.h.bt, p.w.bt, p.h.at, p.w.at))
    sizes = (geom.pads[0][0], geom.pads[1][0], p.h.tiles, p.w.tiles, p.ones)
    nothing = np.empty(0, dtype=dtype)

    def run(share, post):
        lo, hi = bounds[share], bounds[share + 1]
        winograd_numba.forward_channels(x, w, *mats, bias, bool(relu), *sizes, lo, hi, out,
                                        kept if share == 0 else nothing,
                                        u_flat[e_all * geom.c * lo:e_all * geom.c * hi].reshape(e_all, geom.c, hi - lo),
                                        *post)
    backend.parallel_map(run, range(len(bounds) - 1), handoff=True)
    if out.shape[1:3] != (geom.ho, geom.wo):
        out = np.ascontiguousarray(out[:, :geom.ho, :geom.wo])
    return out, ("channels", u_flat, np.array(bounds, np.int64), c_slices, kept if keep else None)


def _backward_channels(g, x, state, p, need_x, need_w, relu_out, need_b):
    from . import winograd_numba
    _, u_flat, bounds, c_slices, kept = state
    geom, dtype = p.geom, g.dtype
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    relu_out = np.empty((0, 0, 0, 0), dtype=dtype) if relu_out is None else np.ascontiguousarray(relu_out)
    kept = np.empty(0, dtype=dtype) if kept is None else kept
    dx = np.empty((geom.n, geom.h, geom.w, geom.c) if need_x else (0, 0, 0, 0), dtype=dtype)
    dw = np.empty((geom.kh, geom.kw, geom.c, geom.co) if need_w else (0, 0, 0, 0), dtype=dtype)
    db = np.empty(geom.co, dtype=dtype)
    mats = tuple(np.ascontiguousarray(m, dtype=dtype) for m in (p.h.bt, p.w.bt, p.h.at, p.w.at, p.h.g.T, p.w.g.T))
    sizes = (geom.pads[0][0], geom.pads[1][0], p.h.tiles, p.w.tiles, p.ones)

    def run(share, post):
        c = c_slices[share]
        winograd_numba.backward_channels(g, x, u_flat, bounds, *mats, relu_out, *sizes, share, c.start, c.stop,
                                         bool(need_x), bool(need_w), bool(need_b), kept, dx, dw, db, *post)
    backend.parallel_map(run, range(len(bounds) - 1), handoff=True)
    return (dx if need_x else None), (dw if need_w else None), (db if need_b else None)
