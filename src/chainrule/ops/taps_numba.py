"""One GEMM per kernel tap (ops/conv.py, "one GEMM per kernel tap") compiled by numba: a thread's
run of taps is one call with the GIL released.

ops/conv.py is the reference. Each tap is a row of `taps`: (i, j, first input row, first input
column, first output row, first output column, output rows, output columns); the tap reads the input
at stride (sh, sw) from its first row and column and adds into that block of the output:

    y[:, out_t] += x[:, in_t] @ W[t]      dx[:, in_t] += g[:, out_t] @ W[t]^T      dW[t] = x[:, in_t]^T @ g[:, out_t]

Imported only when numba is (see chainrule.accelerate).
"""
import numpy as np
from numba import njit

from ..spinpool import post

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _region(a, r0, c0, rs, cs, rows, cols, block, gather):
    """gather: block[(b, r, c)] = a[b, r0 + r*rs, c0 + c*cs]; else a[b, r0 + r*rs, c0 + c*cs] += block[(b, r, c)],
    for an (N, H, W, C) array a and a (N*rows*cols, C) block."""
    q = 0
    for b in range(a.shape[0]):
        for r in range(rows):
            for c in range(cols):
                pixel, row = a[b, r0 + r * rs, c0 + c * cs], block[q]
                if gather:
                    for e in range(row.shape[0]):
                        row[e] = pixel[e]
                else:
                    for e in range(row.shape[0]):
                        pixel[e] += row[e]
                q += 1


@njit(**_JIT)
def forward(x, wk, taps, sh, sw, y, posted, targets):
    """y (N, Ho, Wo, C_out), zeroed, += each tap's x block @ W[i, j]. First, post(posted, targets)
    (chainrule.spinpool)."""
    post(posted, targets)
    y[:] = 0
    n, c = x.shape[0], x.shape[3]
    for t in range(taps.shape[0]):
        i, j, xr, xc, yr, yc, rows, cols = taps[t]
        block = np.empty((n * rows * cols, c), x.dtype)
        _region(x, xr, xc, sh, sw, rows, cols, block, True)
        _region(y, yr, yc, 1, 1, rows, cols, np.dot(block, wk[i, j]), False)


@njit(**_JIT)
def backward(x, wk, g, taps, sh, sw, need_x, need_w, dx, dw, posted, targets):
    """For each tap: dW[i, j] = x block^T @ g block into dw (when need_w), and dx (zeroed first) +=
    g block @ W[i, j]^T (when need_x). First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    if need_x:
        dx[:] = 0
    n, c, co = x.shape[0], x.shape[3], g.shape[3]
    for t in range(taps.shape[0]):
        i, j, xr, xc, yr, yc, rows, cols = taps[t]
        gt = np.empty((n * rows * cols, co), g.dtype)
        _region(g, yr, yc, 1, 1, rows, cols, gt, True)
        if need_w:
            xt = np.empty((n * rows * cols, c), x.dtype)
            _region(x, xr, xc, sh, sw, rows, cols, xt, True)
            np.dot(xt.T, gt, dw[i, j])
        if need_x:
            _region(dx, xr, xc, sh, sw, rows, cols, np.dot(gt, wk[i, j].T), False)
