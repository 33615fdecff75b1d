"""Keras 3's metrics: `chainrule.metrics` works like `keras.metrics`.

A metric keeps running totals across batches: `update_state(y_true, y_pred, sample_weight=None)`
adds a batch, `result()` reads the value (a Python float, or a NumPy array for several
thresholds), `reset_state()` starts over (fit does it every epoch). Everything here runs on
NumPy arrays without recording a graph; Tensors are accepted and read as arrays.

`resolve(identifier, loss, y_true_shape, y_pred_shape)` is what `compile(metrics=[...])` does
with each entry, including Keras's choice of accuracy for 'accuracy' / 'acc'.
"""
import difflib
import inspect
import warnings

import numpy as np

from . import losses as losses_module
from .autograd import Tensor, no_grad
from .losses import (auto_name, binary_crossentropy, categorical_crossentropy, huber, kl_divergence,
                     mean_absolute_error, mean_squared_error, sparse_categorical_crossentropy,
                     squeeze_or_expand_to_same_rank, to_snake_case)
from .variable import as_numpy

EPSILON = 1e-7
NEG_INF = -1e10  # Keras's stand-in score for predictions outside the top k


def _array(x, dtype=None):
    """A NumPy array from a Tensor, array, list or number."""
    a = as_numpy(x)
    return a if dtype is None else a.astype(dtype, copy=False)


def _divide_no_nan(a, b):
    """a / b, and 0 where b is 0 (Keras's ops.divide_no_nan)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, a / safe)


def _value(x):
    """A metric result: a Python float for one value, a float32 array for several."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x.astype(np.float32)


# ----------------------------------------------------------------------------- base
class Metric:
    """Base of all metrics: running state, `update_state`, `result`, `reset_state`.

    Subclass it with your own state in `__init__`, updated in `update_state`, read in `result`.
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or auto_name(type(self).__name__)
        self._dtype = np.dtype(dtype or "float32")

    @property
    def dtype(self):
        return self._dtype.name

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass must implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass must implement result")

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass must implement reset_state")

    def __call__(self, *args, **kwargs):
        """Update with one batch and return the result so far."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _reduce_to_samplewise(values, sample_weight, reduce_fn, dtype):
    """Per-sample values (and weights) from values of any rank, as Keras's reduction metrics
    do: values are first averaged down to the weight's rank, then weighted, then reduced
    to one value per sample."""
    values = np.asarray(values, dtype=dtype)
    weight = None
    if sample_weight is not None:
        weight = _array(sample_weight, dtype)
        values, weight = squeeze_or_expand_to_same_rank(values, weight)
        w_ndim = weight.ndim
        if values.ndim > w_ndim:
            values = reduce_fn(values, axis=tuple(range(w_ndim, values.ndim)))
        weight = np.broadcast_to(weight, values.shape)
        values = values * weight
        if w_ndim > 1:
            weight = reduce_fn(weight, axis=tuple(range(1, w_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, weight


class Sum(Metric):
    """The (weighted) sum of the values seen:  total = sum_i w_i v_i."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        values, _ = _reduce_to_samplewise(_array(values), sample_weight, np.sum, self._dtype)
        self.total += float(np.sum(values, dtype=np.float64))

    def reset_state(self):
        self.total = 0.0

    def result(self):
        return self.total


class Mean(Metric):
    """The (weighted) mean of the values seen:  sum_i w_i v_i / sum_i w_i."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        values, weight = _reduce_to_samplewise(_array(values), sample_weight, np.mean, self._dtype)
        self.total += float(np.sum(values, dtype=np.float64))
        if weight is not None:
            self.count += float(np.sum(weight, dtype=np.float64))
        else:
            self.count += values.shape[0] if values.ndim >= 1 else 1

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def result(self):
        return self.total / self.count if self.count else 0.0


def _detached(x):
    """A Tensor outside any graph (what a metric function receives)."""
    if isinstance(x, Tensor):
        return Tensor(x.data)
    return Tensor(np.asarray(x))


class MeanMetricWrapper(Mean):
    """The running mean of fn(y_true, y_pred, **kwargs), a function giving one value per sample.

    A custom metric function gets detached Tensors and may return a Tensor or an array.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or auto_name("MeanMetricWrapper"), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        with no_grad():
            values = self._fn(_detached(y_true), _detached(y_pred), **self._fn_kwargs)
        return super().update_state(_array(values), sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "fn": losses_module.serialize(self._fn), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("fn"), (dict, str)):
            config["fn"] = deserialize(config["fn"])
        return cls(**config)


# ----------------------------------------------------------------------------- accuracy functions
def accuracy(y_true, y_pred):
    """1 where y_true == y_pred exactly, else 0 (elementwise)."""
    y_pred = _array(y_pred)
    y_true = _array(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where (y_pred > threshold) equals y_true, else 0 (elementwise)."""
    y_pred, y_true = _array(y_pred), _array(y_true)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return (y_true == predicted).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    """1 where argmax(y_true) == argmax(y_pred) over the last axis (one-hot targets), else 0."""
    y_pred = _array(y_pred)
    y_true = np.argmax(_array(y_true), axis=-1).astype(y_pred.dtype)
    shape = y_true.shape
    reshape = y_true.ndim == y_pred.ndim
    if reshape:
        y_true = np.squeeze(y_true, -1)
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(np.float32)
    return matches.reshape(shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the integer label equals argmax(y_pred) over the last axis, else 0."""
    y_pred = _array(y_pred)
    y_true = _array(y_true, y_pred.dtype)
    shape = y_true.shape
    reshape = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if reshape:
        y_true = np.squeeze(y_true, -1)
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(np.float32)
    if reshape:
        matches = matches.reshape(shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = np.squeeze(matches, -1)
    return matches


def _in_top_k(targets, predictions, k):
    """Whether each target's score is at least the k-th largest score of its row (ties count)."""
    classes = predictions.shape[-1]
    k = min(int(k), classes)
    kth = np.partition(predictions, classes - k, axis=-1)[:, classes - k]
    picked = np.take_along_axis(predictions, targets.astype(np.int64)[:, None], axis=-1)[:, 0]
    return picked >= kth


def _top_k_matches(labels, y_pred, k):
    shape = labels.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    matches = _in_top_k(labels.reshape(-1), y_pred, k).astype(np.float32)
    return matches.reshape(shape)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the one-hot target's class is among the k highest scores, else 0."""
    y_pred = _array(y_pred)
    return _top_k_matches(np.argmax(_array(y_true), axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1 where the integer label is among the k highest scores (or, with from_sorted_ids,
    among the first k ids of y_pred), else 0."""
    y_pred = _array(y_pred)
    labels = _array(y_true)
    if not from_sorted_ids:
        return _top_k_matches(labels.astype(np.int32), y_pred, k)
    shape = labels.shape
    ids = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 2 else y_pred
    matches = np.any(labels.reshape(-1, 1).astype(ids.dtype) == ids[:, :k], axis=1).astype(np.float32)
    return matches.reshape(shape)


# ----------------------------------------------------------------------------- wrapped metrics
class _KerasMeanMetric(MeanMetricWrapper):
    """A built-in MeanMetricWrapper: its config is its constructor's arguments."""

    _config_keys = ()

    def get_config(self):
        return {**Metric.get_config(self), **{k: getattr(self, k) for k in self._config_keys}}


class Accuracy(_KerasMeanMetric):
    """How often y_pred equals y_true exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_KerasMeanMetric):
    """How often (y_pred > threshold) matches the 0/1 labels."""

    _config_keys = ("threshold",)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(_KerasMeanMetric):
    """How often argmax(y_pred) matches the one-hot labels."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(_KerasMeanMetric):
    """How often argmax(y_pred) matches the integer labels."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(_KerasMeanMetric):
    """How often the one-hot target is among the k highest scores."""

    _config_keys = ("k",)

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(_KerasMeanMetric):
    """How often the integer label is among the k highest scores."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k, self.from_sorted_ids = k, from_sorted_ids

    def get_config(self):
        config = {**Metric.get_config(self), "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


class MeanSquaredError(_KerasMeanMetric):
    """Running mean of mean((y_true - y_pred)^2) over the last axis."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_KerasMeanMetric):
    """Running mean of mean(|y_true - y_pred|) over the last axis."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """sqrt of the running (weighted) mean of (y_true - y_pred)^2."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _array(y_pred, self._dtype)
        y_true = _array(y_true, self._dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))


class KLDivergence(_KerasMeanMetric):
    """Running mean of sum(t log(t / p)) over the last axis."""

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, dtype=dtype)


class BinaryCrossentropy(_KerasMeanMetric):
    """Running mean of `binary_crossentropy`."""

    _config_keys = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits, self.label_smoothing = from_logits, label_smoothing


class CategoricalCrossentropy(_KerasMeanMetric):
    """Running mean of `categorical_crossentropy`."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0,
                 axis=-1):
        super().__init__(categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class SparseCategoricalCrossentropy(_KerasMeanMetric):
    """Running mean of `sparse_categorical_crossentropy`."""

    _config_keys = ("from_logits", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False,
                 ignore_class=None, axis=-1):
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         ignore_class=ignore_class, axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis


# ----------------------------------------------------------------------------- confusion counts
def _parse_thresholds(thresholds, default):
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    for t in values:
        if not 0 <= t <= 1:
            raise ValueError(f"thresholds must lie in [0, 1], got {t}")
    return [float(t) for t in values]


def is_evenly_distributed_thresholds(thresholds):
    """True for thresholds i / (n - 1), i = 0..n-1 (n >= 3): counts then come from one pass of buckets."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x, k):
    """x with everything but the k largest scores of the last axis set to NEG_INF."""
    k = min(int(k), x.shape[-1])
    top = np.argpartition(-x, k - 1, axis=-1)[..., :k]
    mask = np.zeros(x.shape, dtype=x.dtype)
    np.put_along_axis(mask, top, 1, axis=-1)
    return x * mask + x.dtype.type(NEG_INF) * (1 - mask)


def confusion_counts(y_true, y_pred, thresholds, evenly=False, sample_weight=None, top_k=None, class_id=None,
                     multi_label=False, label_weights=None):
    """(tp, fp, tn, fn) at each threshold, weighted: a prediction is positive when y_pred > threshold.

    Shapes (T,), or (T, labels) with multi_label. With evenly spaced thresholds each prediction
    falls in the bucket ceil(p (T - 1)) - 1, counted once, as Keras's optimized path does.
    """
    y_true = _array(y_true, np.float32)
    y_pred = _array(y_pred, np.float32)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    weight = None
    if sample_weight is not None:
        weight = _array(sample_weight, np.float32)[..., None]
        _, weight = squeeze_or_expand_to_same_rank(y_true, weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(f"class_id={class_id} needs y_pred of shape (num_samples, num_classes), "
                             f"got shape {y_pred.shape}")
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
    weight = np.ones(y_pred.shape, np.float32) if weight is None else np.broadcast_to(weight, y_pred.shape)
    if label_weights is not None and not multi_label:
        weight = weight * np.broadcast_to(np.asarray(label_weights, np.float32)[None], y_pred.shape)
    positive = (y_true != 0).astype(np.float32)
    if not multi_label:
        y_pred, positive, weight = y_pred.reshape(-1, 1), positive.reshape(-1, 1), weight.reshape(-1, 1)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = len(thresholds)

    # bucket b of a prediction: it exceeds the (sorted) thresholds 0..b, and no others
    if evenly:
        with_epsilon = thresholds[0] < 0 or thresholds[-1] > 1
        p = np.clip(y_pred, 0, 1)
        bucket = np.ceil(p * np.float32(n - 1)) - 1
        if with_epsilon:
            bucket = np.maximum(bucket, 0)
        order = np.arange(n)
    else:
        order = np.argsort(thresholds, kind="stable")
        bucket = np.searchsorted(thresholds[order].astype(np.float32), y_pred, side="left") - 1
    bucket = bucket.astype(np.int64)
    labels = y_pred.shape[1]
    keep = bucket >= 0
    slot = (bucket + n * np.arange(labels)[None, :])[keep]

    def count(w):
        per_bucket = np.bincount(slot, weights=w[keep].astype(np.float64), minlength=n * labels)
        at_least = np.cumsum(per_bucket.reshape(labels, n)[:, ::-1], axis=1)[:, ::-1]  # sum of buckets >= i
        out = np.empty((n, labels))
        out[order] = at_least.T
        return out

    tp = count(positive * weight)
    fp = count((1 - positive) * weight)
    fn = (positive * weight).sum(axis=0, dtype=np.float64) - tp
    tn = ((1 - positive) * weight).sum(axis=0, dtype=np.float64) - fp
    if not multi_label:
        tp, fp, tn, fn = tp[:, 0], fp[:, 0], tn[:, 0], fn[:, 0]
    return tp, fp, tn, fn


class _PrecisionRecall(Metric):
    """Shared by Precision and Recall: true positives and one other count per threshold."""

    _other = None  # "false_positives" or "false_negatives"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = is_evenly_distributed_thresholds(self.thresholds)
        self.reset_state()

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds))
        setattr(self, self._other, np.zeros(len(self.thresholds)))

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = confusion_counts(y_true, y_pred, self.thresholds, self._evenly, sample_weight,
                                         self.top_k, self.class_id)
        self.true_positives += tp
        getattr(self, self._other)[...] += fp if self._other == "false_positives" else fn

    def result(self):
        tp = self.true_positives
        r = _divide_no_nan(tp, tp + getattr(self, self._other))
        return _value(r[0] if len(self.thresholds) == 1 else r)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """tp / (tp + fp), a prediction counting as positive when y_pred > threshold (0.5 by default).

    top_k: only the k highest scores of each sample count as positive; class_id: one class only.
    One result per threshold when several are given.
    """

    _other = "false_positives"


class Recall(_PrecisionRecall):
    """tp / (tp + fn), a prediction counting as positive when y_pred > threshold (0.5 by default).

    top_k and class_id as in Precision. One result per threshold when several are given.
    """

    _other = "false_negatives"


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from confusion counts at num_thresholds
    thresholds spread evenly over [0, 1] (Keras's Riemann sum).

    ROC: sum over threshold intervals of d(fpr) * mean(recall at both ends) (trapezoids).
    PR with 'interpolation': Davis & Goadrich's interpolation of precision between thresholds.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        curves = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
        methods = ("interpolation", "majoring", "minoring")
        if str(curve).lower() not in curves:
            raise ValueError(f'AUC: invalid curve "{curve}"; expected one of ["PR", "ROC", "PRGAIN"]')
        if str(summation_method).lower() not in methods:
            raise ValueError(f'AUC: invalid summation_method "{summation_method}"; expected one of {list(methods)}')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            thresholds = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(thresholds) + 2
            self._evenly = is_evenly_distributed_thresholds(np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC: num_thresholds must be an integer > 1, got {num_thresholds}")
            self.num_thresholds = num_thresholds
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        # end points just outside [0, 1], so predictions of exactly 0 or 1 fall inside the range
        self._thresholds = np.array([0.0 - EPSILON] + thresholds + [1.0 + EPSILON])
        self.curve = curves[str(curve).lower()]
        self.summation_method = str(summation_method).lower()
        super().__init__(name=name, dtype=dtype)
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float32)
        self._from_logits = from_logits
        if num_labels and not multi_label:
            raise ValueError("AUC: num_labels is needed only when multi_label=True")
        self._num_labels = num_labels if multi_label else None
        self.reset_state()

    @property
    def thresholds(self):
        """The thresholds, end points included."""
        return list(self._thresholds)

    def reset_state(self):
        shape = (self.num_thresholds,) if not self.multi_label else (self.num_thresholds, self._num_labels or 0)
        self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
        self.true_negatives, self.false_negatives = np.zeros(shape), np.zeros(shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _array(y_pred, np.float32)
        if self.multi_label:
            if y_pred.ndim != 2:
                raise ValueError(f"AUC(multi_label=True) needs y_pred of rank 2 (samples, labels), "
                                 f"got shape {y_pred.shape}")
            if not self._num_labels:
                self._num_labels = y_pred.shape[1]
                self.reset_state()
        if self._from_logits:
            y_pred = (np.tanh(y_pred * 0.5) * 0.5 + 0.5).astype(np.float32)  # sigmoid, overflow-free
        counts = confusion_counts(y_true, y_pred, self._thresholds, self._evenly, sample_weight,
                                  multi_label=self.multi_label,
                                  label_weights=None if self.multi_label else self.label_weights)
        for total, c in zip((self.true_positives, self.false_positives, self.true_negatives,
                             self.false_negatives), counts):
            total += c

    def _average_labels(self, by_label):
        if not self.multi_label:
            return by_label
        if self.label_weights is None:
            return by_label.mean()
        return _divide_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum())

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        increments = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return increments.sum(axis=0)

    def result(self):
        if self.multi_label and not self._num_labels:
            return 0.0  # nothing seen yet: no labels to average over
        if self.curve == "PR" and self.summation_method == "interpolation":
            return _value(self._average_labels(self._interpolate_pr_auc()))
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * _divide_no_nan(fn, tp))
            precision_gain = np.where(tp == 0, 1.0, 1.0 - scale * _divide_no_nan(fp, tp))
            x, y = np.maximum(recall_gain, 0.0), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        by_label = ((x[:-1] - x[1:]) * heights).sum(axis=0)
        return _value(self._average_labels(by_label))

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


# ----------------------------------------------------------------------------- IoU
class MeanIoU(Metric):
    """Mean over classes of IoU_c = tp_c / (tp_c + fp_c + fn_c), from a confusion matrix summed
    over all batches; classes absent from both y_true and y_pred are left out of the mean.

    y_true and y_pred hold class ids (set sparse_y_true/sparse_y_pred=False to pass scores, which
    are argmax-ed over `axis`). As in Keras the counts are integers (dtype 'int32'), so
    fractional sample weights are truncated: pass dtype='float32' to weight by fractions.
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=dtype or "int32")
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.target_class_ids = list(range(num_classes))
        self.reset_state()

    def reset_state(self):
        self.total_cm = np.zeros((self.num_classes, self.num_classes),
                                 dtype=np.int64 if self._dtype.kind in "iu" else np.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _array(y_true), _array(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        y_true = y_true.astype(self._dtype).reshape(-1)
        y_pred = y_pred.astype(self._dtype).reshape(-1)
        if sample_weight is None:
            weight = np.ones(1, self._dtype)
        else:
            weight = _array(sample_weight)
            if weight.dtype.kind == "f" and self._dtype.kind in "iu":
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may result in an "
                              "incorrect weight due to type casting Consider using integer weights.",
                              stacklevel=2)
            weight = weight.astype(self._dtype).reshape(-1)
        weight = np.broadcast_to(weight, y_true.shape)
        n = self.num_classes
        keep = (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)  # out-of-range ids never count
        if self.ignore_class is not None:
            keep &= y_true != self.ignore_class
        cells = y_true[keep].astype(np.int64) * n + y_pred[keep].astype(np.int64)
        cm = np.bincount(cells, weights=weight[keep].astype(np.float64), minlength=n * n).reshape(n, n)
        self.total_cm += cm.astype(self.total_cm.dtype)

    def result(self):
        cm = self.total_cm.astype(np.float64)
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = self.target_class_ids
        tp, denominator = tp[ids], denominator[ids]
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + EPSILON), 0.0)
        return float(iou.sum() / (valid.sum() + EPSILON))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


# ----------------------------------------------------------------------------- lookup
_CLASSES = [Metric, Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
            SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall,
            AUC, MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError, KLDivergence, BinaryCrossentropy,
            CategoricalCrossentropy, SparseCategoricalCrossentropy, MeanIoU]
ALL_OBJECTS = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS.update({to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
                    "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError})


def _lookup(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in ALL_OBJECTS:
        return ALL_OBJECTS[name]
    close = difflib.get_close_matches(name, list(ALL_OBJECTS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Could not interpret metric identifier: {name!r}{hint}")


def serialize(metric):
    """A metric as Keras's config dict: {'module', 'class_name', 'config', 'registered_name'}."""
    if isinstance(metric, Metric):
        return {"module": "keras.metrics", "class_name": type(metric).__name__, "config": metric.get_config(),
                "registered_name": None}
    return losses_module.serialize(metric)


def deserialize(config, custom_objects=None):
    """The metric (class instance or function) described by `serialize`'s dict or a name."""
    if isinstance(config, str):
        return _lookup(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret metric config: {config!r}: expected a dict with "
                         f"'class_name' and 'config'")
    if config["class_name"] == "function":
        name = config["config"]
        if custom_objects and name in custom_objects:
            return custom_objects[name]
        fn = globals().get(name) if name in _FUNCTIONS else None
        return fn if fn is not None else losses_module.deserialize(config, custom_objects)
    return _lookup(config["class_name"], custom_objects).from_config(config.get("config") or {})


def get(identifier):
    """The metric named by `identifier`, as keras.metrics.get returns it: a class name or its
    snake_case ('AUC', 'auc', 'precision', 'mse') or a config dict gives an instance with
    Keras's default name; a Metric instance or a function is returned as is."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _lookup(identifier)
    else:
        obj = identifier
    if not callable(obj):
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}")
    return obj() if inspect.isclass(obj) else obj


def _loss_kind(loss):
    """'binary', 'sparse' or 'categorical' from a loss identifier (used when shapes are unknown)."""
    if isinstance(loss, (list, tuple)) and loss:
        loss = loss[0]
    if isinstance(loss, dict) and "class_name" in loss:
        loss = loss["class_name"]
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None) or type(loss).__name__
    if isinstance(loss, losses_module.LossFunctionWrapper):
        name = getattr(loss.fn, "__name__", name)
    name = to_snake_case(str(name)).lower()
    if "binary" in name or name == "bce":
        return "binary"
    if "sparse" in name:
        return "sparse"
    return "categorical"


def resolve(identifier, loss=None, y_true_shape=None, y_pred_shape=None):
    """What `compile(metrics=[...])` makes of one entry: a Metric named as Keras names it in History.

    'accuracy' / 'acc' keep that name and pick, by Keras 3's rule on the shapes: binary accuracy
    when y_pred has one unit; sparse categorical accuracy when y_true has an axis fewer than
    y_pred, or a last axis of 1 while y_pred has several; categorical accuracy otherwise.
    (Keras 3 looks at the shapes only, so BCE over several sigmoid units gets categorical
    accuracy; the loss decides only when the shapes are not given.)
    Other strings resolve through `get` and are named by the string itself ('mse', 'AUC');
    a Metric keeps its name; a function becomes MeanMetricWrapper named after it.
    """
    if identifier is None:
        raise ValueError("Expected a metric, received None")
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        if y_true_shape is not None and y_pred_shape is not None:
            is_binary, is_sparse = losses_module.is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
            kind = "binary" if is_binary else ("sparse" if is_sparse else "categorical")
        else:
            kind = _loss_kind(loss)
        cls = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy, "categorical": CategoricalAccuracy}
        return cls[kind](name=identifier)
    obj = get(identifier)
    if isinstance(identifier, str):
        name = identifier
    else:
        name = getattr(obj, "name", None) or to_snake_case(getattr(obj, "__name__", type(obj).__name__))
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj, name=name)
    obj.name = name
    return obj


_FUNCTIONS = ("accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
              "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")
__all__ = [c.__name__ for c in _CLASSES] + list(_FUNCTIONS) + [
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "mean_squared_error",
    "mean_absolute_error", "kl_divergence", "huber", "get", "resolve", "serialize", "deserialize"]
