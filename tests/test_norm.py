"""batch_norm, layer_norm and dropout: gradchecks, running statistics, PyTorch as the reference. batch_norm's
tests run on NumPy's passes and on the compiled ones (ops/norm_numba.py; the `kernels` fixture)."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import norm
from chainrule.ops.norm import batch_norm, dropout, layer_norm

KERAS_MOMENTUM = 0.99


def stats(c, dtype=np.float64):
    return np.zeros(c, dtype), np.ones(c, dtype)


# ------------------------------------------------------------------ batch_norm
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(rng, shape, training, kernels):
    c = shape[-1]
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2, c)

    def fn(x, gamma, beta):  # fresh copies: gradcheck's many forwards must not drift the statistics
        return batch_norm(x, gamma, beta, mean.copy(), var.copy(), training=training)
    cr.gradcheck(fn, x, gamma, beta)


def test_batch_norm_gradcheck_without_scale_and_centre_and_other_axis(rng):
    x = rng.standard_normal((4, 3, 5))
    cr.gradcheck(lambda x: batch_norm(x, None, None, None, None), x)
    # channels first (axis=1): statistics over batch and length
    cr.gradcheck(lambda x, g: batch_norm(x, g, None, None, None, axis=1), x, rng.standard_normal(3))
    cr.gradcheck(lambda x, b: batch_norm(x, None, b, *stats(3), training=False, axis=1), x, rng.standard_normal(3))


def test_batch_norm_training_normalizes_each_channel(rng, kernels):
    x = (rng.standard_normal((64, 4, 4, 3)) * [1, 5, 0.1] + [3, -2, 0]).astype(np.float32)
    y = batch_norm(x, None, None, None, None, epsilon=1e-6).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1, atol=1e-3)


def test_batch_norm_inference_uses_running_statistics(rng, kernels):
    x = rng.standard_normal((6, 3)).astype(np.float32)
    gamma, beta = np.float32([1, 2, 3]), np.float32([0, -1, 1])
    mean, var = np.float32([0.5, -1, 2]), np.float32([1, 4, 0.25])
    y = batch_norm(x, gamma, beta, mean, var, training=False, epsilon=1e-3)
    np.testing.assert_allclose(y.numpy(), (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-5)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(mean, [0.5, -1, 2])  # inference leaves the statistics alone


def test_batch_norm_updates_running_statistics_in_place_keras_style(rng, kernels):
    x = rng.standard_normal((8, 2, 2, 3)).astype(np.float32)
    mean, var = stats(3, np.float32)
    ids = id(mean), id(var)
    batch_norm(x, None, None, mean, var, momentum=0.9)
    # running = running * momentum + batch * (1 - momentum), the batch variance biased (Keras 3)
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=(0, 1, 2)), rtol=1e-5)
    assert (id(mean), id(var)) == ids and mean.dtype == var.dtype == np.float32

    # Tensors work too: their .data is updated in place
    mt, vt = cr.tensor(np.zeros(3, np.float32)), cr.tensor(np.ones(3, np.float32))
    data = mt.data
    batch_norm(x, None, None, mt, vt, momentum=0.9)
    assert mt.data is data
    np.testing.assert_allclose(mt.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(vt.numpy(), var, rtol=1e-6)


def test_batch_norm_stays_float32_with_float64_statistics(rng, kernels):
    x = cr.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    gamma = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    for training in (True, False):
        y = batch_norm(x, gamma, None, *stats(3), training=training)  # float64 running arrays
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == gamma.grad.dtype == np.float32


def _torch_bn(torch, training, momentum):
    def theirs(t, gamma, beta, mean, var):
        y = torch.nn.functional.batch_norm(t.permute(0, 3, 1, 2), mean, var, gamma, beta, training=training,
                                           momentum=1 - momentum, eps=1e-3)
        return y.permute(0, 2, 3, 1)
    return theirs


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(check_torch, torch, rng, training, kernels):
    x = (rng.standard_normal((4, 3, 5, 2)) * 3 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal(2).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    mean, var = rng.standard_normal(2).astype(np.float32), rng.uniform(0.5, 2, 2).astype(np.float32)
    theirs = _torch_bn(torch, training, KERAS_MOMENTUM)
    check_torch(lambda t, g, b: batch_norm(t, g, b, mean.copy(), var.copy(), training=training),
                lambda t, g, b: theirs(t, g, b, torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())),
                x, gamma, beta, rtol=1e-4, atol=1e-5)


def test_batch_norm_running_statistics_match_torch(torch, rng, kernels):
    # Keras's momentum weighs the old value; PyTorch's the new one: torch_momentum = 1 - keras_momentum.
    # PyTorch also feeds its running variance the unbiased batch variance (times m / (m - 1)).
    momentum = 0.9
    ours_mean, ours_var = stats(2, np.float32)
    torch_mean, torch_var = torch.zeros(2), torch.ones(2)
    expect_ours, expect_torch = ours_var.copy(), ours_var.copy()
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 3, 2)) * 2 + 0.5).astype(np.float32)
        batch_norm(x, None, None, ours_mean, ours_var, momentum=momentum)
        _torch_bn(torch, True, momentum)(torch.from_numpy(x), None, None, torch_mean, torch_var)
        m = x.size // 2
        biased = x.var(axis=(0, 1, 2))
        expect_ours = momentum * expect_ours + (1 - momentum) * biased
        expect_torch = momentum * expect_torch + (1 - momentum) * biased * m / (m - 1)
    np.testing.assert_allclose(ours_mean, torch_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_var, expect_ours, rtol=1e-5)
    np.testing.assert_allclose(torch_var.numpy(), expect_torch, rtol=1e-5)


def _bn_with_grads(x, gamma, beta, g, **kwargs):
    """y and the gradients of x, gamma, beta for output gradient g."""
    xs = [cr.Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    y = batch_norm(*xs, **kwargs)
    y.backward(g)
    return [y.numpy()] + [t.grad for t in xs]


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_keeps_float32_accuracy_for_a_large_mean(check_torch, torch, rng, training, kernels):
    # x = 100 + noise: the float32 mean is off by its rounding error, which a plain two-pass variance
    # leaves in every centred value (and from there in y and dgamma). 32768 values: the wide-row path.
    x = (100 + rng.standard_normal((16, 8, 8, 32))).astype(np.float32)
    gamma, beta = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    mean, var = (100 + rng.standard_normal(32)).astype(np.float32), rng.uniform(0.5, 2, 32).astype(np.float32)
    theirs = _torch_bn(torch, training, KERAS_MOMENTUM)
    # PyTorch's channels-last kernel is itself off by up to 5e-5 in y and 2e-4 (relative) in dgamma here,
    # from the rounding of its float32 mean: the float64 comparison below is the strict one
    check_torch(lambda t, g, b: batch_norm(t, g, b, mean.copy(), var.copy(), training=training),
                lambda t, g, b: theirs(t, g, b, torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())),
                x, gamma, beta, rtol=1e-3, atol=1e-4)

    # against the same computation in float64, on (10, 16384) rows in two blocks, the second one short:
    # errors at float32 resolution (~1e-7 of the largest value), not at |mean| times it (~1e-4)
    x = (100 + rng.standard_normal((20, 16, 16, 32))).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    ours = _bn_with_grads(x, gamma, beta, g, running_mean=mean.copy(), running_var=var.copy(), training=training)
    exact = _bn_with_grads(*(a.astype(np.float64) for a in (x, gamma, beta, g)), running_mean=mean.astype(np.float64),
                           running_var=var.astype(np.float64), training=training)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), ours, exact):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max(), err_msg=name)


@pytest.mark.parametrize("wrt", [None, [1, 2]])
def test_batch_norm_channels_first_matches_torch(check_torch, torch, rng, wrt):
    # axis=1 on NCHW, PyTorch's own layout: x is transposed to channels-last and the results back
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    check_torch(lambda t, g, b: batch_norm(t, g, b, mean, var, axis=1),
                lambda t, g, b: torch.nn.functional.batch_norm(t, torch.zeros(3), torch.ones(3), g, b, training=True,
                                                               eps=1e-3),
                x, gamma, beta, wrt=wrt, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, 0.01 * x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-7)


def test_batch_norm_takes_any_memory_layout(rng, kernels):
    # a transposed (non-contiguous) view gives what its contiguous copy gives
    x = rng.standard_normal((6, 4, 8, 5)).astype(np.float32).transpose(0, 2, 1, 3)
    gamma, beta = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    for a, b in zip(_bn_with_grads(x, gamma, beta, g, running_mean=None, running_var=None),
                    _bn_with_grads(np.ascontiguousarray(x), gamma, beta, g, running_mean=None, running_var=None)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # several kept axes, not last: one statistic per (axis 1, axis 3) pair
    cr.gradcheck(lambda x, g, b: batch_norm(x, g, b, None, None, axis=(1, 3)), rng.standard_normal((3, 2, 4, 3)) + 2,
                 rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))


def test_batch_norm_backward_leaves_saved_arrays_intact(rng, kernels):
    # retain_graph: a second backward must see the same saved arrays (no in-place reuse of them)
    x = cr.tensor((rng.standard_normal((8, 16, 16, 16)) + 3).astype(np.float32), requires_grad=True)
    gamma = cr.tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
    y = batch_norm(x, gamma, None, None, None)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(g, retain_graph=True)
    first = x.grad.copy(), gamma.grad.copy()
    x.grad = gamma.grad = None
    y.backward(g)
    np.testing.assert_array_equal(x.grad, first[0])
    np.testing.assert_array_equal(gamma.grad, first[1])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_compiled_passes_equal_numpys_on_any_threads(rng, threads, training, monkeypatch):
    """The compiled passes, their rows shared out over 1-3 threads however small the input, against
    NumPy's: y, every gradient and the running statistics, float64 to rounding."""
    from chainrule import accelerate, backend
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed")
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    taken = []
    original = norm._batch_norm_compiled
    monkeypatch.setattr(norm, "_batch_norm_compiled", lambda *a: taken.append(1) or original(*a))
    x = rng.standard_normal((5, 7, 3, 6)) * 3 + 10
    gamma, beta, g = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(x.shape)
    previous = cr.set_num_threads(threads)
    try:
        results = {}
        for mode in ("never", "always"):
            before = accelerate.set_numba(mode)
            try:
                mean, var = np.ones(6), np.full(6, 2.0)
                results[mode] = _bn_with_grads(x, gamma, beta, g, running_mean=mean, running_var=var,
                                               training=training) + [mean, var]
            finally:
                accelerate.set_numba(before)
    finally:
        cr.set_num_threads(previous)
    assert taken == [1]
    for name, fast, ref in zip(("y", "dx", "dgamma", "dbeta", "running mean", "running var"), results["always"],
                               results["never"]):
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("m, c", [(73728, 64), (32768, 16), (2450, 64), (1031, 16), (7, 3), (16411, 1)])
def test_batch_norm_row_width_divides_the_pixels(m, c):
    # the wide-row matrix holds k whole pixels per row, as many as fit in _ROW_WIDTH floats
    k = norm._pixels_per_row(m, c)
    assert m % k == 0 and (k == 1 or k * c <= norm._ROW_WIDTH)
    assert not any(m % j == 0 for j in range(k + 1, min(m, norm._ROW_WIDTH // c) + 1))


def test_batch_norm_errors():
    x = cr.zeros((4, 3))
    with pytest.raises(ValueError, match=r"batch_norm: gamma has shape \(4,\) but .* \(3,\)"):
        batch_norm(x, np.ones(4), None, None, None)
    with pytest.raises(ValueError, match="training=False normalizes with the running statistics"):
        batch_norm(x, None, None, None, None, training=False)
    with pytest.raises(ValueError, match=r"running_mean has shape \(2,\) but the input has \(3,\)"):
        batch_norm(x, None, None, np.zeros(2), np.ones(2))
    with pytest.raises(TypeError, match="running_var must be an array or Tensor"):
        batch_norm(x, None, None, np.zeros(3), [1.0, 1.0, 1.0])


# ------------------------------------------------------------------ layer_norm
@pytest.mark.parametrize("axis", [-1, (1, 2), 1])
def test_layer_norm_gradcheck(rng, axis):
    x = rng.standard_normal((2, 3, 4)) * 2 + 1
    shape = (4,) if axis == -1 else (3, 4) if axis == (1, 2) else (3,)
    cr.gradcheck(lambda x, g, b: layer_norm(x, g, b, axis=axis), x, rng.standard_normal(shape),
                 rng.standard_normal(shape))
    cr.gradcheck(lambda x: layer_norm(x, axis=axis), x)


@pytest.mark.parametrize("axis, normalized", [(-1, (5,)), ((-2, -1), (4, 5))])
def test_layer_norm_matches_torch(check_torch, torch, rng, axis, normalized):
    x = (rng.standard_normal((3, 4, 5)) * 2 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal(normalized).astype(np.float32), rng.standard_normal(normalized).astype(np.float32)
    check_torch(lambda t, g, b: layer_norm(t, g, b, axis=axis, epsilon=1e-3),
                lambda t, g, b: torch.nn.functional.layer_norm(t, normalized, g, b, eps=1e-3),
                x, gamma, beta, rtol=1e-4, atol=1e-5)


def test_layer_norm_normalizes_each_sample(rng):
    x = (rng.standard_normal((4, 16)) * 3 + 2).astype(np.float32)
    y = layer_norm(x, epsilon=1e-6).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=-1), 1, atol=1e-3)


def test_layer_norm_keeps_float32_accuracy_for_a_large_mean(check_torch, torch, rng):
    x = (100 + rng.standard_normal((8, 16, 256))).astype(np.float32)
    gamma, beta = rng.standard_normal(256).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    # both libraries round the float32 mean (ulp 7.6e-6 at 100), and y carries that times gamma / sigma;
    # a one-pass variance E[x^2] - mean^2 would be off by 1e-2 here
    check_torch(lambda t, g, b: layer_norm(t, g, b),
                lambda t, g, b: torch.nn.functional.layer_norm(t, (256,), g, b, eps=1e-3),
                x, gamma, beta, rtol=1e-4, atol=1e-4)


def test_layer_norm_over_a_middle_axis_matches_torch(check_torch, torch, rng):
    # axis=1 of (batch, features, length): x is transposed to put the features last, results back
    x = (rng.standard_normal((3, 6, 5)) * 2 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    check_torch(lambda t, g, b: layer_norm(t, g, b, axis=1),
                lambda t, g, b: torch.nn.functional.layer_norm(t.transpose(1, 2), (6,), g, b, eps=1e-3).transpose(1, 2),
                x, gamma, beta, rtol=1e-4, atol=1e-5)


def test_layer_norm_takes_a_non_contiguous_input(rng):
    x = rng.standard_normal((5, 7, 4)).astype(np.float32).transpose(1, 0, 2)
    g = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for data in (x, np.ascontiguousarray(x)):
        t = cr.Tensor(data, requires_grad=True)
        y = layer_norm(t, np.ones(4, np.float32))
        y.backward(g)
        results.append((y.numpy(), t.grad))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ dropout
def test_dropout_gradcheck_with_a_fixed_mask(rng):
    def fn(x):
        cr.random.seed(3)  # reseeded per call: every forward of gradcheck sees the same mask
        return dropout(x, 0.4)
    cr.gradcheck(fn, rng.standard_normal((3, 5)))


def test_dropout_keeps_one_minus_rate_and_preserves_the_mean():
    cr.random.seed(0)
    rate = 0.3
    y = dropout(cr.ones((400, 500)), rate).numpy()
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 0.005  # std of the fraction is about 0.001
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)  # kept values scaled up
    assert abs(y.mean() - 1) < 0.01  # E[y] = x
    assert y.dtype == np.float32


def test_dropout_gradient_is_the_mask(rng):
    cr.random.seed(1)
    x = cr.tensor(rng.standard_normal((20, 30)).astype(np.float32), requires_grad=True)
    y = dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, (y.numpy() != 0) * np.float32(2))


def test_dropout_is_identity_in_inference_and_at_rate_zero(rng):
    x = cr.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    for y in (dropout(x, 0.5, training=False), dropout(x, 0.0)):
        np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_dropout_mask_repeats_with_the_seed():
    x = cr.ones((50, 40))
    cr.random.seed(7)
    a = dropout(x, 0.5).numpy()
    cr.random.seed(7)
    b = dropout(x, 0.5).numpy()
    cr.random.seed(8)
    c = dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # an explicit generator is used instead of the shared one
    d = dropout(x, 0.5, rng=np.random.default_rng(7)).numpy()
    e = dropout(x, 0.5, rng=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(d, e)


@pytest.mark.parametrize("rate", [1, 1.5, -0.1, float("nan"), "0.5"])
def test_dropout_rejects_rates_outside_0_1(rate):
    with pytest.raises(ValueError, match=r"dropout: rate must be a number in \[0, 1\)"):
        dropout(cr.ones((2, 2)), rate)


def test_dropout_matches_torch_semantics(torch, rng):
    # masks come from different generators, so compare the rule: zeros, or x / (1 - p)
    x = (rng.standard_normal((100, 50)) + 3).astype(np.float32)
    p = 0.25
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p, training=True).numpy()
    cr.random.seed(0)
    ours = dropout(cr.tensor(x), p).numpy()
    for y in (theirs, ours):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
        assert abs(kept.mean() - (1 - p)) < 0.03
