"""Input: the start of a functional model, a symbolic tensor of a given shape."""
import numpy as np

from .. import backend
from .base import KerasTensor, Layer, serializable


@serializable
class InputLayer(Layer):
    """The layer behind `Input`: it holds the batch shape and passes data through."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs shape=(...) (without the batch axis), e.g. Input(shape=(28, 28, 1))")
            shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
            batch_shape = (batch_size,) + shape
        self.batch_shape = tuple(batch_shape)
        self.built = True
        self.output_tensor = KerasTensor(self.batch_shape, self.dtype, name=self.name)
        from .base import CallNode
        node = CallNode(self, [], self.output_tensor, {})
        self.output_tensor.node = node
        self._inbound.append(node)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return self.batch_shape

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": str(self.dtype), "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """A symbolic input of `shape` (batch axis excluded), to start a functional model."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype or backend.default_float(),
                       name=name, batch_shape=batch_shape)
    return layer.output_tensor
