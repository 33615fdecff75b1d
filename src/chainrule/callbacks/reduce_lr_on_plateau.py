"""ReduceLROnPlateau: divide the learning rate when the monitored quantity stalls."""
import warnings

import numpy as np

from ._learning_rate import get_learning_rate, set_learning_rate
from .monitor_callback import MonitorCallback


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when `monitor` has stopped improving (Keras 3's ReduceLROnPlateau).

    After `patience` epochs without an improvement larger than `min_delta`::

        lr = max(lr * factor, min_lr)

    then wait `cooldown` epochs (counted as neither better nor worse) before watching again.
    The rate is logged as 'learning_rate' at each epoch's end.

    Args:
        monitor: quantity to watch, e.g. 'val_loss'.
        factor: new_lr = lr * factor; must be < 1.
        patience: epochs without improvement before a reduction.
        verbose: 1 prints each reduction.
        mode: 'auto', 'min' or 'max'.
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound on the learning rate.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0 (it would not reduce the "
                             f"learning rate). Received factor={factor}; use e.g. factor=0.1 or 0.5.")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _reduce_lr(self, epoch):
        optimizer = self.model.optimizer
        old_lr = get_learning_rate(optimizer, "ReduceLROnPlateau")
        # Compared in float32, as the optimizer stores the rate: once it has reached min_lr
        # it is not "reduced" again by a rounding difference.
        if np.float32(old_lr) <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        set_learning_rate(optimizer, new_lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.", flush=True)
        return True

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = get_learning_rate(self.model.optimizer, "ReduceLROnPlateau")
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs.keys())}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0
