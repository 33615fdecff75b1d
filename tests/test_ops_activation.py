"""Activations (chainrule.ops.activation): gradients by central differences, values and
gradients against PyTorch, and stability where a naive formula overflows (|x| = 1000).
"""
import sys
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops

SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


def normal(rng, shape):
    return np.asarray(rng.standard_normal(shape) * 2)


def away_from_zero(rng, shape):
    """|x| in [0.1, 3]: relu, leaky_relu, elu and selu change slope at 0."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 3.0, shape))


# name: (our op, torch equivalent taking (torch, x), draw x)
ACTIVATIONS = {
    "sigmoid": (ops.sigmoid, lambda torch, x: torch.sigmoid(x), normal),
    "tanh": (ops.tanh, lambda torch, x: torch.tanh(x), normal),
    "relu": (ops.relu, lambda torch, x: torch.relu(x), away_from_zero),
    # our default slope is Keras's 0.2; PyTorch's is 0.01
    "leaky_relu": (ops.leaky_relu, lambda torch, x: torch.nn.functional.leaky_relu(x, 0.2), away_from_zero),
    "leaky_relu_0.01": (lambda x: ops.leaky_relu(x, negative_slope=0.01),
                        lambda torch, x: torch.nn.functional.leaky_relu(x), away_from_zero),
    "elu": (ops.elu, lambda torch, x: torch.nn.functional.elu(x), away_from_zero),
    "elu_alpha": (lambda x: ops.elu(x, alpha=0.5), lambda torch, x: torch.nn.functional.elu(x, alpha=0.5),
                  away_from_zero),
    "selu": (ops.selu, lambda torch, x: torch.selu(x), away_from_zero),
    "gelu": (ops.gelu, lambda torch, x: torch.nn.functional.gelu(x), normal),
    "gelu_tanh": (lambda x: ops.gelu(x, approximate=True),
                  lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh"), normal),
    "softplus": (ops.softplus, lambda torch, x: torch.nn.functional.softplus(x), normal),
    "silu": (ops.silu, lambda torch, x: torch.nn.functional.silu(x), normal),
    "swish": (ops.swish, lambda torch, x: torch.nn.functional.silu(x), normal),
    "softmax": (ops.softmax, lambda torch, x: torch.softmax(x, dim=-1), normal),
    "log_softmax": (ops.log_softmax, lambda torch, x: torch.log_softmax(x, dim=-1), normal),
}
ELEMENTWISE = [n for n in ACTIVATIONS if "softmax" not in n]
STABLE_AT_1000 = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "softplus",
                  "silu"]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_gradcheck(name, shape, rng):
    fn, _, draw = ACTIVATIONS[name]
    cr.gradcheck(fn, draw(rng, shape))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_matches_torch(name, rng, check_torch, torch):
    fn, theirs, draw = ACTIVATIONS[name]
    check_torch(fn, lambda x: theirs(torch, x), draw(rng, (3, 4)).astype(np.float32))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "leaky_relu_0.01", "elu", "elu_alpha", "selu"])
def test_derivative_at_zero_follows_torch(name, check_torch, torch):
    # at x = 0 the slope is the left one (0 for relu, the negative slope, alpha for elu), as in PyTorch
    fn, theirs, _ = ACTIVATIONS[name]
    check_torch(fn, lambda x: theirs(torch, x), np.array([-1.0, 0.0, 1.0], np.float32))


def test_activation_methods(rng):
    x = cr.Tensor(normal(rng, (3, 4)))
    for name in ["sigmoid", "tanh", "relu", "softmax", "log_softmax"]:
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(ops, name)(x).numpy())


def test_swish_is_silu():
    assert ops.swish is ops.silu


def test_known_values():
    x = cr.tensor([-1.0, 0.0, 2.0], dtype=np.float64)
    # sigmoid(-1) = 1 / (1 + e) = 0.268941421, sigmoid(2) = 0.880797078
    np.testing.assert_allclose(ops.sigmoid(x).numpy(), [0.268941421, 0.5, 0.880797078], rtol=1e-8)
    # leaky_relu with Keras's 0.2: -0.2, 0, 2
    np.testing.assert_allclose(ops.leaky_relu(x).numpy(), [-0.2, 0.0, 2.0])
    # elu(-1) = e^-1 - 1 = -0.632120559
    np.testing.assert_allclose(ops.elu(x).numpy(), [-0.632120559, 0.0, 2.0], rtol=1e-8)
    # gelu(x) = x Phi(x): Phi(-1) = 0.158655254, Phi(2) = 0.977249868
    np.testing.assert_allclose(ops.gelu(x).numpy(), [-0.158655254, 0.0, 1.954499736], rtol=1e-8)
    # softplus(0) = ln 2 = 0.693147181
    np.testing.assert_allclose(ops.softplus(x).numpy()[1], 0.693147181, rtol=1e-8)


def test_gelu_without_scipy_uses_math_erf(rng, monkeypatch):
    x = normal(rng, (3, 4)).astype(np.float32)
    with_scipy = ops.gelu(cr.Tensor(x)).numpy()
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # makes `from scipy.special import erf` fail
    without = ops.gelu(cr.Tensor(x))
    assert without.dtype == np.float32
    np.testing.assert_allclose(without.numpy(), with_scipy, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ softmax / log_softmax
@pytest.mark.parametrize("shape, axis", [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -3),
                                         ((2, 3, 4), 2)], ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_gradcheck_any_axis(name, shape, axis, rng):
    fn = getattr(ops, name)
    x = normal(rng, shape)
    y = fn(cr.Tensor(x), axis=axis).numpy()
    p = np.exp(y) if name == "log_softmax" else y
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    cr.gradcheck(lambda t: fn(t, axis=axis), x)


@pytest.mark.parametrize("offset", [0.0, 1000.0, -1000.0])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_torch_any_axis_and_huge_values(name, axis, offset, rng, check_torch, torch):
    x = (normal(rng, (2, 3, 4)) + offset).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_torch(lambda t: getattr(ops, name)(t, axis=axis), lambda t: getattr(torch, name)(t, dim=axis), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_huge_values_is_finite(name):
    x = cr.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float64,
                  requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(ops, name)(x)
        y.backward(np.ones(y.shape))
    # the same as the softmax of [0, 1, 2] and of [0, 0, 0]
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    expected = np.array([p, [1 / 3] * 3])
    np.testing.assert_allclose(y.numpy(), expected if name == "softmax" else np.log(expected), rtol=1e-12)
    assert np.isfinite(x.grad).all()


def test_softmax_gradcheck_near_huge_values(rng):
    cr.gradcheck(ops.log_softmax, normal(rng, (2, 4)) + 1000)
    cr.gradcheck(lambda t: ops.softmax(t, axis=0), normal(rng, (3, 2)) - 1000)


# ------------------------------------------------------------------ stability at +-1000
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", STABLE_AT_1000)
def test_activation_is_finite_without_warnings_at_huge_inputs(name, dtype):
    fn = ACTIVATIONS[name][0]
    x = cr.tensor([-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0], dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        y.backward(np.ones(y.shape, dtype))
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_to_exact_limits(dtype):
    x = cr.tensor([-1000.0, 1000.0], dtype=dtype, requires_grad=True)
    y = ops.sigmoid(x)
    y.sum().backward()
    assert y.tolist() == [0.0, 1.0]
    assert x.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_is_stable_at_large_inputs(dtype):
    x = cr.tensor([-1000.0, -50.0, 50.0, 1000.0], dtype=dtype, requires_grad=True)
    y = ops.softplus(x)
    y.sum().backward()
    # ln(1 + e^x) = x + ln(1 + e^-x): x itself for large x; e^x (here e^-50 = 1.9e-22, or 0) for very negative x
    np.testing.assert_allclose(y.numpy(), [0.0, np.exp(-50.0), 50.0, 1000.0], rtol=1e-6)
    # the derivative is sigmoid(x), computed as tanh(x/2)/2 + 1/2: accurate to the dtype's eps in absolute
    # terms (so e^-50 may come out as 0), never nan
    np.testing.assert_allclose(x.grad, [0.0, np.exp(-50.0), 1.0, 1.0], rtol=1e-6, atol=np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "tanh"])
def test_stable_activations_match_torch_at_large_inputs(name, check_torch, torch):
    fn, theirs, _ = ACTIVATIONS[name]
    x = np.array([-1000.0, -80.0, -20.0, 20.0, 80.0, 1000.0], np.float32)
    check_torch(fn, lambda t: theirs(torch, t), x)


# ------------------------------------------------------------------ dtype
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float32_stays_float32(name, rng):
    fn, _, draw = ACTIVATIONS[name]
    x = cr.Tensor(draw(rng, (3, 4)).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32
