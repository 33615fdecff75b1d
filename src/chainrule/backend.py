"""Which array module runs the numbers, and the default float dtype.

The module is always taken from the data (`array_module(a)`), never hard-wired, so
the same op code runs on NumPy arrays and, once installed, on CuPy arrays.
"""
import numpy as np

_float_dtype = np.dtype(np.float32)

try:  # optional GPU backend; absent on most machines
    import cupy as _cupy
except ImportError:  # pragma: no cover - depends on the machine
    _cupy = None


def array_module(a):
    """The module (numpy or cupy) that owns array `a`."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    return np


def default_float():
    """The dtype new float tensors get unless told otherwise (float32)."""
    return _float_dtype


def set_default_float(dtype):
    """Set the dtype of new float tensors, e.g. to float64 for gradient checks."""
    global _float_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"set_default_float: expected a float dtype, got {dtype}")
    _float_dtype = dtype


def to_numpy(a):
    """A NumPy view or copy of a backend array (a device-to-host copy for CuPy)."""
    if type(a) is np.ndarray:
        return a
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy.asnumpy(a)
    return np.asarray(a)
