"""Reductions over axes: sum, mean, max, min, var, std, logsumexp, argmax, argmin.

`axis` is None (all axes), an int or a tuple; `keepdims` keeps reduced axes as size 1.
The backward of a reduction re-inserts the reduced axes and broadcasts.
"""
import builtins

from .. import backend
from .base import Tensor, as_tensor, normalize_axis, record


def _expand(g, shape, axes, keepdims):
    """Reshape the gradient of a reduction so it broadcasts against the input."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(x, axis=None, keepdims=False):
    """sum of x over `axis`;  d/dx_i = 1."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    xp = backend.array_module(x.data)
    y = x.data.sum(axis=axes, keepdims=keepdims)

    def backward(g):
        return (xp.broadcast_to(_expand(g, x.shape, axes, keepdims), x.shape),)
    return record(xp.asarray(y), (x,), backward, "sum")


def mean(x, axis=None, keepdims=False):
    """mean of x over `axis`;  d/dx_i = 1/n."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    xp = backend.array_module(x.data)
    y = x.data.mean(axis=axes, keepdims=keepdims)
    n = 1
    for a in axes:
        n *= x.shape[a]

    def backward(g):
        return (xp.broadcast_to(_expand(g, x.shape, axes, keepdims) / g.dtype.type(n), x.shape),)
    return record(xp.asarray(y), (x,), backward, "mean")


def _extreme(x, axis, keepdims, name):
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    xp = backend.array_module(x.data)
    if x.size == 0:
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")
    fn = x.data.max if name == "max" else x.data.min
    y = fn(axis=axes, keepdims=True)
    xd = x.data

    def backward(g):
        # ties share the gradient equally (as torch.amax does): deterministic and symmetric
        hit = (xd == y)
        count = hit.sum(axis=axes, keepdims=True)
        return (hit * (_expand(g, x.shape, axes, keepdims) / count).astype(g.dtype, copy=False),)
    out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return record(xp.asarray(out), (x,), backward, name)


def max(x, axis=None, keepdims=False):
    """max of x over `axis`;  the gradient goes to the maximal elements, shared equally on ties."""
    return _extreme(x, axis, keepdims, "max")


def min(x, axis=None, keepdims=False):
    """min of x over `axis`;  the gradient goes to the minimal elements, shared equally on ties."""
    return _extreme(x, axis, keepdims, "min")


def var(x, axis=None, keepdims=False, ddof=0):
    """variance sum((x - mean)^2) / (n - ddof);  d/dx_i = 2 (x_i - mean) / (n - ddof).

    `ddof=0` (population variance) as in NumPy and Keras; PyTorch's default is ddof=1.
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    xp = backend.array_module(x.data)
    n = 1
    for a in axes:
        n *= x.shape[a]
    centred = x.data - x.data.mean(axis=axes, keepdims=True)
    denom = x.dtype.type(builtins.max(n - ddof, 0))
    y = (centred * centred).sum(axis=axes, keepdims=keepdims) / denom

    def backward(g):
        return (_expand(g, x.shape, axes, keepdims) * (2 * centred / denom),)
    return record(xp.asarray(y), (x,), backward, "var")



def std(x, axis=None, keepdims=False, ddof=0):
    """standard deviation sqrt(var(x));  composed from var and sqrt."""
    from .math import sqrt
    return sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m = max(x), so it never overflows;
    d/dx_i = softmax(x)_i."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    xp = backend.array_module(x.data)
    m = x.data.max(axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    e = xp.exp(x.data - m)
    s = e.sum(axis=axes, keepdims=True)
    y = xp.log(s) + m

    def backward(g):
        return (_expand(g, x.shape, axes, keepdims) * (e / s),)
    out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return record(out, (x,), backward, "logsumexp")


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (first one on ties); not differentiable."""
    x = as_tensor(x)
    return Tensor(x.data.argmax(axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element along `axis` (first one on ties); not differentiable."""
    x = as_tensor(x)
    return Tensor(x.data.argmin(axis=axis, keepdims=keepdims))
