"""Activation functions by name: values equal Keras 3's, gradients check out, lookup works."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import activations


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


NAMES = ["relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "gelu", "softplus", "softsign", "silu",
         "swish", "leaky_relu", "relu6", "hard_sigmoid", "hard_silu", "exponential", "log_softmax", "mish",
         "log_sigmoid", "tanh_shrink", "hard_tanh"]


@pytest.mark.parametrize("name", NAMES)
def test_equals_keras(keras, name, rng):
    # values spread over [-8, 8] cover both sides of every kink (0, +-3, 6)
    x = (rng.standard_normal((6, 7)) * 4).astype(np.float32)
    ours = activations.get(name)(cr.tensor(x))
    theirs = _numpy(keras.activations.get(name)(x))
    assert ours.dtype == np.float32 and ours.shape == x.shape
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("kwargs", [dict(negative_slope=0.1), dict(max_value=2.0), dict(threshold=0.5),
                                    dict(negative_slope=0.1, max_value=3.0, threshold=1.0),
                                    dict(max_value=6.0), dict(negative_slope=0.2, threshold=-0.0)])
def test_relu_arguments_equal_keras(keras, kwargs, rng):
    x = (rng.standard_normal((5, 8)) * 3).astype(np.float32)
    ours = activations.relu(cr.tensor(x), **kwargs).numpy()
    np.testing.assert_allclose(ours, _numpy(keras.activations.relu(x, **kwargs)), rtol=1e-6, atol=1e-6)


def test_argument_defaults_equal_keras(keras, rng):
    import inspect
    for name in ["relu", "leaky_relu", "softmax", "log_softmax", "elu", "gelu"]:
        ours = {k: p.default for k, p in inspect.signature(getattr(activations, name)).parameters.items()
                if k != "x"}
        theirs = {k: p.default for k, p in inspect.signature(getattr(keras.activations, name)).parameters.items()
                  if k != "x"}
        assert ours == theirs, name
    x = (rng.standard_normal((4, 5)) * 2).astype(np.float32)
    np.testing.assert_allclose(activations.gelu(cr.tensor(x), approximate=True).numpy(),
                               _numpy(keras.activations.gelu(x, approximate=True)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activations.softmax(cr.tensor(x), axis=0).numpy(),
                               _numpy(keras.activations.softmax(x, axis=0)), rtol=1e-5, atol=1e-7)


def test_worked_values():
    x = cr.tensor([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0])
    # hard_sigmoid: 0 below -3, 1 above 3, x/6 + 1/2 between (Keras 3)
    np.testing.assert_allclose(activations.hard_sigmoid(x).numpy(), [0, 0, 0.25, 0.5, 0.75, 1, 1], atol=1e-7)
    # softsign: x / (1 + |x|)
    np.testing.assert_allclose(activations.softsign(x).numpy(), [-0.8, -0.75, -0.6, 0, 0.6, 0.75, 0.8], rtol=1e-6)
    # relu with every argument: x above the threshold capped at max_value; slope * (x - threshold) below
    r = activations.relu(x, negative_slope=0.5, max_value=2.0, threshold=1.0).numpy()
    np.testing.assert_allclose(r, [-2.5, -2.0, -1.25, -0.5, 1.5, 2.0, 2.0])
    np.testing.assert_allclose(activations.relu6(cr.tensor([-1.0, 3.0, 7.0])).numpy(), [0, 3, 6])


# kinks are avoided: no sample lies at 0, +-3, 6 or a relu threshold
COMPOSED = [("softsign", {}), ("hard_sigmoid", {}), ("hard_silu", {}), ("mish", {}), ("log_sigmoid", {}),
            ("tanh_shrink", {}), ("hard_tanh", {}), ("relu6", {}),
            ("relu", dict(negative_slope=0.1, max_value=2.0, threshold=0.5)), ("relu", dict(threshold=0.7)),
            ("relu", dict(max_value=1.0))]


@pytest.mark.parametrize("name,kwargs", COMPOSED, ids=[f"{n}{sorted(k)}" for n, k in COMPOSED])
def test_gradcheck_composed(name, kwargs, rng):
    x = rng.uniform(-7.5, 7.5, size=(3, 8))
    x[np.abs(x) < 0.05] = 0.3
    for kink in (-3, -1, 0.5, 0.7, 1, 2, 3, 6):
        x[np.abs(x - kink) < 0.05] += 0.2
    fn = activations.get(name)
    cr.gradcheck(lambda t: fn(t, **kwargs), x)


def test_float32_in_float32_out():
    x = cr.tensor([[-2.0, 0.5, 3.5]])
    for name in NAMES:
        assert activations.get(name)(x).dtype == np.float32, name


def test_get_and_serialize():
    assert activations.get(None) is activations.linear
    assert activations.get("linear") is activations.linear
    assert activations.get("swish") is activations.silu
    assert activations.get("relu") is activations.relu
    fn = lambda t: t * 2  # noqa: E731
    assert activations.get(fn) is fn
    with pytest.raises(ValueError, match="relu"):
        activations.get("rleu")
    assert activations.serialize(activations.relu) == "relu"
    assert activations.serialize(activations.swish) == "silu"  # Keras writes the canonical name
    assert activations.serialize(None) == "linear"
    for name in NAMES:
        assert activations.get(activations.serialize(activations.get(name))) is activations.get(name)


def test_serialize_matches_keras(keras):
    for name in ["relu", "softmax", "linear", "gelu", "silu", "hard_sigmoid", "leaky_relu"]:
        assert activations.serialize(activations.get(name)) == keras.activations.serialize(
            keras.activations.get(name))
