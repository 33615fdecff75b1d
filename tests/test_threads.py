"""chainrule's own threads (backend.set_num_threads): the helpers, and every kernel that splits its
work over them gives the results of the one-thread run (bit for bit where each element is computed
by one thread, to float64 rounding where partial sums are added up). Every test runs twice: on the
executor's threads and NumPy's kernels, and on the spinning pool and compiled kernels (`kernels`)."""
import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend, optimizers
from chainrule.ops import conv as conv_module
from chainrule.ops import winograd
from chainrule.ops.conv import conv2d
from chainrule.ops.norm import batch_norm
from chainrule.ops.pool import max_pool2d
from chainrule.variable import Variable


@pytest.fixture(autouse=True)
def _both_kinds_of_threads(kernels):
    """Every test on both kernels (conftest's `kernels`): the numba one uses chainrule.spinpool."""


@pytest.fixture
def threads(monkeypatch):
    """Set the thread count for one test (restored after), with the size thresholds off so that
    even the tests' small arrays are split."""
    previous = backend.num_threads()
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    monkeypatch.setattr(backend, "_PARALLEL_GEMM", 1)
    yield backend.set_num_threads
    backend.set_num_threads(previous)


def test_split_cuts_contiguous_near_equal_runs():
    assert backend.split(range(7), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert backend.split(range(2), 4) == [[0], [1]]
    assert backend.split([], 2) == [[]]


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_slices_cover_the_range_in_near_equal_runs(threads, count):
    threads(count)
    for n in (0, 1, 2, 5, 7, 100, 86528):
        runs = np.array_split(np.arange(n), min(count, n)) if n else []   # near-equal, first ones longer
        assert backend._slices(n) == [slice(int(r[0]), int(r[-1]) + 1) for r in runs]
        assert backend.split(range(n)) == ([list(map(int, r)) for r in runs] or [[]])
    # from n alone, never a list of n items (a bias gradient's 86K rows cost 2 ms that way)
    huge = backend._slices(10 ** 12)
    assert huge[0].start == 0 and huge[-1].stop == 10 ** 12 and len(huge) == count


def test_cheap_kernels_need_more_elements_to_be_split():
    previous = backend.set_num_threads(2)
    try:
        limit = backend._PARALLEL_ELEMENTS
        assert backend.worth_threads(limit) and not backend.worth_threads(limit - 1)
        assert not backend.worth_threads(limit, backend.FACTOR_PASS)
        assert backend.worth_threads(limit * backend.FACTOR_PASS, backend.FACTOR_PASS)
        assert not backend.worth_threads(limit * backend.FACTOR_PASS, backend.FACTOR_REDUCE)
        assert backend.parallel_slices(10, lambda s: s, limit, backend.FACTOR_PASS) == [slice(0, 10)]
        assert len(backend.parallel_slices(10, lambda s: s, limit * backend.FACTOR_PASS, backend.FACTOR_PASS)) == 2
    finally:
        backend.set_num_threads(previous)
    assert not backend.worth_threads(10 ** 9) or backend.num_threads() > 1


def test_balanced_step_gives_every_thread_the_same_number_of_chunks(threads):
    threads(2)
    assert backend.balanced_step(128, 50) == 32      # 4 chunks of 32, not 50 + 50 + 28
    assert backend.balanced_step(8, 8) == 4
    assert backend.balanced_step(8, 1) == 1
    assert backend.balanced_step(0, 5) == 5
    threads(1)
    assert backend.balanced_step(128, 50) == 43      # 3 chunks, as even as 50 allows


def test_parallel_map_keeps_order_uses_the_threads_and_does_not_nest(threads):
    threads(2)
    names = []

    def work(i):
        names.append(threading.current_thread().name)
        inner = backend.parallel_map(lambda j: j * 10, [1, 2])   # inside a worker: runs inline
        return i, inner

    assert backend.parallel_map(work, [0, 1, 2, 3]) == [(i, [10, 20]) for i in range(4)]
    assert threading.current_thread().name in names            # the caller takes a share
    assert any(n.startswith("chainrule") for n in names)
    with pytest.raises(ValueError, match="at least 1 thread"):
        backend.set_num_threads(0)


def test_parallel_map_passes_exceptions_on(threads):
    threads(2)

    def fail(i):
        if i == 1:
            raise RuntimeError("boom")
        return i

    with pytest.raises(RuntimeError, match="boom"):
        backend.parallel_map(fail, [0, 1])


def test_gemm_splits_rows_and_equals_the_product(threads):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((37, 11)), rng.standard_normal((11, 5))
    threads(3)
    # BLAS blocks a row slice as it likes: equal to rounding
    np.testing.assert_allclose(backend.gemm(a, b), a @ b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(backend.gemm(a[::2].T.copy().T, b), a[::2] @ b, rtol=1e-13, atol=1e-13)
    wide = rng.standard_normal((11, 40))          # fewer rows than columns: split by columns
    np.testing.assert_allclose(backend.gemm(b.T, wide), b.T @ wide, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(backend.gemm(a[:3], wide), a[:3] @ wide, rtol=1e-13, atol=1e-13)


def test_blas_is_held_at_one_thread():
    calls = backend._blas_thread_calls()
    if calls is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS found in /proc/self/maps")
    assert calls[0]() == 1


def run_all(fn, arrays):
    ts = [cr.Tensor(a.copy(), requires_grad=True) for a in arrays]
    y = fn(*ts)
    y.backward(np.random.default_rng(9).standard_normal(y.shape).astype(y.dtype))
    return [np.asarray(y.numpy())] + [np.asarray(t.grad) for t in ts]


def same_on_one_and_three_threads(threads, fn, arrays, exact):
    threads(1)
    one = run_all(fn, arrays)
    threads(3)
    three = run_all(fn, arrays)
    for a, b in zip(one, three):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["auto", "im2col"])
@pytest.mark.parametrize("relu", [None, "relu"])
def test_convolutions_split_over_threads(threads, monkeypatch, algorithm, relu):
    monkeypatch.setattr(winograd, "_MIN_TILES", 1)
    monkeypatch.setattr(winograd, "_CHUNK_TILES", 1)
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", 1)            # a chunk per image
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1)
    previous = conv_module.set_conv_algorithm(algorithm)
    try:
        rng = np.random.default_rng(1)
        arrays = [rng.standard_normal((7, 9, 10, 8)), rng.standard_normal((3, 3, 8, 8)), rng.standard_normal(8)]
        same_on_one_and_three_threads(threads, lambda x, w, b: conv2d(x, w, b, padding="same", activation=relu),
                                      arrays, exact=False)
        # strided (im2col, col2im) as well
        same_on_one_and_three_threads(threads, lambda x, w, b: conv2d(x, w, b, stride=2, padding="same"),
                                      arrays, exact=False)
    finally:
        conv_module.set_conv_algorithm(previous)


def test_relu_and_max_pool_split_over_threads(threads):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (5, 8, 6, 3)).astype(np.float64)     # ties in the pooling windows
    same_on_one_and_three_threads(threads, lambda t: max_pool2d(cr.relu(t), 2), [x], exact=True)


def test_batch_norm_splits_over_threads(threads, monkeypatch):
    from chainrule.ops import norm
    monkeypatch.setattr(norm, "_BLOCK", 64)                        # several blocks of rows
    norm._channel_rows.cache_clear()
    rng = np.random.default_rng(3)
    arrays = [100 + rng.standard_normal((6, 10, 10, 4)), rng.standard_normal(4), rng.standard_normal(4)]
    same_on_one_and_three_threads(
        threads, lambda x, g, b: batch_norm(x, g, b, None, None, training=True), arrays, exact=False)
    norm._channel_rows.cache_clear()


@pytest.mark.parametrize("name", ["Adam", "Adadelta", "SGD"])
def test_optimizer_blocks_split_over_threads(threads, monkeypatch, name):
    monkeypatch.setattr(optimizers, "_BLOCK", 5)
    rng = np.random.default_rng(4)
    init = rng.standard_normal((7, 9)).astype(np.float32)
    grads = [rng.standard_normal((7, 9)).astype(np.float32) for _ in range(4)]
    results = []
    for n in (1, 3):
        threads(n)
        opt = getattr(optimizers, name)(learning_rate=0.1)
        v = Variable(init.copy())
        for g in grads:
            opt.apply([g], [v])
        results.append(v.data.copy())
    np.testing.assert_array_equal(*results)


def test_switch_interval_is_put_back_and_a_forked_child_gets_a_fresh_pool(threads):
    import multiprocessing
    import sys
    threads(2)
    before = sys.getswitchinterval()
    backend.parallel_map(lambda i: i, [0, 1])
    assert sys.getswitchinterval() == before
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:   # the child runs split work with the pool it inherited reset
        assert pool.apply_async(_doubled_in_threads).get(timeout=60) == [0, 2, 4, 6]


def _doubled_in_threads():
    backend._PARALLEL_ELEMENTS = 1
    backend.set_num_threads(2)
    return backend.parallel_map(lambda i: 2 * i, [0, 1, 2, 3])
