"""Fused losses (chainrule.ops.loss): every reduction ('mean', 'sum', 'none', 'half_sum'),
gradients by central differences with respect to predictions and to targets, values and
gradients against PyTorch, and Keras's clipping of probabilities.
"""
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops

REDUCTIONS = ["mean", "sum", "none", "half_sum"]
EPSILON = 1e-7


def torch_reduce(torch_loss, reduction):
    """Call a torch loss taking `reduction=`; 'half_sum' (ours only) is half of torch's 'sum'."""
    if reduction == "half_sum":
        return 0.5 * torch_loss(reduction="sum")
    return torch_loss(reduction=reduction)


def reduce_unreduced(loss, reduction):
    """Our reductions applied to a per-sample torch loss."""
    return {"mean": loss.mean, "sum": loss.sum, "half_sum": lambda: 0.5 * loss.sum(),
            "none": lambda: loss}[reduction]()


# ------------------------------------------------------------------ elementwise losses
def huber_residuals(rng, shape, delta):
    """Residuals inside and outside +-delta, none within 0.1 delta of the switch at |r| = delta."""
    magnitude = rng.choice([0.1, 0.3, 0.6, 0.85, 1.15, 1.5, 2.5], shape) * delta
    return rng.choice([-1.0, 1.0], shape) * magnitude


def draw_regression(rng, shape):
    return rng.standard_normal(shape), rng.standard_normal(shape)


def draw_mae(rng, shape):
    # |pred - target| >= 0.1: no finite difference across the kink of |r|
    target = rng.standard_normal(shape)
    return target + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape), target


def draw_huber(rng, shape, delta=1.0):
    target = rng.standard_normal(shape)
    return target + huber_residuals(rng, shape, delta), target


def draw_probabilities(rng, shape):
    # well inside (eps, 1 - eps), soft targets in [0, 1]
    return rng.uniform(0.05, 0.95, shape), rng.uniform(0.0, 1.0, shape)


def draw_logits(rng, shape):
    return rng.standard_normal(shape) * 3, rng.uniform(0.0, 1.0, shape)


# name: (our loss(pred, target, reduction), torch loss(F, pred, target, reduction), draw (pred, target))
ELEMENTWISE = {
    "mse": (ops.mse, lambda F, p, t, r: F.mse_loss(p, t, reduction=r), draw_regression),
    "mae": (ops.mae, lambda F, p, t, r: F.l1_loss(p, t, reduction=r), draw_mae),
    "huber": (ops.huber, lambda F, p, t, r: F.huber_loss(p, t, reduction=r, delta=1.0), draw_huber),
    "huber_delta_0.5": (lambda p, t, reduction="mean": ops.huber(p, t, delta=0.5, reduction=reduction),
                        lambda F, p, t, r: F.huber_loss(p, t, reduction=r, delta=0.5),
                        lambda rng, shape: draw_huber(rng, shape, 0.5)),
    "binary_cross_entropy": (ops.binary_cross_entropy,
                             lambda F, p, t, r: F.binary_cross_entropy(p, t, reduction=r), draw_probabilities),
    "binary_cross_entropy_with_logits": (ops.binary_cross_entropy_with_logits,
                                         lambda F, p, t, r: F.binary_cross_entropy_with_logits(p, t, reduction=r),
                                         draw_logits),
}


@pytest.mark.parametrize("shape", [(5,), (3, 4)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_loss_gradcheck_wrt_predictions_and_targets(name, reduction, shape, rng):
    fn, _, draw = ELEMENTWISE[name]
    pred, target = draw(rng, shape)
    y = fn(cr.Tensor(pred), cr.Tensor(target), reduction=reduction)
    assert y.shape == (shape if reduction == "none" else ())
    cr.gradcheck(lambda p, t: fn(p, t, reduction=reduction), pred, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_loss_matches_torch(name, reduction, rng, check_torch, torch):
    fn, theirs, draw = ELEMENTWISE[name]
    pred, target = (a.astype(np.float32) for a in draw(rng, (3, 4)))
    F = torch.nn.functional
    check_torch(lambda p, t: fn(p, t, reduction=reduction),
                lambda p, t: torch_reduce(lambda reduction: theirs(F, p, t, reduction), reduction), pred, target)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_loss_with_constant_target(name, rng, check_torch, torch):
    fn, theirs, draw = ELEMENTWISE[name]
    pred, target = (a.astype(np.float32) for a in draw(rng, (6,)))
    check_torch(fn, lambda p, t: theirs(torch.nn.functional, p, t, "mean"), pred, target, wrt=[0])


@pytest.mark.parametrize("name", ["mae", "huber", "huber_delta_0.5"])
def test_derivative_at_the_kink_follows_torch(name, check_torch, torch):
    # residuals 0 (mae's kink) and exactly +-delta (huber's switch), where the one-sided slopes meet or differ
    fn, theirs, _ = ELEMENTWISE[name]
    pred = np.array([1.0, 2.0, 0.0, 1.5, 0.5, -1.0], np.float32)
    target = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.5], np.float32)
    check_torch(lambda p, t: fn(p, t, reduction="none"),
                lambda p, t: theirs(torch.nn.functional, p, t, "none"), pred, target)


def test_half_sum_is_the_lectures_error():
    # E = 1/2 sum (target - out)^2 = 1/2 ((0.01 - 0.75)^2 + (0.99 - 0.77)^2) = 1/2 (0.5476 + 0.0484) = 0.298
    out = cr.tensor([0.75, 0.77], dtype=np.float64, requires_grad=True)
    e = ops.mse(out, [0.01, 0.99], reduction="half_sum")
    e.backward()
    np.testing.assert_allclose(e.item(), 0.298, rtol=1e-12)
    # dE/dout = out - target
    np.testing.assert_allclose(out.grad, [0.74, -0.22], rtol=1e-12)


def test_elementwise_loss_takes_plain_targets_in_the_predictions_dtype():
    pred = cr.tensor([0.5, 2.0], requires_grad=True)
    loss = ops.mse(pred, np.array([1.0, 1.0]))  # float64 targets
    loss.backward()
    assert loss.dtype == np.float32 and pred.grad.dtype == np.float32


# ------------------------------------------------------------------ cross-entropies
CE_SHAPES = [(4, 3), (2, 3, 4)]  # (batch, classes) and a 2-D batch of 4-class scores


def soft_targets(rng, shape):
    t = rng.uniform(0.1, 1.0, shape)
    return t / t.sum(axis=-1, keepdims=True)


def one_hot(labels, classes):
    return np.eye(classes)[labels]


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_gradcheck(reduction, shape, rng):
    logits, target = rng.standard_normal(shape) * 2, soft_targets(rng, shape)
    y = ops.softmax_cross_entropy(cr.Tensor(logits), cr.Tensor(target), reduction=reduction)
    assert y.shape == (shape[:-1] if reduction == "none" else ())
    cr.gradcheck(lambda x, t: ops.softmax_cross_entropy(x, t, reduction=reduction), logits, target)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_softmax_cross_entropy_gradcheck(reduction, shape, rng):
    logits, labels = rng.standard_normal(shape) * 2, rng.integers(0, shape[-1], shape[:-1])
    y = ops.sparse_softmax_cross_entropy(cr.Tensor(logits), labels, reduction=reduction)
    assert y.shape == (shape[:-1] if reduction == "none" else ())
    cr.gradcheck(lambda x, lab: ops.sparse_softmax_cross_entropy(x, lab, reduction=reduction), logits, labels)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_categorical_cross_entropy_gradcheck(reduction, shape, rng):
    # unnormalized positive scores: the loss normalizes them, and its gradient must follow
    probs, target = rng.uniform(0.2, 1.0, shape), soft_targets(rng, shape)
    y = ops.categorical_cross_entropy(cr.Tensor(probs), cr.Tensor(target), reduction=reduction)
    assert y.shape == (shape[:-1] if reduction == "none" else ())
    cr.gradcheck(lambda p, t: ops.categorical_cross_entropy(p, t, reduction=reduction), probs, target)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_categorical_cross_entropy_gradcheck(reduction, shape, rng):
    probs, labels = rng.uniform(0.2, 1.0, shape), rng.integers(0, shape[-1], shape[:-1])
    y = ops.sparse_categorical_cross_entropy(cr.Tensor(probs), labels, reduction=reduction)
    assert y.shape == (shape[:-1] if reduction == "none" else ())
    cr.gradcheck(lambda p, lab: ops.sparse_categorical_cross_entropy(p, lab, reduction=reduction), probs, labels)


def torch_rows(torch_loss, scores, target, reduction):
    """Apply a torch loss that wants (N, C) scores to scores with any batch shape (..., C)."""
    batch = scores.shape[:-1]
    flat_target = target.reshape(-1, target.shape[-1]) if target.ndim == scores.ndim else target.reshape(-1)

    def call(reduction):
        out = torch_loss(scores.reshape(-1, scores.shape[-1]), flat_target, reduction=reduction)
        return out.reshape(batch) if reduction == "none" else out
    return torch_reduce(call, reduction)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_matches_torch(reduction, shape, rng, check_torch, torch):
    logits = (rng.standard_normal(shape) * 2).astype(np.float32)
    target = soft_targets(rng, shape).astype(np.float32)
    check_torch(lambda x, t: ops.softmax_cross_entropy(x, t, reduction=reduction),
                lambda x, t: torch_rows(torch.nn.functional.cross_entropy, x, t, reduction), logits, target)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_softmax_cross_entropy_matches_torch(reduction, shape, rng, check_torch, torch):
    logits = (rng.standard_normal(shape) * 2).astype(np.float32)
    labels = rng.integers(0, shape[-1], shape[:-1])
    check_torch(lambda x, lab: ops.sparse_softmax_cross_entropy(x, lab, reduction=reduction),
                lambda x, lab: torch_rows(torch.nn.functional.cross_entropy, x, lab, reduction), logits, labels)


def normalized_log(torch, p):
    """log(p / sum(p)): Keras's categorical cross-entropy on probabilities, before clipping
    (which the inputs below never reach)."""
    return torch.log(p / p.sum(dim=-1, keepdim=True))


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_categorical_cross_entropy_matches_torch_nll_of_log_probabilities(reduction, shape, rng, check_torch,
                                                                           torch):
    probs = rng.uniform(0.2, 1.0, shape).astype(np.float32)
    labels = rng.integers(0, shape[-1], shape[:-1])
    nll = torch.nn.functional.nll_loss
    # one-hot targets: torch's NLL of log-probabilities, gradient with respect to the probabilities
    check_torch(lambda p, t: ops.categorical_cross_entropy(p, t, reduction=reduction),
                lambda p, t: torch_rows(nll, normalized_log(torch, p), torch.from_numpy(labels), reduction),
                probs, one_hot(labels, shape[-1]).astype(np.float32), wrt=[0])
    # soft targets: -sum t log q, gradient with respect to both
    check_torch(lambda p, t: ops.categorical_cross_entropy(p, t, reduction=reduction),
                lambda p, t: reduce_unreduced(-(t * normalized_log(torch, p)).sum(-1), reduction),
                probs, soft_targets(rng, shape).astype(np.float32))


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_categorical_cross_entropy_matches_torch(reduction, shape, rng, check_torch, torch):
    probs = rng.uniform(0.2, 1.0, shape).astype(np.float32)
    labels = rng.integers(0, shape[-1], shape[:-1])
    check_torch(lambda p, lab: ops.sparse_categorical_cross_entropy(p, lab, reduction=reduction),
                lambda p, lab: torch_rows(torch.nn.functional.nll_loss, normalized_log(torch, p), lab, reduction),
                probs, labels)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_and_dense_forms_agree(reduction, rng):
    logits = cr.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    probs = cr.Tensor(rng.uniform(0.2, 1.0, (5, 4)), requires_grad=True)
    labels = rng.integers(0, 4, 5)
    target = one_hot(labels, 4)
    for sparse, dense, x in [(ops.sparse_softmax_cross_entropy, ops.softmax_cross_entropy, logits),
                             (ops.sparse_categorical_cross_entropy, ops.categorical_cross_entropy, probs)]:
        a = sparse(x, labels, reduction=reduction)
        b = dense(x, target, reduction=reduction)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
        ga = cr.grad(a, x, grad_outputs=np.ones(a.shape))
        gb = cr.grad(b, x, grad_outputs=np.ones(b.shape))
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-10, atol=1e-15)


def test_softmax_cross_entropy_equals_categorical_of_softmax(rng):
    logits = rng.standard_normal((4, 3))
    target = soft_targets(rng, (4, 3))
    fused = ops.softmax_cross_entropy(cr.Tensor(logits), cr.Tensor(target))
    composed = ops.categorical_cross_entropy(ops.softmax(cr.Tensor(logits)), cr.Tensor(target))
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12)


@pytest.mark.parametrize("labels", [lambda lab: lab, lambda lab: lab.tolist(), lambda lab: cr.Tensor(lab),
                                    lambda lab: lab[:, None], lambda lab: lab.astype(np.float32),
                                    lambda lab: lab.astype(np.int32)],
                         ids=["int64", "list", "tensor", "column", "whole_floats", "int32"])
def test_sparse_losses_accept_every_label_form(labels, rng):
    logits = cr.Tensor(rng.standard_normal((5, 4)))
    lab = rng.integers(0, 4, 5)
    expected = ops.sparse_softmax_cross_entropy(logits, lab).item()
    assert ops.sparse_softmax_cross_entropy(logits, labels(lab)).item() == expected
    probs = ops.softmax(logits)
    expected = ops.sparse_categorical_cross_entropy(probs, lab).item()
    assert ops.sparse_categorical_cross_entropy(probs, labels(lab)).item() == expected


@pytest.mark.parametrize("offset", [1000.0, -1000.0])
def test_softmax_cross_entropy_is_stable_at_huge_logits(offset, rng, check_torch, torch):
    logits = (rng.standard_normal((4, 3)) * 5 + offset).astype(np.float32)
    labels = rng.integers(0, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_torch(ops.sparse_softmax_cross_entropy, torch.nn.functional.cross_entropy, logits, labels)
        check_torch(ops.softmax_cross_entropy, torch.nn.functional.cross_entropy, logits,
                    one_hot(labels, 3).astype(np.float32))


def test_binary_cross_entropy_with_logits_is_stable_at_huge_logits(check_torch, torch):
    logits = np.array([-1000.0, -50.0, 50.0, 1000.0], np.float32)
    target = np.array([1.0, 0.3, 0.0, 1.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_torch(lambda x, t: ops.binary_cross_entropy_with_logits(x, t, reduction="none"),
                    lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none"),
                    logits, target)


# ------------------------------------------------------------------ Keras's clipping of probabilities
def test_binary_cross_entropy_clips_probabilities():
    p = cr.tensor([0.0, 1.0, 0.5], dtype=np.float64, requires_grad=True)
    t = cr.tensor([1.0, 0.0, 1.0], dtype=np.float64)
    loss = ops.binary_cross_entropy(p, t, reduction="none")
    loss.backward(np.ones(3))
    # p = 0 and p = 1 are clipped to 1e-7 and 1 - 1e-7: -ln(1e-7) = 16.118095651 instead of inf
    np.testing.assert_allclose(loss.numpy(), [-np.log(EPSILON), -np.log(EPSILON), np.log(2)], rtol=1e-6)
    # no gradient flows where the clip is active; at p = 0.5, t = 1: (p - t) / (p (1 - p)) = -2
    np.testing.assert_allclose(p.grad, [0.0, 0.0, -2.0], rtol=1e-12)


def test_categorical_cross_entropy_clips_and_normalizes():
    p = cr.tensor([[0.0, 0.5, 0.5], [2.0, 1.0, 1.0]], dtype=np.float64, requires_grad=True)
    t = one_hot(np.array([0, 0]), 3)
    loss = ops.categorical_cross_entropy(p, t, reduction="none")
    loss.backward(np.ones(2))
    # row 0: q_0 = 0 is clipped to 1e-7 -> -ln(1e-7); row 1: q = p / 4, -ln(0.5) = ln 2
    np.testing.assert_allclose(loss.numpy(), [-np.log(EPSILON), np.log(2)], rtol=1e-6)
    assert np.isfinite(p.grad).all()
    # row 0: the clipped entry passes no gradient (and q_1, q_2 are not in the target), so all zero
    np.testing.assert_array_equal(p.grad[0], [0.0, 0.0, 0.0])
    # row 1: dL/dp_j = (-t_j / q_j + sum_c t_c) / sum(p) = (-2 + 1) / 4 for j = 0, (0 + 1) / 4 otherwise
    np.testing.assert_allclose(p.grad[1], [-0.25, 0.25, 0.25], rtol=1e-12)
    # scaling the scores changes nothing
    np.testing.assert_allclose(ops.categorical_cross_entropy(p * 3.0, t, reduction="none").numpy(),
                               loss.numpy(), rtol=1e-12)


def test_sparse_categorical_cross_entropy_clips():
    p = cr.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=np.float64, requires_grad=True)
    loss = ops.sparse_categorical_cross_entropy(p, [0, 0], reduction="none")
    loss.sum().backward()
    # q at the label: 0 (clipped to 1e-7) and 1 (clipped to 1 - 1e-7)
    np.testing.assert_allclose(loss.numpy(), [-np.log(EPSILON), -np.log1p(-EPSILON)], rtol=1e-6)
    np.testing.assert_array_equal(p.grad, np.zeros((2, 2)))


# ------------------------------------------------------------------ dtype
LOSS_CALLS = {
    "mse": lambda rng: (ops.mse, *draw_regression(rng, (3, 4))),
    "mae": lambda rng: (ops.mae, *draw_mae(rng, (3, 4))),
    "huber": lambda rng: (ops.huber, *draw_huber(rng, (3, 4))),
    "binary_cross_entropy": lambda rng: (ops.binary_cross_entropy, *draw_probabilities(rng, (3, 4))),
    "binary_cross_entropy_with_logits": lambda rng: (ops.binary_cross_entropy_with_logits, *draw_logits(rng, (3, 4))),
    "softmax_cross_entropy": lambda rng: (ops.softmax_cross_entropy, rng.standard_normal((3, 4)),
                                          soft_targets(rng, (3, 4))),
    "categorical_cross_entropy": lambda rng: (ops.categorical_cross_entropy, rng.uniform(0.2, 1, (3, 4)),
                                              soft_targets(rng, (3, 4))),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", LOSS_CALLS)
def test_float32_stays_float32(name, reduction, rng):
    fn, pred, target = LOSS_CALLS[name](rng)
    p = cr.Tensor(pred.astype(np.float32), requires_grad=True)
    t = cr.Tensor(target.astype(np.float32), requires_grad=True)
    y = fn(p, t, reduction=reduction)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert p.grad.dtype == np.float32 and t.grad.dtype == np.float32


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn", [ops.sparse_softmax_cross_entropy, ops.sparse_categorical_cross_entropy])
def test_sparse_float32_stays_float32(fn, reduction, rng):
    p = cr.Tensor(rng.uniform(0.2, 1, (3, 4)).astype(np.float32), requires_grad=True)
    y = fn(p, rng.integers(0, 4, 3), reduction=reduction)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert p.grad.dtype == np.float32
