"""backend.Scratch (reused kernel buffers) and backend.tune_malloc."""
import platform
import threading

import numpy as np
import pytest

from chainrule import backend


def test_scratch_reuses_the_same_memory_for_a_name():
    s = backend.Scratch(np, np.float32)
    a = s("t", (4, 5))
    b = s("t", (2, 3))          # smaller: a view of the same buffer
    assert a.dtype == np.float32 and b.shape == (2, 3)
    assert np.shares_memory(a, b)
    c = s("t", (100,))          # bigger: a new buffer
    assert not np.shares_memory(a, c)


def test_scratch_keeps_dtypes_and_threads_apart():
    a = backend.Scratch(np, np.float32)("u", (8,))
    b = backend.Scratch(np, np.float64)("u", (8,))
    assert not np.shares_memory(a, b)
    other = []
    t = threading.Thread(target=lambda: other.append(backend.Scratch(np, np.float32)("u", (8,))))
    t.start()
    t.join()
    assert not np.shares_memory(a, other[0])


def test_scratch_zeros_and_release():
    s = backend.Scratch(np, np.float32, keep_bytes=1000)
    z = s.zeros("z", (3, 3))
    z[:] = 7
    assert not s.zeros("z", (3, 3)).any()      # cleared on every request
    big = s("big", (1000,))                    # 4000 bytes > keep_bytes
    s.release()
    assert "big" not in s.flat and "z" in s.flat
    assert not np.shares_memory(big, s("big", (1000,)))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_tune_malloc_switches_both_ways():
    assert backend.tune_malloc(False) is True
    assert backend.tune_malloc(True) is True
    a = np.ones(1 << 20)                       # the allocator still works either way
    assert a.sum() == 1 << 20
