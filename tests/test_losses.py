"""Keras-compatible losses (chainrule.losses): every function and class against real Keras 3
(from_logits both ways, label smoothing, sparse labels (batch,) and (batch, 1), NHWC
segmentation maps, every reduction, sample weights, ignore_class), gradients w.r.t. y_pred by
central differences in float64 and against PyTorch autograd, lookup and configs, and the
errors that name the loss, the shapes and the fix.
"""
import os
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import losses

REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
EPS = 1e-7


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def to_numpy(x):
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(x.dtype)


# ------------------------------------------------------------------ data: (y_true, y_pred) per case
def one_hot(rng, shape, dtype=np.float32):
    return np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], shape[:-1])]


def class_scores(rng, shape, from_logits):
    logits = (rng.standard_normal(shape) * 2).astype(np.float32)
    return logits if from_logits else softmax(logits)


def binary_scores(rng, shape, from_logits):
    logits = (rng.standard_normal(shape) * 2).astype(np.float32)
    return logits if from_logits else (1 / (1 + np.exp(-logits))).astype(np.float32)


SHAPES = {"dense": (8, 5), "nhwc": (2, 3, 4, 5)}


def case(rng, name, shape, from_logits=False):
    """(y_true, y_pred) arrays for the loss `name` on predictions of `shape`."""
    if name == "categorical_crossentropy":
        return one_hot(rng, shape), class_scores(rng, shape, from_logits)
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, shape[-1], shape[:-1]), class_scores(rng, shape, from_logits)
    if name == "binary_crossentropy":
        return rng.integers(0, 2, shape).astype(np.float32), binary_scores(rng, shape, from_logits)
    if name in ("kl_divergence", "dice"):
        return softmax(rng.standard_normal(shape).astype(np.float32)), class_scores(rng, shape, False)
    return rng.standard_normal(shape).astype(np.float32), (rng.standard_normal(shape) * 1.5).astype(np.float32)


# ------------------------------------------------------------------ functions against Keras
FUNCTION_CASES = [
    ("categorical_crossentropy", {"from_logits": False}),
    ("categorical_crossentropy", {"from_logits": True}),
    ("categorical_crossentropy", {"from_logits": False, "label_smoothing": 0.1}),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("sparse_categorical_crossentropy", {"from_logits": False}),
    ("sparse_categorical_crossentropy", {"from_logits": True}),
    ("binary_crossentropy", {"from_logits": False}),
    ("binary_crossentropy", {"from_logits": True}),
    ("binary_crossentropy", {"from_logits": False, "label_smoothing": 0.1}),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.3}),
    ("mean_squared_error", {}),
    ("mean_absolute_error", {}),
    ("huber", {}),
    ("huber", {"delta": 0.5}),
    ("kl_divergence", {}),
    ("dice", {}),
    ("dice", {"axis": (1, 2, 3)}),
]


def with_shapes(cases):
    """Each case on dense (batch, classes) and NHWC (batch, h, w, classes) inputs; axis=(1, 2, 3) on NHWC only."""
    return [pytest.param(*c, shape_name, id=f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[-1].items())}-{shape_name}")
            for c in cases for shape_name in SHAPES if "axis" not in c[-1] or shape_name == "nhwc"]


@pytest.mark.parametrize("name,kwargs,shape_name", with_shapes(FUNCTION_CASES))
def test_function_equals_keras(keras, rng, name, kwargs, shape_name):
    shape = SHAPES[shape_name]
    y_true, y_pred = case(rng, name, shape, kwargs.get("from_logits", False))
    ours = getattr(losses, name)(y_true, cr.tensor(y_pred), **kwargs)
    theirs = to_numpy(getattr(keras.losses, name)(y_true, y_pred, **kwargs))
    assert isinstance(ours, cr.Tensor) and ours.dtype == np.float32
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("label_shape", ["flat", "column"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_sparse_labels_of_shape_batch_and_batch_1_agree_with_keras(keras, rng, label_shape, shape_name):
    shape = SHAPES[shape_name]
    labels = rng.integers(0, shape[-1], shape[:-1] + ((1,) if label_shape == "column" else ()))
    logits = class_scores(rng, shape, True)
    for from_logits, y_pred in ((True, logits), (False, softmax(logits))):
        ours = losses.sparse_categorical_crossentropy(labels, cr.tensor(y_pred), from_logits=from_logits)
        theirs = to_numpy(keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits))
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)
        ours_mean = losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, cr.tensor(y_pred))
        theirs_mean = to_numpy(keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, y_pred))
        np.testing.assert_allclose(ours_mean.numpy(), theirs_mean, rtol=1e-5)


def test_ignore_class_matches_keras_function_and_class(keras, rng):
    labels = rng.integers(0, 4, (2, 3, 4))
    labels[0, 0, :2] = 255  # the "void" label of segmentation maps
    logits = class_scores(rng, (2, 3, 4, 4), True)
    for from_logits, y_pred in ((True, logits), (False, softmax(logits))):
        ours = losses.sparse_categorical_crossentropy(labels, cr.tensor(y_pred), from_logits=from_logits,
                                                      ignore_class=255)
        theirs = to_numpy(keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits,
                                                                       ignore_class=255))
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)
        assert np.all(ours.numpy()[0, 0, :2] == 0)
        for reduction in REDUCTIONS:
            ours = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=255,
                                                        reduction=reduction)(labels, cr.tensor(y_pred))
            theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=255,
                                                                reduction=reduction)(labels, y_pred)
            np.testing.assert_allclose(ours.numpy(), to_numpy(theirs), rtol=1e-5, atol=1e-6, err_msg=str(reduction))


# ------------------------------------------------------------------ classes against Keras
CLASS_CASES = [
    ("CategoricalCrossentropy", "categorical_crossentropy", {}),
    ("CategoricalCrossentropy", "categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.1}),
    ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", {}),
    ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", {"from_logits": True}),
    ("BinaryCrossentropy", "binary_crossentropy", {}),
    ("BinaryCrossentropy", "binary_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("MeanSquaredError", "mean_squared_error", {}),
    ("MeanAbsoluteError", "mean_absolute_error", {}),
    ("Huber", "huber", {"delta": 0.7}),
    ("KLDivergence", "kl_divergence", {}),
    ("Dice", "dice", {}),
    ("Dice", "dice", {"axis": (1, 2, 3)}),
]


def weights_for(rng, batch_shape):
    """Sample weights as Keras takes them: none, one per sample (also as a column), one per pixel."""
    yield None
    if len(batch_shape) == 1:
        yield rng.uniform(0, 2, batch_shape).astype(np.float32)
        yield rng.uniform(0, 2, batch_shape + (1,)).astype(np.float32)
    else:
        yield rng.uniform(0, 2, batch_shape).astype(np.float32)


@pytest.mark.parametrize("cls_name,fn_name,kwargs,shape_name", with_shapes(CLASS_CASES))
def test_class_equals_keras_for_every_reduction_and_sample_weight(keras, rng, cls_name, fn_name, kwargs,
                                                                  shape_name):
    shape = SHAPES[shape_name]
    y_true, y_pred = case(rng, fn_name, shape, kwargs.get("from_logits", False))
    for reduction in REDUCTIONS:
        ours_loss = getattr(losses, cls_name)(reduction=reduction, **kwargs)
        theirs_loss = getattr(keras.losses, cls_name)(reduction=reduction, **kwargs)
        for sw in weights_for(rng, shape[:-1]):
            if cls_name == "Dice" and sw is not None and sw.ndim > 1:
                continue  # dice reduces the pixels away: a per-pixel weight map has nothing to weight
            ours = ours_loss(y_true, cr.tensor(y_pred), sample_weight=sw)
            theirs = to_numpy(theirs_loss(y_true, y_pred, sample_weight=sw))
            where = f"reduction={reduction}, sample_weight shape={None if sw is None else sw.shape}"
            assert ours.dtype == np.float32, where
            assert ours.shape == theirs.shape, where
            np.testing.assert_allclose(ours.numpy(), theirs, rtol=2e-5, atol=1e-6, err_msg=where)


def test_binary_crossentropy_class_lines_up_flat_labels_with_one_unit(keras, rng):
    # y_true (batch,) against y_pred (batch, 1): Keras expands the labels, so do we
    labels = rng.integers(0, 2, 8)
    probs = binary_scores(rng, (8, 1), False)
    ours = losses.BinaryCrossentropy()(labels, cr.tensor(probs))
    theirs = to_numpy(keras.losses.BinaryCrossentropy()(labels, probs))
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-6)
    mse = losses.MeanSquaredError()(labels.astype(np.float32), cr.tensor(probs))
    np.testing.assert_allclose(mse.numpy(), to_numpy(keras.losses.MeanSquaredError()(labels, probs)), rtol=1e-6)


def test_per_sample_weights_spread_over_the_pixels_of_a_segmentation_loss(rng):
    # Keras 3 cannot broadcast (batch,) weights against (batch, h, w) losses; we weight every pixel
    labels = rng.integers(0, 5, (2, 3, 4))
    logits = class_scores(rng, (2, 3, 4, 5), True)
    weights = np.array([0.5, 2.0], np.float32)
    per_pixel = losses.sparse_categorical_crossentropy(labels, cr.tensor(logits), from_logits=True).numpy()
    value = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, cr.tensor(logits), sample_weight=weights)
    np.testing.assert_allclose(value.item(), (per_pixel * weights[:, None, None]).mean(), rtol=1e-6)


def test_worked_values_without_keras():
    # Keras's docstring examples, checked by hand:
    # CE of [0.05, 0.95, 0] vs class 1 = -ln 0.95 = 0.0513; of [0.1, 0.8, 0.1] vs class 2 = -ln 0.1 = 2.303
    probs = cr.tensor([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    ce = losses.categorical_crossentropy(np.array([[0, 1, 0], [0, 0, 1]]), probs)
    np.testing.assert_allclose(ce.numpy(), [-np.log(0.95), -np.log(0.1)], rtol=1e-5)
    np.testing.assert_allclose(losses.CategoricalCrossentropy()([[0, 1, 0], [0, 0, 1]], probs).item(),
                               (-np.log(0.95) - np.log(0.1)) / 2, rtol=1e-5)
    # BCE of [[0.6, 0.4], [0.4, 0.6]] vs [[0, 1], [0, 0]]: (-ln 0.4 - ln 0.4) / 2 = 0.916, (-ln .6 - ln .4)/2 = 0.714
    bce = losses.binary_crossentropy([[0, 1], [0, 0]], cr.tensor([[0.6, 0.4], [0.4, 0.6]]))
    np.testing.assert_allclose(bce.numpy(), [-np.log(0.4), -(np.log(0.6) + np.log(0.4)) / 2], rtol=1e-5)
    # Huber, delta 1: residuals 0.6, 0.4, 0.4, 0.6 are all inside: mean of r^2 / 2 = 0.155... per Keras's doc
    h = losses.huber([[0, 1], [0, 0]], cr.tensor([[0.6, 0.4], [0.4, 0.6]]))
    np.testing.assert_allclose(h.numpy().mean(), 0.155, atol=1e-3)
    # Dice, Keras's docstring example: per-sample [0.5, 0.7576], all axes 0.6164
    t = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]])
    p = cr.tensor([[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]])
    np.testing.assert_allclose(losses.dice(t, p, axis=(1, 2, 3)).numpy(), [0.5, 0.75757575], rtol=1e-5)
    np.testing.assert_allclose(losses.dice(t, p).item(), 0.6164384, rtol=1e-5)
    # sum_over_batch_size divides by the number of loss values, weighted or not
    value = losses.MeanSquaredError()([[0.0], [0.0]], cr.tensor([[1.0], [3.0]]), sample_weight=[1.0, 0.5])
    assert value.item() == pytest.approx((1 * 1 + 9 * 0.5) / 2)
    weighted_mean = losses.MeanSquaredError(reduction="mean_with_sample_weight")(
        [[0.0], [0.0]], cr.tensor([[1.0], [3.0]]), sample_weight=[1.0, 0.5])
    assert weighted_mean.item() == pytest.approx((1 * 1 + 9 * 0.5) / 1.5)


# ------------------------------------------------------------------ gradients
GRAD_CASES = {
    "cce_logits_smoothed": (lambda t, p: losses.categorical_crossentropy(t, p, from_logits=True, label_smoothing=0.1),
                            "categorical_crossentropy", True),
    "cce_probs": (lambda t, p: losses.categorical_crossentropy(t, p), "categorical_crossentropy", False),
    "sparse_logits": (lambda t, p: losses.sparse_categorical_crossentropy(t, p, from_logits=True),
                      "sparse_categorical_crossentropy", True),
    "sparse_probs_ignore": (lambda t, p: losses.sparse_categorical_crossentropy(t, p, ignore_class=0),
                            "sparse_categorical_crossentropy", False),
    "bce_logits": (lambda t, p: losses.binary_crossentropy(t, p, from_logits=True, label_smoothing=0.2),
                   "binary_crossentropy", True),
    "bce_probs": (lambda t, p: losses.binary_crossentropy(t, p), "binary_crossentropy", False),
    "mse": (losses.mean_squared_error, "mean_squared_error", False),
    "huber": (lambda t, p: losses.huber(t, p, delta=0.8), "huber", False),
    "kld": (losses.kl_divergence, "kl_divergence", False),
    "dice": (lambda t, p: losses.dice(t, p, axis=(1, 2)), "dice", False),
    "class_weighted_sum": (lambda t, p: losses.CategoricalCrossentropy(from_logits=True, reduction="sum")(
        t, p, sample_weight=np.array([0.5, 2.0, 1.0])), "categorical_crossentropy", True),
    "class_sparse_ignore_mean": (lambda t, p: losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)(
        t, p), "sparse_categorical_crossentropy", True),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck_float64(rng, name):
    fn, kind, from_logits = GRAD_CASES[name]
    shape = (3, 2, 4) if name == "dice" else (3, 4)
    y_true, y_pred = case(rng, kind, shape, from_logits)
    if name == "huber":  # keep residuals away from the kink at |r| = delta
        y_pred = y_true + rng.choice([-1, 1], shape) * rng.choice([0.2, 0.5, 1.2, 2.0], shape)
    y_pred = y_pred.astype(np.float64)
    out = fn(y_true, cr.tensor(y_pred))
    assert out.dtype == np.float64  # float64 predictions stay float64 (gradcheck depends on it)
    cr.gradcheck(lambda p: fn(y_true, p), y_pred)


def test_gradients_equal_torch_autograd(check_torch, rng, torch):
    F = torch.nn.functional
    onehot, logits = one_hot(rng, (6, 5)), class_scores(rng, (6, 5), True)
    probs = softmax(logits)
    smooth = onehot * 0.9 + 0.1 / 5
    check_torch(lambda p: losses.categorical_crossentropy(onehot, p, from_logits=True, label_smoothing=0.1),
                lambda p: -(torch.from_numpy(smooth) * F.log_softmax(p, -1)).sum(-1), logits)

    def torch_cce_probs(p):
        q = torch.clamp(p / p.sum(-1, keepdim=True), EPS, 1 - EPS)
        return -(torch.from_numpy(onehot) * torch.log(q)).sum(-1)
    check_torch(lambda p: losses.categorical_crossentropy(onehot, p), torch_cce_probs, probs)

    labels = rng.integers(0, 5, 6)
    check_torch(lambda p: losses.sparse_categorical_crossentropy(labels, p, from_logits=True),
                lambda p: F.cross_entropy(p, torch.from_numpy(labels), reduction="none"), logits)

    bits = rng.integers(0, 2, (6, 3)).astype(np.float32)
    blogits = binary_scores(rng, (6, 3), True)
    check_torch(lambda p: losses.binary_crossentropy(bits, p, from_logits=True),
                lambda p: F.binary_cross_entropy_with_logits(p, torch.from_numpy(bits), reduction="none").mean(-1),
                blogits)
    check_torch(lambda p: losses.binary_crossentropy(bits, p),
                lambda p: F.binary_cross_entropy(torch.clamp(p, EPS, 1 - EPS), torch.from_numpy(bits),
                                                 reduction="none").mean(-1),
                (1 / (1 + np.exp(-blogits))).astype(np.float32))

    target = rng.standard_normal((6, 3)).astype(np.float32)
    pred = (target + rng.choice([-1, 1], (6, 3)) * rng.choice([0.2, 0.5, 1.5], (6, 3))).astype(np.float32)
    check_torch(lambda p: losses.huber(target, p, delta=1.0),
                lambda p: F.huber_loss(p, torch.from_numpy(target), reduction="none", delta=1.0).mean(-1), pred)
    check_torch(lambda p: losses.mean_squared_error(target, p),
                lambda p: ((p - torch.from_numpy(target)) ** 2).mean(-1), pred)
    check_torch(lambda p: losses.mean_absolute_error(target, p),
                lambda p: (p - torch.from_numpy(target)).abs().mean(-1), pred)

    soft = softmax(rng.standard_normal((6, 5)).astype(np.float32))
    tt = torch.from_numpy(np.clip(soft, EPS, 1))
    check_torch(lambda p: losses.kl_divergence(soft, p),
                lambda p: (tt * torch.log(tt / torch.clamp(p, EPS, 1))).sum(-1), probs)
    ts = torch.from_numpy(soft)
    check_torch(lambda p: losses.dice(soft, p, axis=1),
                lambda p: 1 - 2 * (ts * p).sum(1) / (ts.sum(1) + p.sum(1) + EPS), probs)

    weights = rng.uniform(0, 2, 6).astype(np.float32)
    check_torch(lambda p: losses.SparseCategoricalCrossentropy(from_logits=True)(labels, p, sample_weight=weights),
                lambda p: (F.cross_entropy(p, torch.from_numpy(labels), reduction="none")
                           * torch.from_numpy(weights)).sum() / 6, logits)


def test_loss_is_float32_and_backpropagates_to_the_model_output(rng):
    logits = cr.tensor(class_scores(rng, (4, 3), True), requires_grad=True)
    loss_fn = losses.get({"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}})
    loss = loss_fn(rng.integers(0, 3, 4).astype(np.float64), logits)
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert logits.grad.dtype == np.float32
    # d mean CE / d logits = (softmax - onehot) / batch: each row sums to 0
    np.testing.assert_allclose(logits.grad.sum(axis=1), 0, atol=1e-6)


def test_dtypes_follow_keras(rng):
    t, p = np.zeros((2, 3)), np.full((2, 3), 0.5)  # float64 arrays
    assert losses.mean_squared_error(t, p).dtype == np.float64  # functions keep float arrays' dtype
    assert losses.MeanSquaredError()(t, p).dtype == np.float32  # classes compute in their dtype, float32
    assert losses.MeanSquaredError(dtype="float64")(t, cr.tensor(p.astype(np.float32))).dtype == np.float64
    assert losses.mean_squared_error([[0, 0]], [[1, 2]]).dtype == np.float32  # lists of ints: float32

    class ArrayLoss(losses.Loss):  # a custom loss computing on arrays gives a constant, not an error
        def call(self, y_true, y_pred):
            return np.abs(y_pred.numpy() - y_true.numpy()).mean(axis=-1)
    value = ArrayLoss()(t, p)
    assert isinstance(value, cr.Tensor) and value.item() == pytest.approx(0.5)


# ------------------------------------------------------------------ lookup, names, configs
def test_get_resolves_names_like_keras(keras):
    for name in ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy", "mse",
                 "MSE", "mean_squared_error", "mae", "mean_absolute_error", "huber", "kld", "kl_divergence",
                 "dice", "bce"]:
        ours, theirs = losses.get(name), keras.losses.get(name)
        assert callable(ours) and not isinstance(ours, losses.Loss)
        assert ours.__name__ == theirs.__name__, name
    for name in ["CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
                 "MeanSquaredError", "MeanAbsoluteError", "Huber", "KLDivergence", "Dice"]:
        ours, theirs = losses.get(name), keras.losses.get(name)
        assert type(ours).__name__ == type(theirs).__name__ and ours.name == theirs.name
        their_config = theirs.get_config()
        our_config = ours.get_config()
        if name == "Huber":
            assert our_config.pop("delta") == 1.0  # Keras 3.15 drops delta from the config
        if name == "SparseCategoricalCrossentropy":
            assert our_config.pop("axis") == -1  # likewise for axis
        assert our_config == their_config, name


def test_get_accepts_configs_instances_and_custom_callables(keras):
    huber = losses.get({"class_name": "Huber", "config": {"delta": 2.0, "reduction": "sum"}})
    assert isinstance(huber, losses.Huber) and huber.delta == 2.0 and huber.reduction == "sum"
    keras_config = keras.losses.serialize(keras.losses.CategoricalCrossentropy(from_logits=True, name="cce"))
    cce = losses.get(keras_config)
    assert isinstance(cce, losses.CategoricalCrossentropy) and cce.from_logits and cce.name == "cce"
    assert losses.get(keras.losses.serialize(keras.losses.mean_squared_error)) is losses.mean_squared_error
    instance = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(instance) is instance
    assert losses.get(None) is None

    def my_loss(y_true, y_pred):
        return ((y_pred - y_true) ** 2).sum(axis=-1)
    assert losses.get(my_loss) is my_loss
    wrapped = losses.resolve(my_loss)
    assert isinstance(wrapped, losses.LossFunctionWrapper) and wrapped.name == "my_loss"
    value = wrapped(np.ones((2, 3), np.float32), cr.tensor(np.zeros((2, 3), np.float32)))
    assert value.item() == pytest.approx(3.0)


@pytest.mark.parametrize("cls", [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy,
                                 losses.BinaryCrossentropy, losses.MeanSquaredError, losses.MeanAbsoluteError,
                                 losses.Huber, losses.KLDivergence, losses.Dice])
def test_config_round_trip(rng, cls):
    kwargs = {"Huber": {"delta": 0.3}, "Dice": {"axis": (1,)}, "BinaryCrossentropy": {"label_smoothing": 0.2},
              "CategoricalCrossentropy": {"from_logits": True},
              "SparseCategoricalCrossentropy": {"ignore_class": 0}}.get(cls.__name__, {})
    loss = cls(reduction="sum", name="custom", **kwargs)
    clone = cls.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config() and clone.name == "custom" and clone.reduction == "sum"
    again = losses.deserialize(losses.serialize(loss))
    assert type(again) is cls and again.get_config() == loss.get_config()
    kind = {"CategoricalCrossentropy": "categorical_crossentropy", "SparseCategoricalCrossentropy":
            "sparse_categorical_crossentropy", "BinaryCrossentropy": "binary_crossentropy"}.get(cls.__name__, "kld")
    y_true, y_pred = case(rng, kind, (4, 3), kwargs.get("from_logits", False))
    assert clone(y_true, cr.tensor(y_pred)).item() == pytest.approx(loss(y_true, cr.tensor(y_pred)).item())


def test_resolve_wraps_functions_and_picks_crossentropy_by_shape():
    assert losses.resolve("mse").name == "mse"
    assert losses.resolve("mse").fn is losses.mean_squared_error
    assert losses.resolve(losses.categorical_crossentropy).name == "categorical_crossentropy"
    huber = losses.Huber()
    assert losses.resolve(huber) is huber
    assert losses.resolve("ce", (8,), (8, 3)).fn is losses.sparse_categorical_crossentropy
    assert losses.resolve("crossentropy", (8, 3), (8, 3)).fn is losses.categorical_crossentropy
    assert losses.resolve("ce", (8, 1), (8, 1)).fn is losses.binary_crossentropy


def test_unnamed_losses_are_numbered_as_keras_names_them():
    class MyLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return (y_pred - y_true).abs().mean(axis=-1)
    first, second = MyLoss(), MyLoss()
    assert first.name == "my_loss" and second.name == "my_loss_1"
    assert first(np.zeros((2, 2)), cr.tensor(np.ones((2, 2), np.float32))).item() == pytest.approx(1.0)


# ------------------------------------------------------------------ errors
def test_one_hot_targets_to_a_sparse_loss_say_use_categorical():
    probs = cr.tensor(softmax(np.zeros((4, 3), np.float32)))
    onehot = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy.*\(4, 3\).*use categorical_crossentropy "
                                         r"for one-hot labels"):
        losses.sparse_categorical_crossentropy(onehot, probs)
    with pytest.raises(ValueError, match="use categorical_crossentropy for one-hot labels"):
        losses.SparseCategoricalCrossentropy()(onehot, probs)


def test_integer_labels_to_categorical_say_use_sparse_or_to_categorical():
    probs = cr.tensor(softmax(np.zeros((4, 3), np.float32)))
    for labels in (np.array([0, 1, 2, 0]), np.array([[0], [1], [2], [0]])):
        with pytest.raises(ValueError, match=r"categorical_crossentropy: y_pred of shape \(4, 3\).*"
                                             r"use sparse_categorical_crossentropy for integer labels.*"
                                             r"to_categorical\(y, num_classes=3\)"):
            losses.categorical_crossentropy(labels, probs)
        with pytest.raises(ValueError, match="use sparse_categorical_crossentropy for integer labels"):
            losses.get("CategoricalCrossentropy")(labels, probs)


def test_labels_out_of_range_name_the_classes_and_the_fix():
    probs = cr.tensor(softmax(np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for the 3 classes.*got values in "
                                         r"\[0, 5\].*units"):
        losses.sparse_categorical_crossentropy(np.array([0, 1, 5, 2]), probs)
    with pytest.raises(ValueError, match=r"start at 1: subtract 1"):
        losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1, 2, 3, 3]), probs)
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]"):
        losses.sparse_categorical_crossentropy(np.array([0, -1, 2, 2]), probs)
    with pytest.raises(ValueError, match="fractional"):
        losses.sparse_categorical_crossentropy(np.array([0.5, 1, 2, 2]), probs)


def test_logits_given_as_probabilities_hint_from_logits():
    logits = cr.tensor(np.array([[-2.5], [0.3], [3.1]], np.float32))
    with pytest.raises(ValueError, match=r"binary_crossentropy: .*\[-2\.5, 3\.1\].*look like logits: pass "
                                         r"from_logits=True"):
        losses.binary_crossentropy(np.array([[0.0], [1.0], [1.0]]), logits)
    with pytest.raises(ValueError, match=r"BinaryCrossentropy\(from_logits=True\).*sigmoid"):
        losses.BinaryCrossentropy()(np.array([0, 1, 1]), logits)
    with pytest.raises(ValueError, match=r"look like logits.*softmax"):
        losses.categorical_crossentropy(np.eye(3)[[0, 1, 2]], cr.tensor(np.eye(3, dtype=np.float32) - 0.5))
    # the same values with from_logits=True are fine
    assert losses.binary_crossentropy(np.array([[0.0], [1.0], [1.0]]), logits, from_logits=True).shape == (3,)


def test_other_errors_name_the_loss_and_the_shapes():
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true of shape \(4, 2\) and y_pred of shape "
                                         r"\(4, 3\) differ"):
        losses.mean_squared_error(np.zeros((4, 2)), cr.tensor(np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match=r"binary_crossentropy.*sparse_categorical_crossentropy"):
        losses.binary_crossentropy(np.array([0, 2, 1]), cr.tensor(np.full((3, 4), 0.5, np.float32)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match=r"Could not interpret loss identifier: 'categorical_crossentrophy'.*"
                                         r"did you mean 'categorical_crossentropy'"):
        losses.get("categorical_crossentrophy")
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        losses.get(42)


def test_categorical_on_one_unit_warns_like_keras():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses.categorical_crossentropy(np.ones((2, 1)), cr.tensor(np.ones((2, 1), np.float32)))
    assert any("binary_crossentropy" in str(w.message) for w in caught)
