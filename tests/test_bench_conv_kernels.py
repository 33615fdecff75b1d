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


def test_passes_alternate_which_library_goes_first(bench):
    log = []

    def time_case(fa, fb):
        fa()
        fb()
        return [log[-2]], [log[-1]]
    cases = [(recorder(log, "a1"), recorder(log, "b1")), (recorder(log, "a2"), recorder(log, "b2"))]
    timed = bench.timed_passes(cases, 3, time_case)
    assert log == ["a1", "b1", "a2", "b2", "b1", "a1", "b2", "a2", "a1", "b1", "a2", "b2"]
    # each pass's times come back as (ours, theirs) whichever ran first
    assert timed == [[(["a1"], ["b1"])] * 3, [(["a2"], ["b2"])] * 3]


def test_passes_without_torch_time_ours_only(bench):
    log = []
    timed = bench.timed_passes([(recorder(log, "a"), None)], 2,
                               lambda fa, fb: bench.interleaved_times(fa, fb, repeats=1, warmup=0))
    assert log == ["a", "a"] and [tb for _, tb in timed[0]] == [[], []]


def test_pass_ratios_are_torch_over_ours_of_each_pass_median(bench):
    ratios = bench.pass_ratios([([1.0, 2.0, 9.0], [4.0, 4.0, 1.0]), ([2.0], [1.0]), ([1.0], [])])
    assert ratios[:2] == [2.0, 0.5] and ratios[2] != ratios[2]


def test_block_warm_ups_last_at_least_warm_s(bench):
    log, now = [], [0.0]

    def clock():  # a quarter of a second a reading (exact in binary)
        now[0] += 0.25
        return now[0]
    ta, tb = bench.interleaved_times(recorder(log, "a"), recorder(log, "b"), repeats=2, warmup=1, clock=clock,
                                     blocks=True, warm_s=1.0)
    assert len(ta) == len(tb) == 2
    # each block: one warm-up, more until the clock has moved 1 s (three more), then two timed runs
    assert log == ["a"] * 6 + ["b"] * 6
