"""TrainingMonitor: the health checks of a training run, per layer and per epoch, in plain words.

What it measures (CS231n's "babysitting the learning process"):

    update ratio   ||W_after - W_before|| / ||W_before|| per step, averaged over the epoch;
                   healthy near 1e-3: much larger and the learning rate is too high, much
                   smaller and the layer barely learns
    gradient norm  ||dLoss/dW||; relative to ||W|| it compares across layers: a first layer whose
                   gradients are 100 times weaker than the last one's has vanishing gradients
    dead ReLUs     the fraction of ReLU units that output 0 for every sample of a probe batch
    activations    mean and standard deviation of each layer's output on the probe batch, and
                   the fraction of sigmoid/tanh outputs in their flat, saturated ends

Gradients are read from the weights' `.grad` in `on_train_batch_end` (the training step leaves
them there until the next step starts); activations come from a forward pass on the probe batch at
the end of each epoch. Without a probe, the first training batch is kept as one.
"""
import numpy as np

from ..autograd import no_grad
from ..callbacks import Callback
from . import _viz
from ._common import activation_name, flat_layers
from .inside import layer_outputs

__all__ = ["TrainingMonitor"]


class TrainingMonitor(Callback):
    """Per layer and per epoch: update/weight ratio, gradient norm, dead ReLUs, activation statistics;
    warnings in plain words when something is off by orders of magnitude.

        monitor = teach.TrainingMonitor()
        model.fit(x, y, epochs=5, callbacks=[monitor])
        monitor.records     # one dict per (epoch, layer)
        monitor.warnings    # [(epoch, layer, message)]
        monitor.plot("monitor.png")

    probe: inputs for the activation statistics (default: up to `probe_size` samples of the first
    training batch). every: measure the update ratio on every n-th batch (copying the weights
    before a step costs one copy of the model). tolerance: how many times off the healthy ratio
    1e-3 a layer may be before a warning (default 100, two orders of magnitude).
    """

    def __init__(self, probe=None, probe_size=256, every=1, verbose=1, healthy_ratio=1e-3, tolerance=100.0,
                 print_fn=print):
        super().__init__()
        self.probe = probe
        self.probe_size, self.every, self.verbose = probe_size, every, verbose
        self.healthy_ratio, self.tolerance, self.print_fn = healthy_ratio, tolerance, print_fn
        self.records = []
        self.warnings = []
        self._warned = set()
        self._layers = None
        self._snapshot = None
        self._batch_stats = {}
        self._wrapped = False

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._layers = None
        if self.probe is None:
            self._catch_first_batch()

    def on_train_end(self, logs=None):
        if self._wrapped:
            self.model.__dict__.pop("train_step", None)
            self._wrapped = False

    def on_epoch_begin(self, epoch, logs=None):
        self._batch_stats = {}

    def on_train_batch_begin(self, batch, logs=None):
        if batch % self.every:
            return
        if not self._layers:
            self._layers = [(layer, layer.trainable_weights) for layer in flat_layers(self.model)
                            if layer.trainable_weights]
        self._snapshot = [[w.data.copy() for w in weights] for _, weights in self._layers]

    def on_train_batch_end(self, batch, logs=None):
        if self._snapshot is None:
            return
        for (layer, weights), before in zip(self._layers, self._snapshot):
            w2 = sum(float((b.astype(np.float64) ** 2).sum()) for b in before)
            d2 = sum(float(((w.data - b).astype(np.float64) ** 2).sum()) for w, b in zip(weights, before))
            grads = [w.grad for w in weights if w.grad is not None]
            g2 = sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)
            self._batch_stats.setdefault(layer.name, []).append(
                (np.sqrt(d2) / max(np.sqrt(w2), 1e-12), np.sqrt(g2), np.sqrt(w2)))
        self._snapshot = None

    def on_epoch_end(self, epoch, logs=None):
        rows = {}
        for name, stats in self._batch_stats.items():
            s = np.asarray(stats)
            rows[name] = {"epoch": epoch, "layer": name, "update_ratio": float(s[:, 0].mean()),
                          "grad_norm": float(s[:, 1].mean()), "weight_norm": float(s[-1, 2])}
        for name, act in self._activation_stats().items():
            rows.setdefault(name, {"epoch": epoch, "layer": name}).update(act)
        order = [layer.name for layer in flat_layers(self.model)]
        epoch_rows = [rows[n] for n in order if n in rows]
        for row in epoch_rows:
            for key in ("update_ratio", "grad_norm", "weight_norm", "activation", "dead_fraction",
                        "act_mean", "act_std", "saturated_fraction"):
                row.setdefault(key, None)
        self.records.extend(epoch_rows)
        new = self._check(epoch, epoch_rows)
        if self.verbose:
            self.print_fn(self.summary(epoch))
            for message in new:
                self.print_fn(f"TrainingMonitor warning: {message}")

    # ------------------------------------------------------------------ measuring
    def _catch_first_batch(self):
        """Keep the first training batch as the probe, by wrapping this model's train_step once."""
        model = self.model
        step = model.train_step

        def train_step(x, y, sample_weight=None):
            if self.probe is None:
                self.probe = _take(x, self.probe_size)
            return step(x, y, sample_weight)
        model.__dict__["train_step"] = train_step
        self._wrapped = True

    def _activation_stats(self):
        if self.probe is None:
            return {}
        layers = [l for l in flat_layers(self.model) if activation_name(l) is not None]
        if not layers:
            return {}
        with no_grad():
            outputs = layer_outputs(self.model, self.probe, layers)
        stats = {}
        for layer in layers:
            out = outputs.get(layer.name)
            if out is None or out.dtype.kind != "f":
                continue
            act = activation_name(layer)
            out = out.astype(np.float64)
            row = {"activation": act, "act_mean": float(out.mean()), "act_std": float(out.std())}
            if act == "relu":  # a unit (last axis) is dead when it is 0 for every sample and position
                row["dead_fraction"] = float((out.reshape(-1, out.shape[-1]) <= 0).all(axis=0).mean())
            elif act == "sigmoid":
                row["saturated_fraction"] = float(((out < 0.01) | (out > 0.99)).mean())
            elif act == "tanh":
                row["saturated_fraction"] = float((np.abs(out) > 0.99).mean())
            stats[layer.name] = row
        return stats

    def _check(self, epoch, rows):
        """Plain-words warnings for this epoch; each kind once per layer."""
        new = []

        def warn(kind, layer, message):
            self.warnings.append((epoch, layer, message))
            if (kind, layer) not in self._warned:
                self._warned.add((kind, layer))
                new.append(message)

        high, low = self.healthy_ratio * self.tolerance, self.healthy_ratio / self.tolerance
        weighted = [r for r in rows if r["update_ratio"] is not None]
        # vanishing gradients: ||dL/dW|| / ||W|| (scale-free) far below that of the strongest layer
        vanishing = set()
        relative = [r for r in weighted if np.isfinite(r["grad_norm"]) and r["weight_norm"] > 0 and r["grad_norm"] > 0]
        if len(relative) > 1:
            strength = {r["layer"]: r["grad_norm"] / r["weight_norm"] for r in relative}
            strongest = max(strength, key=strength.get)
            for name, value in strength.items():
                if value * self.tolerance < strength[strongest]:
                    vanishing.add(name)
                    warn("vanish", name, f"vanishing gradients: layer '{name}' gets gradients "
                                         f"{strength[strongest] / value:.0e} times weaker (relative to its weights) "
                                         f"than layer '{strongest}'; saturating sigmoid/tanh layers cause this: "
                                         f"try ReLU, He initialization, batch normalization or skip connections")
        for r in weighted:
            ratio, name = r["update_ratio"], r["layer"]
            if not np.isfinite(ratio) or not np.isfinite(r["grad_norm"]):
                warn("nan", name, f"layer '{name}' has non-finite weights or gradients (NaN or inf): the training "
                                  f"diverged; lower the learning rate or clip the gradients (clipnorm=1.0)")
            elif ratio > high:
                warn("high", name, f"layer '{name}': each update changes the weights by {ratio:.1e} of their size "
                                   f"(healthy is about {self.healthy_ratio:.0e}): the learning rate looks too "
                                   f"high; try it 10x lower")
            elif ratio == 0:
                warn("still", name, f"layer '{name}': the weights did not change at all: no gradient reaches it "
                                    f"(dead ReLUs, an output saturated by a too-high learning rate, or a layer "
                                    f"not connected to the loss)")
            elif ratio < low and name not in vanishing:
                warn("low", name, f"layer '{name}': each update changes the weights by only {ratio:.1e} of their "
                                  f"size (healthy is about {self.healthy_ratio:.0e}): the learning rate looks too "
                                  f"low")
        for r in rows:
            if r.get("dead_fraction") is not None and r["dead_fraction"] > 0.5:
                warn("dead", r["layer"], f"{r['dead_fraction']:.0%} of the ReLUs in layer '{r['layer']}' output 0 "
                                         f"for every probe sample (dead units, which no gradient revives): lower "
                                         f"the learning rate, use He initialization, or LeakyReLU")
            if r.get("saturated_fraction") is not None and r["saturated_fraction"] > 0.5:
                warn("saturated", r["layer"], f"{r['saturated_fraction']:.0%} of the {r['activation']} outputs of "
                                              f"layer '{r['layer']}' sit in its flat ends, where the gradient is "
                                              f"near 0: scale the inputs (standardize them), use smaller initial "
                                              f"weights, or ReLU")
        return new

    # ------------------------------------------------------------------ showing
    def summary(self, epoch=None):
        """A table of one epoch's measurements (default the last one)."""
        if not self.records:
            return "TrainingMonitor: nothing measured yet"
        epoch = self.records[-1]["epoch"] if epoch is None else epoch
        rows = [r for r in self.records if r["epoch"] == epoch]
        head = f"  {'layer':<20}{'update/weight':>14}{'grad norm':>11}{'weight norm':>12}{'dead ReLU':>10}" \
               f"{'saturated':>10}{'act mean':>10}{'act std':>9}"
        lines = [f"TrainingMonitor, epoch {epoch + 1} (healthy update/weight is about {self.healthy_ratio:.0e}):",
                 head]

        def num(v, fmt):
            return "-" if v is None else format(v, fmt)
        for r in rows:
            lines.append(f"  {r['layer']:<20}{num(r['update_ratio'], '.1e'):>14}{num(r['grad_norm'], '.1e'):>11}"
                         f"{num(r['weight_norm'], '.2f'):>12}{num(r['dead_fraction'], '.0%'):>10}"
                         f"{num(r['saturated_fraction'], '.0%'):>10}{num(r['act_mean'], '.3f'):>10}"
                         f"{num(r['act_std'], '.3f'):>9}")
        return "\n".join(lines)

    def plot(self, to_file=None, dpi=100):
        """Four panels over the epochs: update ratio (with the healthy 1e-3), gradient norm, dead
        ReLU fraction, activation std, one line per layer. Returns the Figure."""
        fig = _viz.figure("TrainingMonitor.plot", (10, 6.5), dpi)
        panels = (("update_ratio", "update / weight ratio", True), ("grad_norm", "gradient norm", True),
                  ("dead_fraction", "dead ReLU fraction", False), ("act_std", "activation std", False))
        names = list(dict.fromkeys(r["layer"] for r in self.records))
        for k, (key, title, log) in enumerate(panels):
            ax = fig.add_subplot(2, 2, k + 1)
            for name in names:
                pts = [(r["epoch"] + 1, r[key]) for r in self.records if r["layer"] == name and r[key] is not None]
                if pts:
                    e, v = zip(*pts)
                    ax.plot(e, v, "-o", markersize=3, label=name)
            if key == "update_ratio":
                ax.axhline(self.healthy_ratio, color="green", linestyle=":", label="healthy")
            if log and ax.lines and all(v > 0 for line in ax.lines for v in line.get_ydata()):
                ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
        fig.tight_layout()
        _viz.save(fig, to_file)
        return fig


def _take(x, n):
    """The first n samples of a batch (an array, or a list/dict of them for several inputs)."""
    if isinstance(x, dict):
        return {k: _take(v, n) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_take(v, n) for v in x]
    return np.array(x[:n])
