"""teach.TrainingMonitor: update/weight ratios, gradient norms, dead ReLUs, plain-words warnings."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import initializers, layers, models, optimizers
from chainrule import teach


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, (x[:, :2].sum(axis=1) > 0).astype(np.int64)


def mlp(lr, activation="relu", depth=1, init="glorot_uniform", seed=0):
    cr.random.seed(seed)
    model = models.Sequential([layers.Input((6,))]
                              + [layers.Dense(16, activation=activation, kernel_initializer=init)
                                 for _ in range(depth)]
                              + [layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return model


def test_ratio_and_gradient_norm_are_measured_exactly():
    """One SGD step per epoch (batch = all data): ||dW|| = lr * ||g||, ratio = ||dW|| / ||W_before||."""
    x, y = data()
    model = mlp(0.1)
    before = [w.numpy().copy() for w in model.layers[0].trainable_weights]
    monitor = teach.TrainingMonitor(verbose=0)
    model.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0, callbacks=[monitor])
    after = [w.numpy() for w in model.layers[0].trainable_weights]
    step = np.sqrt(sum(((a - b).astype(np.float64) ** 2).sum() for a, b in zip(after, before)))
    size = np.sqrt(sum((b.astype(np.float64) ** 2).sum() for b in before))
    row = monitor.records[0]
    assert row["layer"] == model.layers[0].name and row["epoch"] == 0
    assert row["update_ratio"] == pytest.approx(step / size, rel=1e-4)
    assert row["grad_norm"] == pytest.approx(step / 0.1, rel=1e-4)
    assert len(monitor.records) == 2  # one row per layer
    assert "train_step" not in model.__dict__  # the probe catcher is gone after fit


def test_a_healthy_run_gives_no_warning():
    x, y = data()
    model = mlp(0.05)
    monitor = teach.TrainingMonitor(verbose=0)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[monitor])
    assert monitor.warnings == []
    assert all(1e-5 < r["update_ratio"] < 1e-1 for r in monitor.records)


def test_too_high_a_learning_rate_is_called_out(capsys):
    x, y = data()
    model = mlp(20.0)
    monitor = teach.TrainingMonitor()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    out = capsys.readouterr().out
    assert "learning rate looks too high" in out
    assert "TrainingMonitor, epoch 1" in out


def test_dead_relus_are_counted_on_the_probe():
    x, y = data()
    model = mlp(0.01)
    model.layers[0].bias.assign(np.full(16, -100.0))  # every pre-activation negative: all units dead
    probe = x[:10]
    monitor = teach.TrainingMonitor(probe=probe, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    row = monitor.records[0]
    assert row["dead_fraction"] == 1.0 and row["act_mean"] == 0.0
    assert any("dead units" in m for _, _, m in monitor.warnings)
    assert any("did not change at all" in m for _, _, m in monitor.warnings)


def test_activation_statistics_are_those_of_the_probe():
    x, y = data()
    model = mlp(0.01, activation="tanh")
    monitor = teach.TrainingMonitor(probe=x[:20], verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    hidden = model.layers[0]
    expected = np.tanh(x[:20] @ hidden.kernel.numpy() + hidden.bias.numpy())
    row = monitor.records[0]
    assert row["act_mean"] == pytest.approx(float(expected.mean()), abs=1e-6)
    assert row["act_std"] == pytest.approx(float(expected.std()), abs=1e-6)
    assert row["saturated_fraction"] == pytest.approx(float((np.abs(expected) > 0.99).mean()))


def test_vanishing_gradients_in_a_deep_sigmoid_stack():
    x, y = data()
    model = mlp(0.01, activation="sigmoid", depth=7, init=initializers.RandomNormal(stddev=1.0))
    monitor = teach.TrainingMonitor(verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    first = model.layers[0].name
    assert any(layer == first and "vanishing gradients" in m for _, layer, m in monitor.warnings)


def test_monitor_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg
    x, y = data()
    model = mlp(0.05)
    monitor = teach.TrainingMonitor(verbose=0)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    fig = monitor.plot(str(tmp_path / "monitor.png"), dpi=40)
    img = mpimg.imread(tmp_path / "monitor.png")
    assert img.shape[:2] == (6.5 * 40, 10 * 40) == tuple(fig.get_size_inches()[::-1] * 40)
    assert img[..., :3].std() > 0.01
    assert "update/weight" in monitor.summary()
