"""Sequential: a plain stack of layers, each feeding the next."""
from ..layers.base import KerasTensor, Layer, serializable
from ..layers.input_layer import InputLayer
from .model import Model


@serializable
class Sequential(Model):
    """``Sequential([layers.Input((784,)), layers.Dense(10, activation='softmax')])`` or ``.add()`` one by one.

    With an input shape (an Input first, or input_shape= on the first layer) the model is
    built at once and `summary()` works before training; otherwise it builds on its first call.
    """

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        self._stack = []
        self._input_shape = None
        self.layer_output_shapes = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an Input, which fixes the input shape)."""
        if isinstance(layer, KerasTensor):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._stack:
                raise ValueError("Sequential: an Input can only be the first entry")
            self._input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(layer.name == known.name for known in self._stack):
            raise ValueError(f"Sequential: all layers need unique names; '{layer.name}' is already in the model")
        if not self._stack and self._input_shape is None and layer._declared_input_shape is not None:
            self._input_shape = layer._declared_input_shape
        self._stack.append(layer)
        self._track(layer)
        self.built = False
        if self._input_shape is not None:
            self._maybe_build(self._input_shape)

    def pop(self):
        layer = self._stack.pop()
        self._layers = [known for known in self._layers if known is not layer]
        self.built = False
        return layer

    @property
    def layers(self):
        return list(self._stack)

    @property
    def output_names(self):
        return [self._stack[-1].name] if self._stack else ["output"]

    def build(self, input_shape):
        """Build every layer by passing a symbolic tensor of `input_shape` through the stack."""
        shape = (None,) + tuple(input_shape[1:])
        x = KerasTensor(shape)
        self.layer_output_shapes = []
        for layer in self._stack:
            x = layer(x)
            self.layer_output_shapes.append(x.shape if isinstance(x, KerasTensor) else [t.shape for t in x])
        self._input_shape = shape
        self._build_shape = shape
        self.built = True

    def call(self, inputs, training=False):
        x = inputs
        for layer in self._stack:
            x = layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        if not self.layer_output_shapes:
            self.build(input_shape)
        return self.layer_output_shapes[-1]

    def get_config(self):
        config = Layer.get_config(self)
        config["layers"] = [{"class_name": type(layer).__name__, "config": layer.get_config()}
                            for layer in self._stack]
        if self._input_shape is not None:
            config["batch_input_shape"] = self._input_shape
        return config
