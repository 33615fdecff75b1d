"""Callbacks, driven by a tiny fit loop on a fake model, and compared with Keras 3's own
callbacks driven by the same scripted logs (skipped without Keras).

The loop calls the hooks as Model.fit does: train_begin, then per epoch epoch_begin,
train_batch_begin/end per batch, the validation block (test_begin ... test_end),
epoch_end with {'loss', 'val_loss', ...}; it stops after a batch or an epoch that set
`model.stop_training`; then train_end.
"""
import math
import os

import numpy as np
import pytest

from chainrule import callbacks
from chainrule.callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History, LambdaCallback,
                                 LearningRateScheduler, ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau,
                                 TerminateOnNaN)


# ----------------------------------------------------------------------------- fakes
class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """Just what callbacks use: stop_training, optimizer.learning_rate, weights, save."""

    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.weights = [np.zeros(2, np.float32)]
        self.saved = []  # (kind, path given to the saver)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def _write(self, kind, filepath):
        self.saved.append((kind, filepath))
        with open(filepath, "w") as f:
            f.write(f"{kind} {self.weights[0][0]:g}")

    def save(self, filepath, **kwargs):  # Keras's ModelCheckpoint also passes overwrite=True
        self._write("model", filepath)

    def save_weights(self, filepath, **kwargs):
        self._write("weights", filepath)


def run_fit(callback_list, cbs, model, epoch_logs, steps=3, batch_losses=None, validation=True, verbose=0):
    """Drive `cbs` like Model.fit for len(epoch_logs) epochs; epoch e's weights are all e.

    `callback_list` is chainrule's CallbackList or Keras's, so both run the same script.
    Returns the number of epochs run.
    """
    epochs = len(epoch_logs)
    cl = callback_list(cbs, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose,
                       epochs=epochs, steps=steps)
    model.stop_training = False
    cl.on_train_begin()
    logs, ran = {}, 0
    for epoch in range(epochs):
        cl.on_epoch_begin(epoch)
        ran += 1
        model.weights = [np.full(2, epoch, np.float32)]  # "training" changes the weights
        for batch in range(steps):
            cl.on_train_batch_begin(batch)
            loss = batch_losses[epoch][batch] if batch_losses else epoch_logs[epoch].get("loss", 1.0)
            cl.on_train_batch_end(batch, {"loss": loss})
            if model.stop_training:
                break
        logs = dict(epoch_logs[epoch])
        if validation:
            cl.on_test_begin()
            for batch in range(2):
                cl.on_test_batch_begin(batch)
                cl.on_test_batch_end(batch, {"loss": logs.get("val_loss", 0.0)})
            cl.on_test_end({"loss": logs.get("val_loss", 0.0)})
        cl.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cl.on_train_end(logs)
    return ran


def val_losses(values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


# ----------------------------------------------------------------------------- CallbackList
class Recorder(Callback):
    """Writes (tag, hook, argument) for every hook called."""

    def __init__(self, tag, journal):
        super().__init__()
        self.tag, self.journal = tag, journal

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("on_") and name not in ("on_batch_begin", "on_batch_end"):
            def hook(*args, **kwargs):
                self.journal.append((self.tag, name) + tuple(a for a in args if isinstance(a, int)))
                return attr(*args, **kwargs)
            return hook
        return attr

    def on_batch_end(self, batch, logs=None):  # the alias Keras still calls from on_train_batch_end
        self.journal.append((self.tag, "on_batch_end", batch))


def test_hook_order_two_epochs():
    journal = []
    run_fit(CallbackList, [Recorder("a", journal), Recorder("b", journal)], FakeModel(),
            val_losses([0.5, 0.4]), steps=2)
    a = [entry[1:] for entry in journal if entry[0] == "a"]

    def epoch(e):
        train = [x for b in range(2) for x in (("on_train_batch_begin", b), ("on_train_batch_end", b),
                                               ("on_batch_end", b))]
        test = [x for b in range(2) for x in (("on_test_batch_begin", b), ("on_test_batch_end", b))]
        return ([("on_epoch_begin", e)] + train + [("on_test_begin",)] + test
                + [("on_test_end",), ("on_epoch_end", e)])

    assert a == [("on_train_begin",)] + epoch(0) + epoch(1) + [("on_train_end",)]
    # Each hook goes to every callback in list order before the next hook starts.
    assert journal[:4] == [("a", "on_train_begin"), ("b", "on_train_begin"), ("a", "on_epoch_begin", 0),
                           ("b", "on_epoch_begin", 0)]
    assert [entry[1:] for entry in journal if entry[0] == "b"] == a


def test_callback_list_adds_history_and_progbar_last_and_once():
    model, mine = FakeModel(), History()
    cl = CallbackList([EarlyStopping(), mine], add_history=True, add_progbar=True, model=model,
                      verbose=1, epochs=3, steps=10)
    assert [type(cb) for cb in cl.callbacks] == [EarlyStopping, History, ProgbarLogger]
    assert cl.callbacks[1] is mine and model.history is mine
    assert all(cb.model is model and cb.params == {"verbose": 1, "epochs": 3, "steps": 10} for cb in cl.callbacks)
    assert [type(cb) for cb in CallbackList([[TerminateOnNaN()]], model=model).callbacks] == [TerminateOnNaN]


def test_callback_list_rejects_a_class_with_a_hint():
    with pytest.raises(TypeError, match=r"pass EarlyStopping\(...\)"):
        CallbackList([EarlyStopping])
    with pytest.raises(ValueError, match="without its"):
        CallbackList([]).on_train_end()


def test_callback_list_logs_are_sorted_python_floats_and_a_shared_copy():
    seen = []
    cl = CallbackList([LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs)),
                       LambdaCallback(on_epoch_end=lambda e, logs: logs.update(extra=1.0))],
                      add_history=True, model=FakeModel())
    cl.on_train_begin()
    given = {"val_loss": np.float32(0.25), "loss": np.array(0.5, np.float64), "sub": {"acc": np.float16(1)}}
    cl.on_epoch_end(0, given)
    logs = seen[0]
    assert list(logs) == ["loss", "acc", "val_loss", "extra"]  # sorted; the nested dict where "sub" sorts
    assert all(type(v) is float for v in logs.values()) and logs["val_loss"] == 0.25
    assert "extra" not in given                                  # the loop's dict is not touched
    assert cl.model.history.history["extra"] == [1.0]            # History (last) sees what others added


def test_history_contents():
    model = FakeModel()
    logs = [{"loss": 0.9, "accuracy": 0.6, "val_loss": 1.0, "val_accuracy": 0.5},
            {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.7, "val_accuracy": 0.7}]
    run_fit(CallbackList, [], model, logs, steps=4)
    history = model.history
    assert isinstance(history, History)
    assert history.history == {"accuracy": [0.6, 0.8], "loss": [0.9, 0.5], "val_accuracy": [0.5, 0.7],
                               "val_loss": [1.0, 0.7]}
    assert history.epoch == [0, 1]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 4}
    assert history.model is model


def test_history_matches_keras(keras):
    logs = [{"loss": 0.9, "val_loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}]
    ours, theirs = FakeModel(), FakeModel()
    run_fit(CallbackList, [], ours, logs)
    run_fit(keras.callbacks.CallbackList, [], theirs, logs)
    assert ours.history.history == theirs.history.history
    assert ours.history.epoch == theirs.history.epoch and ours.history.params == theirs.history.params


# ----------------------------------------------------------------------------- EarlyStopping
# (val_loss per epoch, arguments, epochs run): each derived by hand in the comment.
EARLY_STOPPING_CASES = [
    # patience 0: epoch 2 (0.95) does not beat 0.9 -> stop there, 3 epochs run.
    ([1.0, 0.9, 0.95, 0.8], dict(patience=0), 3),
    # patience 2: best 0.9 at epoch 1; epochs 2 and 3 wait 1, 2 -> stop at epoch 3.
    ([1.0, 0.9, 0.95, 0.92, 0.85, 0.99, 0.98], dict(patience=2), 4),
    # min_delta 0.05: 0.97 and 0.96 are not 0.05 below 1.0 -> waits 1, 2 -> stop at epoch 2.
    ([1.0, 0.97, 0.96, 0.9], dict(patience=2, min_delta=0.05), 3),
    # same values without min_delta: each epoch improves, never stops.
    ([1.0, 0.97, 0.96, 0.9], dict(patience=2), 4),
    # baseline 0.5: improvements that miss the baseline do not reset the wait (1, 2), so the first
    # non-improving epoch (2, wait 3 >= 2) stops.
    ([1.0, 0.9, 0.95, 0.4], dict(patience=2, baseline=0.5), 3),
    # without the baseline epoch 2 only waits 1 and epoch 3 improves: all 4 run.
    ([1.0, 0.9, 0.95, 0.4], dict(patience=2), 4),
    # start_from_epoch 2: epochs 0, 1 ignored; best 3.0 at 2, 2.9 at 3, 3.5 at 4 -> stop at 4.
    ([1.0, 2.0, 3.0, 2.9, 3.5, 1.0], dict(patience=0, start_from_epoch=2), 5),
    # same values from epoch 0: 2.0 > 1.0 at epoch 1 -> stop.
    ([1.0, 2.0, 3.0, 2.9, 3.5, 1.0], dict(patience=0), 2),
]


@pytest.mark.parametrize("values, kwargs, expected_epochs", EARLY_STOPPING_CASES)
def test_early_stopping_stops_at_the_right_epoch(values, kwargs, expected_epochs):
    model, es = FakeModel(), EarlyStopping(**kwargs)
    ran = run_fit(CallbackList, [es], model, val_losses(values))
    assert ran == expected_epochs
    assert es.stopped_epoch == (expected_epochs - 1 if expected_epochs < len(values) else 0)
    assert model.stop_training == (expected_epochs < len(values))


@pytest.mark.parametrize("values, kwargs, expected_epochs", EARLY_STOPPING_CASES)
def test_early_stopping_matches_keras(keras, values, kwargs, expected_epochs):
    ours, theirs = EarlyStopping(**kwargs), keras.callbacks.EarlyStopping(**kwargs)
    ran = run_fit(CallbackList, [ours], FakeModel(), val_losses(values))
    keras_ran = run_fit(keras.callbacks.CallbackList, [theirs], FakeModel(), val_losses(values))
    assert (ran, ours.stopped_epoch, ours.best, ours.wait) == (keras_ran, theirs.stopped_epoch, theirs.best,
                                                               theirs.wait)


def test_early_stopping_restores_the_best_epochs_weights():
    # Best val_loss 0.5 at epoch 1; epochs 2, 3 wait 1, 2 -> stop at 3, then weights of epoch 1 come back.
    model, es = FakeModel(), EarlyStopping(patience=2, restore_best_weights=True)
    assert run_fit(CallbackList, [es], model, val_losses([1.0, 0.5, 0.7, 0.8, 0.1])) == 4
    assert es.best_epoch == 1 and np.array_equal(model.weights[0], [1, 1])
    # Without stopping, the best weights are restored at the end too (as Keras does).
    model = FakeModel()
    run_fit(CallbackList, [EarlyStopping(patience=5, restore_best_weights=True)], model,
            val_losses([1.0, 0.2, 0.7]))
    assert np.array_equal(model.weights[0], [1, 1])
    # Without restore_best_weights the last weights stay.
    model = FakeModel()
    run_fit(CallbackList, [EarlyStopping(patience=2)], model, val_losses([1.0, 0.5, 0.7, 0.8]))
    assert np.array_equal(model.weights[0], [3, 3])


def test_early_stopping_auto_mode_maximizes_accuracy_and_explains_unknown_names():
    logs = [{"val_accuracy": a} for a in (0.5, 0.6, 0.55, 0.9)]
    assert run_fit(CallbackList, [EarlyStopping(monitor="val_accuracy")], FakeModel(), logs) == 3
    assert run_fit(CallbackList, [EarlyStopping(monitor="val_accuracy", mode="min")], FakeModel(), logs) == 2
    with pytest.raises(ValueError, match="mode='max'"):
        run_fit(CallbackList, [EarlyStopping(monitor="val_widgets")], FakeModel(), [{"val_widgets": 1.0}])


def test_auto_mode_reads_the_direction_of_the_models_metric():
    class Metric:
        name, _direction = "widgets", "up"

    model = FakeModel()
    model.metrics = [Metric()]
    logs = [{"val_widgets": w} for w in (1.0, 2.0, 1.5)]
    assert run_fit(CallbackList, [EarlyStopping(monitor="val_widgets")], model, logs) == 3


@pytest.mark.parametrize("name, direction", [("val_loss", "min"), ("loss", "min"), ("val_accuracy", "max"),
                                             ("acc", "max"), ("val_auc", "max"), ("precision", "max"),
                                             ("val_recall", "max"), ("mean_absolute_error", "min"),
                                             ("val_sparse_categorical_crossentropy", "min"),
                                             ("sparse_categorical_accuracy", "max"), ("f1_score", "max")])
def test_infer_direction_from_the_name(name, direction):
    from chainrule.callbacks.monitor_callback import infer_direction
    assert infer_direction(name) == direction


def test_early_stopping_warns_when_the_monitor_is_missing():
    with pytest.warns(UserWarning, match="val_loss.*not available"):
        assert run_fit(CallbackList, [EarlyStopping()], FakeModel(), [{"loss": 1.0}, {"loss": 2.0}]) == 2


# ----------------------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_save_best_only_writes_on_improvement_with_formatted_names(tmp_path):
    model = FakeModel()
    cb = ModelCheckpoint(str(tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.2f}.keras"), save_best_only=True)
    run_fit(CallbackList, [cb], model, val_losses([0.5, 0.6, 0.4, 0.45]))
    # Epoch numbers in names count from 1; only epochs 1 and 3 improved.
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["01-0.50.keras", "03-0.40.keras"]
    assert (tmp_path / "ckpt" / "03-0.40.keras").read_text() == "model 2"
    assert cb.best == 0.4


def test_checkpoint_fixed_path_is_overwritten_only_by_better_models(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = FakeModel()
    run_fit(CallbackList, [ModelCheckpoint(path, save_best_only=True, save_weights_only=True)], model,
            val_losses([0.5, 0.3, 0.4, 0.35]))
    assert path.read_text() == "weights 1"                   # epoch 1 (val_loss 0.3) was the best
    assert [kind for kind, _ in model.saved] == ["weights", "weights"]
    assert os.listdir(tmp_path) == ["best.weights.h5"]       # no temporary file left


def test_checkpoint_without_save_best_only_saves_every_epoch(tmp_path):
    run_fit(CallbackList, [ModelCheckpoint(tmp_path / "m-{epoch}.keras")], FakeModel(), val_losses([3, 2, 1]))
    assert sorted(os.listdir(tmp_path)) == ["m-1.keras", "m-2.keras", "m-3.keras"]


@pytest.mark.parametrize("mode, expected", [("auto", ["01", "02", "04"]), ("max", ["01", "02", "04"]),
                                            ("min", ["01", "03"])])
def test_checkpoint_modes(tmp_path, mode, expected):
    logs = [{"val_accuracy": a} for a in (0.5, 0.7, 0.4, 0.8)]
    run_fit(CallbackList, [ModelCheckpoint(tmp_path / "{epoch:02d}.keras", monitor="val_accuracy", mode=mode,
                                           save_best_only=True)], FakeModel(), logs)
    assert sorted(name[:2] for name in os.listdir(tmp_path)) == expected


def test_checkpoint_initial_value_threshold(tmp_path):
    run_fit(CallbackList, [ModelCheckpoint(tmp_path / "{epoch}.keras", save_best_only=True,
                                           initial_value_threshold=0.45)], FakeModel(),
            val_losses([0.5, 0.6, 0.4, 0.45]))
    assert os.listdir(tmp_path) == ["3.keras"]


def test_checkpoint_decisions_match_keras(keras, tmp_path):
    logs = [{"val_accuracy": a, "val_loss": 1 - a} for a in (0.5, 0.7, 0.6, 0.8, 0.8, 0.81)]
    for lib, cb_list, folder in ((callbacks, CallbackList, "ours"), (keras.callbacks, keras.callbacks.CallbackList,
                                                                      "keras")):
        run_fit(cb_list, [lib.ModelCheckpoint(str(tmp_path / folder / "{epoch:02d}-{val_loss:.2f}.keras"),
                                              monitor="val_accuracy", mode="max", save_best_only=True,
                                              initial_value_threshold=0.55)], FakeModel(), logs)
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "keras"))


def test_checkpoint_writes_atomically(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = FakeModel()
    cb = ModelCheckpoint(path, save_weights_only=True)
    run_fit(CallbackList, [cb], model, val_losses([0.5]))
    (kind, given), = model.saved
    # The saver got a temporary path beside the target that keeps the target's extensions.
    assert given != str(path) and os.path.dirname(given) == str(tmp_path) and given.endswith(".weights.h5")
    assert path.read_text() == "weights 0"

    def broken_saver(filepath, **kwargs):
        with open(filepath, "w") as f:
            f.write("half a checkp")
        raise OSError("disk full")

    model.save_weights = broken_saver
    with pytest.raises(OSError, match="disk full"):
        run_fit(CallbackList, [cb], model, val_losses([0.4]))
    assert path.read_text() == "weights 0"                 # the previous checkpoint is intact
    assert os.listdir(tmp_path) == ["best.weights.h5"]     # and the temporary file is gone


def test_checkpoint_saver_that_appends_its_own_extension(tmp_path):
    model = FakeModel()
    model.save_weights = lambda filepath: np.save(filepath, model.weights[0])  # np.save adds '.npy'
    run_fit(CallbackList, [ModelCheckpoint(tmp_path / "w", save_weights_only=True)], model, val_losses([0.5]))
    assert os.listdir(tmp_path) == ["w.npy"] and np.load(tmp_path / "w.npy").tolist() == [0, 0]


def test_checkpoint_every_n_batches(tmp_path):
    # 3 batches per epoch, save every 2: after batches 2 (epoch 1), 1 and 3 (epoch 2), 2 (epoch 3).
    run_fit(CallbackList, [ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.keras", save_freq=2)], FakeModel(),
            val_losses([1, 1, 1]), steps=3)
    assert sorted(os.listdir(tmp_path)) == ["e1-b2.keras", "e2-b1.keras", "e2-b3.keras", "e3-b2.keras"]


def test_checkpoint_errors_name_the_fix(tmp_path):
    with pytest.raises(KeyError, match="val_acc"):
        run_fit(CallbackList, [ModelCheckpoint(tmp_path / "{val_acc:.2f}.keras")], FakeModel(), val_losses([1]))
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("x.keras", save_freq="batch")


# ----------------------------------------------------------------------------- learning rate
def halve_from_epoch_2(epoch, lr):
    return lr if epoch < 2 else lr * 0.5


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = FakeModel(learning_rate=0.1)
    run_fit(CallbackList, [LearningRateScheduler(halve_from_epoch_2)], model, val_losses([1] * 5))
    assert model.history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025, 0.0125]
    assert model.optimizer.learning_rate == 0.0125
    # The one-argument form schedule(epoch).
    model = FakeModel()
    run_fit(CallbackList, [LearningRateScheduler(lambda epoch: 1e-3 * (epoch + 1))], model, val_losses([1] * 3))
    assert model.history.history["learning_rate"] == pytest.approx([1e-3, 2e-3, 3e-3])


def test_learning_rate_scheduler_matches_keras(keras):
    rates = []
    for lib, cb_list in ((callbacks, CallbackList), (keras.callbacks, keras.callbacks.CallbackList)):
        model = FakeModel(learning_rate=0.1)
        run_fit(cb_list, [lib.LearningRateScheduler(lambda e, lr: lr * math.exp(-0.1) if e >= 2 else lr)], model,
                val_losses([1] * 6))
        rates.append(model.history.history["learning_rate"])
    assert rates[0] == pytest.approx(rates[1], rel=1e-6)


def test_learning_rate_scheduler_rejects_a_non_number():
    with pytest.raises(ValueError, match="should be a float"):
        run_fit(CallbackList, [LearningRateScheduler(lambda epoch, lr: "fast")], FakeModel(), val_losses([1]))


# (val_loss per epoch, arguments, learning rate logged at each epoch's end).
REDUCE_LR_CASES = [
    # factor 0.5, patience 2, cooldown 2, min_lr 0.02, flat loss: reduce at epoch 2; epochs 3, 4 are the
    # cooldown, but epoch 4 (the one where the counter reaches 0) already counts as the first of the
    # next wait (Keras's order), so the next reductions come at 5 and 8, where 0.025 * 0.5 is clipped
    # to 0.02.
    ([1.0] * 10, dict(factor=0.5, patience=2, cooldown=2, min_lr=0.02),
     [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02]),
    # once lr == min_lr nothing changes any more.
    ([1.0] * 6, dict(factor=0.5, patience=1, min_lr=0.05), [0.1, 0.1, 0.05, 0.05, 0.05, 0.05]),
    # patience 1, no cooldown: every epoch that does not improve reduces; 0.9 at epoch 3 resets.
    ([1.0, 1.0, 1.0, 0.9, 0.95, 0.8], dict(factor=0.1, patience=1), [0.1, 0.1, 0.01, 0.001, 0.001, 1e-4]),
    # min_delta 0.1: 0.95 and 0.91 are no improvement on 1.0 -> reduce at epoch 2; 0.85 is.
    ([1.0, 0.95, 0.91, 0.85, 0.8], dict(factor=0.5, patience=2, min_delta=0.1), [0.1, 0.1, 0.1, 0.05, 0.05]),
]


@pytest.mark.parametrize("values, kwargs, expected", REDUCE_LR_CASES)
def test_reduce_lr_on_plateau_schedule(values, kwargs, expected):
    model = FakeModel(learning_rate=0.1)
    run_fit(CallbackList, [ReduceLROnPlateau(**kwargs)], model, val_losses(values))
    assert model.history.history["learning_rate"] == pytest.approx(expected)


@pytest.mark.parametrize("values, kwargs, expected", REDUCE_LR_CASES)
def test_reduce_lr_on_plateau_matches_keras(keras, values, kwargs, expected):
    rates = []
    for lib, cb_list in ((callbacks, CallbackList), (keras.callbacks, keras.callbacks.CallbackList)):
        model = FakeModel(learning_rate=0.1)
        run_fit(cb_list, [lib.ReduceLROnPlateau(**kwargs)], model, val_losses(values))
        rates.append(model.history.history["learning_rate"] + [model.optimizer.learning_rate])
    assert rates[0] == pytest.approx(rates[1], rel=1e-6)


def test_reduce_lr_on_plateau_stops_reducing_at_min_lr(capsys):
    # Epoch 1 halves 0.1 to min_lr 0.05; later plateaus find lr == min_lr and do nothing (no message).
    run_fit(CallbackList, [ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.05, verbose=1)], FakeModel(0.1),
            val_losses([1.0] * 6))
    assert capsys.readouterr().out == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.05.\n"


def test_reduce_lr_on_plateau_rejects_factor_one():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)


# ----------------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32("nan")])
def test_terminate_on_nan_stops_after_the_bad_batch(bad, capsys):
    model, seen = FakeModel(), []
    spy = LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    ran = run_fit(CallbackList, [TerminateOnNaN(), spy], model, val_losses([1, 1, 1]),
                  batch_losses=[[0.5, 0.4, 0.3], [0.5, bad, 0.3], [0.2, 0.2, 0.2]])
    assert model.stop_training and ran == 2 and seen == [0, 1, 2, 0, 1]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_can_raise():
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        run_fit(CallbackList, [TerminateOnNaN(raise_error=True)], FakeModel(), val_losses([1]),
                batch_losses=[[float("nan")] * 3])


# ----------------------------------------------------------------------------- CSVLogger
def test_csv_logger_writes_header_and_rows_then_appends(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "val_accuracy": 0.5},
            {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.5, "val_accuracy": 0.625}]
    run_fit(CallbackList, [CSVLogger(path)], FakeModel(), logs)
    assert path.read_bytes() == (b"epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                                 b"0,0.75,0.5,0.5,0.625\r\n1,0.875,0.25,0.625,0.5\r\n")
    run_fit(CallbackList, [CSVLogger(path, append=True)], FakeModel(), logs[:1])
    assert path.read_text().splitlines()[1:] == ["0,0.75,0.5,0.5,0.625", "1,0.875,0.25,0.625,0.5",
                                                 "0,0.75,0.5,0.5,0.625"]
    run_fit(CallbackList, [CSVLogger(path, separator=";")], FakeModel(), logs[:1])  # append=False overwrites
    assert path.read_text().splitlines() == ["epoch;accuracy;loss;val_accuracy;val_loss", "0;0.75;0.5;0.5;0.625"]


def test_csv_logger_matches_keras_byte_for_byte(keras, tmp_path):
    # Without validation logs Keras adds 'val_*' columns filled with NA; an append adds no second header.
    logs = [{"loss": 0.5, "accuracy": 0.75}, {"loss": 0.25, "accuracy": np.float32(0.875)}]
    for lib, cb_list, name in ((callbacks, CallbackList, "ours.csv"),
                               (keras.callbacks, keras.callbacks.CallbackList, "keras.csv")):
        run_fit(cb_list, [lib.CSVLogger(tmp_path / name)], FakeModel(), logs, validation=False)
        run_fit(cb_list, [lib.CSVLogger(tmp_path / name, separator="\t", append=True)], FakeModel(), logs,
                validation=False)
    ours = (tmp_path / "ours.csv").read_bytes()
    assert ours == (tmp_path / "keras.csv").read_bytes()
    assert ours.startswith(b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.75,0.5,NA,NA\r\n")


# ----------------------------------------------------------------------------- LambdaCallback
def test_lambda_callback_calls_through():
    calls = []
    cb = LambdaCallback(on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
                        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["val_loss"])),
                        on_train_begin=lambda logs: calls.append(("train_begin",)),
                        on_train_end=lambda logs: calls.append(("train_end", logs["val_loss"])),
                        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
                        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
                        on_test_end=lambda logs: calls.append(("test_end", logs["loss"])))
    run_fit(CallbackList, [cb], FakeModel(), [{"loss": 2.0, "val_loss": 3.0}], steps=1)
    assert calls == [("train_begin",), ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, 2.0),
                     ("test_end", 3.0), ("epoch_end", 0, 3.0), ("train_end", 3.0)]


def test_lambda_callback_rejects_an_unknown_hook():
    with pytest.raises(TypeError, match="on_epoch_ends"):
        LambdaCallback(on_epoch_ends=print)
