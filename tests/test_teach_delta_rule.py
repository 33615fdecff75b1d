"""teach.delta_rule: the matrix-form deltas, equal to autodiff to 1e-10 in float64."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, models
from chainrule import teach


def dense_stack(sizes, activations, seed=0):
    cr.random.seed(seed)  # initial weights independent of the tests run before
    f64 = "float64"
    stack = [layers.Input((sizes[0],), dtype=f64)]
    stack += [layers.Dense(n, activation=a, dtype=f64) for n, a in zip(sizes[1:], activations)]
    model = models.Sequential(stack)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # non-zero biases, so their gradients are checked too
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


@pytest.mark.parametrize("out_act, target, loss", [
    ("softmax", "labels", "auto"),            # delta_L = (a - y) / N
    ("softmax", "onehot", "auto"),
    ("sigmoid", "binary", "auto"),            # delta_L = (a - y) / (N K)
    ("linear", "real", "auto"),               # MSE: delta_L = 2 (a - y) / (N K)
    ("tanh", "real", "mean_squared_error"),
    ("softmax", "onehot", "mean_squared_error"),   # through softmax's Jacobian
    ("relu", "real", "half_squared_error"),
])
def test_delta_rule_equals_autodiff_in_float64(out_act, target, loss):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 4))
    y = {"labels": rng.integers(0, 3, 7), "onehot": np.eye(3)[rng.integers(0, 3, 7)],
         "binary": rng.integers(0, 2, (7, 3)).astype(np.float64), "real": rng.standard_normal((7, 3))}[target]
    model = dense_stack([4, 5, 6, 4, 3], ["tanh", "relu", "sigmoid", out_act])
    result = teach.delta_rule(model, x, y, loss=loss)
    assert len(result) == 4
    for row in result:
        assert row["delta"].shape == row["z"].shape
        np.testing.assert_allclose(row["grad_kernel"], row["autodiff_kernel"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(row["grad_bias"], row["autodiff_bias"], rtol=0, atol=1e-10)
    assert result.max_error < 1e-10
    assert np.abs(result[0]["grad_kernel"]).max() > 1e-4  # a real gradient, not zeros on both sides


def test_delta_rule_reproduces_the_lecture_network():
    """The 2-2-2 example with E = 1/2 sum (t - o)^2:
    delta_o1 = 0.138498562, delta_o2 = -0.038098236; dE/dw5 = 0.082167041, dE/dw1 = 0.000438568."""
    model = dense_stack([2, 2, 2], ["sigmoid", "sigmoid"])
    hidden, output = model.layers
    # Keras kernels are (inputs, units): column j holds the weights into unit j
    hidden.kernel.assign([[.15, .25], [.20, .30]])
    hidden.bias.assign([.35, .35])
    output.kernel.assign([[.40, .50], [.45, .55]])
    output.bias.assign([.60, .60])
    result = teach.delta_rule(model, [[.05, .10]], [[.01, .99]], loss="half_squared_error")
    np.testing.assert_allclose(result[1]["delta"][0], [0.138498562, -0.038098236], atol=1.5e-9)
    np.testing.assert_allclose(result[1]["grad_kernel"], [[0.082167041, -0.022602540], [0.082667628, -0.022740242]],
                               atol=1.5e-9)
    np.testing.assert_allclose(result[0]["grad_kernel"], [[0.000438568, 0.000497713], [0.000877135, 0.000995425]],
                               atol=1.5e-9)
    assert result.max_error < 1e-12
    text = str(result)
    assert "delta_1 = (delta_2 W_2^T) * sigmoid'(z_1)" in text


def test_compiled_loss_is_used_by_auto():
    model = dense_stack([3, 4, 2], ["tanh", "softmax"])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    rng = np.random.default_rng(2)
    result = teach.delta_rule(model, rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)])
    assert result.loss == "mean_squared_error"
    assert result.max_error < 1e-10


def test_delta_rule_refuses_what_it_does_not_cover():
    conv = models.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match="Conv2D"):
        teach.delta_rule(conv, np.zeros((1, 6, 6, 1)), np.zeros((1, 2)))
    hidden_softmax = dense_stack([3, 4, 2], ["softmax", "linear"])
    with pytest.raises(ValueError, match="output layer only"):
        teach.delta_rule(hidden_softmax, np.zeros((1, 3)), np.zeros((1, 2)))
    model = dense_stack([3, 2], ["linear"])
    with pytest.raises(ValueError, match="no delta formula"):
        teach.delta_rule(model, np.zeros((1, 3)), np.zeros((1, 2)), loss="categorical_crossentropy")
