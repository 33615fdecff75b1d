"""benchmarks/conv_kernels.py's timing loop: how it alternates the two libraries (the numbers it
prints are the benchmark's business, never a test's)."""
import pytest


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("conv_kernels")


def recorder(log, name):
    return lambda: log.append(name)


def test_run_by_run_alternation_on_one_thread(bench):
    log = []
    ta, tb = bench.interleaved_times(recorder(log, "a"), recorder(log, "b"), repeats=3, warmup=1)
    assert len(ta) == len(tb) == 3
    assert log == ["a", "b"] * 4


def test_blocks_alternate_in_rounds_with_a_warm_up_each(bench):
    log = []
    ta, tb = bench.interleaved_times(recorder(log, "a"), recorder(log, "b"), repeats=7, warmup=1, blocks=True,
                                     rounds=3)
    assert len(ta) == len(tb) == 7
    # three rounds of 3, 2 and 2 timed runs, each block after one warm-up run
    assert log == ["a"] * 4 + ["b"] * 4 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3


def test_one_round_is_one_block_each(bench):
    log = []
    bench.interleaved_times(recorder(log, "a"), recorder(log, "b"), repeats=3, warmup=2, blocks=True)
    assert log == ["a"] * 5 + ["b"] * 5


def test_without_torch_only_ours_is_timed(bench):
    log = []
    ta, tb = bench.interleaved_times(recorder(log, "a"), None, repeats=4, warmup=0, blocks=True)
    assert len(ta) == 4 and tb == [] and log == ["a"] * 4
