"""LearningRateScheduler: set the learning rate at the start of each epoch from a function."""
import inspect

from ._learning_rate import as_float_learning_rate, get_learning_rate, set_learning_rate
from .callback import Callback


def _takes_two_arguments(fn):
    """True for schedule(epoch, lr), False for schedule(epoch); None if the signature is unknown."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class LearningRateScheduler(Callback):
    """Learning rate scheduler (Keras 3's LearningRateScheduler).

    At the start of every epoch: `lr = schedule(epoch, lr)` (or `schedule(epoch)`),
    with `epoch` counted from 0; the new rate goes into `model.optimizer.learning_rate`
    and is logged as 'learning_rate' at the epoch's end.

    Args:
        schedule: function of (epoch, current learning rate) or of epoch alone, returning a float.
        verbose: 1 prints the rate set at each epoch.

    Example::

        def schedule(epoch, lr):
            return lr if epoch < 10 else lr * math.exp(-0.1)
        model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(schedule)])
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _new_learning_rate(self, epoch):
        optimizer = self.model.optimizer
        lr = get_learning_rate(optimizer, "LearningRateScheduler")
        two = _takes_two_arguments(self.schedule)
        if two is None:  # unknown signature: Keras's way, try the new form first
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr) if two else self.schedule(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        lr = as_float_learning_rate(self._new_learning_rate(epoch), "LearningRateScheduler")
        set_learning_rate(self.model.optimizer, lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model.optimizer, "LearningRateScheduler")
