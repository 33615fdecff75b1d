"""Optional compiled kernels: numba, behind a `never | auto | always` switch.

chainrule's kernels are NumPy, and NumPy gives up the GIL only inside each call. A kernel shared
out over chainrule's threads (backend.parallel_map) runs a dozen NumPy calls per chunk, and each
thread coming back from one waits for the GIL while the other holds it: on two cores the U-Net's
Winograd layers ran 1.0-1.6x faster than on one. Compiled by numba with the GIL released, a
thread's whole run of chunks is one call, and the same layers run 1.2-2.0x faster than their
NumPy version on two threads (1.1-1.4x on one: fewer temporaries). The threads stay chainrule's
own; numba's parallel runtime is not used (its OpenMP threads spin between regions, on the cores
the rest of a training step needs: CNN-A's step 33 -> 47 ms).

With the `fast` extra installed (`pip install "chainrule[fast]"`: numba, and SciPy for the BLAS
that numba's `np.dot` calls) the kernels that have a compiled twin run it; every other op, and
every op on CuPy arrays or non-float dtypes, keeps its NumPy code, which stays the reference the
tests compare against. The switch, as Chainer's for its iDeep kernels:

    never    NumPy only
    auto     numba where installed (the default)
    always   numba, and an error at once if it is not installed

set by `set_numba(mode)` or the environment variable CHAINRULE_NUMBA. The first call of each
compiled kernel compiles it (a few seconds, once: the result is cached on disk). Loading numba
adds ~120 MB to the process (its compiler), and holds SciPy's OpenBLAS at one thread, as NumPy's
is held from chainrule's import on: chainrule's threads split the products themselves.
"""
import importlib.util
import os
import warnings

import numpy as np

from . import backend

__all__ = ["set_numba", "numba_mode", "numba_available"]

_MODES = ("never", "auto", "always")
_mode = "auto"
_numba = None          # the module once loaded; False when it failed to load


def numba_available():
    """Whether numba and SciPy (its BLAS) are installed, without importing them."""
    return all(importlib.util.find_spec(name) is not None for name in ("numba", "scipy"))


def set_numba(mode):
    """Use the compiled kernels "never", where installed ("auto", the default) or "always" (an error
    now when numba or SciPy is missing). Returns the previous mode."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"set_numba: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    if mode == "always" and not numba_available():
        raise ImportError("set_numba('always'): numba and SciPy are not both installed; "
                          "pip install \"chainrule[fast]\", or use 'auto' to fall back to NumPy")
    previous, _mode = _mode, mode
    return previous


def numba_mode():
    """The current setting: "never", "auto" or "always"."""
    return _mode


def wants_numba(*arrays):
    """Whether an op should run its compiled kernel on these arrays: the switch allows it, numba
    loads, and every array is a NumPy array of float32 or float64."""
    if _mode == "never":
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in _FLOATS:  # (native byte order only)
            return False
    return _load() is not None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _load():
    global _numba
    if _numba is None:
        _numba = False
        if numba_available():
            try:
                import numba
                importlib.import_module("scipy.linalg.cython_blas")  # the BLAS numba's np.dot calls
            except Exception as error:  # installed but broken (built for another NumPy, say)
                if _mode == "always":
                    raise ImportError(f"chainrule.accelerate: numba is installed but does not load ({error}); "
                                      f"reinstall it (pip install -U \"chainrule[fast]\")") from error
                warnings.warn(f"chainrule: numba is installed but does not load ({error}); running NumPy's "
                              f"kernels. Reinstall it, or set CHAINRULE_NUMBA=never to silence this.", RuntimeWarning)
                return None
            backend.hold_blas_at_one_thread()  # SciPy's OpenBLAS too: the threads are chainrule's
            _numba = numba
    return _numba or None


_env = os.environ.get("CHAINRULE_NUMBA", "").strip().lower()
if _env:
    try:
        set_numba(_env)
    except ValueError:
        raise ValueError(f"CHAINRULE_NUMBA={_env!r}: use never, auto or always") from None
