"""Making tensors: from data, filled, ranges, and random (from the seeded `chainrule.random`)."""
import numpy as np

from . import backend, random
from .autograd import Tensor


def _float(dtype):
    return backend.default_float() if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of `data`.

    Python floats become float32 (the default float dtype), Python ints int64; a NumPy
    array keeps its dtype unless `dtype` is given (float64 stays float64, as in PyTorch).
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.array_module(data)
    if dtype is not None:
        arr = xp.array(data, dtype=dtype)
    elif isinstance(data, xp.ndarray) or isinstance(data, np.generic):
        arr = xp.array(data)
    else:
        arr = np.array(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(backend.default_float())
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array, requires_grad=False):
    """A tensor sharing memory with a NumPy array (no copy, dtype kept)."""
    return Tensor(array, requires_grad=requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=None, requires_grad=False):
    """A tensor of zeros; zeros(2, 3) or zeros((2, 3))."""
    return Tensor(np.zeros(_shape(shape), dtype=_float(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    """A tensor of ones."""
    return Tensor(np.ones(_shape(shape), dtype=_float(dtype)), requires_grad=requires_grad)


def empty(*shape, dtype=None, requires_grad=False):
    """An uninitialised tensor (contents are whatever memory held)."""
    return Tensor(np.empty(_shape(shape), dtype=_float(dtype)), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    """A tensor filled with `fill_value`."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(np.full(shape, fill_value, dtype=_float(dtype)), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros with the shape (and dtype, unless given) of `t`."""
    d = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(backend.array_module(d).zeros_like(d, dtype=dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    """Ones with the shape (and dtype, unless given) of `t`."""
    d = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(backend.array_module(d).ones_like(d, dtype=dtype), requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    """`fill_value` everywhere, with the shape (and dtype, unless given) of `t`."""
    d = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(backend.array_module(d).full_like(d, fill_value, dtype=dtype), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values in [start, stop); int64 for whole-number arguments, else float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        whole = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if whole else backend.default_float()
    return Tensor(np.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


def linspace(start, stop, num=50, dtype=None, requires_grad=False):
    """`num` evenly spaced values from start to stop, both included."""
    return Tensor(np.linspace(start, stop, num, dtype=_float(dtype)), requires_grad=requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    """The n x m identity matrix."""
    return Tensor(np.eye(n, m, dtype=_float(dtype)), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from the seeded generator."""
    data = random.generator().random(_shape(shape), dtype=np.float64).astype(_float(dtype))
    return Tensor(data, requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal samples from the seeded generator."""
    data = random.generator().standard_normal(_shape(shape)).astype(_float(dtype))
    return Tensor(data, requires_grad=requires_grad)


def randint(low, high, shape, dtype=np.int64):
    """Integers uniform in [low, high)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(random.generator().integers(low, high, shape, dtype=dtype))
