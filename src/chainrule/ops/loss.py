"""Losses as single fused nodes: each computes the per-element (or per-sample) loss, its
reduction, and a closed-form backward, which is stabler and cheaper than composing
log, exp and sums node by node.

`reduction` is 'mean' (the default), 'sum', 'none', or 'half_sum' (1/2 * sum, the
lecture's E = 1/2 sum (target - out)^2). Cross-entropies reduce the class axis (the
last one) first, so 'none' gives one loss per sample; the elementwise losses give
one per element, as PyTorch does.
"""
import numpy as np

from .. import backend
from .base import Tensor, as_tensor, operands, record

EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [eps, 1 - eps]
REDUCTIONS = ("mean", "sum", "none", "half_sum")


def _reduce(loss, reduction, op):
    """The reduced value, and the factor that maps the output gradient back onto `loss`'s elements."""
    xp = backend.array_module(loss)
    if reduction == "mean":
        return xp.asarray(loss.mean()), loss.dtype.type(1.0 / max(loss.size, 1))
    if reduction == "sum":
        return xp.asarray(loss.sum()), loss.dtype.type(1)
    if reduction == "half_sum":
        return xp.asarray(0.5 * loss.sum(), dtype=loss.dtype), loss.dtype.type(0.5)
    if reduction == "none":
        return loss, loss.dtype.type(1)
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _same_shape(op, a, b, hint=""):
    if a.shape != b.shape:
        raise ValueError(f"{op}: predictions of shape {a.shape} and targets of shape {b.shape} differ{hint}")


def _elementwise(op, pred, target, reduction, forward):
    """Shared frame of the elementwise losses: forward(p, t) -> (loss, dloss/dp); d/dt = -d/dp."""
    pred, target = operands(pred, target)
    _same_shape(op, pred, target)
    loss, dpred = forward(pred.data, target.data)
    y, scale = _reduce(loss, reduction, op)

    def backward(g):
        gp = g * scale * dpred
        return gp, (-gp if target.requires_grad else None)
    return record(y, (pred, target), backward, op)


def mse(pred, target, reduction="mean"):
    """(pred - target)^2, reduced;  d/dpred = 2 (pred - target)."""
    def forward(p, t):
        r = p - t
        return r * r, 2 * r
    return _elementwise("mse", pred, target, reduction, forward)


def mae(pred, target, reduction="mean"):
    """|pred - target|, reduced;  d/dpred = sign(pred - target)."""
    def forward(p, t):
        r = p - t
        return np.abs(r), np.sign(r)
    return _elementwise("mae", pred, target, reduction, forward)


def huber(pred, target, delta=1.0, reduction="mean"):
    """r^2 / 2 where |r| <= delta, else delta (|r| - delta/2), with r = pred - target;
    d/dpred = r inside, delta * sign(r) outside."""
    def forward(p, t):
        r = p - t
        a = np.abs(r)
        d = p.dtype.type(delta)
        inside = a <= d
        loss = np.where(inside, 0.5 * r * r, d * (a - 0.5 * d))
        return loss, np.where(inside, r, d * np.sign(r))
    return _elementwise("huber", pred, target, reduction, forward)


def binary_cross_entropy(probs, target, reduction="mean"):
    """-(t ln p + (1 - t) ln(1 - p)) with p clipped to [eps, 1 - eps];
    d/dp = (p - t) / (p (1 - p)) inside the clip range, 0 outside; d/dt = ln((1 - p) / p)."""
    probs, target = operands(probs, target)
    _same_shape("binary_cross_entropy", probs, target)
    pd, td = probs.data, target.data
    p = np.clip(pd, EPSILON, 1 - EPSILON)
    loss = -(td * np.log(p) + (1 - td) * np.log(1 - p))
    y, scale = _reduce(loss, reduction, "binary_cross_entropy")

    def backward(g):
        gs = g * scale
        inside = (pd >= EPSILON) & (pd <= 1 - EPSILON)
        gp = gs * (p - td) / (p * (1 - p)) * inside
        return gp, (gs * np.log((1 - p) / p) if target.requires_grad else None)
    return record(y, (probs, target), backward, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """-(t ln s(x) + (1 - t) ln(1 - s(x))) with s the sigmoid, computed as
    max(x, 0) - x t + ln(1 + e^-|x|), finite for any x;  d/dx = s(x) - t, d/dt = -x."""
    logits, target = operands(logits, target)
    _same_shape("binary_cross_entropy_with_logits", logits, target)
    x, t = logits.data, target.data
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    y, scale = _reduce(loss, reduction, "binary_cross_entropy_with_logits")

    def backward(g):
        gs = g * scale
        s = np.tanh(x * 0.5) * 0.5 + 0.5
        return gs * (s - t), (-gs * x if target.requires_grad else None)
    return record(y, (logits, target), backward, "binary_cross_entropy_with_logits")


def _check_onehot(op, scores, target):
    if scores.shape != target.shape:
        hint = ""
        if target.ndim == scores.ndim - 1 or (target.ndim == scores.ndim and target.shape[-1] == 1):
            hint = f"; these look like integer labels: use sparse_{op} instead"
        raise ValueError(f"{op}: scores of shape {scores.shape} need one-hot targets of the same shape, "
                         f"got targets of shape {target.shape}{hint}")


def _labels(op, scores, labels):
    """Integer class labels as an int array of shape scores.shape[:-1], checked."""
    lab = labels.data if isinstance(labels, Tensor) else labels
    xp = backend.array_module(scores.data)
    lab = xp.asarray(lab)
    if lab.ndim == scores.ndim and lab.shape[-1] == 1:
        lab = lab.reshape(lab.shape[:-1])
    dense = op.replace("sparse_", "")
    if lab.shape != scores.shape[:-1]:
        hint = (f"; these look like one-hot targets: use {dense} instead"
                if lab.shape == scores.shape else "")
        raise ValueError(f"{op}: scores of shape {scores.shape} need integer labels of shape "
                         f"{scores.shape[:-1]}, got {lab.shape}{hint}")
    if lab.dtype.kind == "f":
        if not bool(xp.all(lab == xp.round(lab))):
            raise ValueError(f"{op}: labels must be whole class indices, got fractional values")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be integers, got dtype {lab.dtype}")
    n = scores.shape[-1]
    if lab.size and (int(lab.min()) < 0 or int(lab.max()) >= n):
        raise ValueError(f"{op}: labels must lie in [0, {n}) for {n} classes, got values in "
                         f"[{int(lab.min())}, {int(lab.max())}]")
    return lab


def _pick(a, lab):
    """a[..., lab] per sample: the entry of each row at its label."""
    return np.take_along_axis(a, lab[..., None], axis=-1)[..., 0]


def softmax_cross_entropy(logits, target, reduction="mean"):
    """-sum_c t_c log softmax(x)_c over the last axis, fused;  d/dx = softmax(x) sum(t) - t
    (= softmax(x) - t for one-hot t), d/dt = -log softmax(x)."""
    logits, target = operands(logits, target)
    _check_onehot("softmax_cross_entropy", logits, target)
    x, t = logits.data, target.data
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    log_p = shifted - np.log(s)
    loss = -(t * log_p).sum(axis=-1)
    y, scale = _reduce(loss, reduction, "softmax_cross_entropy")

    def backward(g):
        gs = (g * scale)[..., None]
        gx = gs * (e / s * t.sum(axis=-1, keepdims=True) - t)
        return gx, (-gs * log_p if target.requires_grad else None)
    return record(y, (logits, target), backward, "softmax_cross_entropy")


def sparse_softmax_cross_entropy(logits, labels, reduction="mean"):
    """-log softmax(x)_label over the last axis, fused;  d/dx = softmax(x) - onehot(label)."""
    logits = as_tensor(logits)
    lab = _labels("sparse_softmax_cross_entropy", logits, labels)
    x = logits.data
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    loss = np.log(s[..., 0]) - _pick(shifted, lab)
    y, scale = _reduce(loss, reduction, "sparse_softmax_cross_entropy")

    def backward(g):
        gx = e / s
        np.put_along_axis(gx, lab[..., None], _pick(gx, lab)[..., None] - 1, axis=-1)
        return (gx * (g * scale)[..., None],)
    return record(y, (logits,), backward, "sparse_softmax_cross_entropy")


def categorical_cross_entropy(probs, target, reduction="mean"):
    """-sum_c t_c log q_c with q = p / sum(p) clipped to [eps, 1 - eps], as Keras computes it for
    probabilities;  d/dq = -t/q inside the clip, and d/dp = (d/dq - sum(d/dq q)) / sum(p)."""
    probs, target = operands(probs, target)
    _check_onehot("categorical_cross_entropy", probs, target)
    p, t = probs.data, target.data
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    qc = np.clip(q, EPSILON, 1 - EPSILON)
    log_q = np.log(qc)
    loss = -(t * log_q).sum(axis=-1)
    y, scale = _reduce(loss, reduction, "categorical_cross_entropy")

    def backward(g):
        gs = (g * scale)[..., None]
        gq = -t / qc * ((q >= EPSILON) & (q <= 1 - EPSILON))
        gp = (gq - (gq * q).sum(axis=-1, keepdims=True)) / total
        return gs * gp, (-gs * log_q if target.requires_grad else None)
    return record(y, (probs, target), backward, "categorical_cross_entropy")


def sparse_categorical_cross_entropy(probs, labels, reduction="mean"):
    """-log q_label with q = p / sum(p) clipped to [eps, 1 - eps] (Keras's form for probabilities)."""
    probs = as_tensor(probs)
    lab = _labels("sparse_categorical_cross_entropy", probs, labels)
    p = probs.data
    total = p.sum(axis=-1, keepdims=True)
    q_lab = _pick(p, lab) / total[..., 0]
    qc = np.clip(q_lab, EPSILON, 1 - EPSILON)
    loss = -np.log(qc)
    y, scale = _reduce(loss, reduction, "sparse_categorical_cross_entropy")

    def backward(g):
        gq = -(g * scale) / qc * ((q_lab >= EPSILON) & (q_lab <= 1 - EPSILON))
        # dq_lab/dp_j = (delta_j,lab - q_lab) / total
        gp = np.broadcast_to((-gq * q_lab)[..., None], p.shape).copy()
        np.put_along_axis(gp, lab[..., None], (gq - gq * q_lab)[..., None], axis=-1)
        return (gp / total,)
    return record(y, (probs,), backward, "sparse_categorical_cross_entropy")
