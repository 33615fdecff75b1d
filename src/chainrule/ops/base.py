"""What every op file needs: turning operands into tensors and undoing broadcasting."""
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor, record  # noqa: F401  (re-exported for the op files)


def as_tensor(x, dtype=None):
    """`x` as a Tensor; Python numbers become float32 unless `dtype` says otherwise."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, numbers.Integral)) and dtype is None and not isinstance(x, np.generic):
        return Tensor(np.asarray(x, dtype=np.int64))
    if isinstance(x, numbers.Number) and dtype is None:
        dtype = backend.default_float()
    xp = backend.array_module(x)
    return Tensor(xp.asarray(x, dtype=dtype))


def operands(a, b):
    """Two tensors from two operands; a plain number or array takes the tensor's float dtype.

    Casting the constant (rather than letting NumPy promote) is what keeps `x * 0.5` or
    `x + np.float64(1)` in float32.
    """
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a, b
    if isinstance(a, Tensor):
        return a, _constant_like(b, a)
    return _constant_like(a, b), b


def _constant_like(x, t):
    xp = backend.array_module(t.data)
    if t.dtype.kind == "f":
        kind = getattr(x, "dtype", None)
        if kind is None or np.dtype(kind).kind in "biuf":
            return Tensor(xp.asarray(x, dtype=t.dtype))
    return Tensor(xp.asarray(x))


def unbroadcast(g, shape):
    """Sum `g` over the axes that broadcasting added or stretched, giving shape `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def broadcast_error(op, a, b):
    return ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast: trailing axes must be "
                      f"equal or 1; reshape one operand (e.g. x.reshape(...) or x.unsqueeze(axis)) to line them up")


def normalize_axis(axis, ndim):
    """`axis` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))
