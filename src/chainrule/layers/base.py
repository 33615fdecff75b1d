"""Layer: the unit of the Keras API. It builds its weights on first call from the input
shape, computes in `call`, and describes itself in `get_config`.

Called on real data, a layer runs ops and returns a Tensor. Called on a symbolic
`KerasTensor` (from `Input`), it only works out shapes and records a `CallNode`, which
is how functional models are wired.
"""
import inspect
import re
import threading

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..variable import Variable

# ----------------------------------------------------------------------------- names
_name_counts = {}
_registry = {}


def unique_name(base):
    """'dense', 'dense_1', 'dense_2', ... as Keras numbers layers within a session."""
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def clear_session():
    """Reset the automatic layer names (as keras.backend.clear_session does)."""
    _name_counts.clear()


def snake_case(name):
    """Keras's default layer names: Conv2D -> conv2d, BatchNormalization -> batch_normalization, ReLU -> re_lu."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def serializable(cls):
    """Register a class by name so a saved config can name it (loading looks it up, never runs code)."""
    _registry[cls.__name__] = cls
    return cls


def registered(name):
    return _registry.get(name)


# ----------------------------------------------------------------------------- training flag
class _CallContext(threading.local):
    training = None


_context = _CallContext()


def current_training():
    """The training flag of the enclosing model call (None outside any call)."""
    return _context.training


# ----------------------------------------------------------------------------- symbolic tensors
class KerasTensor:
    """A placeholder with a shape (None for the batch axis) and the call that produced it."""

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class CallNode:
    """One call of a layer in a functional graph: its symbolic inputs and outputs."""

    def __init__(self, layer, inputs, outputs, kwargs):
        self.layer = layer
        self.inputs = inputs      # the structure passed to the layer (a KerasTensor, list or dict)
        self.outputs = outputs    # the structure it returned
        self.kwargs = kwargs

    @property
    def input_tensors(self):
        return flatten(self.inputs)

    @property
    def output_tensors(self):
        return flatten(self.outputs)


def flatten(structure):
    """The leaves of a nested list/tuple/dict, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in flatten(structure[key])]
    return [structure]


def map_structure(fn, structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def is_shape(s):
    return isinstance(s, tuple) and all(isinstance(d, (int, np.integer, type(None))) for d in s)


def map_shapes(fn, shapes):
    """Apply fn to each shape in a structure of shapes (a shape is a tuple of ints/None)."""
    if is_shape(shapes):
        return fn(shapes)
    if isinstance(shapes, dict):
        return {k: map_shapes(fn, v) for k, v in shapes.items()}
    return [map_shapes(fn, s) for s in shapes]


def shape_of(structure):
    return map_structure(lambda t: tuple(t.shape), structure)


# ----------------------------------------------------------------------------- the layer
class Layer:
    """Base class of all layers (and of Model).

    Subclasses implement `build(input_shape)` (create weights with `add_weight`),
    `call(inputs[, training])` and, for symbolic use, `compute_output_shape`.
    """

    # shape checks done in __call__; subclasses set them (Keras's InputSpec, reduced)
    input_ndim = None      # exact rank expected, e.g. 4 for Conv2D
    input_min_ndim = None  # minimum rank, e.g. 2 for Dense

    def __init__(self, trainable=True, name=None, dtype=None, **kwargs):
        input_shape = kwargs.pop("input_shape", None)
        input_dim = kwargs.pop("input_dim", None)
        batch_size = kwargs.pop("batch_size", None)
        kwargs.pop("autocast", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        object.__setattr__(self, "_layers", [])
        self._own_weights = []
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = np.dtype(dtype or backend.default_float())
        self.built = False
        self._build_shape = None
        self._call_losses = []
        self._inbound = []  # CallNodes where this layer was called symbolically
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        # Keras's Sequential([Dense(..., input_shape=(784,))]) shortcut
        self._declared_input_shape = None if input_shape is None else (batch_size,) + tuple(input_shape)

    # ------------------------------------------------------------------ tracking
    def __setattr__(self, name, value):
        if isinstance(value, Layer) and name != "_outer":
            self._track(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            for v in value:
                self._track(v)
        object.__setattr__(self, name, value)

    def _track(self, layer):
        if layer is not self and all(layer is not known for known in self._layers):
            self._layers.append(layer)

    # ------------------------------------------------------------------ weights
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, regularizer=None,
                   constraint=None, name=None):
        """Create a Variable of `shape` filled by `initializer` (default glorot_uniform for
        floats, zeros otherwise) and track it."""
        from .. import initializers, regularizers
        shape = () if shape is None else tuple(int(s) for s in shape)
        dtype = np.dtype(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtype.kind == "f" else "zeros"
        init = initializers.get(initializer)
        value = np.asarray(init(shape, dtype=dtype), dtype=dtype)
        var = Variable(value, trainable=trainable, name=name,
                       regularizer=regularizers.get(regularizer), constraint=constraint)
        var.path = f"{self.name}/{name}"
        self._own_weights.append(var)
        return var

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, flag):
        self._trainable = bool(flag)
        for w in self._own_weights:
            # frozen weights get no gradient, in fit or in a hand-written loop; unfreezing
            # restores only those created trainable (BatchNorm's moving statistics stay off)
            w.requires_grad = self._trainable and w.trainable
        for layer in self._layers:
            layer.trainable = flag

    @property
    def layers(self):
        return list(self._layers)

    @property
    def weights(self):
        """All weights: own trainable, own non-trainable, then those of sublayers (Keras's order)."""
        own = [w for w in self._own_weights if w.trainable] + [w for w in self._own_weights if not w.trainable]
        seen, out = set(), []
        for w in own + [w for layer in self._layers for w in layer.weights]:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        return out

    variables = weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        own = [w for w in self._own_weights if w.trainable]
        return _unique(own + [w for layer in self._layers for w in layer.trainable_weights])

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        """The weights as a list of NumPy arrays (copies)."""
        return [backend.to_numpy(w.data).copy() for w in self.weights]

    def set_weights(self, weights):
        """Load a list of arrays, in the order of `weights`, checking every shape."""
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"{type(self).__name__} '{self.name}': set_weights got {len(weights)} arrays "
                             f"but the layer has {len(own)} weights ({[w.path for w in own]})")
        for w, value in zip(own, weights):
            if tuple(np.shape(value)) != w.shape:
                raise ValueError(f"{type(self).__name__} '{self.name}': weight '{w.path}' has shape {w.shape}, "
                                 f"got an array of shape {np.shape(value)}")
        for w, value in zip(own, weights):
            w.assign(value)

    def count_params(self):
        if not self.built:
            raise ValueError(f"{type(self).__name__} '{self.name}' is not built yet, so it has no weights to "
                             f"count: call it on data or give it an input shape first")
        return int(sum(w.size for w in self.weights))

    @property
    def losses(self):
        """Regularization penalties of the current weights, plus losses added during the last call."""
        out = [w.regularizer(w) for w in self.weights if w.regularizer is not None and w.trainable]
        seen, stack = set(), [self]
        while stack:  # every depth: a Dense inside a model nested in a model adds its activity loss too
            layer = stack.pop()
            if id(layer) not in seen:
                seen.add(id(layer))
                out += layer._call_losses
                stack.extend(reversed(layer._layers))
        return out

    def add_loss(self, loss):
        self._call_losses.append(loss)

    # ------------------------------------------------------------------ building and calling
    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (batch axis included, as None or a size)."""
        self.built = True

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def compute_output_shape(self, input_shape):
        """Output shape for `input_shape`; the default runs the layer on zeros of that shape."""
        return self._shape_by_running(input_shape)

    def _shape_by_running(self, input_shape):
        def probe(shape):
            return Tensor(np.zeros([2 if s is None else s for s in shape], dtype=self.dtype))
        from ..autograd import no_grad
        with no_grad():
            out = self.call(map_shapes(probe, input_shape), **self._call_kwargs(False))
        # the probe's batch of 2 stands for any batch size
        return map_structure(lambda t: (None,) + tuple(t.shape[1:]) if t.ndim else (), out)

    def _maybe_build(self, input_shape):
        if not self.built:
            self._check_rank(input_shape)
            self.build(input_shape)
            self.built = True
            self._build_shape = input_shape

    def _check_rank(self, input_shape):
        if not is_shape(input_shape):
            return
        rank = len(input_shape)
        want = ("(batch, ...)" if self.input_ndim is None else _axes_hint(self.input_ndim))
        if self.input_ndim is not None and rank != self.input_ndim:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects input of rank {self.input_ndim} "
                             f"{want}, got shape {input_shape}{self._rank_fix(rank)}")
        if self.input_min_ndim is not None and rank < self.input_min_ndim:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects input of rank >= {self.input_min_ndim}, "
                             f"got shape {input_shape}{self._rank_fix(rank)}")

    def _rank_fix(self, rank):
        if self.input_ndim is not None and rank > self.input_ndim:
            return ": add Flatten() or Reshape(...) before it"
        if self.input_ndim is not None and rank < self.input_ndim:
            return ": add a channel axis (e.g. x[..., None] or Reshape) before it"
        return ""

    def _call_kwargs(self, training):
        return {"training": training} if _accepts(type(self).call, "training") else {}

    def __call__(self, *args, training=None, **kwargs):
        if not args:
            raise TypeError(f"{type(self).__name__} '{self.name}' was called without inputs")
        inputs = args[0] if len(args) == 1 else list(args)
        if any(isinstance(t, KerasTensor) for t in flatten(inputs)):
            return self._symbolic_call(inputs, training, kwargs)
        inputs = map_structure(self._to_tensor, inputs)
        self._maybe_build(shape_of(inputs) if not isinstance(inputs, Tensor) else tuple(inputs.shape))
        if training is None:
            training = _context.training
        previous = _context.training
        _context.training = training
        self._call_losses = []
        try:
            return self.call(inputs, **self._call_kwargs(bool(training)), **kwargs)
        finally:
            _context.training = previous

    def _to_tensor(self, x):
        if isinstance(x, Tensor):
            if x.dtype.kind == "f" and x.dtype != self.dtype:
                return x.astype(self.dtype)
            return x
        xp = backend.array_module(x)
        arr = xp.asarray(x)
        if arr.dtype.kind == "f" and arr.dtype != self.dtype:
            arr = arr.astype(self.dtype)  # Keras's autocast of float inputs to the layer's dtype
        return Tensor(arr)

    def _symbolic_call(self, inputs, training, kwargs):
        shapes = map_structure(lambda t: t.shape, inputs)
        self._maybe_build(shapes)
        out_shapes = self.compute_output_shape(shapes)
        outputs = _shapes_to_tensors(out_shapes, self.dtype)
        if training is not None:
            kwargs = dict(kwargs, training=training)
        node = CallNode(self, inputs, outputs, kwargs)
        for i, t in enumerate(flatten(outputs)):
            t.node, t.index = node, i
            t.name = self.name if len(flatten(outputs)) == 1 else f"{self.name}_{i}"
        self._inbound.append(node)
        return outputs

    # ------------------------------------------------------------------ shapes users ask for
    @property
    def input(self):
        if not self._inbound:
            raise AttributeError(f"Layer '{self.name}' has not been called on a symbolic input, so it has no input")
        return self._inbound[0].inputs

    @property
    def output(self):
        if not self._inbound:
            raise AttributeError(f"Layer '{self.name}' has not been called on a symbolic input, so it has no output")
        return self._inbound[0].outputs

    @property
    def input_shape(self):
        return self._build_shape

    @property
    def output_shape(self):
        if self._inbound:
            return shape_of(self._inbound[0].outputs)
        if self._build_shape is None:
            raise AttributeError(f"Layer '{self.name}' is not built, so it has no output shape yet")
        return self.compute_output_shape(self._build_shape)

    # ------------------------------------------------------------------ config
    def get_config(self):
        """The constructor arguments, as plain data (saved as JSON, never as code)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": str(self.dtype)}
        if self._declared_input_shape is not None:
            config["batch_input_shape"] = self._declared_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        batch_shape = config.pop("batch_input_shape", None)
        layer = cls(**config)
        if batch_shape is not None:
            layer._declared_input_shape = tuple(batch_shape)
        return layer

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _shapes_to_tensors(shapes, dtype):
    return map_shapes(lambda s: KerasTensor(s, dtype), shapes)


def _unique(weights):
    seen, out = set(), []
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


_accepts_cache = {}


def _accepts(fn, arg):
    key = (fn, arg)
    if key not in _accepts_cache:
        params = inspect.signature(fn).parameters
        _accepts_cache[key] = arg in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    return _accepts_cache[key]


def _axes_hint(ndim):
    return {2: "(batch, features)", 3: "(batch, steps, channels)",
            4: "(batch, height, width, channels)"}.get(ndim, "")


def standardize_tuple(value, n, name):
    """An int or a sequence of n ints as a tuple of n ints (kernel sizes, strides)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value
