"""Winograd convolutions (chainrule.ops.winograd): the transforms are exact, the planner picks the
shapes it should, and conv2d/conv1d give the same values and gradients on the Winograd path as on
the direct im2col path (float64 to 1e-12, float32 to the transforms' rounding), with gradchecks;
each on NumPy's kernels and on the compiled ones (ops/winograd_numba.py, `kernels` fixture)."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import conv as conv_module
from chainrule.ops import winograd
from chainrule.ops.conv import conv1d, conv2d


@pytest.fixture
def im2col():
    """Run a block with the direct algorithm, restoring the setting afterwards."""
    class Switch:
        def __enter__(self):
            self.previous = conv_module.set_conv_algorithm("im2col")

        def __exit__(self, *exc):
            conv_module.set_conv_algorithm(self.previous)
    return Switch()


@pytest.fixture
def everywhere(monkeypatch):
    """Winograd on every shape it can compute, however small (the planner's speed limits off)."""
    monkeypatch.setattr(winograd, "_MIN_TILES", 1)
    monkeypatch.setattr(winograd, "_MIN_SAVING", 0)


def correlate(d, g):
    m = len(d) - len(g) + 1
    return np.array([d[i:i + len(g)] @ g for i in range(m)])


@pytest.mark.parametrize("m,r", [(4, 3), (4, 5), (2, 3), (2, 5), (6, 3), (3, 3), (1, 1)])
def test_transforms_compute_the_correlation(m, r):
    at, g, bt = winograd.transforms(m, r)
    assert at.shape == (m, m + r - 1) and g.shape == (m + r - 1, r) and bt.shape == (m + r - 1, m + r - 1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        d, w = rng.standard_normal(m + r - 1), rng.standard_normal(r)
        np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), correlate(d, w), rtol=1e-12, atol=1e-12)


def test_input_heavy_layers_take_wider_tiles_where_they_fit():
    f32 = np.dtype(np.float32)
    assert winograd.plan(geometry((8, 64, 64, 48), 3, 16), f32).h.m == 6     # a U-Net decoder's concat
    assert winograd.plan(geometry((8, 64, 64, 16), 3, 16), f32).h.m == 4
    assert winograd.plan(geometry((4, 12, 12, 64), 3, 16, "valid"), f32).h.m == 4   # 10 rows in 12: too ragged
    assert winograd.plan(geometry((8, 16, 16, 192), 3, 64), f32).h.m == 4           # 16 rows in 18: too
    mixed = winograd.plan(geometry((8, 24, 32, 32), 3, 16), f32)                     # 24 fits 6s, 32 does not
    assert (mixed.h.m, mixed.w.m) == (6, 4)


def test_sides_that_threes_fit_better_take_f33():
    # rows transformed: ceil(n / 3) * 5 against ceil(n / 4) * 6
    assert [winograd._tile(3, n) for n in (3, 4, 5, 6, 7, 8, 9, 10, 12, 24, 64)] == [3, 4, 3, 3, 4, 4, 3, 4, 4, 4, 4]
    assert winograd._tile(5, 3) == 4  # 5x5 kernels keep F(4, 5)
    f32 = np.dtype(np.float32)
    last = winograd.plan(geometry((128, 5, 5, 128), 3, 256, "valid"), f32)
    assert (last.h.m, last.w.m, last.h.a) == (3, 3, 5) and last.h.tiles == last.w.tiles == 1
    mixed = winograd.plan(geometry((8, 9, 8, 32), 3, 32), f32)
    assert (mixed.h.m, mixed.w.m) == (3, 4)


def test_the_bias_goes_where_every_output_of_a_tile_reads():
    # the ones column of A^T: M[ones] += b adds b to each of the m_h x m_w outputs of the tile
    f32 = np.dtype(np.float32)
    for shape, k, pad in (((8, 64, 64, 16), 3, "same"), ((8, 32, 32, 32), 3, "same"), ((50, 14, 14, 32), 5, "same"),
                          ((128, 5, 5, 64), 3, "valid"), ((8, 9, 8, 32), 3, "same")):
        p = winograd.plan(geometry(shape, k, 16, pad), f32)
        m = np.zeros((p.h.a * p.w.a, 1))
        m[p.ones] = 1.0
        y = p.h.at.astype(np.float64) @ m.reshape(p.h.a, p.w.a) @ p.w.at.T.astype(np.float64)
        np.testing.assert_array_equal(y, np.ones((p.h.m, p.w.m)))


def test_f43_matrices_are_the_published_ones():
    # Lavin & Gray (2016), F(4x4, 3x3): points 0, 1, -1, 2, -2 and infinity
    at, g, bt = winograd.transforms(4, 3)
    np.testing.assert_allclose(g[:3], [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6]])
    np.testing.assert_allclose(bt[0], [4, 0, -5, 0, 1, 0])
    np.testing.assert_allclose(at[3], [0, 1, -1, 8, -8, 1])


def geometry(x_shape, k, c_out, padding="same", stride=1, dilation=1):
    n, h, w, c = x_shape
    pads = tuple(conv_module._axis_padding(size, k, stride, padding, dilation) for size in (h, w))
    out = tuple(conv_module.conv_output_length(size, k, stride, p, dilation) for size, p in zip((h, w), pads))
    return conv_module._Geometry(n, (h, w), c, (k, k), c_out, (stride, stride), (dilation, dilation), pads, out)


@pytest.mark.parametrize("args,expected", [
    (((8, 64, 64, 16), 3, 16), True),                        # U-Net
    (((50, 14, 14, 32), 5, 64), True),                       # CNN-A's second layer
    (((128, 26, 26, 32), 3, 64, "valid"), True),             # CNN-B's second layer
    (((8, 64, 64, 16), 3, 16, "same", 2), False),            # stride 2
    (((8, 64, 64, 16), 3, 16, "same", 1, 2), False),         # dilation
    (((8, 64, 64, 1), 3, 16), False),                        # one input channel: GEMMs too thin
    (((8, 64, 64, 16), 1, 16), False),                       # 1x1: a plain matmul
    (((8, 64, 64, 16), 7, 16), False),                       # no transform for 7x7
    (((8, 4, 4, 128), 3, 256), False),                       # 8 tiles in all
    (((128, 5, 5, 128), 3, 256, "valid"), True),             # CNN-B's last layer: one 5x5 tile per image
])
def test_plan_picks_the_shapes_where_winograd_pays(args, expected):
    assert (winograd.plan(geometry(*args), np.dtype(np.float32)) is not None) == expected


def run(fn, arrays, wrt):
    ts = [cr.Tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    y = fn(*ts)
    seed = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    y.backward(seed)
    return [y.numpy()] + [ts[i].grad.numpy() if hasattr(ts[i].grad, "numpy") else np.asarray(ts[i].grad)
                          for i in wrt]


CASES = [
    ((3, 9, 11, 8), (3, 3), 8, dict(padding="same")),
    ((2, 10, 7, 9), (3, 3), 12, dict(padding="valid")),
    ((2, 13, 14, 8), (5, 5), 16, dict(padding="same")),
    ((2, 12, 9, 8), (3, 5), 8, dict(padding=((1, 2), (0, 3)))),   # mixed sides, uneven padding
    ((2, 9, 17, 8), (1, 3), 8, dict(padding="same")),              # a 1x3 kernel (conv1d's shape)
    ((4, 8, 8, 10), (5, 3), 9, dict(padding=2)),
    ((2, 18, 12, 16), (3, 3), 8, dict(padding="same")),            # input-heavy: F(6x6, 3x3)
    ((3, 5, 5, 8), (3, 3), 8, dict(padding="valid")),              # a 3x3 output: F(3x3, 3x3)
    ((2, 9, 8, 8), (3, 3), 8, dict(padding="same")),               # F(3, 3) down, F(4, 3) across
    ((3, 9, 11, 8), (3, 3), 8, dict(padding="same", activation="relu")),  # ragged tiles, fused ReLU
]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CASES)
@pytest.mark.parametrize("wrt", [(0, 1, 2), (0,), (1,)])
def test_winograd_equals_direct(x_shape, k, c_out, kwargs, wrt, im2col, everywhere, kernels):
    assert_equals_direct(x_shape, k, c_out, kwargs, wrt, im2col)


def assert_equals_direct(x_shape, k, c_out, kwargs, wrt, im2col, taken=None):
    """conv2d's value and gradients (those in `wrt`) as on the direct path, float64 and float32;
    with `taken` (a list the path under test appends to), that path ran once per dtype."""
    rng = np.random.default_rng(0)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(k + (x_shape[3], c_out)).astype(dtype)
        b = rng.standard_normal(c_out).astype(dtype)
        fn = lambda x, w, b: conv2d(x, w, b, **kwargs)  # noqa: E731
        before = None if taken is None else len(taken)
        fast = run(fn, (x, w, b), wrt)
        assert taken is None or len(taken) == before + 1
        with im2col:
            direct = run(fn, (x, w, b), wrt)
        for f, d in zip(fast, direct):
            assert f.dtype == dtype
            np.testing.assert_allclose(f, d, rtol=0, atol=tol * np.abs(d).max())


def test_the_cases_above_take_the_winograd_path(monkeypatch, everywhere):
    taken = []
    original = conv_module._convolve_winograd
    monkeypatch.setattr(conv_module, "_convolve_winograd", lambda *a: taken.append(1) or original(*a))
    for x_shape, k, c_out, kwargs in CASES:
        conv2d(cr.zeros(x_shape), cr.zeros(k + (x_shape[3], c_out)), **kwargs)
    assert len(taken) == len(CASES)


def test_gradcheck_on_the_winograd_path(everywhere, kernels):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 6, 7, 8)), rng.standard_normal((3, 3, 8, 8)), rng.standard_normal(8)
    assert winograd.plan(geometry((2, 6, 7, 8), 3, 8), np.dtype(np.float64)) is not None
    cr.gradcheck(lambda x, w, b: conv2d(x, w, b, padding="same"), x, w, b)
    x5 = rng.standard_normal((2, 8, 8, 8))
    cr.gradcheck(lambda x, w: conv2d(x, w, padding="same"), x5, rng.standard_normal((5, 5, 8, 8)))


def test_conv1d_uses_it_too(im2col, everywhere, kernels):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((4, 50, 16)), rng.standard_normal((3, 16, 16))
    fast = run(lambda x, w: conv1d(x, w, padding="same"), (x, w), (0, 1))
    with im2col:
        direct = run(lambda x, w: conv1d(x, w, padding="same"), (x, w), (0, 1))
    for f, d in zip(fast, direct):
        np.testing.assert_allclose(f, d, rtol=0, atol=1e-12 * np.abs(d).max())


def test_set_conv_algorithm_refuses_unknown_names():
    with pytest.raises(ValueError, match="im2col"):
        conv_module.set_conv_algorithm("fft")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("keep,relu,need", [(True, True, (1, 1, 1)), (False, False, (1, 1, 1)),
                                            (True, False, (1, 0, 0)), (False, True, (0, 1, 1)),
                                            (False, False, (0, 0, 1))])
@pytest.mark.parametrize("nn_tiles", [0, 10 ** 9])
def test_compiled_kernels_equal_numpys(threads, keep, relu, need, nn_tiles, monkeypatch, everywhere):
    """winograd.forward and .backward on the compiled kernels against NumPy's, every combination of
    kept tiles, ReLU mask and asked-for gradient, on 1-3 threads (chunks shared unevenly on 3), with
    dV from a transposed copy of U and without (_NN_TILES)."""
    from chainrule import accelerate
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    monkeypatch.setattr(winograd, "_NN_TILES", nn_tiles)
    rng = np.random.default_rng(5)
    cases = [((5, 9, 11, 8), (3, 3), 12, "same"), ((3, 12, 9, 16), (5, 5), 8, "same"),
             ((4, 18, 12, 16), (3, 3), 8, "same"), ((7, 5, 5, 8), (3, 3), 8, "valid"), ((3, 1, 17, 8), (1, 3), 8, "same")]
    previous_threads = cr.set_num_threads(threads)
    try:
        for x_shape, k, c_out, padding in cases:
            n, h, w, c = x_shape
            pads = tuple(conv_module._axis_padding(size, r, 1, padding, 1) for size, r in zip((h, w), k))
            out = tuple(conv_module.conv_output_length(size, r, 1, pad) for size, r, pad in zip((h, w), k, pads))
            p = winograd.plan(conv_module._Geometry(n, (h, w), c, k, c_out, (1, 1), (1, 1), pads, out),
                              np.dtype(np.float64))
            x = rng.standard_normal(x_shape)
            u = winograd.kernel_transform(rng.standard_normal(k + (x_shape[3], c_out)), p)
            bias = rng.standard_normal(c_out)
            g = rng.standard_normal((x_shape[0], p.geom.ho, p.geom.wo, c_out))
            results = {}
            for mode in ("never", "always"):
                before = accelerate.set_numba(mode)
                try:
                    y, kept = winograd.forward(x, u, p, bias, keep=keep, relu=relu)
                    grads = winograd.backward(g, x, u, p, bool(need[0]), bool(need[1]), kept,
                                              y if relu else None, bool(need[2]))
                finally:
                    accelerate.set_numba(before)
                assert (kept is not None) == keep
                results[mode] = (y,) + grads
            for fast, ref in zip(results["always"], results["never"]):
                assert (fast is None) == (ref is None)
                if ref is not None:
                    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12 * max(1, np.abs(ref).max()))
    finally:
        cr.set_num_threads(previous_threads)


def test_the_compiled_kernels_run_where_asked(monkeypatch, everywhere):
    from chainrule import accelerate
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    from chainrule.ops import winograd_numba
    calls = []
    for name in ("forward", "backward"):
        original = getattr(winograd_numba, name)
        monkeypatch.setattr(winograd_numba, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    x = cr.Tensor(np.ones((2, 8, 8, 8), np.float32), requires_grad=True)
    w = cr.Tensor(np.ones((3, 3, 8, 8), np.float32), requires_grad=True)
    for mode, expected in (("never", []), ("always", ["forward", "backward"])):
        previous = accelerate.set_numba(mode)
        try:
            calls.clear()
            conv2d(x, w, padding="same").sum().backward()
            assert calls == expected
            calls.clear()
            conv2d(x.detach().astype("float16"), w.detach().astype("float16"), padding="same")
            assert calls == []   # float16: NumPy's kernels, whatever the mode
        finally:
            accelerate.set_numba(previous)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_transforms_shared_over_threads_equal_the_whole(threads, monkeypatch):
    from chainrule import backend
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)   # split even this small kernel
    rng = np.random.default_rng(8)
    p = winograd.plan(geometry((4, 9, 9, 8), 3, 12), np.dtype(np.float64))
    w = rng.standard_normal((3, 3, 8, 12))
    du = rng.standard_normal((p.h.a * p.w.a, 8, 12))
    previous = cr.set_num_threads(threads)
    try:
        np.testing.assert_allclose(winograd.kernel_transform(w, p).reshape(-1),
                                   winograd._along((p.h.g, p.w.g), w).reshape(-1), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(winograd.kernel_grad(du, p, 8, 12).reshape(-1),
                                   winograd._along((p.h.g.T, p.w.g.T), du).reshape(-1), rtol=1e-14, atol=1e-14)
    finally:
        cr.set_num_threads(previous)


@pytest.fixture
def channel_shares(monkeypatch, everywhere):
    """The threads share out the channels on any shape (ops/winograd_numba.py, "threads sharing
    channels"): however small the work, the batch or the channel count."""
    from chainrule import accelerate, backend
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    monkeypatch.setattr(winograd, "_SHARE_CHANNELS", 1)
    monkeypatch.setattr(winograd, "_CHUNK_TILES", 1 << 20)
    taken = []
    original = winograd._forward_channels
    monkeypatch.setattr(winograd, "_forward_channels", lambda *a: taken.append(1) or original(*a))
    previous = accelerate.set_numba("always")
    yield taken
    accelerate.set_numba(previous)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CASES)
@pytest.mark.parametrize("wrt", [(0, 1, 2), (0,), (1,)])
def test_threads_sharing_channels_equal_direct(threads, x_shape, k, c_out, kwargs, wrt, im2col, channel_shares):
    """Each thread its output channels for y, dW and db and its input channels for dx: the same
    values as the direct path, on 2 and 3 threads (uneven shares of 8, 9, 12 and 16 channels)."""
    previous = cr.set_num_threads(threads)
    try:
        assert_equals_direct(x_shape, k, c_out, kwargs, wrt, im2col, taken=channel_shares)
    finally:
        cr.set_num_threads(previous)


def test_gradcheck_with_threads_sharing_channels(channel_shares):
    rng = np.random.default_rng(3)
    previous = cr.set_num_threads(2)
    try:
        x, w, b = rng.standard_normal((2, 6, 7, 8)), rng.standard_normal((3, 3, 8, 8)), rng.standard_normal(8)
        cr.gradcheck(lambda x, w, b: conv2d(x, w, b, padding="same", activation="relu"), x, w, b)
        assert channel_shares
    finally:
        cr.set_num_threads(previous)


def test_the_unets_8x8_layers_share_channels_on_two_threads():
    from chainrule import accelerate
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    previous, previous_mode = cr.set_num_threads(2), accelerate.set_numba("auto")   # whatever CHAINRULE_NUMBA says
    try:
        for c, c_out, expected in ((128, 128, True), (256, 128, True), (64, 64, False)):   # 64: not worth threads
            p = winograd.plan(geometry((8, 8, 8, c), 3, c_out), np.dtype(np.float32))
            x, w = np.zeros((8, 8, 8, c), np.float32), np.zeros((3, 3, c, c_out), np.float32)
            assert (winograd._channel_shares(p, x, w) is not None) == expected
        p = winograd.plan(geometry((8, 16, 16, 64), 3, 64), np.dtype(np.float32))   # 128 tiles: images
        assert winograd._channel_shares(p, np.zeros((8, 16, 16, 64), np.float32), np.zeros((3, 3, 64, 64), np.float32)) is None
    finally:
        cr.set_num_threads(previous)
        accelerate.set_numba(previous_mode)


def test_threads_sharing_channels_recompute_v_when_the_forward_kept_none(channel_shares):
    from chainrule import accelerate
    rng = np.random.default_rng(6)
    p = winograd.plan(geometry((3, 9, 11, 8), 3, 12), np.dtype(np.float64))
    x, w, g = rng.standard_normal((3, 9, 11, 8)), rng.standard_normal((3, 3, 8, 12)), rng.standard_normal((3, 9, 11, 12))
    previous = cr.set_num_threads(2)
    try:
        y, state = winograd.forward_kernel(x, w, p, keep=False)
        assert channel_shares and state[-1] is None
        fast = winograd.backward_kernel(g, x, state, p, True, True)
        accelerate.set_numba("never")
        y_ref, state_ref = winograd.forward_kernel(x, w, p, keep=False)
        ref = winograd.backward_kernel(g, x, state_ref, p, True, True)
    finally:
        cr.set_num_threads(previous)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12 * np.abs(y_ref).max())
    for f, r in zip(fast[:2], ref[:2]):
        np.testing.assert_allclose(f, r, rtol=0, atol=1e-12 * np.abs(r).max())
    assert fast[2] is None and ref[2] is None


@pytest.mark.parametrize("threads", [1, 2])
def test_float32_bias_gradient_sums_thousands_of_tiles_accurately(threads, kernels):
    """db is the sum of g; a float32 running sum over 1024 tiles drifts by ~1e-5 of it."""
    x = cr.Tensor(np.ones((16, 32, 32, 8), np.float32), requires_grad=True)
    w = cr.Tensor(np.ones((3, 3, 8, 8), np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(8, np.float32), requires_grad=True)
    g = np.full((16, 32, 32, 8), 0.1, np.float32)
    assert winograd.plan(geometry((16, 32, 32, 8), 3, 8), np.dtype(np.float32)) is not None
    previous = cr.set_num_threads(threads)
    try:
        conv2d(x, w, b, padding="same").backward(g)
    finally:
        cr.set_num_threads(previous)
    exact = g.astype(np.float64).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(b.grad), exact, rtol=1e-6)
