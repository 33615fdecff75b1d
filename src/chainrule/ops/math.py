"""Elementwise arithmetic. Each op: the forward formula, then its derivative right below.

Binary ops broadcast like NumPy; their backward sums the gradient back to each
input's shape (`unbroadcast`).
"""
import numpy as np

from .. import backend
from .base import Tensor, as_tensor, broadcast_error, operands, record, unbroadcast


def _binary(op, a, b, fn):
    a, b = operands(a, b)
    try:
        return a, b, fn(a.data, b.data)
    except ValueError as e:
        if "broadcast" in str(e):
            raise broadcast_error(op, a, b) from None
        raise


def add(a, b):
    """a + b;  d/da = 1, d/db = 1."""
    a, b, y = _binary("add", a, b, np.add)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return record(y, (a, b), backward, "add")


def sub(a, b):
    """a - b;  d/da = 1, d/db = -1."""
    a, b, y = _binary("sub", a, b, np.subtract)

    def backward(g):
        return unbroadcast(g, a.shape), (None if not b.requires_grad else unbroadcast(-g, b.shape))
    return record(y, (a, b), backward, "sub")


def mul(a, b):
    """a * b;  d/da = b, d/db = a."""
    a, b, y = _binary("mul", a, b, np.multiply)
    ad, bd = a.data, b.data

    def backward(g):
        return (unbroadcast(g * bd, a.shape) if a.requires_grad else None,
                unbroadcast(g * ad, b.shape) if b.requires_grad else None)
    return record(y, (a, b), backward, "mul")


def div(a, b):
    """a / b;  d/da = 1/b, d/db = -a/b^2."""
    a, b, y = _binary("div", a, b, np.true_divide)
    bd = b.data

    def backward(g):
        ga = g / bd
        return (unbroadcast(ga, a.shape) if a.requires_grad else None,
                unbroadcast(-ga * y, b.shape) if b.requires_grad else None)
    return record(y, (a, b), backward, "div")


def neg(a):
    """-a;  d/da = -1."""
    a = as_tensor(a)
    return record(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, b):
    """a ** b;  d/da = b a^(b-1), d/db = a^b ln a (taken as 0 where a = 0)."""
    a, b, y = _binary("pow", a, b, np.power)
    ad, bd = a.data, b.data

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g * bd * np.power(ad, bd - 1), a.shape)
        if b.requires_grad:
            xp = backend.array_module(ad)
            log_a = xp.log(xp.where(ad > 0, ad, 1))
            gb = unbroadcast(g * y * log_a, b.shape)
        return ga, gb
    return record(y, (a, b), backward, "pow")


def square(a):
    """a^2;  d/da = 2a."""
    a = as_tensor(a)
    ad = a.data
    return record(ad * ad, (a,), lambda g: (2 * g * ad,), "square")


def exp(a):
    """e^a;  d/da = e^a (the output itself, so the input is not kept)."""
    a = as_tensor(a)
    y = np.exp(a.data)
    return record(y, (a,), lambda g: (g * y,), "exp")


def log(a):
    """ln a;  d/da = 1/a."""
    a = as_tensor(a)
    ad = a.data
    return record(np.log(ad), (a,), lambda g: (g / ad,), "log")


def log1p(a):
    """ln(1 + a), accurate for small a;  d/da = 1/(1 + a)."""
    a = as_tensor(a)
    ad = a.data
    return record(np.log1p(ad), (a,), lambda g: (g / (1 + ad),), "log1p")


def sqrt(a):
    """sqrt(a);  d/da = 1 / (2 sqrt(a))."""
    a = as_tensor(a)
    y = np.sqrt(a.data)
    return record(y, (a,), lambda g: (g / (2 * y),), "sqrt")


def abs(a):
    """|a|;  d/da = sign(a) (0 at 0)."""
    a = as_tensor(a)
    ad = a.data
    return record(np.abs(ad), (a,), lambda g: (g * np.sign(ad),), "abs")


def sign(a):
    """sign(a): -1, 0 or 1; its derivative is 0 everywhere it exists."""
    a = as_tensor(a)
    return record(np.sign(a.data), (a,), lambda g: (g * 0,), "sign")


def clip(a, min=None, max=None):
    """a limited to [min, max];  d/da = 1 inside the range (bounds included), 0 outside."""
    a = as_tensor(a)
    ad = a.data
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    y = np.clip(ad, np.asarray(lo, dtype=ad.dtype), np.asarray(hi, dtype=ad.dtype))

    def backward(g):
        return (g * ((ad >= lo) & (ad <= hi)),)
    return record(y, (a,), backward, "clip")


def _select(op, a, b, pick_a):
    """Shared by maximum and minimum: the gradient goes to the selected input, half to each on ties."""
    a, b, y = _binary(op, a, b, np.maximum if op == "maximum" else np.minimum)
    ad, bd = a.data, b.data

    def backward(g):
        wins = pick_a(ad, bd)
        tie = (ad == bd) * 0.5
        share_a = (wins + tie).astype(g.dtype, copy=False)
        return (unbroadcast(g * share_a, a.shape) if a.requires_grad else None,
                unbroadcast(g * (1 - share_a), b.shape) if b.requires_grad else None)
    return record(y, (a, b), backward, op)


def maximum(a, b):
    """Elementwise max(a, b); the gradient goes to the larger input, split in half on ties."""
    return _select("maximum", a, b, np.greater)


def minimum(a, b):
    """Elementwise min(a, b); the gradient goes to the smaller input, split in half on ties."""
    return _select("minimum", a, b, np.less)


def where(condition, a, b):
    """a where condition holds, else b;  the gradient follows the same choice."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    cond = cond.astype(bool, copy=False)
    a, b = operands(a, b)
    try:
        y = np.where(cond, a.data, b.data)
    except ValueError:
        raise broadcast_error("where", a, b) from None

    def backward(g):
        zero = g.dtype.type(0)
        return (unbroadcast(np.where(cond, g, zero), a.shape) if a.requires_grad else None,
                unbroadcast(np.where(cond, zero, g), b.shape) if b.requires_grad else None)
    return record(y, (a, b), backward, "where")


def _compare(fn, name):
    def compare(a, b):
        a, b, y = _binary(name, a, b, fn)
        return Tensor(y)
    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a bool tensor (not differentiable)."
    return compare


eq = _compare(np.equal, "eq")
ne = _compare(np.not_equal, "ne")
lt = _compare(np.less, "lt")
le = _compare(np.less_equal, "le")
gt = _compare(np.greater, "gt")
ge = _compare(np.greater_equal, "ge")


def cast(a, dtype):
    """a converted to `dtype`;  the gradient is converted back to a's dtype."""
    a = as_tensor(a)
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    if not a.requires_grad or dtype.kind not in "fc":
        return Tensor(a.data.astype(dtype))
    src = a.dtype
    return record(a.data.astype(dtype), (a,), lambda g: (g.astype(src),), "cast")
