"""Core layers: Dense, Activation, Embedding, Lambda, Identity (Keras's keras/src/layers/core/).

Configs write initializers and regularizers as Keras does ({'module', 'class_name', 'config',
'registered_name'} dicts) and activations by name ('relu'), so `from_config` rebuilds the layer.
"""
import math

import numpy as np

from .. import activations, initializers, ops, regularizers
from ..autograd import Tensor
from .base import Layer, serializable

__all__ = ["Dense", "Activation", "Embedding", "Lambda", "Identity"]


# ----------------------------------------------------------------------------- helpers shared by layer files
def get_constraint(constraint):
    """A constraint from its identifier, through `chainrule.constraints` when that module exists."""
    if constraint is None or callable(constraint):
        return constraint
    try:
        from .. import constraints
    except ImportError:
        raise ValueError(f"Could not interpret constraint {constraint!r}: pass a callable weight -> weight") from None
    return constraints.get(constraint)


def serialize_constraint(constraint):
    """A constraint as config data (Keras's dict form), through `chainrule.constraints` when it exists."""
    if constraint is None:
        return None
    try:
        from .. import constraints
        return constraints.serialize(constraint)
    except (ImportError, AttributeError):
        if hasattr(constraint, "get_config"):
            return {"module": "keras.constraints", "class_name": type(constraint).__name__,
                    "config": constraint.get_config(), "registered_name": None}
        return getattr(constraint, "__name__", None)


def add_activity_loss(layer, output):
    """Keras's activity regularizer: penalty(output) / batch size, added to the layer's losses."""
    if layer.activity_regularizer is not None:
        loss = layer.activity_regularizer(output)
        if output.ndim > 0:
            loss = loss * (1.0 / output.shape[0])  # same strength whatever the batch size
        layer.add_loss(loss)


def float_input(layer, x):
    """Integer or bool inputs as the layer's float dtype (Keras casts inputs to the compute dtype)."""
    return x if x.dtype.kind == "f" else ops.math.cast(x, layer.dtype)


# ----------------------------------------------------------------------------- Dense
@serializable
class Dense(Layer):
    """A fully connected layer:  y = activation(x @ kernel + bias).

    kernel has shape (in_features, units), bias (units,). On inputs of rank > 2 it acts on
    the last axis, like Keras: (batch, steps, in) -> (batch, steps, units).
    """

    input_min_ndim = 2

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        kwargs.pop("quantization_config", None)  # in Keras 3 configs; no quantization here
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: units must be a positive int (the number of outputs), got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = get_constraint(kernel_constraint)
        self.bias_constraint = get_constraint(bias_constraint)
        self.kernel = self.bias = None

    def build(self, input_shape):
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"Dense '{self.name}' needs a known last axis to size its kernel, got input shape "
                             f"{input_shape}; give Input a full shape, e.g. Input(shape=(784,))")
        self.kernel = self.add_weight(shape=(in_features, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")

    def _check_features(self, shape):
        want = self.kernel.shape[0]
        if len(shape) >= 2 and shape[-1] in (want, None):
            return
        shape = tuple(shape)
        if len(shape) < 2:
            fix = "give it a batch axis, e.g. x[None, :] or x.reshape(1, -1)"
        elif len(shape) > 2 and None not in shape[1:] and math.prod(shape[1:]) == want:
            fix = "add Flatten() before it"
        else:
            fix = (f"its last axis must have {want} features, as when it was built; reshape the input or use "
                   f"a new Dense layer for inputs of this size")
        raise ValueError(f"Dense '{self.name}' expects input (batch, {want}) but got {shape}: {fix}")

    def call(self, inputs):
        self._check_features(inputs.shape)
        y = ops.linear(float_input(self, inputs), self.kernel, self.bias)  # one fused node: x @ W + b
        y = self.activation(y)
        add_activity_loss(self, y)
        return y

    def compute_output_shape(self, input_shape):
        if self.built:
            self._check_features(input_shape)
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": serialize_constraint(self.kernel_constraint),
            "bias_constraint": serialize_constraint(self.bias_constraint),
        })
        return config


# ----------------------------------------------------------------------------- Activation
@serializable
class Activation(Layer):
    """Applies an activation function by name or callable: Activation('relu')(x) = relu(x)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


# ----------------------------------------------------------------------------- Embedding
@serializable
class Embedding(Layer):
    """A lookup table: integer index i -> row i of `embeddings` (input_dim, output_dim).

    (batch, steps) integers -> (batch, steps, output_dim) floats. The gradient adds g into each
    looked-up row, once per occurrence (a scatter-add, so repeated indices accumulate).
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, activity_regularizer=None, **kwargs):
        kwargs.pop("input_length", None)  # Keras 2 argument; the length comes from the data
        kwargs.pop("quantization_config", None)
        super().__init__(**kwargs)
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Embedding: {arg} must be a positive int, got {value!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = get_constraint(embeddings_constraint)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.mask_zero = mask_zero
        self.embeddings = None
        if weights is not None:  # Keras's Embedding(..., weights=[matrix]): pretrained vectors
            self.build(None)
            self.built = True
            self.set_weights(weights)

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, name="embeddings")

    def call(self, inputs):
        idx = inputs.data
        if idx.dtype.kind not in "iu":
            idx = idx.astype(np.int64)  # Keras casts float indices to int
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            raise ValueError(f"Embedding '{self.name}' has input_dim={self.input_dim}, so indices must be in "
                             f"[0, {self.input_dim - 1}], got values from {idx.min()} to {idx.max()}: "
                             f"raise input_dim to the vocabulary size")
        y = ops.getitem(self.embeddings, idx)  # backward: np.add.at, so repeated indices add up
        add_activity_loss(self, y)
        return y

    def compute_mask(self, inputs, mask=None):
        """With mask_zero, True where the index is not 0 (the padding index)."""
        if not self.mask_zero:
            return None
        data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return data != 0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "embeddings_constraint": serialize_constraint(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
        })
        return config


# ----------------------------------------------------------------------------- Lambda, Identity
@serializable
class Lambda(Layer):
    """Wraps a function of Tensors as a layer: Lambda(lambda x: x * 2)(x).

    `output_shape` (without the batch axis, or a function input_shape -> output_shape) spares
    the shape probe on symbolic inputs; `arguments` are extra keyword arguments for the function.
    The config stores the function's name only, never its code: loading one back needs the
    function registered under that name (or passed in the config).
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {function!r}")
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.arguments = dict(arguments or {})

    def call(self, inputs, training=None):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return self._shape_by_running(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
        return (batch,) + tuple(self._output_shape)

    def get_config(self):
        config = super().get_config()
        name = getattr(self.function, "__name__", type(self.function).__name__)
        config.update({"function": name, "arguments": dict(self.arguments)})
        if self._output_shape is not None and not callable(self._output_shape):
            config["output_shape"] = tuple(self._output_shape)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        fn = config.get("function")
        if isinstance(fn, str):
            found = activations.ALL_OBJECTS.get(fn) or getattr(ops, fn, None)
            if not callable(found):
                raise ValueError(f"Lambda: the config names function {fn!r}, whose code is not saved (by design); "
                                 f"pass the function itself in config['function'] or register it under that name")
            config["function"] = found
        return super().from_config(config)


@serializable
class Identity(Layer):
    """Returns its input unchanged (a placeholder, e.g. for an optional block)."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
