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

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def _gather(a, r0, c0, rs, cs, rows, cols, block):
    """block[(b, r, c)] = a[b, r0 + r*rs, c0 + c*cs] for an (N, H, W, C) array a."""
    q = 0
    for b in range(a.shape[0]):
        for r in range(rows):
            for c in range(cols):
                source = a[b, r0 + r * rs, c0 + c * cs]
                target = block[q]
                for e in range(source.shape[0]):
                    target[e] = source[e]
                q += 1


@njit(**_JIT)
def _add(product, out, r0, c0, rs, cs, rows, cols):
    """out[b, r0 + r*rs, c0 + c*cs] += product[(b, r, c)]."""
    q = 0
    for b in range(out.shape[0]):
        for r in range(rows):
            for c in range(cols):
                target = out[b, r0 + r * rs, c0 + c * cs]
                source = product[q]
                for e in range(target.shape[0]):
                    target[e] += source[e]
                q += 1


@njit(**_JIT)
def forward(x, wk, taps, sh, sw, y):
    """y (N, Ho, Wo, C_out), zeroed, += each tap's x block @ W[i, j]."""
    y[:] = 0
    n, c, co = x.shape[0], x.shape[3], y.shape[3]
    for t in range(taps.shape[0]):
        i, j, xr, xc, yr, yc, rows, cols = taps[t]
        block = np.empty((n * rows * cols, c), x.dtype)
        _gather(x, xr, xc, sh, sw, rows, cols, block)
        _add(np.dot(block, wk[i, j]), y, yr, yc, 1, 1, rows, cols)


@njit(**_JIT)
def backward(x, wk, g, taps, sh, sw, need_x, need_w, dx, dw):
    """For each tap: dW[i, j] = x block^T @ g block into dw (when need_w), and dx (zeroed first) +=
    g block @ W[i, j]^T (when need_x)."""
    if need_x:
        dx[:] = 0
    n, c, co = x.shape[0], x.shape[3], g.shape[3]
    for t in range(taps.shape[0]):
        i, j, xr, xc, yr, yc, rows, cols = taps[t]
        gt = np.empty((n * rows * cols, co), g.dtype)
        _gather(g, yr, yc, 1, 1, rows, cols, gt)
        if need_w:
            xt = np.empty((n * rows * cols, c), x.dtype)
            _gather(x, xr, xc, sh, sw, rows, cols, xt)
            np.dot(xt.T, gt, dw[i, j])
        if need_x:
            _add(np.dot(gt, wk[i, j].T), dx, xr, xc, sh, sw, rows, cols)
