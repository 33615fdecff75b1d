"""MonitorCallback: what EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share:
watch one logged quantity and decide whether a new value is an improvement.

An improvement, with d = |min_delta|::

    mode 'min':  current + d < best        mode 'max':  current - d > best

Mode 'auto' takes the direction from the metric object when the model has one
with that name (Keras metrics carry `_direction` 'up' or 'down'), else from the
name: 'loss' and error-like names are minimized, accuracy-like names
(acc, auc, precision, recall, f1, iou, ...) maximized.
"""
import operator
import warnings

from .callback import Callback

# Checked in this order, on the name without its 'val_' prefix.
_MINIMIZED = ("loss", "error", "crossentropy", "hinge", "divergence", "poisson", "logcosh",
              "mse", "mae", "mape", "msle")
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "correlation",
              "cosine_similarity", "sensitivity", "specificity")


def _model_metrics(model):
    """The model's metric objects, with containers (objects holding `.metrics`) opened up."""
    try:
        metrics = list(getattr(model, "metrics", None) or [])
    except Exception:  # an unbuilt model may refuse to list its metrics
        return []
    flat = []
    for m in metrics:
        inner = getattr(m, "metrics", None)
        flat.extend(inner if isinstance(inner, (list, tuple)) else [m])
    return flat


def infer_direction(monitor, model=None):
    """'min' or 'max' for a monitored name such as 'val_loss' or 'val_accuracy'; None if unknown."""
    name = monitor[len("val_"):] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for m in _model_metrics(model):
        if getattr(m, "name", None) == name:
            direction = getattr(m, "_direction", None) or getattr(m, "direction", None)
            if direction in ("up", "down"):
                return "max" if direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _MINIMIZED):
        return "min"
    if any(word in lowered for word in _MAXIMIZED):
        return "max"
    return None


class MonitorCallback(Callback):
    """Base of callbacks that watch `monitor` in the logs (not meant to be used directly).

    Args:
        monitor: the logged quantity, e.g. 'val_loss', 'val_accuracy'.
        mode: 'auto', 'min' or 'max'.
        baseline: initial best value (None: the first value seen).
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        mode = self.mode if self.mode != "auto" else infer_direction(self.monitor, self.model)
        if mode is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but chainrule isn't able to "
                "automatically determine whether that metric should be maximized or minimized. Pass "
                "`mode='max'` in order to monitor based on the highest metric value, or pass `mode='min'` "
                "in order to use the lowest value.")
        self.monitor_op = operator.lt if mode == "min" else operator.gt

    def _is_improvement(self, monitor_value, reference_value):
        """True if `monitor_value` beats `reference_value` by more than min_delta (always, if no reference)."""
        if reference_value is None:
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        delta = -self.min_delta if self.monitor_op is operator.lt else self.min_delta
        return bool(self.monitor_op(monitor_value - delta, reference_value))
