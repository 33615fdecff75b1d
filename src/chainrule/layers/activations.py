"""Activation layers (Keras's keras/src/layers/activations/): ReLU, LeakyReLU, Softmax, ELU, PReLU.

Each applies the function of `chainrule.activations` of the same name; PReLU also learns its slope.
"""
import warnings

import numpy as np

from .. import activations, initializers, ops, regularizers
from ..autograd import Tensor
from .base import Layer, serializable
from .core import get_constraint, serialize_constraint

__all__ = ["ReLU", "LeakyReLU", "Softmax", "ELU", "PReLU"]


class _Elementwise(Layer):
    """An activation layer: output shape = input shape, no weights."""

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class ReLU(_Elementwise):
    """f(x) = min(x, max_value) for x >= threshold, negative_slope * (x - threshold) otherwise."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("max_value", max_value), ("negative_slope", negative_slope), ("threshold", threshold)):
            if value is not None and value < 0:
                raise ValueError(f"ReLU: {arg} must be >= 0, got {value}")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope, max_value=self.max_value,
                                threshold=self.threshold)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


@serializable
class LeakyReLU(_Elementwise):
    """f(x) = x for x > 0, negative_slope * x otherwise. The layer's default slope is 0.3
    (Keras 3; the function `activations.leaky_relu` defaults to 0.2)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name, still accepted by Keras 3 with a warning
            warnings.warn("LeakyReLU: argument `alpha` is deprecated, use `negative_slope`", stacklevel=2)
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a float >= 0, got {negative_slope!r}")
        self.negative_slope = negative_slope

    def call(self, inputs):
        return ops.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


@serializable
class Softmax(_Elementwise):
    """f(x)_i = e^x_i / sum_j e^x_j along `axis`."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.softmax(inputs, axis=self.axis)
        # as Keras: masked logits pushed to -1e9, then masked outputs zeroed (an all-masked row gives 0s)
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
        y = ops.softmax(ops.where(mask, inputs, -1e9), axis=self.axis)
        return y * mask.astype(y.dtype)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


@serializable
class ELU(_Elementwise):
    """f(x) = x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return ops.elu(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


@serializable
class PReLU(_Elementwise):
    """f(x) = x for x >= 0, alpha * x otherwise, with alpha learned (He et al., 2015).

    alpha has the input's shape without the batch axis; `shared_axes` (1-based, batch excluded
    as in Keras) share one alpha along those axes, e.g. shared_axes=[1, 2] for one per channel.
    Computed as relu(x) - alpha * relu(-x).
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = get_constraint(alpha_constraint)
        if shared_axes is None or isinstance(shared_axes, (list, tuple)):
            self.shared_axes = None if shared_axes is None else list(shared_axes)
        else:
            self.shared_axes = [shared_axes]
        self.alpha = None

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if not 1 <= axis <= len(shape):
                raise ValueError(f"PReLU '{self.name}': shared axis {axis} is out of range for input shape "
                                 f"{input_shape} (axes are 1-based, the batch axis excluded)")
            shape[axis - 1] = 1
        if None in shape:
            raise ValueError(f"PReLU '{self.name}' needs known sizes for every non-shared axis, got input shape "
                             f"{input_shape}; share the unknown axes with shared_axes")
        self.alpha = self.add_weight(shape=tuple(shape), initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint,
                                     name="alpha")

    def call(self, inputs):
        return ops.relu(inputs) - self.alpha * ops.relu(-inputs)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha_initializer": initializers.serialize(self.alpha_initializer),
                       "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                       "alpha_constraint": serialize_constraint(self.alpha_constraint),
                       "shared_axes": self.shared_axes})
        return config
