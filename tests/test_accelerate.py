"""The switch between NumPy's kernels and the compiled ones (chainrule.accelerate)."""
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import accelerate


def test_modes_are_checked_and_the_previous_one_returned():
    previous = accelerate.set_numba("never")
    try:
        assert accelerate.numba_mode() == "never"
        assert accelerate.set_numba("auto") == "never"
        with pytest.raises(ValueError, match="'never', 'auto', 'always'"):
            accelerate.set_numba("sometimes")
    finally:
        accelerate.set_numba(previous)


def test_always_without_numba_says_what_to_install(monkeypatch):
    monkeypatch.setattr(accelerate, "numba_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install \"chainrule\[fast\]\""):
        accelerate.set_numba("always")


def test_never_and_unsupported_arrays_keep_numpy():
    previous = accelerate.set_numba("never")
    try:
        assert not accelerate.wants_numba(np.zeros(3, np.float32))
    finally:
        accelerate.set_numba(previous)
    assert not accelerate.wants_numba(np.zeros(3, np.float16))
    assert not accelerate.wants_numba(np.zeros(3, np.int64))
    assert not accelerate.wants_numba([1.0, 2.0])


def test_the_environment_sets_the_mode():
    code = "import chainrule; print(chainrule.accelerate.numba_mode())"
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "CHAINRULE_NUMBA": "never"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "never"
    bad = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "CHAINRULE_NUMBA": "fast"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "CHAINRULE_NUMBA='fast': use never, auto or always" in bad.stderr


def test_loading_numba_holds_every_blas_at_one_thread():
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    previous = accelerate.set_numba("auto")   # whatever CHAINRULE_NUMBA the suite runs under
    try:
        assert accelerate.wants_numba(np.zeros(3, np.float32))
    finally:
        accelerate.set_numba(previous)
    calls = cr.backend._openblas_thread_calls()
    assert len(calls) >= 2 and all(get() == 1 for get, _ in calls)   # NumPy's and SciPy's


def test_a_numba_that_does_not_load_falls_back_in_auto_and_fails_in_always(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "numba":
            raise ImportError("numba built for another NumPy")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(accelerate, "numba_available", lambda: True)
    monkeypatch.setattr(accelerate, "_numba", None)
    monkeypatch.setattr(builtins, "__import__", broken)
    previous = accelerate.numba_mode()
    try:
        accelerate.set_numba("auto")
        with pytest.warns(RuntimeWarning, match="running NumPy's kernels"):
            assert not accelerate.wants_numba(np.zeros(3, np.float32))
        assert not accelerate.wants_numba(np.zeros(3, np.float32))   # warned once, remembered
        monkeypatch.setattr(accelerate, "_numba", None)
        accelerate.set_numba("always")
        with pytest.raises(ImportError, match="does not load"):
            accelerate.wants_numba(np.zeros(3, np.float32))
    finally:
        accelerate._mode = previous


def test_non_native_byte_order_keeps_numpy():
    assert not accelerate.wants_numba(np.zeros(3, ">f4" if np.little_endian else "<f4"))
