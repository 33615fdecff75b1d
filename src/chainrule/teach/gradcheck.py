"""Gradient checking: backpropagation against central finite differences, in float64."""
import numpy as np

from .. import backend
from ..autograd import Tensor, _run_backward, no_grad


class GradcheckError(AssertionError):
    """Raised by `gradcheck` when an analytic gradient disagrees with the numerical one."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


class GradcheckReport:
    """Per checked input: shape, largest absolute and relative error, and where the worst one is."""

    def __init__(self, name, rows):
        self.name = name
        self.rows = rows

    @property
    def ok(self):
        return all(r["ok"] for r in self.rows)

    def __bool__(self):
        return self.ok

    def __str__(self):
        lines = [f"gradcheck of {self.name}: {'passed' if self.ok else 'FAILED'}"]
        for r in self.rows:
            lines.append(f"  input {r['input']} shape {r['shape']}: max abs err {r['max_abs_err']:.3e}, "
                         f"max rel err {r['max_rel_err']:.3e}, worst at {r['worst_index']} "
                         f"(analytic {r['analytic']:.9g}, numeric {r['numeric']:.9g})"
                         f"{'' if r['ok'] else '  <-- mismatch'}")
        return "\n".join(lines)

    __repr__ = __str__


def _project(out, weights):
    """L = sum_k <w_k, out_k>: one scalar whose gradient checks every output at once."""
    total = 0.0
    for o, w in zip(out, weights):
        total += float((backend.to_numpy(o.data).astype(np.float64) * w).sum())
    return total


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check d fn / d input for every float input by central differences in float64.

    For L = sum(w * fn(inputs)) with fixed random w, compares backprop's dL/dx with
    (L(x + eps e_i) - L(x - eps e_i)) / (2 eps) for every element i; an element fails when
    |analytic - numeric| > atol + rtol * |numeric|. Non-float inputs (labels) pass through.
    Returns a GradcheckReport; raises GradcheckError with it on failure unless told not to.
    """
    tensors = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        arr = np.asarray(backend.to_numpy(data)) if not np.isscalar(data) else np.asarray(data)
        if arr.dtype.kind == "f":
            tensors.append(Tensor(arr.astype(np.float64), requires_grad=True))
        else:
            tensors.append(x)
    checked = [i for i, t in enumerate(tensors) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no float input to check")

    out = fn(*tensors)
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in out:
        if o.dtype != np.float64:
            raise TypeError(f"gradcheck: {getattr(fn, '__name__', 'fn')} returned {o.dtype} for float64 inputs; "
                            f"an op inside casts to a lower precision")
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in out]
    for t in tensors:
        if isinstance(t, Tensor):
            t.grad = None
    seeds = [Tensor(w.astype(o.dtype)) for w, o in zip(weights, out)]
    _run_backward(out, [s.data for s in seeds], retain_graph=False, accumulate=True)

    rows = []
    with no_grad():
        for i in checked:
            x = tensors[i]
            analytic = np.zeros(x.shape) if x.grad is None else backend.to_numpy(x.grad)
            numeric = np.zeros(x.shape)
            flat = x.data.reshape(-1)
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = _project(_as_list(fn(*tensors)), weights)
                flat[j] = orig - eps
                minus = _project(_as_list(fn(*tensors)), weights)
                flat[j] = orig
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
            err = np.abs(analytic - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            score = err / (atol + rtol * np.abs(numeric))
            worst = np.unravel_index(int(np.argmax(score)), x.shape) if x.size else ()
            rel = err / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-12)
            rows.append({"input": i, "shape": tuple(x.shape), "ok": not bad.any(),
                         "max_abs_err": float(err.max(initial=0)), "max_rel_err": float(rel.max(initial=0)),
                         "worst_index": tuple(int(k) for k in worst),
                         "analytic": float(analytic[worst]) if x.size else 0.0,
                         "numeric": float(numeric[worst]) if x.size else 0.0})
    made_by = ", ".join(sorted({o.op for o in out if o.op}))
    name = getattr(fn, "__name__", "fn") + (f" (output of op {made_by})" if made_by else "")
    report = GradcheckReport(name, rows)
    if raise_exception and not report.ok:
        raise GradcheckError(report)
    return report


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]
