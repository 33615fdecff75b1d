"""teach.numeric_vs_analytic: finite differences and backprop side by side, weight by weight."""
import numpy as np

import chainrule as cr
from chainrule import layers, losses, models
from chainrule import teach


def small_model(dtype="float64"):
    cr.random.seed(3)
    return models.Sequential([layers.Input((4,), dtype=dtype), layers.Dense(5, activation="tanh", dtype=dtype),
                              layers.Dense(3, activation="softmax", dtype=dtype)])


def test_every_weight_agrees_in_float64(capsys):
    model = small_model()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    before = model.get_weights()
    result = teach.numeric_vs_analytic(model, x, y)
    assert [r["weight"] for r in result] == [w.path for w in model.trainable_weights]
    assert [r["size"] for r in result] == [w.size for w in model.trainable_weights]
    assert all(len(r["index"]) == r["size"] for r in result)  # 43 weights: all checked
    assert result.max_rel_error < 1e-6
    for r in result:
        np.testing.assert_allclose(r["numeric"], r["analytic"], rtol=1e-6, atol=1e-9)
    for a, b in zip(before, model.get_weights()):  # every nudge was undone exactly
        np.testing.assert_array_equal(a, b)
    assert result.numeric_seconds > 0 and result.analytic_seconds > 0
    out = capsys.readouterr().out
    assert "backpropagation is ~" in out and "dense" in out


def test_analytic_column_is_the_compiled_loss_gradient():
    model = small_model()
    model.compile(optimizer="sgd", loss="mean_squared_error")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    result = teach.numeric_vs_analytic(model, x, y, show=False)
    expected = cr.grad(losses.MeanSquaredError()(y, model(x)), model.layers[0].kernel).numpy().reshape(-1)
    np.testing.assert_allclose(result[0]["analytic"], expected, rtol=1e-12)
    assert result.max_rel_error < 1e-6


def test_large_models_are_sampled_per_weight():
    model = small_model()
    rng = np.random.default_rng(2)
    result = teach.numeric_vs_analytic(model, rng.standard_normal((4, 4)), rng.integers(0, 3, 4),
                                       max_params=12, show=False)
    checked = [len(r["index"]) for r in result]
    assert all(1 <= c < r["size"] or r["size"] == 1 for c, r in zip(checked, result))
    assert sum(checked) <= 12 + len(result)
    assert result.max_rel_error < 1e-6


def test_float32_uses_a_larger_step_and_says_why():
    model = small_model("float32")
    rng = np.random.default_rng(3)
    result = teach.numeric_vs_analytic(model, rng.standard_normal((4, 4)).astype(np.float32),
                                       rng.integers(0, 3, 4), show=False)
    assert result.eps > 1e-3
    assert result.max_rel_error < 0.05
    assert "float64" in str(result)
