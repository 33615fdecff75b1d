"""One training run for tests/test_resume.py, in its own process so that it can be killed.

    python tests/resume_worker.py full        OUT   # train EPOCHS epochs uninterrupted
    python tests/resume_worker.py interrupted OUT   # same, checkpointing each epoch; SIGKILLs itself
                                                    #   at batch KILL_BATCH of epoch KILL_EPOCH
    python tests/resume_worker.py resume      OUT   # load OUT/ckpt.chainrule and finish the run

`full` and `resume` write OUT/<mode>.npz: the final weights, plus the end state of the callbacks
and the learning rate, for the test to compare bit for bit. Every source of randomness is in
play: the shuffle order (chainrule.random), an unseeded Dropout (chainrule.random too), a seeded
Dropout (its own generator), BatchNormalization's moving statistics, Adam's state, and a
ReduceLROnPlateau that lowers the rate every other epoch (so its counters must survive the kill).
"""
import json
import os
import signal
import sys

import numpy as np

import chainrule as cr
from chainrule import callbacks, layers, models, optimizers
from chainrule.io.native import load_checkpoint

EPOCHS, KILL_EPOCH, KILL_BATCH = 5, 2, 3   # the checkpoint that survives is the one after epoch index 1
BATCH_SIZE = 16


def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1)
    return x, y


def build():
    cr.random.seed(1234)
    model = models.Sequential([
        layers.Input((10,)),
        layers.Dense(32, activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.25),            # draws from chainrule.random
        layers.Dense(16, activation="tanh"),
        layers.Dropout(0.25, seed=5),    # draws from its own generator
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    return model


def watchers():
    # min_delta is huge, so no epoch after the first "improves": the rate halves every second epoch
    reduce_lr = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=100.0)
    early = callbacks.EarlyStopping(monitor="loss", patience=100)
    return [reduce_lr, early]


class KillAt(callbacks.Callback):
    """SIGKILL this process before batch `batch` of epoch `epoch`: no cleanup, as in a crash."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch == self.kill_batch:
            os.kill(os.getpid(), signal.SIGKILL)


def report(model, watchers_, out, mode):
    reduce_lr, early = watchers_
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays["state"] = np.asarray(json.dumps({
        "learning_rate": float(model.optimizer.learning_rate), "iterations": int(model.optimizer.iterations),
        "reduce_lr": [reduce_lr.wait, reduce_lr.best, reduce_lr.cooldown_counter],
        "early": [early.wait, early.best, early.best_epoch]}))
    np.savez(os.path.join(out, f"{mode}.npz"), **arrays)


def main(mode, out):
    x, y = data()
    checkpoint = os.path.join(out, "ckpt.chainrule")
    if mode == "full":
        model, watch = build(), watchers()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0, callbacks=watch)
    elif mode == "interrupted":
        model, watch = build(), watchers()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0,
                  callbacks=watch + [callbacks.ModelCheckpoint(checkpoint), KillAt(KILL_EPOCH, KILL_BATCH)])
        raise SystemExit("the run should have been killed")
    elif mode == "resume":
        model, state = load_checkpoint(checkpoint)
        watch = watchers()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0, initial_epoch=state["epoch"],
                  callbacks=watch)  # fit restores the callbacks' and RNG state from the checkpoint
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    report(model, watch, out, mode)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
