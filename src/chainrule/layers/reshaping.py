"""Reshaping layers (Keras's keras/src/layers/reshaping/): Flatten, Reshape, Permute, RepeatVector.

All keep the batch axis (axis 0) as it is; their shapes and axes count from the first
non-batch axis, as Keras's do.
"""
import math

from .. import ops
from .base import Layer, serializable

__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector"]


@serializable
class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...): the bridge from convolutions to Dense.

    With data_format='channels_first' the channel axis is moved last first, so the order of
    the flattened features matches a channels_last model's.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"Flatten: data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format

    def call(self, inputs):
        if inputs.ndim == 0:
            raise ValueError(f"Flatten '{self.name}' needs a batch axis, got a scalar")
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ops.permute(inputs, (0,) + tuple(range(2, inputs.ndim)) + (1,))
        return ops.reshape(inputs, (inputs.shape[0], math.prod(inputs.shape[1:])))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


def _resolve(target, input_shape, layer):
    """`target` (one entry may be -1) with the -1 worked out from `input_shape` (batch excluded)."""
    if None in input_shape:
        return tuple(None if t == -1 else t for t in target)
    size = math.prod(input_shape)
    known = math.prod(t for t in target if t != -1)
    if -1 in target:
        if known == 0 or size % known:
            raise ValueError(f"Reshape '{layer.name}': an input of shape (batch, {', '.join(map(str, input_shape))}) "
                             f"has {size} values per sample, which target_shape {target} cannot hold: "
                             f"{size} is not a multiple of {known}")
        return tuple(size // known if t == -1 else t for t in target)
    if known != size:
        raise ValueError(f"Reshape '{layer.name}': target_shape {target} holds {known} values per sample but the "
                         f"input (batch, {', '.join(map(str, input_shape))}) has {size}; the products must match "
                         f"(use -1 for one axis to infer it)")
    return tuple(target)


@serializable
class Reshape(Layer):
    """(batch, ...) -> (batch, *target_shape); one entry of target_shape may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(int(t) for t in target_shape)
        if target_shape.count(-1) > 1 or any(t < -1 or t == 0 for t in target_shape):
            raise ValueError(f"Reshape: target_shape {target_shape} must hold positive sizes and at most one -1")
        self.target_shape = target_shape

    def call(self, inputs):
        shape = _resolve(self.target_shape, tuple(inputs.shape[1:]), self)
        return ops.reshape(inputs, (inputs.shape[0],) + shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + _resolve(self.target_shape, tuple(input_shape[1:]), self)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


@serializable
class Permute(Layer):
    """Reorders the non-batch axes: dims are 1-based, so Permute((2, 1)) swaps the two axes of
    (batch, steps, features), giving (batch, features, steps)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims {dims} must be a permutation of 1..{len(dims)} "
                             f"(1-based axes, the batch axis 0 excluded)")
        self.dims = dims
        self.input_ndim = len(dims) + 1

    def call(self, inputs):
        return ops.permute(inputs, (0,) + self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        config = super().get_config()
        config["dims"] = self.dims
        return config


@serializable
class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): the input repeated n times along a new axis 1."""

    input_ndim = 2

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        batch, features = inputs.shape
        # a broadcast view, not n copies; backward sums the n gradients
        return ops.expand(ops.unsqueeze(inputs, 1), (batch, self.n, features))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config
