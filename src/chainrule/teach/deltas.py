"""The delta rule: backpropagation through a stack of Dense layers in matrix form.

With a batch in rows (Keras's layout: x is (N, in), each kernel W_l is (in, out)):

    forward     z_l = a_(l-1) W_l + b_l,          a_l = g_l(z_l),          a_0 = x
    output      delta_L = dLoss/dz_L               = (a_L - y) / N          softmax + cross-entropy
                                                   = (a_L - y) / (N K)      sigmoid + binary cross-entropy
                                                   = dLoss/da_L * g'(z_L)   otherwise
    hidden      delta_l = (delta_(l+1) W_(l+1)^T) * g'(z_l)                 (* elementwise)
    gradients   dLoss/dW_l = a_(l-1)^T delta_l,     dLoss/db_l = sum over the batch of delta_l

The lecture writes the same with column vectors, delta_l = (W_(l+1)^T delta_(l+1)) * g'(z_l), its W
being our kernel transposed. N is the batch size and K the number of outputs: Keras's losses
average over both, which is where the 1/N and 1/(N K) come from.
"""
import numpy as np

from .. import losses as losses_module
from ..autograd import Tensor, grad
from ._common import activation_name, auto_loss, flat_layers, one_hot_like, to_numpy

__all__ = ["delta_rule", "DeltaRule"]

_DERIVATIVES = {  # g'(z), written with the output a = g(z) where that is the lecture's form
    "linear": lambda z, a: np.ones_like(z),
    "sigmoid": lambda z, a: a * (1 - a),
    "tanh": lambda z, a: 1 - a * a,
    "relu": lambda z, a: (z > 0).astype(z.dtype),
}
_FORWARD = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 0.5 * np.tanh(0.5 * z) + 0.5,  # no exp to overflow, as ops.sigmoid
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "softmax": lambda z: (lambda e: e / e.sum(axis=-1, keepdims=True))(np.exp(z - z.max(axis=-1, keepdims=True))),
}
_LOSSES = {"categorical_crossentropy": "categorical_crossentropy",
           "sparse_categorical_crossentropy": "categorical_crossentropy",
           "binary_crossentropy": "binary_crossentropy", "mse": "mean_squared_error",
           "mean_squared_error": "mean_squared_error", "half_squared_error": "half_squared_error"}


class DeltaRule(list):
    """One dict per Dense layer: 'layer', 'activation', 'z', 'a', 'delta', 'grad_kernel', 'grad_bias',
    and when checked 'autodiff_kernel', 'autodiff_bias' and 'max_abs_error'."""

    def __init__(self, rows, loss):
        super().__init__(rows)
        self.loss = loss

    @property
    def max_error(self):
        """Largest |delta-rule gradient - autodiff gradient| over every weight (None if not checked)."""
        errors = [r["max_abs_error"] for r in self if "max_abs_error" in r]
        return max(errors) if errors else None

    def __str__(self):
        lines = [f"delta rule with loss {self.loss} (batch of {len(self[0]['a'])}):"]
        last = len(self) - 1
        for i, r in enumerate(reversed(self)):
            l = last - i + 1
            if i == 0:
                rule = {"categorical_crossentropy": "(a - y) / N", "binary_crossentropy": "(a - y) / (N K)"}.get(
                    r["rule"], "dLoss/da * g'(z)")
                how = f"delta_{l} = {rule}"
            else:
                how = f"delta_{l} = (delta_{l + 1} W_{l + 1}^T) * {r['activation']}'(z_{l})"
            delta = r["delta"]
            check = ("" if "max_abs_error" not in r else
                     f"; autodiff agrees to {r['max_abs_error']:.1e}")
            lines.append(f"  layer {l} '{r['layer']}' ({r['activation']}): {how}")
            lines.append(f"      delta_{l} has shape {delta.shape}, |delta_{l}| = {np.linalg.norm(delta):.4g}; "
                         f"dW_{l} = a_{l - 1}^T delta_{l}, |dW_{l}| = {np.linalg.norm(r['grad_kernel']):.4g}{check}")
        return "\n".join(lines)

    __repr__ = __str__


def delta_rule(model, x, y, loss="auto", check=True):
    """Per-layer deltas and weight gradients of a Dense network by the delta rule (module docstring),
    and, with `check`, the autodiff gradients of the same loss beside them.

    model: a Sequential (or a chain-shaped functional model) of Dense layers with 'linear', 'sigmoid',
    'tanh', 'relu' or (last layer only) 'softmax' activations. loss: 'auto' (the compiled loss if it is
    one of these, else cross-entropy for softmax/sigmoid outputs and mean squared error otherwise),
    'categorical_crossentropy' (integer labels are one-hot encoded), 'binary_crossentropy',
    'mean_squared_error' or 'half_squared_error' (E = 1/2 sum (y - a)^2, the lecture's).
    Work in float64 to compare to 1e-10: build the layers with dtype="float64".
    """
    layers = _dense_layers(model)
    acts = [activation_name(layer) for layer in layers]
    loss = _choose_loss(model, acts[-1], loss)
    dtype = layers[0].kernel.dtype
    a = [np.asarray(to_numpy(x), dtype=dtype)]
    zs = []
    for layer, act in zip(layers, acts):
        w, b = _weights(layer)
        zs.append(a[-1] @ w + b)
        a.append(_FORWARD[act](zs[-1]))
    out = a[-1]
    target = one_hot_like(to_numpy(y), out)
    n, k = len(out), out.shape[-1]

    deltas = [None] * len(layers)
    if loss == "categorical_crossentropy" and acts[-1] == "softmax":
        deltas[-1] = (out - target) / n
    elif loss == "binary_crossentropy" and acts[-1] == "sigmoid":
        deltas[-1] = (out - target) / (n * k)
    else:
        dloss = {"mean_squared_error": lambda: 2 * (out - target) / (n * k),
                 "half_squared_error": lambda: out - target}.get(loss)
        if dloss is None:
            raise ValueError(f"delta_rule: loss {loss!r} with a {acts[-1]} output has no delta formula here; "
                             f"use categorical_crossentropy with softmax, binary_crossentropy with sigmoid, "
                             f"or mean_squared_error / half_squared_error with any output")
        g = dloss()
        if acts[-1] == "softmax":  # softmax's Jacobian: delta = a * (g - sum(g * a))
            deltas[-1] = out * (g - (g * out).sum(axis=-1, keepdims=True))
        else:
            deltas[-1] = g * _DERIVATIVES[acts[-1]](zs[-1], out)
    for l in range(len(layers) - 2, -1, -1):
        w_next = _weights(layers[l + 1])[0]
        deltas[l] = (deltas[l + 1] @ w_next.T) * _DERIVATIVES[acts[l]](zs[l], a[l + 1])

    rows = []
    for l, layer in enumerate(layers):
        rows.append({"layer": layer.name, "activation": acts[l], "rule": loss, "z": zs[l], "a": a[l + 1],
                     "delta": deltas[l], "grad_kernel": a[l].T @ deltas[l], "grad_bias": deltas[l].sum(axis=0)})
    if check:
        _autodiff(model, layers, rows, a[0], target, loss)
    return DeltaRule(rows, loss)


def _dense_layers(model):
    layers = flat_layers(model) if hasattr(model, "layers") else list(model)
    for layer in layers:
        act = activation_name(layer)
        if type(layer).__name__ != "Dense":
            raise ValueError(f"delta_rule works on stacks of Dense layers; layer '{layer.name}' is "
                             f"{type(layer).__name__}: use teach.trace or autodiff (loss.backward()) for it")
        if act not in _FORWARD:
            raise ValueError(f"delta_rule: layer '{layer.name}' has activation {act!r}; supported are "
                             f"{sorted(_FORWARD)}")
        if not layer.built:
            raise ValueError(f"delta_rule: layer '{layer.name}' is not built; give the model an Input shape "
                             f"or call it on data first")
    if not layers:
        raise ValueError("delta_rule: the model has no Dense layers")
    if any(activation_name(layer) == "softmax" for layer in layers[:-1]):
        raise ValueError("delta_rule: softmax is supported on the output layer only")
    return layers


def _weights(layer):
    w = to_numpy(layer.kernel)
    b = to_numpy(layer.bias) if layer.bias is not None else np.zeros(w.shape[1], w.dtype)
    return w, b


def _choose_loss(model, output_activation, loss):
    if loss == "auto":
        spec = None
        compiled = getattr(model, "compiled_loss", None)
        if compiled is not None:
            spec = compiled.per_output_specs[0]
        loss = spec if isinstance(spec, str) and spec in _LOSSES else auto_loss(output_activation)
    if loss not in _LOSSES:
        raise ValueError(f"delta_rule: unknown loss {loss!r}; use one of {sorted(_LOSSES)}")
    return _LOSSES[loss]


def _autodiff(model, layers, rows, x, target, loss):
    """The same loss through the engine: dLoss/dW by autodiff, next to the delta rule's."""
    pred = Tensor(x)
    for layer in layers:  # layer by layer: a model whose own dtype is float32 would round float64 inputs
        pred = layer(pred)
    if loss == "half_squared_error":
        value = ((pred - Tensor(target)) ** 2).sum() * 0.5
    else:
        value = losses_module.resolve(loss)(target, pred)
    weights = [w for layer in layers for w in (layer.kernel, layer.bias) if w is not None]
    grads = iter(grad(value, weights))
    for layer, row in zip(layers, rows):
        row["autodiff_kernel"] = next(grads).numpy()
        row["autodiff_bias"] = next(grads).numpy() if layer.bias is not None else np.zeros_like(row["grad_bias"])
        row["max_abs_error"] = float(max(np.abs(row["autodiff_kernel"] - row["grad_kernel"]).max(),
                                         np.abs(row["autodiff_bias"] - row["grad_bias"]).max()))
