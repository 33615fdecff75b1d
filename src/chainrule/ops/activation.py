"""Activations. Where the derivative is a function of the output (sigmoid, tanh, softmax),
the node keeps the output and drops the input.
"""
import math

import numpy as np

from .. import backend
from .base import as_tensor, record


def sigmoid(x):
    """1 / (1 + e^-x), computed as tanh(x/2)/2 + 1/2 so no exp can overflow;  d/dx = y (1 - y)."""
    x = as_tensor(x)
    xp = backend.array_module(x.data)
    y = xp.tanh(x.data * 0.5)
    y *= 0.5
    y += 0.5
    return record(y, (x,), lambda g: (g * y * (1 - y),), "sigmoid")


def tanh(x):
    """tanh(x);  d/dx = 1 - y^2."""
    x = as_tensor(x)
    y = backend.array_module(x.data).tanh(x.data)
    return record(y, (x,), lambda g: (g * (1 - y * y),), "tanh")


def relu(x):
    """max(x, 0);  d/dx = 1 where x > 0, else 0."""
    x = as_tensor(x)
    xd = x.data
    if xd.dtype.kind != "f" or xd.ndim == 0:
        y = np.maximum(xd, 0)
        return record(y, (x,), lambda g: (g * (y > 0),), "relu")
    # big arrays go slice by slice over the threads (backend.parallel_slices)
    xp = backend.array_module(xd)
    y = xp.empty_like(xd)
    backend.parallel_slices(len(xd), lambda s: xp.maximum(xd[s], 0, out=y[s]), xd.size, backend.FACTOR_PASS)

    def backward(g):
        dx = xp.empty(g.shape, dtype=g.dtype)
        backend.parallel_slices(len(g), lambda s: xp.multiply(g[s], y[s] > 0, out=dx[s]), g.size,
                                backend.FACTOR_PASS)
        return (dx,)
    return record(y, (x,), backward, "relu")


def leaky_relu(x, negative_slope=0.2):
    """x for x > 0, negative_slope * x otherwise (Keras's default slope 0.2; PyTorch's is 0.01)."""
    x = as_tensor(x)
    xd = x.data
    pos = xd > 0
    y = np.where(pos, xd, xd * x.dtype.type(negative_slope))
    return record(y, (x,), lambda g: (np.where(pos, g, g * g.dtype.type(negative_slope)),), "leaky_relu")


def elu(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) otherwise;  d/dx = 1 or y + alpha."""
    x = as_tensor(x)
    xd = x.data
    pos = xd > 0
    alpha = x.dtype.type(alpha)
    y = np.where(pos, xd, alpha * np.expm1(np.minimum(xd, 0)))
    return record(y, (x,), lambda g: (np.where(pos, g, g * (y + alpha)),), "elu")


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def selu(x):
    """scale * elu(x, alpha) with the self-normalizing constants (Klambauer et al., 2017)."""
    x = as_tensor(x)
    xd = x.data
    pos = xd > 0
    scale, alpha = x.dtype.type(_SELU_SCALE), x.dtype.type(_SELU_ALPHA)
    y = scale * np.where(pos, xd, alpha * np.expm1(np.minimum(xd, 0)))
    return record(y, (x,), lambda g: (g * np.where(pos, scale, y + scale * alpha),), "selu")


def _erf(a):
    if backend.array_module(a) is not np:
        from cupyx.scipy.special import erf
        return erf(a)
    try:
        from scipy.special import erf
        return erf(a)
    except ImportError:  # NumPy has no erf: exact but slow, element by element
        return np.frompyfunc(math.erf, 1, 1)(a).astype(a.dtype)


def gelu(x, approximate=False):
    """x * Phi(x) with Phi the standard normal CDF (exact, via erf), or the tanh approximation
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) when `approximate=True`."""
    x = as_tensor(x)
    xd = x.data
    t = x.dtype.type
    if approximate:
        c = t(math.sqrt(2 / math.pi))
        inner = c * (xd + t(0.044715) * xd ** 3)
        th = np.tanh(inner)
        y = t(0.5) * xd * (1 + th)

        def backward(g):
            dinner = c * (1 + t(3 * 0.044715) * xd * xd)
            return (g * (t(0.5) * (1 + th) + t(0.5) * xd * (1 - th * th) * dinner),)
    else:
        cdf = t(0.5) * (1 + _erf(xd / t(math.sqrt(2))))
        y = xd * cdf

        def backward(g):
            pdf = np.exp(-0.5 * xd * xd) / t(math.sqrt(2 * math.pi))
            return (g * (cdf + xd * pdf),)
    return record(y, (x,), backward, "gelu")


def softplus(x):
    """ln(1 + e^x), computed as logaddexp(0, x) to stay finite;  d/dx = sigmoid(x)."""
    x = as_tensor(x)
    xd = x.data
    y = np.logaddexp(x.dtype.type(0), xd)

    def backward(g):
        s = np.tanh(xd * 0.5) * 0.5 + 0.5
        return (g * s,)
    return record(y, (x,), backward, "softplus")


def silu(x):
    """x * sigmoid(x) (also called swish);  d/dx = s + x s (1 - s)."""
    x = as_tensor(x)
    xd = x.data
    s = np.tanh(xd * 0.5) * 0.5 + 0.5
    return record(xd * s, (x,), lambda g: (g * (s + xd * s * (1 - s)),), "silu")


swish = silu


def softmax(x, axis=-1):
    """e^(x_i - m) / sum_j e^(x_j - m) with m = max(x) (shifting changes nothing but avoids overflow);
    dL/dx = y * (g - sum(g * y))."""
    x = as_tensor(x)
    xd = x.data
    e = np.exp(xd - xd.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def backward(g):
        gy = g * y
        return (gy - y * gy.sum(axis=axis, keepdims=True),)
    return record(y, (x,), backward, "softmax")


def log_softmax(x, axis=-1):
    """x_i - m - ln sum_j e^(x_j - m) with m = max(x);  dL/dx = g - softmax(x) * sum(g)."""
    x = as_tensor(x)
    xd = x.data
    shifted = xd - xd.max(axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)
    return record(y, (x,), backward, "log_softmax")
