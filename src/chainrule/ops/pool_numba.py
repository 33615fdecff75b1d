"""Max pooling (ops/pool.py) compiled by numba: each call takes the images n0 .. n1 - 1, so that
chainrule's threads (backend.parallel_map) each run one call on their own images, without the GIL.

    forward    y = the max of each window, and which of its kh*kw offsets held it (row-major order,
               the first of equal maxima; a NaN wins, the last NaN, as in np.maximum and PyTorch)
    backward   dx[the offset that held the max] += g: a copy where the windows tile x exactly

The forward keeps the offset of each maximum (one byte per output), so the backward reads g and
that, not x and y again. ops/pool.py is the reference; the tests compare the two. Imported only when
numba is (see chainrule.accelerate).
"""
import numpy as np
from numba import njit, uint64

from ..spinpool import post

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _inside(i, s, pad, k, n):
    """The offsets a (lo <= a < hi) of window i's k along an axis of length n that fall inside it: the
    window starts at i*s - pad."""
    start = i * s - pad
    return max(0, -start), min(k, n - start)


@njit(**_JIT)
def forward(x, kh, kw, sh, sw, top, left, n0, n1, y, where, posted, targets):
    """y[n, i, j] = max of x's window (i*sh - top .., j*sw - left ..) over the offsets inside x, and
    where[n, i, j] = the offset (a*kw + b) that held it, for images n0 .. n1 - 1. First,
    post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    _, h, w, c = x.shape
    _, ho, wo, _ = y.shape
    xf, yf, wf = x.reshape(-1), y.reshape(-1), where.reshape(-1)
    run = uint64(c)
    for n in range(n0, n1):
        for i in range(ho):
            for j in range(wo):
                out = uint64(((n * ho + i) * wo + j) * c)
                a0, a1 = _inside(i, sh, top, kh, h)
                b0, b1 = _inside(j, sw, left, kw, w)
                first = True
                for a in range(a0, a1):
                    for b in range(b0, b1):
                        at = uint64(((n * h + i * sh - top + a) * w + j * sw - left + b) * c)
                        o = np.uint8(a * kw + b)
                        if first:
                            for e in range(run):
                                yf[out + e] = xf[at + e]
                                wf[out + e] = o
                            first = False
                        else:   # selects, not branches, so that LLVM vectorizes the channel loop
                            for e in range(run):
                                v, m = xf[at + e], yf[out + e]
                                take = v > m or v != v
                                yf[out + e] = v if take else m
                                wf[out + e] = o if take else wf[out + e]


@njit(**_JIT)
def backward(g, where, kh, kw, sh, sw, top, left, tiled, n0, n1, dx, posted, targets):
    """dx of images n0 .. n1 - 1: each g[n, i, j, c] added at the offset where[n, i, j, c] of its window.
    With `tiled` (the windows cover dx exactly, without overlap) each element of dx is written once,
    the gradient or 0; else dx's images are zeroed first and the gradients added. First, post(...)."""
    post(posted, targets)
    _, h, w, c = dx.shape
    _, ho, wo, _ = g.shape
    gf, wf, df = g.reshape(-1), where.reshape(-1), dx.reshape(-1)
    zero = np.zeros(1, dx.dtype)[0]
    run = uint64(c)
    if not tiled:
        dx[n0:n1] = 0
    for n in range(n0, n1):
        for i in range(ho):
            for j in range(wo):
                out = uint64(((n * ho + i) * wo + j) * c)
                a0, a1 = _inside(i, sh, top, kh, h)
                b0, b1 = _inside(j, sw, left, kw, w)
                for a in range(a0, a1):
                    for b in range(b0, b1):
                        at = uint64(((n * h + i * sh - top + a) * w + j * sw - left + b) * c)
                        o = np.uint8(a * kw + b)
                        if tiled:
                            for e in range(run):
                                df[at + e] = gf[out + e] if wf[out + e] == o else zero
                        else:
                            for e in range(run):
                                df[at + e] += gf[out + e] if wf[out + e] == o else zero
