"""CallbackList: the training loop's single handle on all its callbacks.

The loop calls `callbacks.on_epoch_end(epoch, logs)` once; the list turns the logs into
plain Python floats with sorted keys (as Keras does) and passes the same dict to each
callback in order, so a key one callback adds (ReduceLROnPlateau's 'learning_rate')
is seen by those after it: History, added last, records it.
"""
from .callback import Callback
from .history import History
from .progbar_logger import ProgbarLogger


def pythonify_logs(logs):
    """A new dict with sorted keys, nested dicts flattened, numbers (NumPy, 0-d arrays, Tensors) as floats."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        if not isinstance(value, (str, bytes)):
            try:
                value = float(value.numpy() if hasattr(value, "numpy") else value)
            except (TypeError, ValueError):
                pass  # not a scalar: passed through as it is
        result[key] = value
    return result


def _flatten(callbacks):
    for cb in callbacks:
        if isinstance(cb, (list, tuple)):
            yield from _flatten(cb)
        else:
            yield cb


class CallbackList(Callback):
    """Calls each of `callbacks` in turn (Keras 3's `keras.callbacks.CallbackList`).

    Args:
        callbacks: list of Callback instances.
        add_history: append a `History` if the list has none.
        add_progbar: append a `ProgbarLogger` if the list has none.
        model: the model the callbacks act on (`set_model` on each).
        **params: the run's parameters (verbose, epochs, steps), given to each by `set_params`.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = list(_flatten(callbacks)) if callbacks else []
        for cb in self.callbacks:
            _check_callback(cb)
        self._in_begin_end_block_count = 0
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback):
        """Add one more callback at the end of the list."""
        _check_callback(callback)
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def __iter__(self):
        return iter(self.callbacks)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    # ------------------------------------------------------------------ dispatch
    def _call_all(self, hook, *args, **kwargs):
        for cb in self.callbacks:
            getattr(cb, hook)(*args, **kwargs)

    def _begin(self):
        self._in_begin_end_block_count += 1

    def _end(self):
        self._in_begin_end_block_count -= 1
        if self._in_begin_end_block_count < 0:
            raise ValueError("CallbackList: an `on_*_end` was called without its `on_*_begin` "
                             "(e.g. on_train_end before on_train_begin); call the begin hook first.")

    def on_batch_begin(self, batch, logs=None):
        self._call_all("on_batch_begin", batch, logs=pythonify_logs(logs))

    def on_batch_end(self, batch, logs=None):
        self._call_all("on_batch_end", batch, logs=pythonify_logs(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self._call_all("on_epoch_begin", epoch, pythonify_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        # checkpoints last, so a saved snapshot holds this epoch's learning rate and counters
        from .model_checkpoint import ModelCheckpoint
        logs = pythonify_logs(logs)
        ordered = sorted(self.callbacks, key=lambda cb: isinstance(cb, ModelCheckpoint))
        for cb in ordered:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_all("on_train_batch_begin", batch, logs=pythonify_logs(logs))

    def on_train_batch_end(self, batch, logs=None):
        self._call_all("on_train_batch_end", batch, logs=pythonify_logs(logs))

    def on_test_batch_begin(self, batch, logs=None):
        self._call_all("on_test_batch_begin", batch, logs=pythonify_logs(logs))

    def on_test_batch_end(self, batch, logs=None):
        self._call_all("on_test_batch_end", batch, logs=pythonify_logs(logs))

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_all("on_predict_batch_begin", batch, logs=pythonify_logs(logs))

    def on_predict_batch_end(self, batch, logs=None):
        self._call_all("on_predict_batch_end", batch, logs=pythonify_logs(logs))

    def on_train_begin(self, logs=None):
        self._begin()
        self._call_all("on_train_begin", pythonify_logs(logs))

    def on_train_end(self, logs=None):
        self._call_all("on_train_end", pythonify_logs(logs))
        self._end()

    def on_test_begin(self, logs=None):
        self._begin()
        self._call_all("on_test_begin", pythonify_logs(logs))

    def on_test_end(self, logs=None):
        self._call_all("on_test_end", pythonify_logs(logs))
        self._end()

    def on_predict_begin(self, logs=None):
        self._begin()
        self._call_all("on_predict_begin", pythonify_logs(logs))

    def on_predict_end(self, logs=None):
        self._call_all("on_predict_end", pythonify_logs(logs))
        self._end()


def _check_callback(cb):
    if isinstance(cb, type):
        raise TypeError(f"callbacks: got the class {cb.__name__}, expected an instance: "
                        f"pass {cb.__name__}(...) instead of {cb.__name__}.")
    if not hasattr(cb, "set_model") or not hasattr(cb, "on_epoch_end"):
        raise TypeError(f"callbacks: got {cb!r} of type {type(cb).__name__}, which is not a Callback; "
                        "subclass chainrule.callbacks.Callback or use LambdaCallback(on_epoch_end=fn).")
