"""Finite differences against backpropagation, weight by weight, with the time each one takes.

The numeric gradient of the loss L with respect to one weight w_i needs two forward passes,

    dL/dw_i ~ (L(w + eps e_i) - L(w - eps e_i)) / (2 eps),

so a network with P weights needs 2P forward passes; backpropagation gets all P gradients from
one forward and one backward pass (about the cost of two or three forward passes). That ratio,
P, is why every framework differentiates analytically, and keeps finite differences for checks.
"""
import time

import numpy as np

from .. import losses as losses_module
from ..autograd import Tensor, grad, no_grad
from ._common import activation_name, auto_loss, last_layer, to_numpy

__all__ = ["numeric_vs_analytic", "GradientComparison"]


class GradientComparison(list):
    """One dict per weight: 'weight', 'shape', 'size', 'index' (the elements checked), 'numeric',
    'analytic', 'max_abs_error', 'max_rel_error', 'numeric_seconds'; plus the totals as attributes."""

    def __init__(self, rows, eps, analytic_seconds, forward_seconds):
        super().__init__(rows)
        self.eps = eps
        self.analytic_seconds = analytic_seconds   # one forward + one backward, every gradient
        self.forward_seconds = forward_seconds     # one forward pass of the loss

    @property
    def params(self):
        return sum(r["size"] for r in self)

    @property
    def numeric_seconds(self):
        """Finite differences for every weight, extrapolated from the elements checked."""
        return sum(r["numeric_seconds"] * r["size"] / max(len(r["index"]), 1) for r in self)

    @property
    def speedup(self):
        """How many times faster backpropagation was than finite differences on all weights."""
        return self.numeric_seconds / max(self.analytic_seconds, 1e-12)

    @property
    def max_rel_error(self):
        return max((r["max_rel_error"] for r in self), default=0.0)

    def __str__(self):
        head = f"{'weight':<24}{'shape':>14}{'params':>8}{'checked':>9}{'max rel err':>13}{'numeric time':>14}"
        lines = [f"finite differences (eps = {self.eps:.1e}) vs backpropagation, every weight:", head,
                 "-" * len(head)]
        for r in self:
            lines.append(f"{r['weight']:<24}{str(r['shape']):>14}{r['size']:>8}{len(r['index']):>9}"
                         f"{r['max_rel_error']:>13.1e}{_ms(r['numeric_seconds']):>14}")
            for j, (num, ana) in enumerate(zip(r["numeric"][:3], r["analytic"][:3])):
                where = np.unravel_index(r["index"][j], r["shape"]) if r["shape"] else ()
                lines.append(f"    {r['weight']}{list(map(int, where))}: numeric {num: .9f}   analytic {ana: .9f}")
        checked = sum(len(r["index"]) for r in self)
        lines.append(f"backpropagation: 1 forward + 1 backward pass for all {self.params} gradients: "
                     f"{_ms(self.analytic_seconds)}")
        lines.append(f"finite differences: 2 forward passes per weight, {2 * self.params} passes "
                     f"({_ms(self.forward_seconds)} each): ~{_ms(self.numeric_seconds)}"
                     + ("" if checked == self.params else f" (measured on {checked} weights, scaled up)"))
        lines.append(f"backpropagation is ~{self.speedup:.0f}x faster here, and the gap grows with the "
                     f"number of weights")
        if self.eps > 1e-4:
            lines.append("(float32 weights: finite differences agree to ~1e-3 at best; build the model in "
                         "float64 for a tight check)")
        return "\n".join(lines)

    __repr__ = __str__


def numeric_vs_analytic(model, x, y, loss=None, eps=None, max_params=2000, seed=0, show=True, print_fn=print):
    """Finite-difference and backprop gradients of every weight of `model`, side by side, timed.

    loss: a loss name, function or Loss; by default the compiled loss, else cross-entropy for a
    softmax/sigmoid output and mean squared error otherwise. The forward pass runs with
    training=False (no dropout noise). eps defaults to machine-epsilon^(1/3) of the weights'
    dtype (6e-6 in float64, 5e-3 in float32), the step that balances truncation and rounding.
    With more than `max_params` weights a random sample of each weight's elements is checked and
    the numeric time is scaled up to all of them. Returns a `GradientComparison`.
    """
    x = to_numpy(x) if isinstance(x, Tensor) else x
    weights = list(model.trainable_weights)
    if not weights:
        raise ValueError(f"numeric_vs_analytic: model '{model.name}' has no trainable weights; build it first "
                         f"(give it an Input shape or call it on data)")
    loss_fn = _loss_function(model, y, loss, x)

    def loss_value():
        return loss_fn(y, model(x, training=False))

    analytic_seconds = float("inf")
    for _ in range(3):  # the best of three: the first call also pays for one-time setup
        start = time.perf_counter()
        analytic = grad(loss_value(), weights, allow_unused=True)
        analytic_seconds = min(analytic_seconds, time.perf_counter() - start)

    dtype = weights[0].dtype
    eps = float(np.finfo(dtype).eps) ** (1 / 3) if eps is None else float(eps)
    total = sum(w.size for w in weights)
    rng = np.random.default_rng(seed)
    rows = []
    forward_times = []
    with no_grad():
        for w, g in zip(weights, analytic):
            count = w.size if total <= max_params else max(1, min(w.size, round(max_params * w.size / total)))
            index = np.arange(w.size) if count == w.size else np.sort(rng.choice(w.size, count, replace=False))
            flat = w.data.reshape(-1)  # a view: the weight itself is nudged
            numeric = np.empty(len(index))
            start = time.perf_counter()
            for k, j in enumerate(index):
                keep = flat[j]
                flat[j] = keep + dtype.type(eps)
                t0 = time.perf_counter()
                plus = float(loss_value().item())
                forward_times.append(time.perf_counter() - t0)
                flat[j] = keep - dtype.type(eps)
                minus = float(loss_value().item())
                flat[j] = keep
                numeric[k] = (plus - minus) / (2 * eps)
            seconds = time.perf_counter() - start
            ana = np.zeros(len(index)) if g is None else g.numpy().reshape(-1)[index].astype(np.float64)
            err = np.abs(numeric - ana)
            rel = err / np.maximum(np.maximum(np.abs(numeric), np.abs(ana)), 1e-8)
            rows.append({"weight": getattr(w, "path", None) or w.name or "weight", "shape": tuple(w.shape),
                         "size": int(w.size), "index": index, "numeric": numeric, "analytic": ana,
                         "max_abs_error": float(err.max(initial=0)), "max_rel_error": float(rel.max(initial=0)),
                         "numeric_seconds": seconds})
    result = GradientComparison(rows, eps, analytic_seconds, float(np.median(forward_times)))
    if show:
        print_fn(str(result))
    return result


def _loss_function(model, y, loss, x):
    """loss(y_true, y_pred) -> scalar Tensor, from a name, a function, the compiled loss or the output."""
    if loss is None:
        compiled = getattr(model, "compiled_loss", None)
        if compiled is not None and compiled.per_output_specs[0] is not None:
            loss = compiled.per_output_specs[0]
        else:
            loss = auto_loss(activation_name(last_layer(model)))
            if loss == "categorical_crossentropy" and (np.ndim(y) < 2 or np.shape(y)[-1] == 1):
                loss = "sparse_categorical_crossentropy"
    if isinstance(loss, str):
        with no_grad():
            pred_shape = tuple(model(x, training=False).shape)
        return losses_module.resolve(loss, np.shape(y), pred_shape)
    return loss


def _ms(seconds):
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"
