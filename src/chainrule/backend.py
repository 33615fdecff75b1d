"""Which array module runs the numbers, and the default float dtype.

The module is always taken from the data (`array_module(a)`), never hard-wired, so
the same op code runs on NumPy arrays and, once installed, on CuPy arrays.
"""
import math
import os
import sys
import threading

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


class Scratch:
    """Named scratch arrays that the kernels reuse from chunk to chunk and from call to call.

    A fresh temporary of a few hundred KB or more is mmapped by the allocator and page-faulted in on
    every use, which costs more than the arithmetic that fills it (measured: a 6x6 transform of a
    590 KB block took 85 us into a reused buffer, 460 us into a new one). One set per thread, array
    module and dtype; `release()` at the end of a call drops the arrays over `keep_bytes`, so only
    small, cache-sized buffers stay alive between calls. The arrays handed out are overwritten by
    the next request for the same name: never return one to the caller.
    """

    _local = threading.local()

    def __init__(self, xp, dtype, keep_bytes=8 << 20):
        self.xp, self.dtype, self.keep = xp, np.dtype(dtype), keep_bytes
        sets = self._local.__dict__.setdefault("sets", {})
        self.flat = sets.setdefault((xp.__name__, self.dtype.str), {})

    def __call__(self, name, shape):
        size = math.prod(shape)
        buf = self.flat.get(name)
        if buf is None or buf.size < size:
            buf = self.flat[name] = self.xp.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)

    def zeros(self, name, shape):
        """A scratch array of zeros (a reused one is cleared: cheaper than faulting in a new one)."""
        buf = self(name, shape)
        buf.fill(0)
        return buf

    def release(self):
        for name in [n for n, b in self.flat.items() if b.nbytes > self.keep]:
            del self.flat[name]


def tune_malloc(enable=True):
    """Keep freed memory for reuse instead of handing it back to the OS (glibc on Linux only).

    Every op allocates its outputs and temporaries afresh. glibc serves blocks of a few hundred KB
    and up by mmap (or trims them off its heap when freed), so each new array is page-faulted in
    again, zero-filled by the kernel page by page: measured on a 256->256 3x3 conv of 4x4 images,
    forward + backward took 5.4 ms that way and 3.0 ms with freed blocks kept (the GEMMs are 2.2).
    enable=True raises glibc's mmap threshold to 32 MB and its trim threshold to 256 MB (PyTorch's
    CPU tuning guide gets the same effect by preloading jemalloc or tcmalloc); enable=False puts
    glibc's defaults back. Done at import unless CHAINRULE_MALLOC=system is set. Returns whether
    the setting took (False off glibc).
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    if enable:
        ok = mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 256 << 20)
    else:
        ok = mallopt(m_mmap_threshold, 128 << 10) and mallopt(m_trim_threshold, 128 << 10)
    return bool(ok)


if os.environ.get("CHAINRULE_MALLOC", "").lower() != "system" and sys.platform.startswith("linux"):
    tune_malloc(True)
