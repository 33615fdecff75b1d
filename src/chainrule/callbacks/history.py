"""History: the record of every epoch's logs, which `fit` returns."""
from .callback import Callback


class History(Callback):
    """Records each epoch's logs (Keras 3's `keras.callbacks.History`); `fit` returns it.

    Attributes:
        history: dict of lists, e.g. `{'loss': [0.52, 0.31], 'val_loss': [0.48, 0.40]}`.
        epoch: the epoch indices recorded, `[0, 1]`.
        params: the run's parameters, `{'verbose': 1, 'epochs': 2, 'steps': 1875}`.
        model: the model trained.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        # `history` keeps growing over several fit calls with the same History, as in Keras.
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self  # the latest record, also when fit is interrupted
