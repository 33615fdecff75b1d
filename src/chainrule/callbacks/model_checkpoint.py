"""ModelCheckpoint: save the model (or its weights) every epoch, every N batches, or on improvement.

Every save is atomic: the saver writes a temporary file beside the target, which
then replaces the target in one `os.replace`. A run killed mid-save leaves the last
good checkpoint in place, never a half-written one.
"""
import os
import warnings

import numpy as np

from ..io.atomic import atomic_save
from .monitor_callback import MonitorCallback


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights during training (Keras 3's ModelCheckpoint).

    Args:
        filepath: where to save; may hold `{epoch:02d}` (epoch counted from 1) and any
            logged name, e.g. 'ckpt/{epoch:02d}-{val_loss:.2f}.keras'.
        monitor: quantity that decides "best" when `save_best_only`.
        verbose: 1 prints a line at each decision and save.
        save_best_only: save only when `monitor` improves on the best so far.
        save_weights_only: `model.save_weights(path)` instead of `model.save(path)`.
        mode: 'auto', 'min' or 'max'.
        save_freq: 'epoch', or an integer N to save every N training batches.
        initial_value_threshold: starting "best" value that a save must beat.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool)):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer "
                             "values (save every that many batches).")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch started: batches count from 0 again
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                          "Falling back to `save_best_only=False`.", stacklevel=3)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                      f"saving model to {filepath}", flush=True)
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}", flush=True)
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IsADirectoryError("Please specify a non-directory filepath for ModelCheckpoint. "
                                    f"Filepath used is an existing directory: {filepath}")
        if not self._should_save_model(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if not self.save_weights_only and filepath.endswith(".chainrule"):
            # a .chainrule checkpoint also holds what an exact resume needs (epoch, RNG, callback state)
            from ..io.native import save_checkpoint
            save_checkpoint(self.model, filepath, epoch, batch=batch,
                            callbacks=getattr(self.model, "_fit_callbacks", None))
        else:
            atomic_save(self.model.save_weights if self.save_weights_only else self.model.save, filepath)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}", flush=True)

    def _get_file_path(self, epoch, batch, logs):
        """`filepath` with its placeholders filled: epoch and batch counted from 1, plus the logs."""
        fields = {key: value for key, value in logs.items() if key != "epoch"}
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(epoch=epoch + 1, **fields)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e} is not '
                           f"in the logs, which hold {sorted(logs)}.") from None
