"""Convolutions whose receptive fields tile the image exactly (ops/conv.py, `_tiles_exactly`: stride =
kernel, no padding or dilation; the U-Net's 2x2 stride-2 up-convolutions) compiled by numba.

ops/conv.py is the reference. There, each row r = (n, i, j) of the small image's matrix q (N*Ho*Wo,
C_out) owns one kh x kw tile of the big image p (N, Ho*kh, Wo*kw, C), and tiles(p) is the
(N*Ho*Wo, kh*kw*C) matrix of those tiles, columns ordered (kh, kw, C) like a Keras kernel w2
(kh*kw*C, C_out) reshaped:

    untile:         p = untile(q @ w2^T) (+ bias)     a transposed conv's forward, a conv's dx
    tile_products:  dq = tiles(p) @ w2,  dW = tiles(p)^T @ q,  db = the sum of p's pixels
                                                      a transposed conv's backward

A thread's run of rows is one call with the GIL released, `block` rows at a time (ops/conv.py sizes
the blocks, _TILE_BLOCK_BYTES); the products are BLAS calls (numba's np.dot), the copies loops over
unsigned offsets (see ops/winograd_numba.py: numba's wraparound check on a signed index keeps LLVM
from vectorizing them). The bias gradient adds up in float64, as batch norm's sums do.

Imported only when numba is (see chainrule.accelerate).
"""
import numpy as np
from numba import njit, uint64

from ..spinpool import post

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _tile_start(r, ho, wo, kh, kw, wp, c):
    """The flat offset in p (N, ho*kh, wp, C) of tile r's first pixel."""
    n, i, j = r // (ho * wo), (r // wo) % ho, r % wo
    return uint64(((n * ho + i) * kh * wp + j * kw) * c)


@njit(**_JIT)
def untile(q, w2, bias, kh, kw, r0, r1, block, p, posted, targets):
    """p's tiles of rows r0 .. r1 - 1 = q[r] @ w2^T, plus bias (bias.size == 0: none), block rows at a
    time. First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    _, hp, wp, c = p.shape
    ho, wo = hp // kh, wp // kw
    pf = p.reshape(-1)
    run, down = uint64(c), uint64(wp * c)
    for b0 in range(r0, r1, block):
        b1 = min(b0 + block, r1)
        zf = np.dot(q[b0:b1], w2.T).reshape(-1)
        src = uint64(0)
        for r in range(b0, b1):
            row = _tile_start(r, ho, wo, kh, kw, wp, c)
            for i in range(kh):
                at = row
                for j in range(kw):
                    if bias.size:
                        for e in range(run):
                            pf[at + e] = zf[src + e] + bias[e]
                    else:
                        for e in range(run):
                            pf[at + e] = zf[src + e]
                    at += run
                    src += run
                row += down


@njit(**_JIT)
def tile_products(p, w2, q, kh, kw, r0, r1, block, need_q, need_w, need_b, dq, dw, db, posted, targets):
    """For rows r0 .. r1 - 1, block rows at a time: dq[r] = tiles(p)[r] @ w2 (when need_q), dw =
    tiles(p)^T @ q over these rows (need_w; dw is overwritten), db (float64) = the sum of these tiles'
    pixels (need_b; overwritten). First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    _, hp, wp, c = p.shape
    ho, wo = hp // kh, wp // kw
    pf = p.reshape(-1)
    k = kh * kw * c
    run, width, down = uint64(c), uint64(kw * c), uint64(wp * c)
    t = np.empty((min(block, r1 - r0), k), p.dtype)
    tf = t.reshape(-1)
    share = np.empty_like(dw) if need_w and r1 - r0 > block else dw
    if need_b:
        db[:] = 0
    for b0 in range(r0, r1, block):
        b1 = min(b0 + block, r1)
        to = uint64(0)
        for r in range(b0, b1):
            row = _tile_start(r, ho, wo, kh, kw, wp, c)
            for i in range(kh):   # a tile's row is kw pixels side by side in p: one run of kw*C
                for e in range(width):
                    tf[to + e] = pf[row + e]
                if need_b:
                    at = row
                    for j in range(kw):
                        for e in range(run):
                            db[e] += pf[at + e]
                        at += run
                row += down
                to += width
        tb = t[:b1 - b0]
        if need_q:
            np.dot(tb, w2, dq[b0:b1])
        if need_w:
            if b0 == r0:
                np.dot(tb.T, q[b0:b1], dw)
            else:
                np.dot(tb.T, q[b0:b1], share)
                dw += share
