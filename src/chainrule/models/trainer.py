"""compile / fit / evaluate / predict: the Keras training loop on the engine.

One training step (`train_step`) is the whole story: forward with training=True, the
compiled loss plus regularization, `loss.backward()`, `optimizer.apply(grads, weights)`,
then the metrics on NumPy arrays. Everything else here is batching and callbacks.
"""
import numpy as np

from .. import backend
from .. import optimizers as optimizers_module
from ..autograd import Tensor, no_grad
from ..data.batching import ArrayBatches, GeneratorBatches, is_array_like, split_validation
from ..layers.base import flatten
from .compile_utils import CompiledLoss, CompiledMetrics


class _RunningMean:
    """Mean of a per-batch value weighted by batch size (how Keras averages the loss)."""

    def __init__(self, name):
        self.name = name
        self.total = 0.0
        self.count = 0

    def update(self, value, n):
        self.total += float(value) * n
        self.count += n

    def result(self):
        return self.total / self.count if self.count else 0.0

    def reset(self):
        self.total, self.count = 0.0, 0


def _batch_size_of(x):
    return len(flatten(x)[0])


def _class_weights_to_sample_weights(y, class_weight):
    y = np.asarray(y)
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    table = np.ones(int(max(max(class_weight), labels.max())) + 1, dtype=np.float32)
    for k, w in class_weight.items():
        table[int(k)] = w
    return table[labels.astype(np.int64)]


class Trainer:
    """Mixin of Model: the Keras training API."""

    compiled = False
    optimizer = None
    stop_training = False

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure training: the optimizer, the loss per output (and its weight), the metrics."""
        self.optimizer = optimizers_module.get(optimizer)
        # as given, so a saved model can be compiled again the same way (models/serialization.py)
        self._compile_config = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                                "weighted_metrics": weighted_metrics}
        names = self.output_names
        self.compiled_loss = CompiledLoss(loss, loss_weights, names)
        self.compiled_metrics = CompiledMetrics(metrics, weighted_metrics, names, loss)
        self._loss_trackers = [_RunningMean("loss")] + (
            [_RunningMean(f"{n}_loss") for n in names] if len(names) > 1 else [])
        self.compiled = True

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"{what}: the model must be compiled first, e.g. "
                               f"model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')")

    # ------------------------------------------------------------------ one step
    def _as_outputs(self, y):
        """Targets (or predictions) as a list in output order."""
        names = self.output_names
        if y is None:
            return [None] * len(names)
        if isinstance(y, dict):
            return [y.get(n) for n in names]
        if len(names) > 1:
            if not isinstance(y, (list, tuple)) or len(y) != len(names):
                raise ValueError(f"the model has {len(names)} outputs {names}; pass targets as a list "
                                 f"of {len(names)} arrays or a dict keyed by output name")
            return list(y)
        return [y]

    def _sync_trainable(self):
        """Only weights that train get gradients: frozen layers cost no backward work."""
        trainable = self.trainable_weights
        ids = {id(w) for w in trainable}
        for w in self.weights:
            w.requires_grad = id(w) in ids
        return trainable

    def train_step(self, x, y, sample_weight=None):
        y_pred = self._as_outputs(self(x, training=True))
        if self._train_weights is None:  # a model that built its weights on this first call
            self._train_weights = self._sync_trainable()
        y_true = self._as_outputs(y)
        loss, parts = self.compiled_loss(y_true, y_pred, sample_weight, self.losses)
        for w in self._train_weights:
            w.grad = None
        loss.backward()
        self.optimizer.apply([w.grad for w in self._train_weights], self._train_weights)
        for w in self._train_weights:
            if w.constraint is not None:
                w.assign(w.constraint(w))
        self._update_trackers(loss, parts, y_true, y_pred, sample_weight, x)

    def test_step(self, x, y, sample_weight=None):
        with no_grad():
            y_pred = self._as_outputs(self(x, training=False))
            y_true = self._as_outputs(y)
            loss, parts = self.compiled_loss(y_true, y_pred, sample_weight, self.losses)
        self._update_trackers(loss, parts, y_true, y_pred, sample_weight, x)

    def _update_trackers(self, loss, parts, y_true, y_pred, sample_weight, x):
        n = _batch_size_of(x)
        self._loss_trackers[0].update(loss.item(), n)
        for tracker, part in zip(self._loss_trackers[1:], parts):
            if part is not None:
                tracker.update(part.item(), n)
        self.compiled_metrics.update(y_true, y_pred, sample_weight)

    def _logs(self):
        logs = {t.name: t.result() for t in self._loss_trackers}
        for m in self.compiled_metrics.all():
            logs[m.name] = float(m.result())
        return dict(sorted(logs.items()))

    def _reset_trackers(self):
        for t in self._loss_trackers:
            t.reset()
        self.compiled_metrics.reset()

    # ------------------------------------------------------------------ data
    def _batches(self, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None):
        if x is None:
            raise ValueError("no input data: pass x (arrays, a dict of arrays, or a generator of batches)")
        if is_array_like(x):
            if class_weight is not None and y is not None:
                cw = _class_weights_to_sample_weights(flatten(y)[0], class_weight)
                sample_weight = cw if sample_weight is None else np.asarray(sample_weight) * cw
            batches = ArrayBatches(x, y, sample_weight, batch_size=batch_size or 32, shuffle=shuffle)
            if steps is not None:
                batches.steps = steps
            return batches
        if y is not None:
            raise ValueError("when x is a generator or dataset it must yield (x, y) batches; do not pass y too")
        return GeneratorBatches(x, steps)

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs; returns the History (its .history maps each metric to a list)."""
        from ..callbacks import CallbackList
        self._require_compiled("fit")
        if validation_split and validation_data is None:
            if not is_array_like(x):
                raise ValueError("validation_split needs arrays; with a generator pass validation_data instead")
            (x, y, sample_weight), validation_data = split_validation(x, y, sample_weight, validation_split)
        train = self._batches(x, y, sample_weight, batch_size, shuffle, steps_per_epoch, class_weight)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
                vx, vy, *vsw = validation_data
                val = self._batches(vx, vy, vsw[0] if vsw else None, validation_batch_size or batch_size,
                                    False, validation_steps)
            else:
                val = self._batches(validation_data, None, None, None, False, validation_steps)
        steps = _limited_len(train)
        verbose = 1 if verbose == "auto" else verbose
        cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                           verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        self._train_weights = self._sync_trainable() if self.built else None
        self._fit_callbacks = cbs.callbacks  # what a .chainrule checkpoint saves the state of
        cbs.on_train_begin()
        # after on_train_begin, which resets EarlyStopping & co: a resumed run puts their state back
        from ..io.native import restore_training_state
        restore_training_state(self, cbs.callbacks, initial_epoch)
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self._reset_trackers()
            cbs.on_epoch_begin(epoch)
            for step, (bx, by, bsw) in enumerate(_limited(train)):
                cbs.on_train_batch_begin(step)
                self.train_step(bx, by, bsw)
                logs = self._logs()
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_batches(val, cbs)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        self._fit_callbacks = None
        return self.history  # CallbackList set it to its History callback

    # ------------------------------------------------------------------ evaluate / predict
    def _evaluate_batches(self, batches, cbs):
        self._reset_trackers()
        cbs.on_test_begin()
        logs = {}
        for step, (bx, by, bsw) in enumerate(_limited(batches)):
            cbs.on_test_batch_begin(step)
            self.test_step(bx, by, bsw)
            logs = self._logs()
            cbs.on_test_batch_end(step, logs)
        logs = self._logs()
        cbs.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on data: a scalar if there is one value, else [loss, ...], or a dict."""
        from ..callbacks import CallbackList
        self._require_compiled("evaluate")
        batches = self._batches(x, y, sample_weight, batch_size, False, steps)
        verbose = 1 if verbose == "auto" else verbose
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0, model=self,
                           verbose=verbose, epochs=1, steps=_limited_len(batches))
        logs = self._evaluate_batches(batches, cbs)
        if return_dict:
            return logs
        values = [logs[t.name] for t in self._loss_trackers] + [logs[m.name] for m in self.compiled_metrics.all()]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, batch by batch, with no graph recorded; NumPy arrays."""
        from ..callbacks import CallbackList
        batches = self._batches(x, None, None, batch_size, False, steps)
        verbose = 1 if verbose == "auto" else verbose
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0, model=self,
                           verbose=verbose, epochs=1, steps=_limited_len(batches))
        cbs.on_predict_begin()
        outputs = []
        for step, (bx, _, _) in enumerate(_limited(batches)):
            cbs.on_predict_batch_begin(step)
            out = self.predict_on_batch(bx)
            outputs.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("predict: the input had no samples")
        return _concat_structures(outputs)

    # ------------------------------------------------------------------ single batches
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        if class_weight is not None:
            cw = _class_weights_to_sample_weights(flatten(y)[0], class_weight)
            sample_weight = cw if sample_weight is None else np.asarray(sample_weight) * cw
        self._train_weights = self._sync_trainable() if self.built else None
        self._reset_trackers()
        self.train_step(x, y, sample_weight)
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        self._reset_trackers()
        self.test_step(x, y, sample_weight)
        return self._batch_result(return_dict)

    def predict_on_batch(self, x):
        with no_grad():
            out = self(x, training=False)
        return _to_numpy_structure(out)

    def _batch_result(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        values = [logs[t.name] for t in self._loss_trackers] + [logs[m.name] for m in self.compiled_metrics.all()]
        return values[0] if len(values) == 1 else values


def _limited(batches):
    steps = getattr(batches, "steps", None)
    if steps is None or isinstance(batches, GeneratorBatches):
        return iter(batches)
    return (b for i, b in zip(range(steps), batches))


def _limited_len(batches):
    n = len(batches)
    steps = getattr(batches, "steps", None)
    return n if steps is None or n is None else min(n, steps)


def _to_numpy_structure(out):
    if isinstance(out, Tensor):
        return backend.to_numpy(out.data)
    if isinstance(out, dict):
        return {k: _to_numpy_structure(v) for k, v in out.items()}
    return [_to_numpy_structure(o) for o in out]


def _concat_structures(parts):
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([p[i] for p in parts]) for i in range(len(first))]
    return np.concatenate(parts)

