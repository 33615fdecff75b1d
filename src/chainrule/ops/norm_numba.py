"""Batch norm's passes (ops/norm.py) compiled by numba, for x seen as (pixels, channels): each call
takes the rows first .. last - 1, so that chainrule's threads (backend.parallel_map) each run one
call on their own rows, without the GIL and without waking one another mid-pass.

    stats        s[c] = sum (x - ref),  q[c] = sum (x - ref)^2      (float64, ref a row of x)
    normalize    y = (x - mean) * scale + offset
    grad_sums    sum g,  sum g * (x - mean)                          (float64)
    grad_input   dx = a * g + b * (x - mean) + k

ops/norm.py turns the sums into the statistics and the per-channel a, b, k. Imported only when
numba is (see chainrule.accelerate).
"""
import numpy as np
from numba import njit

from ..spinpool import post

_JIT = dict(nogil=True, cache=True)


@njit(**_JIT)
def stats(x, ref, first, last, out, posted, targets):
    """out[0] = sum of x[r] - ref and out[1] = sum of (x[r] - ref)^2 over the rows r = first .. last - 1,
    per channel, in float64. Shifted by a value of the data (`ref`), the one pass loses no more to
    cancellation than the two-pass form. First, post(posted, targets) (chainrule.spinpool)."""
    post(posted, targets)
    c = x.shape[1]
    s = np.zeros(c)
    q = np.zeros(c)
    for r in range(first, last):
        row = x[r]
        for j in range(c):
            d = np.float64(row[j]) - ref[j]
            s[j] += d
            q[j] += d * d
    out[0] = s
    out[1] = q


@njit(**_JIT)
def normalize(x, mean, scale, offset, first, last, y, posted, targets):
    """y[r] = (x[r] - mean) * scale + offset for the rows first .. last - 1. First, post(posted, targets)."""
    post(posted, targets)
    c = x.shape[1]
    for r in range(first, last):
        row, out = x[r], y[r]
        for j in range(c):
            out[j] = (row[j] - mean[j]) * scale[j] + offset[j]


@njit(**_JIT)
def grad_sums(x, g, mean, first, last, out, posted, targets):
    """out[0] = sum of g[r] and out[1] = sum of g[r] * (x[r] - mean) over the rows first .. last - 1, per
    channel, in float64. First, post(posted, targets)."""
    post(posted, targets)
    c = x.shape[1]
    s = np.zeros(c)
    p = np.zeros(c)
    for r in range(first, last):
        row, grow = x[r], g[r]
        for j in range(c):
            gj = np.float64(grow[j])
            s[j] += gj
            p[j] += gj * (row[j] - mean[j])
    out[0] = s
    out[1] = p


@njit(**_JIT)
def grad_input(x, g, mean, a, b, k, first, last, dx, posted, targets):
    """dx[r] = a * g[r] + b * (x[r] - mean) + k for the rows first .. last - 1. First, post(posted, targets)."""
    post(posted, targets)
    c = x.shape[1]
    for r in range(first, last):
        row, grow, out = x[r], g[r], dx[r]
        for j in range(c):
            out[j] = a[j] * grow[j] + b[j] * (row[j] - mean[j]) + k[j]
