"""Exact resume: a run killed during epoch k+1 and resumed from its epoch-k checkpoint ends with the
same weights, bit for bit, as a run that was never interrupted.

The end-to-end test runs tests/resume_worker.py three times in subprocesses (uninterrupted; killed
with SIGKILL mid-epoch; resumed). The smaller tests below check each piece of the training state
on its own: RNG states, callback states, and the rules for when they are put back.
"""
import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import callbacks, layers, models, optimizers
from chainrule.io.native import (ModelFileError, load_checkpoint, restore_training_state, save_checkpoint,
                                 save_native)

pytest.importorskip("safetensors")
WORKER = os.path.join(os.path.dirname(__file__), "resume_worker.py")


def _run_worker(mode, out):
    return subprocess.run([sys.executable, WORKER, mode, str(out)], capture_output=True, timeout=300)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_and_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path):
    full = _run_worker("full", tmp_path)
    assert full.returncode == 0, full.stderr.decode()

    killed = _run_worker("interrupted", tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    _, state = load_checkpoint(tmp_path / "ckpt.chainrule")
    assert state["epoch"] == 2 and state["epoch_complete"]  # the kill came in epoch index 2

    resumed = _run_worker("resume", tmp_path)
    assert resumed.returncode == 0, resumed.stderr.decode()

    a, b = np.load(tmp_path / "full.npz", allow_pickle=False), np.load(tmp_path / "resume.npz", allow_pickle=False)
    weights = sorted(k for k in a.files if k.startswith("w"))
    assert weights == sorted(k for k in b.files if k.startswith("w")) and weights
    for k in weights:
        assert np.array_equal(a[k], b[k]), f"weight {k} differs by up to {np.abs(a[k] - b[k]).max()}"
    end_a, end_b = json.loads(str(a["state"])), json.loads(str(b["state"]))
    assert end_a == end_b
    assert end_a["learning_rate"] == 0.0025  # 0.01 halved twice: ReduceLROnPlateau's counters survived the kill


# ----------------------------------------------------------------------------- the pieces
def _model():
    cr.random.seed(11)
    model = models.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                               layers.Dropout(0.5, seed=3), layers.Dense(2)])
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _fit_one_epoch(model, rng):
    x, y = rng.normal(size=(32, 4)).astype(np.float32), rng.normal(size=(32, 2)).astype(np.float32)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def test_checkpoint_restores_the_global_and_the_layer_generators(tmp_path, rng):
    model = _model()
    _fit_one_epoch(model, rng)
    save_checkpoint(model, tmp_path / "c.chainrule", epoch=0)
    dropout = model.layers[1]
    expected_global = cr.random.generator().random(5)
    expected_layer = dropout._rng.random(5)

    cr.random.seed(999)  # a new process would start from anywhere
    loaded, state = load_checkpoint(tmp_path / "c.chainrule")
    assert state["epoch"] == 1 and state["batch"] is None
    np.testing.assert_array_equal(cr.random.generator().random(5), expected_global)
    np.testing.assert_array_equal(loaded.layers[1]._rng.random(5), expected_layer)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 4


def test_callback_states_come_back_after_on_train_begin_resets_them(tmp_path, rng):
    model = _model()
    early = callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    reduce_lr = callbacks.ReduceLROnPlateau(monitor="loss", patience=3, cooldown=2)
    for cb in (early, reduce_lr):
        cb.set_model(model)
    early.wait, early.best, early.best_epoch, early.best_weights = 2, 0.25, 1, model.get_weights()
    reduce_lr.wait, reduce_lr.best, reduce_lr.cooldown_counter = 1, 0.5, 1
    save_checkpoint(model, tmp_path / "c.chainrule", epoch=3, callbacks=[early, reduce_lr])

    loaded, state = load_checkpoint(tmp_path / "c.chainrule")
    new_early = callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    new_reduce = callbacks.ReduceLROnPlateau(monitor="loss", patience=3, cooldown=2)
    cbs = [new_reduce, new_early]  # another order: matched by class, not position
    for cb in cbs:
        cb.set_model(loaded)
        cb.on_train_begin()  # what fit does first: both reset themselves
    assert restore_training_state(loaded, cbs, initial_epoch=state["epoch"])
    assert (new_early.wait, new_early.best, new_early.best_epoch) == (2, 0.25, 1)
    assert all(np.array_equal(a, b) for a, b in zip(new_early.best_weights, model.get_weights()))
    assert (new_reduce.wait, new_reduce.best, new_reduce.cooldown_counter) == (1, 0.5, 1)
    assert not restore_training_state(loaded, cbs, initial_epoch=state["epoch"])  # used once only


def test_fit_from_another_epoch_is_a_new_run_and_says_so(tmp_path, rng):
    model = _model()
    early = callbacks.EarlyStopping(monitor="loss")
    early.wait = 4
    save_checkpoint(model, tmp_path / "c.chainrule", epoch=2, callbacks=[early])
    loaded, _ = load_checkpoint(tmp_path / "c.chainrule")
    fresh = callbacks.EarlyStopping(monitor="loss")
    with pytest.warns(UserWarning, match="initial_epoch=state"):
        assert not restore_training_state(loaded, [fresh], initial_epoch=0)
    assert fresh.wait == 0


def test_mid_epoch_checkpoint_warns_that_the_resume_is_not_exact(tmp_path):
    model = _model()
    save_checkpoint(model, tmp_path / "c.chainrule", epoch=2, batch=4)
    loaded, state = load_checkpoint(tmp_path / "c.chainrule")
    assert (state["epoch"], state["epoch_complete"], state["batch"]) == (2, False, 4)
    with pytest.warns(UserWarning, match="within epoch 3"):
        restore_training_state(loaded, [], initial_epoch=2)


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    save_native(_model(), tmp_path / "m.chainrule")
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "m.chainrule")


def test_plain_model_loading_ignores_the_training_state(tmp_path, rng):
    from chainrule.io.native import load_native
    model = _model()
    save_checkpoint(model, tmp_path / "c.chainrule", epoch=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_native(tmp_path / "c.chainrule")
        assert not restore_training_state(loaded, [], initial_epoch=0)  # nothing pending, nothing said
