"""BatchNormalization and LayerNormalization against Keras 3: weights, training and inference
outputs, moving statistics, the frozen-layer rule, configs and error messages."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers.normalization import BatchNormalization, LayerNormalization

# Keras's torch backend converts our float32 arrays through a deprecated NumPy path; not our concern
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on PyTorch's backend; tests that use it are skipped when it is not installed."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


OURS = {"BatchNormalization": BatchNormalization, "LayerNormalization": LayerNormalization}


def to_numpy(keras, y):
    return np.asarray(keras.ops.convert_to_numpy(y))


def twin(keras, cls, kwargs, x, rng):
    """Our layer and Keras's, built on x's shape, sharing Keras's weights (gamma/beta made random
    and the moving statistics moved off their 0/1 start, so every weight shows in the output)."""
    ours, theirs = OURS[cls](**kwargs), getattr(keras.layers, cls)(**kwargs)
    theirs.build((None,) + x.shape[1:])
    weights = []
    for w in theirs.weights:
        shape = tuple(w.shape)
        if w.name == "moving_variance":
            weights.append(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        else:
            weights.append(rng.standard_normal(shape).astype(np.float32))
    theirs.set_weights(weights)
    ours.build((None,) + x.shape[1:])
    ours.set_weights(theirs.get_weights())
    return ours, theirs


# ----------------------------------------------------------------------------- BatchNormalization
@pytest.mark.parametrize("shape, kwargs", [
    ((16, 5), {}),                                           # after a Dense layer
    ((4, 6, 5, 3), {}),                                      # after a Conv2D: per channel over N, H, W
    ((4, 7, 3), {"momentum": 0.9, "epsilon": 1e-5}),         # a sequence, PyTorch-like settings
    ((4, 3, 6, 5), {"axis": 1}),                             # channels on axis 1
    ((8, 4), {"center": False}),
    ((8, 4), {"scale": False}),
])
def test_batch_norm_matches_keras_in_training_and_inference(keras, rng, shape, kwargs):
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    ours, theirs = twin(keras, "BatchNormalization", kwargs, x, rng)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert [w.trainable for w in ours.weights] == [w.trainable for w in theirs.weights]
    assert ours.count_params() == theirs.count_params()

    # three training steps on different batches: outputs and moving statistics follow Keras's
    for step in range(3):
        xb = (x + step).astype(np.float32)
        np.testing.assert_allclose(ours(xb, training=True).numpy(), to_numpy(keras, theirs(xb, training=True)),
                                   rtol=1e-4, atol=1e-4)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # inference: the moving statistics normalize, and nothing moves
    before = ours.get_weights()
    np.testing.assert_allclose(ours(x).numpy(), to_numpy(keras, theirs(x, training=False)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours(x, training=False).numpy(), ours(x).numpy())
    for a, b in zip(before, ours.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_moving_average_by_hand(rng):
    """Keras's convention: moving = moving * momentum + batch * (1 - momentum), biased batch variance."""
    bn = BatchNormalization(momentum=0.9)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = bn(x, training=True).numpy()
    mean, var = x.mean(axis=0), x.var(axis=0)  # np.var divides by m: biased, as Keras
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0 * 0.9 + mean * 0.1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 1 * 0.9 + var * 0.1, rtol=1e-5)
    # gamma = 1, beta = 0 at the start: y is x standardized per column
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    assert y.dtype == np.float32 and bn.moving_mean.dtype == np.float32


def test_frozen_batch_norm_runs_in_inference_mode_like_keras(keras, rng):
    """Keras 3: trainable=False makes BatchNormalization use (and keep) its moving statistics even
    when called with training=True, which is what fit() passes: fine-tuning leaves BN alone."""
    x = (rng.standard_normal((6, 4, 4, 3)) + 2).astype(np.float32)
    ours, theirs = twin(keras, "BatchNormalization", {}, x, rng)
    ours.trainable = False
    theirs.trainable = False
    before = ours.get_weights()
    y = ours(x, training=True)
    np.testing.assert_allclose(y.numpy(), to_numpy(keras, theirs(x, training=True)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.numpy(), ours(x, training=False).numpy(), rtol=1e-6)
    for a, b in zip(before, ours.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ours.trainable_weights == [] and len(ours.non_trainable_weights) == 4
    # unfrozen again, training=True uses the batch again
    ours.trainable = True
    ours(x, training=True)
    assert not np.allclose(ours.moving_mean.numpy(), before[2])


def test_batch_norm_gradients_reach_gamma_and_beta_not_the_moving_statistics(rng):
    bn = BatchNormalization()
    x = cr.Tensor(rng.standard_normal((8, 3)).astype(np.float32), requires_grad=True)
    (bn(x, training=True) * cr.Tensor(rng.standard_normal((8, 3)).astype(np.float32))).sum().backward()
    assert bn.gamma.grad is not None and bn.beta.grad is not None and x.grad is not None
    assert bn.moving_mean.grad is None and bn.moving_variance.grad is None
    assert not bn.moving_mean.requires_grad and not bn.moving_variance.requires_grad
    # sum over the batch of dy/dx is 0 for batch statistics: shifting every x by c changes nothing
    np.testing.assert_allclose(x.grad.sum(axis=0), 0, atol=1e-5)


def test_batch_norm_config_matches_keras_and_round_trips(keras):
    ours = BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, name="bn")
    theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, name="bn")
    config = ours.get_config()
    assert set(config) == set(theirs.get_config())
    for key in ("axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                "moving_mean_initializer", "moving_variance_initializer", "synchronized", "renorm"):
        assert config[key] == theirs.get_config()[key], key
    again = BatchNormalization.from_config(config)
    assert again.get_config() == config


def test_batch_norm_errors(rng):
    bn = BatchNormalization(name="bn_err")
    bn(rng.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(ValueError, match=r"BatchNormalization 'bn_err' was built .* 3 channels .*\(4, 5\)"):
        bn(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        BatchNormalization(axis=3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="renorm"):
        BatchNormalization(renorm=True)
    with pytest.raises(TypeError, match="axis must be an int"):
        BatchNormalization(axis=[1, 2])


# ----------------------------------------------------------------------------- LayerNormalization
@pytest.mark.parametrize("shape, kwargs", [
    ((4, 6), {}),
    ((3, 5, 6), {"epsilon": 1e-5}),                          # a sequence of tokens: per token
    ((2, 4, 5, 3), {"axis": [1, 2, 3]}),                     # a whole image per sample
    ((2, 4, 5, 3), {"axis": [-2, -1]}),
    ((4, 6), {"center": False}),
    ((4, 6), {"scale": False, "center": False}),
])
def test_layer_norm_matches_keras(keras, rng, shape, kwargs):
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    ours, theirs = twin(keras, "LayerNormalization", kwargs, x, rng)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    if ours.weights:
        assert ours.count_params() == theirs.count_params()
    # training makes no difference to layer normalization
    np.testing.assert_allclose(ours(x, training=True).numpy(), to_numpy(keras, theirs(x)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours(x).numpy(), to_numpy(keras, theirs(x)), rtol=1e-4, atol=1e-4)
    assert ours.compute_output_shape((None,) + shape[1:]) == tuple(theirs.compute_output_shape((None,) + shape[1:]))
    assert ours.get_config()["axis"] == theirs.get_config()["axis"]


def test_layer_norm_by_hand_and_gradients(rng):
    ln = LayerNormalization()
    x = cr.Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    y = ln(x)
    xn = x.numpy()
    expected = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)
    y.sum().backward()
    # gamma's gradient is the sum of xhat over the batch; each row of xhat sums to ~0
    np.testing.assert_allclose(ln.gamma.grad, expected.sum(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ln.beta.grad, [3, 3, 3, 3])
    np.testing.assert_allclose(x.grad, 0, atol=1e-5)  # sum of a normalized row is constant in x


def test_layer_norm_config_matches_keras_and_round_trips(keras, rng):
    ours = LayerNormalization(axis=[1, 2], epsilon=1e-5, name="ln")
    theirs = keras.layers.LayerNormalization(axis=[1, 2], epsilon=1e-5, name="ln")
    assert set(ours.get_config()) == set(theirs.get_config())
    assert LayerNormalization.from_config(ours.get_config()).get_config() == ours.get_config()
    ours(rng.standard_normal((2, 3, 4)).astype(np.float32))
    assert ours.get_config()["axis"] == [1, 2]


def test_layer_norm_errors(rng):
    ln = LayerNormalization(name="ln_err")
    ln(rng.standard_normal((2, 6)).astype(np.float32))
    with pytest.raises(ValueError, match=r"LayerNormalization 'ln_err' was built .*\(6,\).*\(2, 5\)"):
        ln(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        LayerNormalization(axis=2)(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="axis"):
        LayerNormalization(axis="last")
