"""LambdaCallback: a callback made of plain functions, for one-liners."""
from .callback import HOOKS, Callback


class LambdaCallback(Callback):
    """A callback whose hooks are the functions given (Keras 3's LambdaCallback).

    The functions are called as the hooks are: `on_epoch_begin(epoch, logs)`,
    `on_epoch_end(epoch, logs)`, `on_train_begin(logs)`, `on_train_end(logs)`,
    `on_train_batch_begin(batch, logs=...)`, `on_train_batch_end(batch, logs=...)`;
    any other hook by name, e.g. `on_test_end=fn`.

    Example::

        print_loss = LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hook(s) {unknown}; the hooks are {list(HOOKS)}.")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in given.items():
            if fn is not None:
                setattr(self, name, fn)  # an instance attribute: called without `self`
