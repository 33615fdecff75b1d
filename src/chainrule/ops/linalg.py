"""Matrix products: matmul (batched, with NumPy's 1-D rules) and linear (x @ W + b in one node)."""
from .. import backend
from .base import as_tensor, record, unbroadcast


def _matmul_error(a, b):
    return ValueError(f"matmul: shapes {a.shape} and {b.shape} do not line up: the last axis of the first "
                      f"({a.shape[-1]}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} axis of "
                      f"the second ({b.shape[0] if b.ndim == 1 else b.shape[-2]}); transpose or reshape one of them")


def matmul(a, b):
    """a @ b;  dL/da = g @ b^T, dL/db = a^T @ g (summed over broadcast batch axes).

    1-D operands follow NumPy: a vector on the left is a row, on the right a column,
    and the added axis is dropped from the result.
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}; "
                         f"use * for scalars")
    if a.shape[-1] != (b.shape[0] if b.ndim == 1 else b.shape[-2]):
        raise _matmul_error(a, b)
    ad, bd = a.data, b.data
    try:
        y = ad @ bd
    except ValueError:
        raise ValueError(f"matmul: batch axes of {a.shape} and {b.shape} do not broadcast") from None
    a2 = ad[None, :] if a.ndim == 1 else ad  # promoted operands, as NumPy does internally
    b2 = bd[:, None] if b.ndim == 1 else bd

    def backward(g):
        # restore the dropped axes, b's first: a 1-D @ 1-D gradient is 0-d and has no last axis yet
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb
    return record(y, (a, b), backward, "matmul")


def linear(x, w, b=None):
    """x @ w + b for x (batch..., in), w (in, out), b (out,): the dense layer in one node.

    dL/dx = g @ w^T,  dL/dw = x^T @ g,  dL/db = sum of g over the batch.
    One node instead of two saves an intermediate array and a graph step per layer.
    """
    x, w = as_tensor(x), as_tensor(w)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weights of shape {w.shape}: "
                         f"the last input axis must equal w.shape[0]")
    xd, wd = x.data, w.data
    x2 = xd.reshape(-1, xd.shape[-1])
    y = backend.gemm(x2, wd).reshape(xd.shape[:-1] + (wd.shape[1],))
    parents = (x, w)
    if b is not None:
        b = as_tensor(b)
        y += b.data
        parents = (x, w, b)

    def backward(g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = backend.gemm(g2, wd.T).reshape(x.shape) if x.requires_grad else None
        gw = backend.gemm(x2.T, g2) if w.requires_grad else None
        if b is None:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if b.requires_grad else None)
    return record(y, parents, backward, "linear")
