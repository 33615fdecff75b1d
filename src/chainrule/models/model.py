"""Model: a Layer that trains. Functional (`Model(inputs, outputs)`) or subclassed (override `call`)."""
from ..layers.base import Layer, serializable
from .functional import Graph
from .trainer import Trainer


@serializable
class Model(Trainer, Layer):
    """A trainable network.

    Functional: ``Model(inputs=Input(...), outputs=...)``, any graph of layer calls with
    several inputs/outputs, shared layers and nested models. Subclassed: define layers in
    ``__init__`` and the forward pass in ``call(inputs, training=False)``.
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if (inputs is None) != (outputs is None):
            raise ValueError("Model(...) needs both inputs= and outputs= (or neither, when subclassing)")
        if name is None and inputs is not None:
            from ..layers.base import unique_name
            name = unique_name("functional")
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._graph = None
        if inputs is not None:
            self._graph = Graph(inputs, outputs)
            for layer in self._graph.layers:
                self._track(layer)
            self.built = True
            self._build_shape = _shapes(self._graph.inputs)

    # ------------------------------------------------------------------ structure
    @property
    def inputs(self):
        return None if self._graph is None else self._graph.input_tensors

    @property
    def outputs(self):
        return None if self._graph is None else self._graph.output_tensors

    @property
    def input_names(self):
        return [] if self._graph is None else self._graph.input_names

    @property
    def output_names(self):
        if self._graph is not None:
            return self._graph.output_names
        return ["output"]  # a subclassed model: one output unless compiled with a dict

    def get_layer(self, name=None, index=None):
        """A layer by name or by index in `layers`."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range; the model has {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. The layers are {[layer.name for layer in self.layers]}")

    # ------------------------------------------------------------------ calling
    def call(self, inputs, training=False):
        if self._graph is None:
            raise NotImplementedError(f"{type(self).__name__} subclasses Model without inputs/outputs, "
                                      f"so it must define call(self, inputs, training=False)")
        return self._graph.run(inputs, training)

    def compute_output_shape(self, input_shape):
        if self._graph is not None:
            return _shapes(self._graph.outputs)
        return super().compute_output_shape(input_shape)

    def build(self, input_shape):
        if self._graph is None:
            # a subclassed model builds its layers by running once on zeros of that shape
            self._shape_by_running(input_shape)
        self.built = True

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False):
        """Print each layer's output shape and parameter count, then the totals (as Keras does)."""
        from .summary import print_summary
        print_summary(self, line_length=line_length, print_fn=print_fn, show_trainable=show_trainable)

    # ------------------------------------------------------------------ files (format chosen by suffix)
    def save(self, filepath, overwrite=True):
        """Save architecture, weights and optimizer state: '.chainrule' (ours) or '.keras' (Keras 3's zip)."""
        from ..io import save_model
        _check_overwrite(filepath, overwrite)
        save_model(self, filepath)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights only: '.safetensors', '.weights.h5' (Keras's layout) or '.npz'."""
        from ..io import save_weights
        _check_overwrite(filepath, overwrite)
        save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights saved by `save_weights` (or by Keras); every shape is checked before any changes."""
        from ..io import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Export for inference elsewhere; format='onnx' (the only one here) writes an ONNX graph."""
        if format != "onnx":
            raise ValueError(f"export(format={format!r}): chainrule exports 'onnx' only")
        from ..io import export_onnx
        return export_onnx(self, filepath, **kwargs)


def _check_overwrite(filepath, overwrite):
    import os
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists; pass overwrite=True to replace it")


def _shapes(structure):
    if isinstance(structure, dict):
        return {k: v.shape for k, v in structure.items()}
    if isinstance(structure, list):
        return [t.shape for t in structure]
    return structure.shape

