"""What several instruments share: finding layers, naming activations, choosing a loss."""
import numpy as np

from .. import backend
from ..autograd import Tensor


def to_numpy(x):
    """A NumPy array from a Tensor, a backend array or nested data."""
    if isinstance(x, Tensor):
        return backend.to_numpy(x.data)
    return np.asarray(backend.to_numpy(x) if hasattr(x, "shape") else x)


def activation_name(layer):
    """'relu', 'sigmoid', ... for a layer with an activation (Dense(activation=...), Activation,
    ReLU/Softmax layers), 'linear' for none, None for a layer that is not an activation at all."""
    kind = type(layer).__name__
    if kind == "ReLU":
        return "relu"
    if kind == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    return getattr(fn, "__name__", type(fn).__name__)


def flat_layers(model):
    """The model's layers in call order, nested models opened up, Input layers left out."""
    out = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if getattr(layer, "layers", None) and hasattr(layer, "compile"):  # a nested model
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def last_layer(model):
    """The layer that makes the model's (first) output."""
    graph = getattr(model, "_graph", None)
    if graph is not None and type(model).__name__ != "Sequential":
        return graph.output_tensors[0].node.layer
    layers = flat_layers(model)
    if not layers:
        raise ValueError(f"model '{model.name}' has no layers")
    return layers[-1]


def find_layer(model, layer):
    """A layer given as a Layer, a name or an index into the model's layers."""
    if layer is None or hasattr(layer, "call"):
        return layer
    layers = flat_layers(model)
    if isinstance(layer, (int, np.integer)):
        return layers[int(layer)]
    for candidate in layers:
        if candidate.name == layer:
            return candidate
    raise ValueError(f"model '{model.name}' has no layer {layer!r}; its layers are {[l.name for l in layers]}")


def input_shape(model):
    """The model's input shape without the batch axis, e.g. (28, 28, 1)."""
    shape = getattr(model, "_build_shape", None) or getattr(model, "_input_shape", None)
    if shape is None and getattr(model, "inputs", None):
        shape = model.inputs[0].shape
    if shape is None:
        raise ValueError(f"model '{model.name}' has no known input shape: build it first "
                         f"(start it with layers.Input(shape=...) or call it on data)")
    if isinstance(shape, list):
        shape = shape[0]
    return tuple(shape[1:])


def auto_loss(activation):
    """The loss the lectures pair with an output activation: cross-entropy for softmax and sigmoid
    outputs, the mean squared error otherwise."""
    return {"softmax": "categorical_crossentropy", "sigmoid": "binary_crossentropy"}.get(
        activation, "mean_squared_error")


def one_hot_like(y, probs):
    """Targets as an array shaped like `probs`: integer labels (N,) or (N, 1) become one-hot rows."""
    y = np.asarray(y)
    if y.shape == probs.shape:
        return y.astype(probs.dtype)
    if probs.ndim == 2 and y.reshape(len(y), -1).shape[1] == 1 and probs.shape[1] > 1:
        labels = y.reshape(-1).astype(np.int64)
        out = np.zeros(probs.shape, probs.dtype)
        out[np.arange(len(labels)), labels] = 1
        return out
    return y.reshape(probs.shape).astype(probs.dtype)
