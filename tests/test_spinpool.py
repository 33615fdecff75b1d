"""The spinning worker pool (chainrule.spinpool) that backend.parallel_map uses when numba is there:
results in order, each item on its own thread, errors raised in the caller, no lost wake-ups
whether the workers are spinning or asleep, and no re-entry."""
import os
import threading
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import accelerate, backend

if not accelerate.numba_available():
    pytest.skip("numba and SciPy are not installed (pip install 'chainrule[fast]')", allow_module_level=True)

from chainrule import spinpool  # noqa: E402 - needs numba


def test_spin_until_returns_a_change_or_gives_up():
    flags = np.array([3, 7], np.int64)
    assert spinpool.spin_until(flags, 1, 3, 10) == 7      # already different
    assert spinpool.spin_until(flags, 0, 3, 1000) == 3    # never changes: gives up with `old`
    later = threading.Timer(0.01, lambda: flags.__setitem__(0, 4))
    later.start()
    assert spinpool.spin_until(flags, 0, 3, spinpool.spins_per_us() * 2_000_000) == 4   # sees another thread's write
    later.join()


@pytest.mark.parametrize("every", [1, 7])
def test_spin_until_that_yields_the_core_still_sees_the_change(every):
    flags = np.array([3], np.int64)
    assert spinpool.spin_until(flags, 0, 3, 1000, every) == 3
    later = threading.Timer(0.01, lambda: flags.__setitem__(0, 5))
    later.start()
    assert spinpool.spin_until(flags, 0, 3, spinpool.spins_per_us() * 2_000_000, every) == 5
    later.join()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_map_on_one_core_shared_by_caller_and_workers():
    # the waits yield the core, so a worker whose thread shares it with the spinning caller gets to run
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})   # this thread's, which the pool's threads inherit
    try:
        pool = spinpool.SpinPool(2)
        assert pool.every > 0
        for round_ in range(50):
            assert pool.map(lambda i: sum(range(i * 1000)), [1, 2, 3]) == [sum(range(i * 1000)) for i in (1, 2, 3)]
    finally:
        os.sched_setaffinity(0, cores)


@pytest.mark.parametrize("spin_us", [200, 0])   # 0: every hand-off goes through the sleeping path
def test_map_runs_each_item_once_on_its_own_thread_in_order(spin_us):
    pool = spinpool.SpinPool(3, spin_us=spin_us)
    for round_ in range(200):
        items = list(range(round_ % 4 + 1))
        names = pool.map(lambda i: (i * i, threading.current_thread().name), items)
        assert [v for v, _ in names] == [i * i for i in items]
        assert names[0][1] == threading.current_thread().name
        assert [n for _, n in names[1:]] == [f"chainrule-spin-{w}" for w in range(len(items) - 1)]
        if round_ % 50 == 0:
            time.sleep(0.002)   # long enough for spinning workers to fall asleep


def test_errors_reach_the_caller_and_the_pool_goes_on():
    pool = spinpool.SpinPool(1)

    def fail_on(bad):
        def fn(i):
            if i == bad:
                raise ValueError(f"item {i}")
            return i
        return fn
    with pytest.raises(ValueError, match="item 1"):   # on the worker
        pool.map(fail_on(1), [0, 1])
    with pytest.raises(ValueError, match="item 0"):   # on the caller, after the worker is done
        pool.map(fail_on(0), [0, 1])
    assert pool.map(fail_on(5), [0, 1]) == [0, 1]


def test_a_busy_pool_says_so_instead_of_mixing_two_maps():
    pool = spinpool.SpinPool(1)
    inner = []
    release = threading.Event()

    def slow(i):
        if i == 0:
            other = threading.Thread(target=lambda: inner.append(pool.map(lambda j: j, [0, 1])))
            other.start()
            other.join()
            release.set()
        return i
    assert pool.map(slow, [0, 1]) == [0, 1]
    assert inner == [None] and release.is_set()


def test_parallel_map_spins_where_numba_is_allowed_and_not_otherwise():
    previous_threads = cr.set_num_threads(2)
    try:
        for mode, prefix in (("auto", "chainrule-spin"), ("never", "chainrule_")):
            before = accelerate.set_numba(mode)
            try:
                names = backend.parallel_map(lambda i: threading.current_thread().name, [0, 1])
            finally:
                accelerate.set_numba(before)
            assert names[1].startswith(prefix)
    finally:
        cr.set_num_threads(previous_threads)


def test_threaded_kernels_agree_under_the_spinning_pool():
    """A conv and a GEMM on 2 and 3 threads through the spinning pool, against one thread."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 12, 12, 8)), rng.standard_normal((3, 3, 8, 16))
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 300))

    def run():
        X, W = cr.Tensor(x, requires_grad=True), cr.Tensor(w, requires_grad=True)
        cr.ops.conv.conv2d(X, W, padding="same").sum().backward()
        return [X.grad, W.grad, backend.gemm(a, b)]
    previous = cr.set_num_threads(1)
    try:
        reference = run()
        for threads in (2, 3):
            cr.set_num_threads(threads)
            for got, want in zip(run(), reference):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    finally:
        cr.set_num_threads(previous)


def test_a_caller_interrupted_while_waiting_can_map_again():
    """Ctrl-C in the caller's wait leaves the worker on its old item; the next map must still get its
    own results (the worker runs the newest item once the old one is done)."""
    pool = spinpool.SpinPool(1)
    wait = pool._wait
    calls = []

    def interrupted(w):
        calls.append(w)
        if len(calls) == 1:
            raise KeyboardInterrupt
        wait(w)
    pool._wait = interrupted
    with pytest.raises(KeyboardInterrupt):
        pool.map(lambda i: time.sleep(0.05) or i, [0, 1])      # the worker is still asleep in item 1
    assert pool.map(lambda i: i + 10, [0, 1]) == [10, 11]
    assert pool.map(lambda i: i + 20, [0, 1]) == [20, 21]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_an_error_not_a_hang():
    pool = spinpool.SpinPool(1, spin_us=0)
    pool.tasks[0] = None                 # the worker unpacks this and dies (it never should)
    with pool.wake[0]:
        pool.posted[0] += 1
        pool.wake[0].notify()
    pool.threads[0].join(timeout=10)
    assert not pool.threads[0].is_alive()
    with pytest.raises(RuntimeError, match="worker 0 has died"):
        pool.map(lambda i: i, [0, 1])


def test_post_hands_out_only_the_targets_asked_for():
    posted = np.array([4, 9, 2], np.int64)
    spinpool.post(posted, np.array([5, -1, 3], np.int64))     # -1: that worker was posted already
    assert posted.tolist() == [5, 9, 3]
    spinpool.post(posted, np.empty(0, np.int64))              # what a worker's own call gets: nothing
    assert posted.tolist() == [5, 9, 3]


def test_idle_then_spin_marks_the_thread_idle_before_it_waits():
    idle, flags = np.zeros(2, np.int64), np.array([0, 6], np.int64)
    assert spinpool.idle_then_spin(idle, flags, 1, 6, 100) == 6    # nothing new: gives up
    assert idle.tolist() == [0, 6]
    later = threading.Timer(0.01, lambda: flags.__setitem__(1, 7))
    later.start()
    assert spinpool.idle_then_spin(idle, flags, 1, 6, spinpool.spins_per_us() * 2_000_000, 1) == 7
    later.join()


def _posting(record):
    """An item function for a handoff map: the caller's call posts the workers' tasks itself (as a
    compiled kernel does once it holds no GIL) after checking that none has started yet."""
    def fn(i, post):
        posted, targets = post
        if targets.size:
            record.append((posted.tolist(), targets.tolist()))
            spinpool.post(posted, targets)
        return i * 10, threading.current_thread().name
    return fn


@pytest.mark.parametrize("spin_us", [200, 0])
def test_a_handoff_map_lets_the_callers_kernel_hand_out_the_items(spin_us):
    """A spinning worker is posted by the caller's kernel; with spin_us=0 the workers sleep and map
    posts and wakes them itself (or, one not yet asleep, in its `finally`)."""
    pool = spinpool.SpinPool(2, spin_us=spin_us)
    for round_ in range(100):
        record = []
        before = pool.posted.tolist()
        out = pool.map(_posting(record), [0, 1, 2], handoff=True)
        assert [v for v, _ in out] == [0, 10, 20]
        assert [name for _, name in out[1:]] == ["chainrule-spin-0", "chainrule-spin-1"]
        assert pool.posted.tolist() == [b + 1 for b in before]       # one generation each, however posted
        (seen, targets), = record
        for w, target in enumerate(targets):
            if target >= 0:   # a spinning worker left for the caller's kernel to post: not posted before it
                assert seen[w] == before[w] and target == before[w] + 1


def test_a_handoff_map_still_runs_the_workers_when_the_caller_never_posts():
    pool = spinpool.SpinPool(2)
    seen = []

    def ignores_post(i, post):
        seen.append(post[1].size if threading.current_thread().name.startswith("chainrule") else None)
        if i == 0:
            raise ValueError("the caller's item failed before its kernel")
        return i

    with pytest.raises(ValueError, match="before its kernel"):
        pool.map(ignores_post, [0, 1, 2], handoff=True)
    assert sorted(s for s in seen if s is not None) == [0, 0]        # the workers ran, with an empty post
    assert pool.map(lambda i, post: i + 1, [0, 1, 2], handoff=True) == [1, 2, 3]


def test_the_worker_is_back_in_its_spin_loop_once_map_returns():
    pool = spinpool.SpinPool(1)
    for round_ in range(50):
        pool.map(lambda i: i, [0, 1])
        deadline = time.monotonic() + 5     # the wait that ends on `idle` is the usual path, not the only one
        while pool.idle[0] != pool.posted[0] and time.monotonic() < deadline:
            time.sleep(0.001)
        assert pool.idle[0] == pool.posted[0] == round_ + 1


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("numba_mode", ["auto", "never"])   # never: the executor's threads, no spinning pool
def test_parallel_map_gives_every_handoff_item_a_post_that_its_kernel_can_call(threads, numba_mode):
    previous, before = cr.set_num_threads(threads), accelerate.set_numba(numba_mode)
    try:
        def fn(i, post):
            spinpool.post(*post)   # what the compiled kernels do first, on whichever thread runs the item
            return i * i, threading.current_thread().name
        out = backend.parallel_map(fn, [1, 2, 3], handoff=True)
        assert [v for v, _ in out] == [1, 4, 9]
        assert out[0][1] == threading.current_thread().name     # the caller takes the first item
    finally:
        accelerate.set_numba(before)
        cr.set_num_threads(previous)
