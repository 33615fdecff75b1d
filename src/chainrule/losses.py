"""Keras 3's losses on the engine: `chainrule.losses` works like `keras.losses`.

Argument order is Keras's (y_true, y_pred). Each function returns one loss per sample
(y_pred's shape without the class/last axis) as a Tensor differentiable w.r.t. y_pred;
each class wraps a function and reduces it to a scalar, by default with
"sum_over_batch_size": sum(w * loss) / (number of loss values).

The arithmetic lives in the fused nodes of `chainrule.ops.loss`; this file adds Keras's
conventions (label smoothing, clipping, ignore_class, sample weights, reductions, names
and configs) and errors that say which loss failed, on what shapes, and how to fix it.
"""
import difflib
import inspect
import re
import warnings

import numpy as np

from . import backend
from .autograd import Tensor
from .ops import loss as fused
from .ops import math as ops_math

EPSILON = 1e-7  # keras.backend.epsilon()
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)

_name_counts = {}


def to_snake_case(name):
    """'MeanIoU' -> 'mean_io_u', 'AUC' -> 'auc' (Keras's keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(prefix):
    """A fresh name 'prefix', then 'prefix_1', 'prefix_2', ... as Keras names unnamed losses and metrics."""
    base = to_snake_case(prefix)
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


# ----------------------------------------------------------------------------- inputs
def _as_pred(y_pred, dtype=None):
    """y_pred as a float Tensor (kept in the graph). Lists and integer arrays become float32;
    float arrays and Tensors keep their dtype, as Keras's loss functions do; `dtype` casts."""
    if not isinstance(y_pred, Tensor):
        arr = np.asarray(y_pred) if backend.array_module(y_pred) is np else y_pred
        if arr.dtype.kind != "f" or not hasattr(y_pred, "dtype"):  # lists and ints: float32, as Keras
            arr = arr.astype(dtype or backend.default_float())
        y_pred = Tensor(arr)
    if dtype is not None and y_pred.dtype != np.dtype(dtype):
        return ops_math.cast(y_pred, dtype)
    if y_pred.dtype.kind != "f":
        return ops_math.cast(y_pred, backend.default_float())
    return y_pred


def _raw(y):
    """The array inside a Tensor, or the array itself."""
    return y.data if isinstance(y, Tensor) else y


def _with_shape(y):
    """Lists and numbers as arrays; Tensors and arrays as they are."""
    return y if hasattr(y, "shape") else np.asarray(y)


def _as_target(y_true, y_pred):
    """y_true as a constant array of y_pred's dtype: targets never receive a gradient."""
    xp = backend.array_module(y_pred.data)
    return xp.asarray(_raw(y_true), dtype=y_pred.dtype)


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Line up ranks that differ by one trailing axis of size 1, as Keras does before a loss:
    (batch,) against (batch, 1) becomes (batch, 1) against (batch, 1)."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.reshape(tuple(x2.shape) + (1,))
        else:
            x1 = x1.reshape(tuple(x1.shape[:-1]))
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.reshape(tuple(x1.shape) + (1,))
        else:
            x2 = x2.reshape(tuple(x2.shape[:-1]))
    return x1, x2


def _class_axis_last(y_pred, target, axis):
    """Move the class axis to the end, where the fused cross-entropies reduce."""
    axis = axis % y_pred.ndim
    if axis == y_pred.ndim - 1:
        return y_pred, target
    order = [i for i in range(y_pred.ndim) if i != axis] + [axis]
    if target is not None and target.ndim == y_pred.ndim:
        target = target.transpose(order)
    return y_pred.permute(order), target


def _check_probabilities(name, y_pred, activation, low_only=False):
    """Catch logits passed where probabilities are expected: Keras would clip them silently."""
    p = y_pred.data
    if p.size == 0:
        return
    lo, hi = float(p.min()), float(p.max())
    if lo < 0 or (not low_only and hi > 1):
        cls = "".join(w.capitalize() for w in name.split("_"))
        raise ValueError(
            f"{name}: y_pred of shape {tuple(y_pred.shape)} has values in [{lo:.4g}, {hi:.4g}], "
            f"but from_logits=False expects probabilities in [0, 1]; these look like logits: pass "
            f"from_logits=True ({name}(..., from_logits=True) or {cls}(from_logits=True)), or end "
            f"the model with activation='{activation}'")


def _check_same_shape(name, target, y_pred, hint=""):
    if tuple(target.shape) != tuple(y_pred.shape):
        raise ValueError(f"{name}: y_true of shape {tuple(target.shape)} and y_pred of shape "
                         f"{tuple(y_pred.shape)} differ; they must have the same shape{hint}")


# ----------------------------------------------------------------------------- per-sample functions
def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Cross-entropy against one-hot targets:  loss = -sum_c t_c log p_c  over `axis`.

    With from_logits=True, p = softmax(y_pred) (fused, stable); otherwise p = y_pred / sum(y_pred),
    clipped to [1e-7, 1 - 1e-7]. label_smoothing s replaces t by t (1 - s) + s / num_classes.
    Returns y_pred.shape without `axis`.
    """
    name = "categorical_crossentropy"
    if isinstance(axis, bool):
        raise ValueError(f"{name}: `axis` must be an int, got axis={axis!r}")
    y_pred = _as_pred(y_pred)
    target = _as_target(y_true, y_pred)
    if target.shape != y_pred.shape:
        classes = y_pred.shape[axis] if y_pred.ndim else 1
        looks_sparse = (target.ndim == y_pred.ndim - 1 and target.shape == y_pred.shape[:-1]) or \
                       (target.ndim == y_pred.ndim and target.shape[-1] == 1 and classes > 1)
        hint = (f": these look like integer class labels; use sparse_categorical_crossentropy for integer "
                f"labels, or one-hot encode them with to_categorical(y, num_classes={classes})"
                if looks_sparse else "")
        raise ValueError(f"{name}: y_pred of shape {tuple(y_pred.shape)} needs one-hot y_true of the same "
                         f"shape, got y_true of shape {tuple(target.shape)}{hint}")
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
                      f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
                      f"'binary_crossentropy' if you only have 2 classes.", SyntaxWarning, stacklevel=2)
    if label_smoothing:
        s = float(label_smoothing)
        target = target * (1.0 - s) + s / target.shape[axis]
    y_pred, target = _class_axis_last(y_pred, target, axis)
    if from_logits:
        return fused.softmax_cross_entropy(y_pred, target, reduction="none")
    _check_probabilities(name, y_pred, "softmax", low_only=True)
    return fused.categorical_cross_entropy(y_pred, target, reduction="none")


def _sparse_crossentropy(y_true, y_pred, from_logits, ignore_class, axis):
    """(per-sample loss, mask of counted samples or None): the mask lets the loss classes
    average over the labelled samples only, as Keras does with ignore_class."""
    name = "sparse_categorical_crossentropy"
    y_pred = _as_pred(y_pred)
    xp = backend.array_module(y_pred.data)
    labels = xp.asarray(_raw(y_true))
    if labels.ndim == y_pred.ndim and labels.ndim and labels.shape[axis] == 1:
        labels = labels.reshape(labels.shape[:axis % labels.ndim] + labels.shape[axis % labels.ndim + 1:])
    y_pred, _ = _class_axis_last(y_pred, None, axis)
    classes = y_pred.shape[-1]
    expected = tuple(y_pred.shape[:-1])
    if labels.shape != expected:
        hint = ""
        if labels.shape == tuple(y_pred.shape):
            hint = (": these look like one-hot labels; use categorical_crossentropy for one-hot labels "
                    "(or turn them into integer labels with y.argmax(axis=-1))")
        raise ValueError(f"{name}: y_pred of shape {tuple(y_pred.shape)} ({classes} classes) needs integer "
                         f"labels y_true of shape {expected} or {expected + (1,)}, got y_true of shape "
                         f"{tuple(labels.shape)}{hint}")
    if labels.dtype.kind == "f":
        if not bool(xp.all(labels == xp.round(labels))):
            raise ValueError(f"{name}: y_true must hold whole class indices, got fractional values; for "
                             f"probability targets use categorical_crossentropy")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind == "b":
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: y_true must be integer class labels, got dtype {labels.dtype}")
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        labels = xp.where(valid, labels, 0)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        lo, hi = int(labels.min()), int(labels.max())
        fix = "the last layer needs as many units as there are classes"
        if lo >= 1 and hi == classes:
            fix = "labels seem to start at 1: subtract 1 so they run from 0 to num_classes - 1"
        raise ValueError(f"{name}: labels must lie in [0, {classes}) for the {classes} classes of y_pred "
                         f"(shape {tuple(y_pred.shape)}), got values in [{lo}, {hi}]: {fix}"
                         + ("" if ignore_class is None else f" (ignore_class={ignore_class} is excluded)"))
    if from_logits:
        loss = fused.sparse_softmax_cross_entropy(y_pred, labels, reduction="none")
    else:
        _check_probabilities(name, y_pred, "softmax", low_only=True)
        loss = fused.sparse_categorical_cross_entropy(y_pred, labels, reduction="none")
    if valid is not None:
        loss = ops_math.where(valid, loss, 0.0)
    return loss, valid


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Cross-entropy against integer labels:  loss = -log p_label.

    y_true holds class indices, shape y_pred.shape without `axis` (or with it of size 1).
    p as in `categorical_crossentropy`. Samples labelled `ignore_class` get loss 0.
    """
    return _sparse_crossentropy(y_true, y_pred, from_logits, ignore_class, axis)[0]


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy, averaged over `axis`:  mean(-(t log p + (1 - t) log(1 - p))).

    With from_logits=True, p = sigmoid(y_pred) in the stable form max(x, 0) - x t + log(1 + e^-|x|);
    otherwise p = y_pred clipped to [1e-7, 1 - 1e-7]. label_smoothing s gives t (1 - s) + s / 2.
    """
    name = "binary_crossentropy"
    y_pred = _as_pred(y_pred)
    target = _as_target(y_true, y_pred)
    target, y_pred = squeeze_or_expand_to_same_rank(target, y_pred)
    hint = ""
    if y_pred.ndim and y_pred.shape[-1] == 1 and target.ndim == y_pred.ndim and target.shape[-1] > 1:
        hint = ("; y_true looks one-hot with several classes: for more than 2 classes use a softmax output "
                "with categorical_crossentropy")
    elif y_pred.ndim and y_pred.shape[-1] > 1 and target.shape == y_pred.shape[:-1]:
        hint = ("; y_true looks like integer class labels: for more than 2 classes use "
                "sparse_categorical_crossentropy")
    _check_same_shape(name, target, y_pred, hint)
    if label_smoothing:
        s = float(label_smoothing)
        target = target * (1.0 - s) + 0.5 * s
    if from_logits:
        per_element = fused.binary_cross_entropy_with_logits(y_pred, target, reduction="none")
    else:
        _check_probabilities(name, y_pred, "sigmoid")
        per_element = fused.binary_cross_entropy(y_pred, target, reduction="none")
    return per_element.mean(axis=axis)


def _elementwise(name, op, y_true, y_pred, **kw):
    """Shared by the regression losses: op per element, then the mean over the last axis."""
    y_pred = _as_pred(y_pred)
    target = _as_target(y_true, y_pred)
    target, y_pred = squeeze_or_expand_to_same_rank(target, y_pred)
    _check_same_shape(name, target, y_pred)
    return op(y_pred, target, reduction="none", **kw).mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    """loss = mean((y_true - y_pred)^2) over the last axis."""
    return _elementwise("mean_squared_error", fused.mse, y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """loss = mean(|y_true - y_pred|) over the last axis."""
    return _elementwise("mean_absolute_error", fused.mae, y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """loss = mean over the last axis of  x^2 / 2 if |x| <= delta, else delta |x| - delta^2 / 2,
    with x = y_pred - y_true."""
    return _elementwise("huber", fused.huber, y_true, y_pred, delta=delta)


def kl_divergence(y_true, y_pred):
    """loss = sum(t log(t / p)) over the last axis, with t and p clipped to [1e-7, 1]."""
    y_pred = _as_pred(y_pred)
    target = _as_target(y_true, y_pred)
    _check_same_shape("kl_divergence", target, y_pred)
    xp = backend.array_module(target)
    t = xp.clip(target, y_pred.dtype.type(EPSILON), y_pred.dtype.type(1))
    p = ops_math.clip(y_pred, EPSILON, 1.0)
    return (t * (t / p).log()).sum(axis=-1)


def dice(y_true, y_pred, axis=None):
    """loss = 1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7), the sums over `axis` (all axes by default)."""
    y_pred = _as_pred(y_pred)
    target = _as_target(y_true, y_pred)
    _check_same_shape("dice", target, y_pred)
    intersection = (y_pred * target).sum(axis=axis)
    denominator = y_pred.sum(axis=axis) + target.sum(axis=axis) + EPSILON
    return 1.0 - 2.0 * intersection / denominator


# Keras's short aliases (keras.losses.get('mse') etc.)
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
kld = KLD = kullback_leibler_divergence = kl_divergence
bce = BCE = binary_crossentropy


# ----------------------------------------------------------------------------- reduction
def _standardize_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"Loss: reduction must be one of {REDUCTIONS}, got reduction={reduction!r}")
    return reduction


def reduce_weighted_values(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Weight per-sample losses and reduce them as Keras does.

    'sum': sum(w * loss); 'sum_over_batch_size' and 'mean': sum(w * loss) / loss.size;
    'mean_with_sample_weight': sum(w * loss) / sum(w); None or 'none': w * loss unreduced.
    A mask (from ignore_class) counts only the unmasked entries in the mean. Weights of shape
    (batch,) apply to every loss value of their sample, also for per-pixel losses.
    """
    reduction = _standardize_reduction(reduction)
    dtype = values.dtype
    xp = backend.array_module(values.data)
    weight = None if sample_weight is None else xp.asarray(_raw(sample_weight), dtype=dtype)
    if mask is not None:
        if reduction in ("mean", "sum_over_batch_size"):
            valid = float(mask.sum())
            scale = mask.size / valid if valid else 0.0  # masked entries drop out of the mean's count
            float_mask = xp.where(mask, dtype.type(scale), dtype.type(0))
        else:
            float_mask = mask.astype(dtype)
        if weight is not None:
            float_mask, weight = squeeze_or_expand_to_same_rank(float_mask, weight)
            weight = weight * float_mask
        else:
            weight = float_mask
    if weight is not None:
        values, weight = squeeze_or_expand_to_same_rank(values, weight)
        if weight.ndim < values.ndim and tuple(weight.shape) == tuple(values.shape[:weight.ndim]):
            # one weight per sample of a per-pixel loss: spread it over the pixels (Keras 3 would
            # fail to broadcast (batch,) against (batch, h, w))
            weight = weight.reshape(tuple(weight.shape) + (1,) * (values.ndim - weight.ndim))
        values = values * weight
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = float(weight.sum())
    else:
        divisor = float(values.size)
    return total / divisor if divisor else total * 0.0


# ----------------------------------------------------------------------------- classes
_registry = {}


def _register(obj):
    _registry[obj.__name__] = obj
    return obj


@_register
class Loss:
    """Base of the loss classes: `__call__(y_true, y_pred, sample_weight=None)` runs `call`
    (per-sample losses) and reduces them with `reduction`.

    Subclass it and implement `call(y_true, y_pred)` with chainrule ops for a custom loss.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or auto_name(type(self).__name__)
        self.reduction = _standardize_reduction(reduction)
        self._dtype = None if dtype is None else np.dtype(dtype)

    @property
    def dtype(self):
        return (self._dtype or backend.default_float()).name

    def __call__(self, y_true, y_pred, sample_weight=None):
        # arrays become the loss's dtype (float32) as in Keras; a Tensor keeps its float dtype
        # unless one was asked for, so float64 gradient checks stay float64
        y_pred = _as_pred(y_pred, self._dtype if isinstance(y_pred, Tensor) else self._dtype or backend.default_float())
        values, mask = self._call_with_mask(self._convert_y_true(y_true, y_pred), y_pred)
        if not isinstance(values, Tensor):  # a custom call that computed on arrays: a constant
            values = Tensor(_as_target(values, y_pred))
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def _convert_y_true(self, y_true, y_pred):
        return Tensor(_as_target(y_true, y_pred))

    def _call_with_mask(self, y_true, y_pred):
        return self.call(y_true, y_pred), None

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__}: a Loss subclass must implement call(y_true, y_pred)")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


@_register
class LossFunctionWrapper(Loss):
    """A Loss from a function fn(y_true, y_pred, **kwargs) that returns per-sample losses."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def _convert_y_true(self, y_true, y_pred):
        return y_true  # each function converts its own targets (sparse labels stay integers)

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(_with_shape(y_true), y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        return {**super().get_config(), "fn": serialize(self.fn), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("fn"), (dict, str)):
            config["fn"] = deserialize(config["fn"])
        return cls(**config)

    def __repr__(self):
        return f"<LossFunctionWrapper({getattr(self.fn, '__name__', self.fn)}, kwargs={self._fn_kwargs})>"


class _KerasLoss(LossFunctionWrapper):
    """A built-in loss class: its config lists the constructor's arguments (minus dtype)."""

    _config_keys = ()

    def get_config(self):
        config = Loss.get_config(self)
        config.update({k: getattr(self, k) for k in self._config_keys})
        return config


@_register
class CategoricalCrossentropy(_KerasLoss):
    """Cross-entropy with one-hot targets; see `categorical_crossentropy`."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


@_register
class SparseCategoricalCrossentropy(_KerasLoss):
    """Cross-entropy with integer labels; see `sparse_categorical_crossentropy`. With ignore_class,
    the mean runs over the samples whose label is not ignore_class."""

    _config_keys = ("from_logits", "ignore_class", "axis")

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", axis=-1,
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def _call_with_mask(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(_with_shape(y_true), y_pred)
        return _sparse_crossentropy(y_true, y_pred, self.from_logits, self.ignore_class, self.axis)


@_register
class BinaryCrossentropy(_KerasLoss):
    """Binary cross-entropy; see `binary_crossentropy`."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


@_register
class MeanSquaredError(_KerasLoss):
    """mean((y_true - y_pred)^2) over the last axis, then reduced."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)


@_register
class MeanAbsoluteError(_KerasLoss):
    """mean(|y_true - y_pred|) over the last axis, then reduced."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)


@_register
class Huber(_KerasLoss):
    """Huber loss (quadratic within delta, linear beyond); see `huber`."""

    _config_keys = ("delta",)  # Keras 3.15 leaves delta out of the config (so from_config loses it); we keep it

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta


@_register
class KLDivergence(_KerasLoss):
    """Kullback-Leibler divergence sum(t log(t / p)); see `kl_divergence`."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)


@_register
class Dice(_KerasLoss):
    """Dice loss 1 - 2 sum(t p) / (sum(t) + sum(p)); see `dice`. axis=None sums over everything."""

    _config_keys = ("axis",)

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis


# ----------------------------------------------------------------------------- lookup
_FUNCTIONS = [categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy,
              mean_squared_error, mean_absolute_error, huber, kl_divergence, dice]
ALL_OBJECTS = {**_registry, **{fn.__name__: fn for fn in _FUNCTIONS},
               "mse": mse, "MSE": mse, "mae": mae, "MAE": mae, "kld": kld, "KLD": kld, "bce": bce, "BCE": bce,
               "kullback_leibler_divergence": kl_divergence}


def _lookup(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in ALL_OBJECTS:
        return ALL_OBJECTS[name]
    close = difflib.get_close_matches(name, list(ALL_OBJECTS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Could not interpret loss identifier: {name!r}{hint} "
                     f"(a custom loss can be passed as a function fn(y_true, y_pred) or a Loss instance)")


def serialize(loss):
    """A loss as Keras's config dict: {'module', 'class_name', 'config', 'registered_name'}."""
    if isinstance(loss, Loss):
        return {"module": "keras.losses", "class_name": type(loss).__name__, "config": loss.get_config(),
                "registered_name": None}
    if callable(loss) and hasattr(loss, "__name__"):
        return {"module": "builtins", "class_name": "function", "config": loss.__name__,
                "registered_name": "function"}
    raise ValueError(f"serialize: cannot serialize loss {loss!r}")


def deserialize(config, custom_objects=None):
    """The loss (function or Loss instance) described by `serialize`'s dict or a name."""
    if isinstance(config, str):
        return _lookup(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret loss config: {config!r}: expected a dict with "
                         f"'class_name' and 'config', e.g. {{'class_name': 'Huber', 'config': {{'delta': 2.0}}}}")
    if config["class_name"] == "function":
        return _lookup(config["config"], custom_objects)
    cls = _lookup(config["class_name"], custom_objects)
    return cls.from_config(config.get("config") or {})


def get(identifier):
    """The loss named by `identifier`, as keras.losses.get returns it.

    A function name ('mse', 'categorical_crossentropy') gives the function, a class name
    ('Huber') or a config dict gives an instance; a Loss instance or any callable
    fn(y_true, y_pred) is returned as is; None gives None.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _lookup(identifier)
    else:
        obj = identifier
    if not callable(obj):
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
    return obj() if inspect.isclass(obj) else obj


def resolve(identifier, y_true_shape=None, y_pred_shape=None):
    """What `compile(loss=...)` makes of `identifier`: always a Loss object, so that
    `loss(y_true, y_pred, sample_weight)` gives the scalar to minimize.

    A function (built-in or custom) is wrapped in LossFunctionWrapper named after the
    string or the function. 'crossentropy' / 'ce' pick binary, sparse or categorical
    cross-entropy from the shapes, as Keras's compile does.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in ("crossentropy", "ce"):
        if y_true_shape is None or y_pred_shape is None:
            raise ValueError(f"loss={identifier!r} picks its cross-entropy from the shapes of y_true and y_pred; "
                             f"pass them, or name the loss (e.g. 'sparse_categorical_crossentropy')")
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
        obj = binary_crossentropy if is_binary else (
            sparse_categorical_crossentropy if is_sparse else categorical_crossentropy)
    else:
        obj = get(identifier)
    if isinstance(obj, Loss):
        return obj
    name = identifier if isinstance(identifier, str) else to_snake_case(getattr(obj, "__name__", type(obj).__name__))
    return LossFunctionWrapper(obj, name=name)


def is_binary_or_sparse_categorical(y_true_shape, y_pred_shape):
    """Keras 3's compile rule: binary when y_pred has one unit; sparse when y_true has an axis
    fewer than y_pred, or a last axis of 1 while y_pred has several classes."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    t_last = y_true_shape[-1] if y_true_shape else None
    p_last = y_pred_shape[-1] if y_pred_shape else None
    is_binary = p_last == 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (t_last == 1 and p_last is not None and p_last > 1)
    return is_binary, is_sparse


__all__ = list(_registry) + [fn.__name__ for fn in _FUNCTIONS] + [
    "mse", "MSE", "mae", "MAE", "kld", "KLD", "bce", "BCE", "kullback_leibler_divergence", "get", "resolve",
    "serialize", "deserialize", "reduce_weighted_values"]
