"""Convolutions computed one GEMM per kernel tap (ops/conv.py, "one GEMM per kernel tap"): the path
"auto" takes where padding fills much of im2col (small images, "same" padding). Every geometry the
im2col tests cover is gradchecked again on this path in float64, it equals im2col to 1e-12 on one
thread and on two, equals PyTorch in float32, and the selection picks it where it pays; each on
NumPy's kernels and on the compiled ones (ops/taps_numba.py, `kernels` fixture)."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import backend
from chainrule.ops import conv as conv_module
from chainrule.ops.conv import conv1d, conv2d

from test_conv import CASE_IDS, CONV1D_CASES, CONV2D_CASES, explicit_pads, normal, torch_conv2d

# geometries where some taps never reach the input (they multiply padding only)
SPARSE_CASES = [
    ((2, 1, 1, 2), (2, 2), 3, dict(padding=2, dilation=3)),   # no tap reaches: y is the bias
    ((2, 5, 4, 2), (3, 3), 2, dict(padding=((0, 1), (1, 0)), stride=3)),
]


@pytest.fixture
def algorithm():
    """set_conv_algorithm for the test's length, the previous setting restored after it."""
    previous = conv_module.set_conv_algorithm("auto")
    yield conv_module.set_conv_algorithm
    conv_module.set_conv_algorithm(previous)


def geometry(x_shape, k, c_out, padding="same", stride=1, dilation=1):
    n, h, w, c = x_shape
    stride, dilation = ((v, v) if np.isscalar(v) else tuple(v) for v in (stride, dilation))
    pads = explicit_pads(padding, (h, w), k, stride, dilation)
    out = tuple(conv_module.conv_output_length(size, kk, s, p, d)
                for size, kk, s, p, d in zip((h, w), k, stride, pads, dilation))
    return conv_module._Geometry(n, (h, w), c, k, c_out, stride, dilation, pads, out)


def run(fn, arrays, wrt=(0, 1, 2)):
    ts = [cr.Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    y = fn(*ts)
    y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    return [y.numpy()] + [np.asarray(ts[i].grad) for i in wrt]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV2D_CASES + SPARSE_CASES,
                         ids=CASE_IDS + ["no_tap_reaches", "some_taps_miss"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_gradcheck_by_taps(x_shape, k, c_out, kwargs, bias, rng, algorithm, kernels):
    algorithm("taps")
    x, w = normal(rng, x_shape), normal(rng, k + (x_shape[3], c_out))
    if bias:
        cr.gradcheck(lambda x, w, b: conv2d(x, w, b, **kwargs), x, w, normal(rng, (c_out,)))
    else:
        cr.gradcheck(lambda x, w: conv2d(x, w, **kwargs), x, w)


def test_the_sparse_cases_leave_taps_out():
    (x0, k0, c0, kw0), (x1, k1, c1, kw1) = SPARSE_CASES
    assert conv_module._tap_places(geometry(x0, k0, c0, **kw0)) == []
    assert 0 < len(conv_module._tap_places(geometry(x1, k1, c1, **kw1))) < k1[0] * k1[1]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV1D_CASES, ids=[str(c) for c in CONV1D_CASES])
def test_conv1d_gradcheck_by_taps(x_shape, k, c_out, kwargs, rng, algorithm, kernels):
    algorithm("taps")
    x, w, b = normal(rng, x_shape), normal(rng, (k, x_shape[2], c_out)), normal(rng, (c_out,))
    cr.gradcheck(lambda x, w, b: conv1d(x, w, b, **kwargs), x, w, b)


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", [
    ((3, 4, 4, 8), (3, 3), 16, dict(padding="same")),            # the U-Net's bottom layers, fewer channels
    ((2, 6, 5, 9), (3, 3), 8, dict(padding="same")),
    ((2, 7, 7, 8), (5, 5), 8, dict(padding="same")),
    ((2, 9, 8, 8), (3, 2), 8, dict(padding="same", stride=2)),
    ((2, 9, 9, 8), (3, 3), 8, dict(padding=((2, 0), (1, 3)), dilation=2)),
] + SPARSE_CASES)
@pytest.mark.parametrize("wrt", [(0, 1, 2), (0,), (1,)], ids=["all", "x", "w"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
def test_taps_equal_im2col(x_shape, k, c_out, kwargs, wrt, threads, relu, algorithm, monkeypatch, kernels):
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)  # share out even these small products
    previous = backend.set_num_threads(threads)
    try:
        rng = np.random.default_rng(5)
        arrays = (normal(rng, x_shape), normal(rng, k + (x_shape[3], c_out)), normal(rng, (c_out,)))
        fn = lambda x, w, b: conv2d(x, w, b, activation="relu" if relu else None, **kwargs)  # noqa: E731
        algorithm("taps")
        by_taps = run(fn, arrays, wrt)
        algorithm("im2col")
        direct = run(fn, arrays, wrt)
    finally:
        backend.set_num_threads(previous)
    for a, d in zip(by_taps, direct):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, d, rtol=0, atol=1e-12 * max(1.0, np.abs(d).max()))


@pytest.mark.parametrize("x_shape,k,c_out,kwargs,taps", [
    ((8, 4, 4, 256), (3, 3), 256, dict(padding="same"), True),    # U-Net bottom: 31% of products on padding
    ((8, 4, 4, 128), (3, 3), 256, dict(padding="same"), True),
    ((2, 6, 6, 64), (3, 3), 64, dict(padding="same"), True),      # 21% (8 tiles: no Winograd)
    ((2, 7, 7, 64), (5, 5), 64, dict(padding="same"), True),      # 31% (too few tiles for Winograd)
    ((8, 16, 16, 64), (3, 3), 64, dict(padding="same", stride=2), False),  # 5%
    ((128, 5, 5, 128), (3, 3), 256, dict(), False),               # valid: no padding at all
    ((8, 4, 4, 1), (3, 3), 16, dict(padding="same"), False),      # one channel: im2col's tap-major blocks
    ((8, 4, 4, 16), (1, 1), 1, dict(), False),                    # pointwise
])
def test_auto_takes_taps_where_padding_fills_im2col(x_shape, k, c_out, kwargs, taps, algorithm, monkeypatch):
    taken = []
    original = conv_module._by_taps
    monkeypatch.setattr(conv_module, "_by_taps", lambda *a, **kw: taken.append(1) or original(*a, **kw))
    conv2d(cr.zeros(x_shape), cr.zeros(k + (x_shape[3], c_out)), **kwargs)
    assert bool(taken) == taps
    algorithm("im2col")
    taken.clear()
    conv2d(cr.zeros(x_shape), cr.zeros(k + (x_shape[3], c_out)), **kwargs)
    assert not taken


def test_padding_share_counts_products_on_padding():
    # 3x3 "same" on 4x4: per axis 10 of 12 (output, tap) pairs reach the input, so 1 - (10/12)^2
    geom = geometry((1, 4, 4, 8), (3, 3), 8)
    assert conv_module._padding_share(geom, conv_module._tap_places(geom)) == pytest.approx(1 - (10 / 12) ** 2)
    valid = geometry((1, 4, 4, 8), (3, 3), 8, padding="valid")
    assert conv_module._padding_share(valid, conv_module._tap_places(valid)) == 0


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", [
    ((3, 4, 4, 16), (3, 3), 32, dict(padding="same")),
    ((2, 6, 7, 8), (3, 3), 8, dict(padding="same", stride=2)),
    ((2, 9, 9, 8), (3, 3), 8, dict(padding=2, dilation=2)),
])
def test_taps_match_torch(x_shape, k, c_out, kwargs, rng, check_torch, torch, algorithm, kernels):
    algorithm("taps")
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    pads = explicit_pads(kwargs.get("padding", "valid"), x_shape[1:3], k, stride, dilation)
    x, w, b = (normal(rng, s, np.float32) for s in (x_shape, k + (x_shape[3], c_out), (c_out,)))
    atol = 2e-5 * np.sqrt(k[0] * k[1] * x_shape[3])
    check_torch(lambda x, w, b: conv2d(x, w, b, **kwargs),
                lambda x, w, b: torch_conv2d(torch, x, w, b, stride, pads, dilation),
                x, w, b, rtol=1e-4, atol=atol)
    check_torch(lambda x, w, b: conv2d(x, w, b, activation="relu", **kwargs),
                lambda x, w, b: torch.relu(torch_conv2d(torch, x, w, b, stride, pads, dilation)),
                x, w, b, rtol=1e-4, atol=atol)


def test_float32_stays_float32(rng, algorithm, kernels):
    algorithm("taps")
    x = cr.Tensor(normal(rng, (2, 4, 4, 8), np.float32), requires_grad=True)
    w = cr.Tensor(normal(rng, (3, 3, 8, 8), np.float32), requires_grad=True)
    y = conv2d(x, w, padding="same")
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32


def test_taps_are_shared_out_as_evenly_as_whole_taps_allow(monkeypatch):
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    geom = geometry((8, 4, 4, 8), (3, 3), 8)
    places = conv_module._tap_places(geom)
    previous = backend.set_num_threads(2)
    try:
        runs = conv_module._tap_runs(geom, places)
        backend.set_num_threads(1)
        assert [len(run) for run in conv_module._tap_runs(geom, places)] == [9]  # one thread: one run
    finally:
        backend.set_num_threads(previous)
    # per image the taps reach 16 (centre), 12 (four edges) and 9 (four corners) outputs: 49 + 51
    # (the greedy deal, biggest first to the least loaded thread, gave 46 + 54)
    loads = sorted(sum(conv_module._positions(p[3]) for p in run) for run in runs)
    assert loads == [49, 51] and sorted(p[:2] for run in runs for p in run) == [p[:2] for p in places]


@pytest.mark.parametrize("parts", [2, 3])
def test_tap_shares_cover_every_tap_once_and_two_shares_are_the_best_split(parts):
    import itertools
    rng = np.random.default_rng(9)
    for trial in range(40):
        sizes = tuple(int(v) for v in rng.integers(1, 30, rng.integers(1, 10)))
        shares = conv_module._tap_shares(sizes, parts)
        assert sorted(i for share in shares for i in share) == list(range(len(sizes)))
        assert 1 <= len(shares) <= parts and all(shares)
        biggest = max(sum(sizes[i] for i in share) for share in shares)
        if parts == 2:   # against every assignment of the taps to two threads
            best = min(max(sum(s for s, side in zip(sizes, sides) if side), sum(s for s, side in zip(sizes, sides) if not side))
                       for sides in itertools.product((0, 1), repeat=len(sizes)))
            assert biggest == best
        else:            # no worse than the greedy deal's bound: the average plus the biggest tap
            assert biggest <= sum(sizes) / parts + max(sizes)
