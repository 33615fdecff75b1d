"""Callback: the base class of every callback, with one no-op method per moment of the loop.

`fit` calls, in order::

    on_train_begin
      on_epoch_begin(epoch)                      epoch counts from 0
        on_train_batch_begin(batch) / on_train_batch_end(batch, logs)
        on_test_begin ... on_test_batch_* ... on_test_end      (validation, if any)
      on_epoch_end(epoch, logs)                  logs: {'loss', 'accuracy', 'val_loss', ...}
    on_train_end

`evaluate` uses the on_test_* hooks and `predict` the on_predict_* hooks.
"""


class Callback:
    """Base class for callbacks (Keras 3's `keras.callbacks.Callback`): override the hooks you need.

    Attributes:
        model: the model being trained (set by `set_model`).
        params: dict of the run's parameters, e.g. `{'verbose': 1, 'epochs': 10, 'steps': 1875}`.
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model):
        # tf.keras code sometimes assigns `callback.model = ...` directly.
        self._model = model

    # Backwards-compatible aliases: Keras calls them from the train-batch hooks below.
    def on_batch_begin(self, batch, logs=None):
        """Alias of `on_train_batch_begin`, kept for old code."""

    def on_batch_end(self, batch, logs=None):
        """Alias of `on_train_batch_end`, kept for old code."""

    def on_epoch_begin(self, epoch, logs=None):
        """At the start of epoch `epoch` (from 0) of `fit`."""

    def on_epoch_end(self, epoch, logs=None):
        """At the end of an epoch of `fit`; logs hold the epoch's metrics, validation ones as 'val_*'."""

    def on_train_batch_begin(self, batch, logs=None):
        """Before training batch `batch` (from 0 in each epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """After a training batch; logs hold the running averages of the epoch so far."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Before a batch of `evaluate` or of the validation inside `fit`."""

    def on_test_batch_end(self, batch, logs=None):
        """After a batch of `evaluate` or of validation; logs hold the running averages."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Before a batch of `predict`."""

    def on_predict_batch_end(self, batch, logs=None):
        """After a batch of `predict`."""

    def on_train_begin(self, logs=None):
        """At the start of `fit`."""

    def on_train_end(self, logs=None):
        """At the end of `fit`; logs are those of the last epoch."""

    def on_test_begin(self, logs=None):
        """At the start of `evaluate` or of a validation pass."""

    def on_test_end(self, logs=None):
        """At the end of `evaluate` or of a validation pass."""

    def on_predict_begin(self, logs=None):
        """At the start of `predict`."""

    def on_predict_end(self, logs=None):
        """At the end of `predict`."""


HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))
