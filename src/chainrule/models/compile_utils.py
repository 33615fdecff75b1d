"""What `compile` sets up: one loss (and loss weight) and a list of metrics per model output."""
import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from ..autograd import Tensor


def per_output(config, names, what):
    """Spread a compile argument over the outputs: one value for all, a list in output order, or a dict."""
    if isinstance(config, dict):
        unknown = [k for k in config if k not in names]
        if unknown:
            raise ValueError(f"compile({what}=...) names {unknown}, but the model's outputs are {names}")
        return [config.get(name) for name in names]
    if isinstance(config, (list, tuple)) and len(names) > 1 and what != "metrics":
        if len(config) != len(names):
            raise ValueError(f"compile({what}=...) has {len(config)} entries for {len(names)} outputs {names}")
        return list(config)
    if what == "metrics" and len(names) > 1 and isinstance(config, (list, tuple)) and config and \
            all(isinstance(c, (list, tuple)) or c is None for c in config):
        if len(config) != len(names):
            raise ValueError(f"compile(metrics=...) has {len(config)} lists for {len(names)} outputs {names}")
        return list(config)
    return [config] * len(names)


class CompiledLoss:
    """sum_i loss_weight_i * loss_i(y_true_i, y_pred_i) over the outputs, plus regularization."""

    def __init__(self, loss, loss_weights, output_names):
        self.names = output_names
        self.per_output_specs = per_output(loss, output_names, "loss")
        if all(spec is None for spec in self.per_output_specs):
            raise ValueError("compile() needs a loss, e.g. compile(optimizer='adam', loss='mse')")
        self.fns = None  # Loss objects, resolved on the first batch ('crossentropy' needs the shapes)
        weights = per_output(1.0 if loss_weights is None else loss_weights, output_names, "loss_weights")
        self.weights = [1.0 if w is None else float(w) for w in weights]
        self.specs = loss

    def __call__(self, y_true, y_pred, sample_weight, regularization):
        """Returns (total loss Tensor, list of per-output loss Tensors)."""
        if self.fns is None:
            self.fns = [None if spec is None else losses_module.resolve(spec, np.shape(yt), tuple(yp.shape))
                        for spec, yt, yp in zip(self.per_output_specs, y_true, y_pred)]
        parts = []
        total = None
        for fn, w, yt, yp in zip(self.fns, self.weights, y_true, y_pred):
            if fn is None or yt is None:
                parts.append(None)
                continue
            value = fn(yt, yp, sample_weight=sample_weight)
            parts.append(value)
            term = value if w == 1.0 else value * w
            total = term if total is None else total + term
        for r in regularization:
            total = r if total is None else total + r
        return total, parts


class CompiledMetrics:
    """Metric objects per output, resolved on the first batch (when the shapes are known)."""

    def __init__(self, metrics, weighted_metrics, output_names, loss_specs):
        self.names = output_names
        self.config = per_output(metrics or [], output_names, "metrics")
        self.weighted_config = per_output(weighted_metrics or [], output_names, "metrics")
        self.loss_specs = per_output(loss_specs, output_names, "loss")
        self.metrics = None  # list (per output) of [(metric, weighted)]

    def build(self, y_true, y_pred):
        self.metrics = []
        for i, (cfg, wcfg) in enumerate(zip(self.config, self.weighted_config)):
            built = []
            for weighted, specs in ((False, cfg), (True, wcfg)):
                for spec in ([] if specs is None else (specs if isinstance(specs, (list, tuple)) else [specs])):
                    m = metrics_module.resolve(spec, self.loss_specs[i], np.shape(y_true[i]), tuple(y_pred[i].shape))
                    if len(self.names) > 1:
                        m.name = f"{self.names[i]}_{m.name}"
                    built.append((m, weighted))
            self.metrics.append(built)

    def update(self, y_true, y_pred, sample_weight):
        if self.metrics is None:
            self.build(y_true, y_pred)
        for ms, yt, yp in zip(self.metrics, y_true, y_pred):
            if yt is None:
                continue
            yp = yp.data if isinstance(yp, Tensor) else yp
            for m, weighted in ms:
                m.update_state(yt, yp, sample_weight=sample_weight if weighted else None)

    def all(self):
        return [m for ms in (self.metrics or []) for m, _ in ms]

    def reset(self):
        for m in self.all():
            m.reset_state()
