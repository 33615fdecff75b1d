"""Pooling and upsampling: the lecture's worked example, the tie rule, gradchecks, Keras's shape
formula, and PyTorch as the reference (NHWC here, NCHW there). The max-pool tests run on NumPy's
kernels and on the compiled ones (ops/pool_numba.py, `kernels` fixture), and the two are compared."""
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops.pool import (avg_pool1d, avg_pool2d, global_avg_pool1d, global_avg_pool2d, global_max_pool1d,
                                global_max_pool2d, max_pool1d, max_pool2d, upsample1d, upsample2d)


def distinct(rng, shape):
    """Values without ties, 1/size apart (far beyond gradcheck's eps), so each window has one clear max."""
    n = math.prod(shape)
    return rng.permutation(n).reshape(shape) / n - 0.5


def keras_length(n, k, s, padding):
    """Keras/TensorFlow's output length: whole windows for 'valid', ceil(n / s) for 'same'."""
    return (n - k) // s + 1 if padding == "valid" else -(-n // s)


def keras_pads(n, k, s, padding):
    """'same' pads total = max((out - 1) s + k - n, 0), the smaller half before."""
    if padding == "valid":
        return 0, 0
    total = max((keras_length(n, k, s, padding) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (pool_size, stride, padding, input shape): tiling, tiling with a leftover row and column,
# overlapping windows, 'same' with odd and even sizes (symmetric and asymmetric padding), non-square
POOL2D = [
    (2, None, "valid", (2, 4, 4, 2)),
    (2, None, "valid", (1, 5, 5, 2)),
    (2, 1, "valid", (1, 4, 5, 2)),
    (3, 2, "valid", (1, 7, 6, 2)),
    (3, 2, "same", (1, 6, 5, 2)),
    (3, 1, "same", (1, 4, 5, 2)),
    (2, 2, "same", (1, 5, 5, 2)),
    (2, 1, "same", (1, 4, 4, 1)),
    ((2, 3), (1, 2), "same", (1, 5, 6, 2)),
]
POOL1D = [
    (2, None, "valid", (2, 6, 2)),
    (2, None, "valid", (1, 7, 2)),
    (2, 1, "valid", (1, 6, 2)),
    (3, 2, "valid", (1, 8, 2)),
    (3, 2, "same", (1, 7, 2)),
    (3, 1, "same", (1, 5, 2)),
    (2, 2, "same", (1, 5, 2)),
    (4, 1, "same", (1, 6, 2)),
]


# ------------------------------------------------------------------ the lecture's worked example
def test_lecture_max_pool_2x2_stride_1(kernels):
    # 2x2 windows at stride 1 over a 5x4 image give (5-2)/1+1 = 4 rows and (4-2)/1+1 = 3 columns.
    x = np.array([[0, 22, 0, 1],
                  [12, 2, 3, 23],
                  [3, 34, 26, 2],
                  [0, 22, 86, 3],
                  [4, 3, 1, 4]], dtype=np.float32)
    # Each output is the max of the 2x2 block whose top-left corner it sits on, e.g.
    #   y[0,0] = max(0, 22, 12, 2) = 22      y[0,2] = max(0, 1, 3, 23) = 23
    #   y[1,1] = max(2, 3, 34, 26) = 34      y[1,2] = max(3, 23, 26, 2) = 26
    #   y[2,1] = max(34, 26, 22, 86) = 86    y[3,0] = max(0, 22, 4, 3) = 22
    # (The brief quoted row 1 as [34 26 26]; window (1,1) holds 34, so the middle value is 34.)
    expected = np.array([[22, 22, 23],
                         [34, 34, 26],
                         [34, 86, 86],
                         [22, 86, 86]], dtype=np.float32)
    xt = cr.tensor(x[None, :, :, None], requires_grad=True)
    y = max_pool2d(xt, pool_size=2, stride=1)
    np.testing.assert_array_equal(y.numpy()[0, :, :, 0], expected)

    # With dL/dy = 1 everywhere, each input gets one unit per window it is the max of:
    #   22 at (0,1) wins windows (0,0), (0,1)                -> 2
    #   23 at (1,3) wins (0,2)                               -> 1
    #   34 at (2,1) wins (1,0), (1,1), (2,0)                 -> 3
    #   26 at (2,2) wins (1,2)                               -> 1
    #   22 at (3,1) wins (3,0)                               -> 1
    #   86 at (3,2) wins (2,1), (2,2), (3,1), (3,2)          -> 4
    # 12 units for 12 windows: overlapping windows make a pixel collect several gradients.
    y.sum().backward()
    expected_grad = np.array([[0, 2, 0, 0],
                              [0, 0, 0, 1],
                              [0, 3, 1, 0],
                              [0, 1, 4, 0],
                              [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(xt.grad[0, :, :, 0], expected_grad)


# ------------------------------------------------------------------ ties
def _grad_of(op, x, *args, **kwargs):
    xt = cr.tensor(np.asarray(x, dtype=np.float32), requires_grad=True)
    op(xt, *args, **kwargs).sum().backward()
    return xt.grad


def test_max_pool_tie_gradient_goes_to_first_maximal_element_row_major(kernels):
    # window [[1, 5], [5, 0]]: the 5s tie; row-major order meets (0, 1) before (1, 0)
    g = _grad_of(max_pool2d, np.array([[1, 5], [5, 0]])[None, :, :, None], 2)
    np.testing.assert_array_equal(g[0, :, :, 0], [[0, 1], [0, 0]])
    # window [[1, 2], [5, 5]]: the first maximal element is (1, 0), not split with (1, 1)
    g = _grad_of(max_pool2d, np.array([[1, 2], [5, 5]])[None, :, :, None], 2)
    np.testing.assert_array_equal(g[0, :, :, 0], [[0, 0], [1, 0]])


def test_max_pool_ties_with_overlapping_windows(kernels):
    # a constant 3x3 image, 2x2 windows at stride 1: every window's first element is its top-left
    g = _grad_of(max_pool2d, np.ones((1, 3, 3, 1)), 2, 1)
    np.testing.assert_array_equal(g[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # 1-D, a window of 3 at stride 1 over [2, 2, 2, 1]: windows start at 0 and 1, each picks its start
    g = _grad_of(max_pool1d, np.array([2, 2, 2, 1])[None, :, None], 3, 1)
    np.testing.assert_array_equal(g[0, :, 0], [1, 1, 0, 0])


def test_global_max_pool_tie_rule_matches_max_pool(kernels):
    x = np.array([[3, 1], [3, 3]], dtype=np.float32)[None, :, :, None]
    np.testing.assert_array_equal(_grad_of(global_max_pool2d, x)[0, :, :, 0], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(_grad_of(global_max_pool2d, x), _grad_of(max_pool2d, x, 2))
    np.testing.assert_array_equal(_grad_of(global_max_pool1d, np.array([[[0], [4], [4]]])), [[[0], [1], [0]]])


@pytest.mark.parametrize("pool_size, stride, padding", [(2, 2, "valid"), (2, 1, "valid"), (3, 2, "same"),
                                                        (3, 1, "same")])
def test_max_pool_ties_agree_with_torch(torch, rng, pool_size, stride, padding, kernels):
    x = rng.integers(0, 3, (2, 6, 7, 3)).astype(np.float32)  # small integers: ties everywhere
    ours = _grad_of(max_pool2d, x, pool_size, stride, padding)
    # PyTorch's argmax picks the same single element per window
    t = torch.from_numpy(x).requires_grad_()
    torch_pool2d(torch, "max", t, pool_size, stride, padding).sum().backward()
    np.testing.assert_array_equal(ours, t.grad.numpy())


# ------------------------------------------------------------------ gradchecks
@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("pool_size, stride, padding, shape", POOL2D)
def test_pool2d_gradcheck(rng, op, pool_size, stride, padding, shape, kernels):
    cr.gradcheck(lambda x: op(x, pool_size, stride, padding), distinct(rng, shape))


@pytest.mark.parametrize("op", [max_pool1d, avg_pool1d])
@pytest.mark.parametrize("pool_size, stride, padding, shape", POOL1D)
def test_pool1d_gradcheck(rng, op, pool_size, stride, padding, shape, kernels):
    cr.gradcheck(lambda x: op(x, pool_size, stride, padding), distinct(rng, shape))


@pytest.mark.parametrize("op, shape", [(global_avg_pool2d, (2, 3, 2, 3)), (global_max_pool2d, (2, 3, 2, 3)),
                                       (global_avg_pool1d, (2, 4, 3)), (global_max_pool1d, (2, 4, 3))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pool_gradcheck(rng, op, shape, keepdims):
    cr.gradcheck(lambda x: op(x, keepdims=keepdims), distinct(rng, shape))


@pytest.mark.parametrize("size, interpolation", [(2, "nearest"), ((2, 3), "nearest"), (2, "bilinear"),
                                                 ((3, 2), "bilinear"), ((1, 4), "bilinear")])
def test_upsample2d_gradcheck(rng, size, interpolation):
    cr.gradcheck(lambda x: upsample2d(x, size, interpolation), rng.standard_normal((2, 3, 2, 2)))


def test_upsample1d_gradcheck(rng):
    cr.gradcheck(lambda x: upsample1d(x, 3), rng.standard_normal((2, 4, 2)))


# ------------------------------------------------------------------ PyTorch as the reference
def torch_pool2d(torch, kind, x, pool_size, stride, padding):
    """Keras-semantics pooling written with PyTorch on NHWC x: pad explicitly (torch pads symmetrically),
    max over a -inf pad, and for 'same' averages divide by the count of real elements."""
    F = torch.nn.functional
    (kh, kw), (sh, sw) = pair(pool_size), pair(pool_size if stride is None else stride)
    (pt, pb), (pl, pr) = keras_pads(x.shape[1], kh, sh, padding), keras_pads(x.shape[2], kw, sw, padding)
    xt = x.permute(0, 3, 1, 2)
    if kind == "max":
        y = F.max_pool2d(F.pad(xt, (pl, pr, pt, pb), value=-math.inf), (kh, kw), (sh, sw))
    else:  # mean over the window with zeros padded / fraction of the window that is real
        ones = torch.ones_like(xt)
        y = (F.avg_pool2d(F.pad(xt, (pl, pr, pt, pb)), (kh, kw), (sh, sw))
             / F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), (kh, kw), (sh, sw)))
    return y.permute(0, 2, 3, 1)


def torch_pool1d(torch, kind, x, pool_size, stride, padding):
    F = torch.nn.functional
    k, s = pool_size, pool_size if stride is None else stride
    p = keras_pads(x.shape[1], k, s, padding)
    xt = x.permute(0, 2, 1)
    if kind == "max":
        y = F.max_pool1d(F.pad(xt, p, value=-math.inf), k, s)
    else:
        y = F.avg_pool1d(F.pad(xt, p), k, s) / F.avg_pool1d(F.pad(torch.ones_like(xt), p), k, s)
    return y.permute(0, 2, 1)


@pytest.mark.parametrize("kind, op", [("max", max_pool2d), ("avg", avg_pool2d)])
@pytest.mark.parametrize("pool_size, stride, padding, shape", POOL2D)
def test_pool2d_matches_torch(check_torch, torch, rng, kind, op, pool_size, stride, padding, shape, kernels):
    x = rng.standard_normal((3,) + shape[1:]).astype(np.float32)
    check_torch(lambda t: op(t, pool_size, stride, padding),
                lambda t: torch_pool2d(torch, kind, t, pool_size, stride, padding), x)


@pytest.mark.parametrize("kind, op", [("max", max_pool1d), ("avg", avg_pool1d)])
@pytest.mark.parametrize("pool_size, stride, padding, shape", POOL1D)
def test_pool1d_matches_torch(check_torch, torch, rng, kind, op, pool_size, stride, padding, shape, kernels):
    x = rng.standard_normal((3,) + shape[1:]).astype(np.float32)
    check_torch(lambda t: op(t, pool_size, stride, padding),
                lambda t: torch_pool1d(torch, kind, t, pool_size, stride, padding), x)


def test_pool2d_valid_matches_torch_directly(check_torch, torch, rng):
    # no padding: PyTorch's own pools, no emulation
    F = torch.nn.functional
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    for k, s in [(2, 2), (3, 2), (2, 1), (3, 3)]:
        check_torch(lambda t: max_pool2d(t, k, s),
                    lambda t: F.max_pool2d(t.permute(0, 3, 1, 2), k, s).permute(0, 2, 3, 1), x)
        check_torch(lambda t: avg_pool2d(t, k, s),
                    lambda t: F.avg_pool2d(t.permute(0, 3, 1, 2), k, s).permute(0, 2, 3, 1), x)


def test_avg_pool_same_is_count_include_pad_false(check_torch, torch, rng):
    # 3x3 at stride 1 pads one pixel on every side, symmetric, so PyTorch's own padding applies:
    # border windows average only their real pixels, PyTorch's count_include_pad=False
    F = torch.nn.functional
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    check_torch(lambda t: avg_pool2d(t, 3, 1, "same"),
                lambda t: F.avg_pool2d(t.permute(0, 3, 1, 2), 3, 1, padding=1,
                                       count_include_pad=False).permute(0, 2, 3, 1), x)
    # the corner window covers 2x2 real pixels of its 3x3
    y = avg_pool2d(cr.tensor(x), 3, 1, "same").numpy()
    np.testing.assert_allclose(y[:, 0, 0], x[:, :2, :2].mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools_match_torch(check_torch, torch, rng, keepdims):
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    check_torch(lambda t: global_avg_pool2d(t, keepdims), lambda t: t.mean(dim=(1, 2), keepdim=keepdims), x)
    check_torch(lambda t: global_max_pool2d(t, keepdims), lambda t: t.amax(dim=(1, 2), keepdim=keepdims), x)
    check_torch(lambda t: global_avg_pool1d(t[0], keepdims), lambda t: t[0].mean(dim=1, keepdim=keepdims), x)
    check_torch(lambda t: global_max_pool1d(t[0], keepdims), lambda t: t[0].amax(dim=1, keepdim=keepdims), x)


@pytest.mark.parametrize("size", [2, (2, 3), (3, 1)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsample2d_matches_torch(check_torch, torch, rng, size, interpolation):
    F = torch.nn.functional
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    kwargs = {"align_corners": False} if interpolation == "bilinear" else {}

    def theirs(t):
        return F.interpolate(t.permute(0, 3, 1, 2), scale_factor=pair(size), mode=interpolation,
                             **kwargs).permute(0, 2, 3, 1)
    check_torch(lambda t: upsample2d(t, size, interpolation), theirs, x)


def test_upsample1d_matches_torch(check_torch, torch, rng):
    F = torch.nn.functional
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    check_torch(lambda t: upsample1d(t, 3),
                lambda t: F.interpolate(t.permute(0, 2, 1), scale_factor=3, mode="nearest").permute(0, 2, 1), x)


def test_bilinear_half_pixel_worked_example():
    # Doubling [0, 1]: output pixel o samples the input at (o + 0.5) / 2 - 0.5, clamped to [0, 1]:
    #   o=0: -0.25 -> 0 -> 0      o=1: 0.25 -> 0.25      o=2: 0.75 -> 0.75      o=3: 1.25 -> 1 -> 1
    x = cr.tensor(np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 2, 1))
    y = upsample2d(x, (1, 2), "bilinear")
    np.testing.assert_allclose(y.numpy().ravel(), [0, 0.25, 0.75, 1])


def test_upsample_nearest_is_a_repeat(rng):
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    y = upsample2d(cr.tensor(x), (2, 3)).numpy()
    np.testing.assert_array_equal(y, x.repeat(2, axis=1).repeat(3, axis=2))
    np.testing.assert_array_equal(upsample1d(cr.tensor(x[0]), 2).numpy(), x[0].repeat(2, axis=1))


# ------------------------------------------------------------------ shapes, dtypes, errors
SHAPES = [(n, k, s, p) for n in (1, 4, 5, 7, 8) for k in (1, 2, 3) for s in (1, 2, 3) for p in ("valid", "same")
          if p == "same" or k <= n]


def test_output_shapes_follow_keras_formula():
    for n, k, s, padding in SHAPES:
        x2 = cr.zeros((1, n, n + 1, 2))
        x1 = cr.zeros((1, n, 2))
        expected = (keras_length(n, k, s, padding), keras_length(n + 1, k, s, padding))
        for op in (max_pool2d, avg_pool2d):
            assert op(x2, k, s, padding).shape == (1, *expected, 2), (op.__name__, n, k, s, padding)
        for op in (max_pool1d, avg_pool1d):
            assert op(x1, k, s, padding).shape == (1, expected[0], 2), (op.__name__, n, k, s, padding)


def test_stride_defaults_to_pool_size():
    assert max_pool2d(cr.zeros((1, 6, 6, 1)), 3).shape == (1, 2, 2, 1)
    assert avg_pool1d(cr.zeros((1, 6, 1)), 2).shape == (1, 3, 1)


def test_float32_stays_float32(rng, kernels):
    x = cr.tensor(rng.standard_normal((1, 5, 5, 2)).astype(np.float32), requires_grad=True)
    outs = [max_pool2d(x, 3, 2, "same"), avg_pool2d(x, 3, 2, "same"), avg_pool2d(x, 2), max_pool2d(x, 2),
            global_avg_pool2d(x), global_max_pool2d(x), upsample2d(x, 2, "bilinear"), upsample2d(x, 2),
            max_pool1d(x[0], 2, 1), avg_pool1d(x[0], 3, 2, "same"), upsample1d(x[0])]
    total = None
    for o in outs:
        assert o.dtype == np.float32
        total = o.sum() if total is None else total + o.sum()
    total.backward()
    assert x.grad.dtype == np.float32


def test_errors_name_the_op_and_the_shapes():
    layout = r"max_pool2d expects \(batch, height, width, channels\), got shape \(28, 28\)"
    with pytest.raises(ValueError, match=layout):
        max_pool2d(cr.zeros((28, 28)), 2)
    with pytest.raises(ValueError, match=r"avg_pool1d expects \(batch, steps, channels\), got shape \(4, 5, 6, 7\)"):
        avg_pool1d(cr.zeros((4, 5, 6, 7)), 2)
    with pytest.raises(ValueError, match=r"max_pool2d: pool_size \(3, 3\) is larger than .* \(2, 5\).*'same'"):
        max_pool2d(cr.zeros((1, 2, 5, 1)), 3)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
        avg_pool2d(cr.zeros((1, 4, 4, 1)), 2, padding="full")
    with pytest.raises(ValueError, match=r"max_pool1d: pool_size must be positive, got \(0,\)"):
        max_pool1d(cr.zeros((1, 4, 1)), 0)
    with pytest.raises(ValueError, match="stride must be an int or a tuple of 2 ints"):
        max_pool2d(cr.zeros((1, 4, 4, 1)), 2, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="upsample2d: interpolation must be 'nearest' or 'bilinear'"):
        upsample2d(cr.zeros((1, 4, 4, 1)), 2, "bicubic")
    with pytest.raises(ValueError, match=r"global_avg_pool2d expects .* got shape \(3, 4\)"):
        global_avg_pool2d(cr.zeros((3, 4)))


@pytest.mark.parametrize("shape,k", [((2, 6, 8, 3), 2), ((1, 5, 7, 2), 2), ((2, 6, 6, 1), 3)])
def test_disjoint_max_pool_backward_matches_a_brute_force_reference(shape, k, kernels):
    # windows of stride = size (the fast path), with ties (small integers) and a ragged edge
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, shape).astype(np.float64)
    g = rng.standard_normal((shape[0], shape[1] // k, shape[2] // k, shape[3]))
    t = cr.Tensor(x, requires_grad=True)
    max_pool2d(t, k).backward(g)
    expected = np.zeros_like(x)
    for n in range(shape[0]):
        for a in range(shape[1] // k):
            for b in range(shape[2] // k):
                for c in range(shape[3]):
                    window = x[n, a * k:(a + 1) * k, b * k:(b + 1) * k, c]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first max, row-major
                    expected[n, a * k + i, b * k + j, c] = g[n, a, b, c]
    np.testing.assert_array_equal(np.asarray(t.grad), expected)


@pytest.mark.parametrize("pool_size, stride, padding, shape", POOL2D + [(2, None, "valid", (8, 8, 8, 37)),
                                                                     (3, 1, "same", (3, 9, 7, 5))])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_compiled_max_pool_equals_numpy(pool_size, stride, padding, shape, threads, monkeypatch):
    from chainrule import accelerate, backend
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed (pip install 'chainrule[fast]')")
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)  # share out even these small images
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4, shape).astype(np.float32)   # ties in most windows
    results = {}
    previous_threads = backend.set_num_threads(threads)
    previous = accelerate.numba_mode()
    try:
        for mode in ("never", "always"):
            accelerate.set_numba(mode)
            t = cr.Tensor(x, requires_grad=True)
            y = max_pool2d(t, pool_size, stride, padding)
            y.backward(np.random.default_rng(9).standard_normal(y.shape).astype(np.float32))
            results[mode] = (y.numpy(), np.asarray(t.grad))
    finally:
        accelerate.set_numba(previous)
        backend.set_num_threads(previous_threads)
    (y_ref, dx_ref), (y, dx) = results["never"], results["always"]
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_array_equal(y, y_ref)
    # the same gradients reach the same elements; where windows overlap, summed in another order
    np.testing.assert_array_equal(dx != 0, dx_ref != 0)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6 * np.abs(dx_ref).max())


def test_compiled_max_pool_propagates_nan_as_numpy_and_torch(kernels):
    x = np.array([[1, np.nan], [3, 2]], dtype=np.float32)[None, :, :, None]
    assert np.isnan(max_pool2d(cr.tensor(x), 2).numpy()).all()


@pytest.mark.parametrize("pool,stride", [(2, 2), (2, 1), (3, 2)])
def test_a_nan_windows_gradient_goes_to_its_last_nan_on_both_kernels(pool, stride, kernels):
    """As PyTorch's max_pool2d: the window's max is NaN and its last NaN (row-major order) takes its
    gradient; windows without NaN give theirs to the first maximum as always."""
    x = np.arange(36, dtype=np.float64).reshape(1, 6, 6, 1)
    x[0, 1, 1, 0] = x[0, 1, 0, 0] = x[0, 4, 5, 0] = np.nan
    t = cr.Tensor(x, requires_grad=True)
    y = max_pool2d(t, pool, stride)
    y.backward(np.ones(y.shape))
    ref = np.zeros_like(x)
    out = y.shape[1]
    for i in range(out):
        for j in range(out):
            window = x[0, i * stride:i * stride + pool, j * stride:j * stride + pool, 0]
            nans = np.argwhere(np.isnan(window))
            r, c = nans[-1] if len(nans) else np.unravel_index(np.argmax(window), window.shape)
            assert np.isnan(y.numpy()[0, i, j, 0]) == bool(len(nans))
            ref[0, i * stride + r, j * stride + c, 0] += 1
    np.testing.assert_array_equal(np.asarray(t.grad), ref)


def test_a_nan_windows_gradient_goes_where_torchs_does(kernels):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 7, 3))
    x[rng.random(x.shape) < 0.15] = np.nan
    for pool, stride, padding in ((2, 2, "valid"), (3, 1, "valid"), (3, 2, "valid")):
        t = cr.Tensor(x, requires_grad=True)
        y = max_pool2d(t, pool, stride, padding)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        yt = torch.nn.functional.max_pool2d(xt, pool, stride)
        yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
        np.testing.assert_array_equal(y.numpy(), yt.detach().numpy().transpose(0, 2, 3, 1))
        np.testing.assert_allclose(np.asarray(t.grad), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
