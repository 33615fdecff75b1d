"""Models: Sequential, functional, subclassed; compile/fit/evaluate/predict; summary; freezing."""
import io
import contextlib
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import callbacks, layers, losses, metrics, models, optimizers


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def blobs(n=120, classes=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, features))
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.normal(0, 0.5, (n, features))).astype(np.float32)
    return x, y


def mlp(classes=3, features=4):
    return models.Sequential([layers.Input(shape=(features,)), layers.Dense(16, activation="relu"),
                              layers.Dense(classes, activation="softmax")])


# ------------------------------------------------------------------ Sequential
def test_sequential_learns_and_reports_history():
    cr.random.seed(0)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 15
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9 and loss < history.history["loss"][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"} and logs["accuracy"] == pytest.approx(acc)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (len(x), 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs.argmax(axis=1) == y).mean() == pytest.approx(acc)


def test_sequential_builds_on_first_call_without_input_shape():
    model = models.Sequential([layers.Dense(5), layers.Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        model.summary()
    out = model(np.zeros((3, 7), dtype=np.float32))
    assert out.shape == (3, 2) and model.built
    assert model.count_params() == 7 * 5 + 5 + 5 * 2 + 2


def test_input_shape_keyword_on_the_first_layer_builds_at_once():
    model = models.Sequential()
    model.add(layers.Dense(8, input_shape=(3,)))
    model.add(layers.Dense(1))
    assert model.built and model.count_params() == (3 * 8 + 8) + (8 + 1)


def test_evaluate_returns_a_scalar_without_metrics():
    x, y = blobs(n=32)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, y, verbose=0), float)


def test_train_on_batch_test_on_batch_predict_on_batch():
    cr.random.seed(1)
    x, y = blobs(n=64)
    model = mlp()
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    first = model.train_on_batch(x, y)
    for _ in range(30):
        last = model.train_on_batch(x, y)
    assert last[0] < first[0]
    loss, acc = model.test_on_batch(x, y)
    assert loss == pytest.approx(model.evaluate(x, y, verbose=0, batch_size=64)[0], rel=1e-5)
    assert model.predict_on_batch(x[:5]).shape == (5, 3)


def test_fit_accepts_a_generator_of_batches():
    cr.random.seed(2)
    x, y = blobs(n=64)

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    model = mlp()
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(batches(), steps_per_epoch=4, epochs=5, verbose=0, validation_data=(x, y))
    assert len(history.history["val_loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_shuffle_is_seeded_so_runs_repeat_exactly():
    def run():
        cr.random.seed(7)
        x, y = blobs(n=50)
        model = mlp()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_sample_weight_and_class_weight_change_the_loss():
    x, y = blobs(n=40)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    base = model.test_on_batch(x, y)
    weights = np.where(y == 0, 2.0, 0.0).astype(np.float32)
    weighted = model.test_on_batch(x, y, sample_weight=weights)
    per_sample = losses.sparse_categorical_crossentropy(y, cr.tensor(model.predict(x, verbose=0))).numpy()
    assert weighted == pytest.approx(float((per_sample * weights).mean()), rel=1e-5)
    assert weighted != pytest.approx(base)
    model.fit(x, y, class_weight={0: 1.0, 1: 0.5, 2: 0.5}, epochs=1, verbose=0)


# ------------------------------------------------------------------ functional
def test_functional_multi_input_multi_output_with_loss_weights():
    cr.random.seed(3)
    a = layers.Input(shape=(4,), name="a")
    b = layers.Input(shape=(3,), name="b")
    merged = layers.Concatenate()([a, b])
    hidden = layers.Dense(16, activation="relu")(merged)
    cls = layers.Dense(2, activation="softmax", name="cls")(hidden)
    reg = layers.Dense(1, name="reg")(hidden)
    model = models.Model(inputs=[a, b], outputs=[cls, reg])
    assert model.name.startswith("functional")
    assert [layer.name for layer in model.layers][:2] == ["a", "b"]
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 4)).astype(np.float32), rng.normal(size=(64, 3)).astype(np.float32)
    y_cls = (xa[:, 0] > 0).astype(np.int64)
    y_reg = (xa[:, 1:2] + xb[:, :1]).astype(np.float32)
    model.compile(optimizer=optimizers.Adam(0.01), loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"], "reg": ["mae"]})
    history = model.fit({"a": xa, "b": xb}, {"cls": y_cls, "reg": y_reg}, epochs=20, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    h = history.history
    assert h["loss"][-1] == pytest.approx(h["cls_loss"][-1] + 0.5 * h["reg_loss"][-1], rel=1e-4)
    assert h["cls_accuracy"][-1] > 0.85
    values = model.evaluate([xa, xb], [y_cls, y_reg], verbose=0)
    assert len(values) == 5  # loss, cls_loss, reg_loss, cls_accuracy, reg_mae (Keras's order)
    p_cls, p_reg = model.predict([xa, xb], verbose=0)
    assert p_cls.shape == (64, 2) and p_reg.shape == (64, 1)


def test_shared_layers_and_nested_models():
    shared = layers.Dense(3, name="shared")
    x1, x2 = layers.Input(shape=(5,)), layers.Input(shape=(5,))
    out = layers.Add()([shared(x1), shared(x2)])
    siamese = models.Model([x1, x2], out)
    assert len(siamese.weights) == 2  # one kernel, one bias, used twice
    inner = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, name="inner_dense")])
    x = layers.Input(shape=(5,))
    y = layers.Input(shape=(5,))
    outer = models.Model([x, y], inner(siamese([x, y])))
    assert outer.count_params() == (5 * 3 + 3) + (3 * 2 + 2)
    data = [np.ones((4, 5), np.float32), np.zeros((4, 5), np.float32)]
    expected = inner.predict(siamese.predict(data, verbose=0), verbose=0)
    np.testing.assert_allclose(outer.predict(data, verbose=0), expected, rtol=1e-6)
    outer.compile(optimizer="sgd", loss="mse")
    before = shared.get_weights()[0].copy()
    outer.fit(data, np.ones((4, 2), np.float32), epochs=1, verbose=0)
    assert not np.allclose(before, shared.get_weights()[0])


def test_graph_disconnected_is_explained():
    a, b = layers.Input(shape=(2,)), layers.Input(shape=(2,))
    out = layers.Add()([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        models.Model(a, out)


def test_subclassed_model():
    class TwoLayer(models.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(8, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs, training=False):
            return self.out(self.hidden(inputs))

    cr.random.seed(4)
    model = TwoLayer()
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (x[:, :1] * 2 - x[:, 1:]).astype(np.float32)
    model.compile(optimizer=optimizers.Adam(0.02), loss="mse")
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert len(model.trainable_weights) == 4 and model.name == "two_layer"


# ------------------------------------------------------------------ weights, freezing
def test_get_set_weights_and_get_layer():
    model = mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(4, 16), (16,), (16, 3), (3,)]
    model.set_weights([np.zeros_like(w) for w in weights])
    assert all((w == 0).all() for w in model.get_weights())
    with pytest.raises(ValueError, match="shape"):
        model.set_weights([np.zeros((2, 2))] * 4)
    assert model.get_layer(index=0) is model.layers[0]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")


def test_frozen_layers_do_not_change_and_cost_no_gradient():
    cr.random.seed(5)
    x, y = blobs(n=48)
    model = mlp()
    base = model.layers[0]
    base.trainable = False
    assert not base.kernel.requires_grad  # frozen at once, also for hand-written loops
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    frozen = [w.copy() for w in base.get_weights()]
    head = model.layers[1].get_weights()[0].copy()
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.fit(x, y, epochs=2, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(head, model.layers[1].get_weights()[0])
    assert base.kernel.grad is None
    base.trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(frozen[0], base.get_weights()[0])


def test_save_and_load_weights_round_trip(tmp_path):
    model = mlp()
    path = tmp_path / "w.npz"
    model.save_weights(path)
    other = mlp()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = models.Sequential([layers.Input(shape=(4,)), layers.Dense(5), layers.Dense(3)])
    with pytest.raises(ValueError, match="shape"):
        wrong.load_weights(path)


# ------------------------------------------------------------------ summary and errors
def test_summary_counts_parameters_like_the_lecture():
    model = models.Sequential([layers.Input(shape=(784,)), layers.Dense(64, activation="relu"),
                               layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
    out = io.StringIO()
    model.summary(print_fn=lambda line: out.write(line + "\n"))
    text = out.getvalue()
    # 784*64 + 64 = 50,240;  64*64 + 64 = 4,160;  64*10 + 10 = 650;  total 55,050 (x 4 bytes = 215.04 KB)
    for expected in ("50,240", "4,160", "650", "Total params: 55,050 (215.04 KB)", "Trainable params: 55,050",
                     "Non-trainable params: 0 (0.00 B)", "(None, 64)", "dense"):
        assert expected in text


def test_summary_matches_keras_text(keras):
    cr_model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, name="d1"), layers.Dense(2, name="d2")])
    k_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d1"),
                                keras.layers.Dense(2, name="d2")])
    ours, theirs = [], []
    cr_model.summary(print_fn=ours.append)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        k_model.summary()
    theirs = [line.rstrip() for line in buf.getvalue().splitlines() if line.strip()]
    ours = [line.rstrip() for line in ours[1:]]
    assert ours == theirs[1:]


def test_wrong_label_shape_errors_name_the_loss_and_the_fix():
    x, y = blobs(n=16)
    model = mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, y, epochs=1, verbose=0)


def test_dense_given_an_image_says_to_flatten():
    model = mlp(features=784)
    with pytest.raises(ValueError, match="Flatten"):
        model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)


def test_fit_before_compile_says_so():
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(*blobs(n=8), verbose=0)


def test_callbacks_are_driven_by_fit():
    cr.random.seed(6)
    x, y = blobs(n=60)
    model = mlp()
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seen = []
    stopper = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    cb = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, round(logs["loss"], 6))))
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[cb, stopper])
    assert len(history.history["loss"]) == 2  # no improvement of 10.0: stops after patience 0
    assert [e for e, _ in seen] == [0, 1]


def test_progress_bar_prints_one_line_per_epoch_off_a_terminal(capsys):
    x, y = blobs(n=40)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "accuracy:" in out and "loss:" in out
    assert len([line for line in out.splitlines() if "loss:" in line]) == 2


def test_metrics_module_is_used_for_named_metrics():
    x, y = blobs(n=30)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[metrics.SparseCategoricalAccuracy(), "sparse_top_k_categorical_accuracy"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert "sparse_categorical_accuracy" in logs and "sparse_top_k_categorical_accuracy" in logs


def test_activity_losses_of_nested_layers_reach_the_loss():
    inner = models.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(2, activity_regularizer="l2", kernel_initializer="ones")])
    x = layers.Input(shape=(3,))
    outer = models.Model(x, inner(x))
    out = outer(np.ones((4, 3), np.float32))
    # Keras's activity penalty: l2 * sum(y^2) / batch = 0.01 * (4 * 2 * 3^2) / 4 = 0.18
    assert len(outer.losses) == 1
    assert outer.losses[0].item() == pytest.approx(0.01 * float((out.numpy() ** 2).sum()) / 4, rel=1e-6)
    assert outer.losses[0].item() == pytest.approx(0.18, rel=1e-6)
