"""Export a model to ONNX (opset 17), to run it in onnxruntime or any other ONNX runtime.

    from chainrule.io import export_onnx
    export_onnx(model, "model.onnx")
    # onnxruntime.InferenceSession("model.onnx").run(None, {"input": x})   (x as for model.predict)

The graph keeps chainrule's layouts: inputs and outputs are channels-last (NHWC images, NWC
sequences), exactly what `model.predict` takes and returns. ONNX's Conv, ConvTranspose, pooling
and Resize want channels-first, so each of those is wrapped in a Transpose to NCHW and one back
(runtimes fuse the back-to-back pairs); everything else (Dense as MatMul + Add, batch norm as a
per-channel Mul + Add, Flatten, Reshape, Concatenate, ...) works on NHWC directly, which also keeps
Flatten's feature order identical to chainrule's.

The exported graph is the inference graph: Dropout and the other noise layers disappear, and
BatchNormalization uses its moving statistics, folded into y = x * s + t with
s = gamma / sqrt(moving_variance + epsilon) and t = beta - moving_mean * s.

Padding follows Keras: 'same' puts the smaller half of the padding first (explicit pads when the
spatial size is known, ONNX's SAME_UPPER otherwise), 'causal' pads only before; average pooling
with 'same' averages real elements only (count_include_pad=0).

Supported: Sequential and functional models (nested ones too) built from InputLayer, Dense,
Conv1D, Conv2D, Conv2DTranspose, Max/AveragePooling1D/2D, GlobalAverage/MaxPooling1D/2D,
BatchNormalization, LayerNormalization, Dropout (and SpatialDropout, GaussianNoise,
GaussianDropout), Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax, Flatten, Reshape, Permute,
Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, UpSampling1D/2D,
ZeroPadding1D/2D, Cropping1D/2D, Identity; with the activations linear, relu, relu6, sigmoid,
tanh, softmax, log_softmax, elu, selu, gelu, leaky_relu, softplus, softsign, silu/swish,
hard_sigmoid, hard_silu, mish, exponential, log_sigmoid, tanh_shrink, hard_tanh. Anything else
raises an error naming the layer. Float32 throughout. Needs the `onnx` package
(pip install chainrule[onnx]).
"""
import math

import numpy as np

from .. import activations, backend
from .atomic import atomic_write_bytes

__all__ = ["export_onnx", "OPSET"]

OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs the onnx package: pip install onnx (or chainrule[onnx], which "
                          "also brings onnxruntime to run the file)") from None
    return onnx


# ============================================================================ the graph under construction
class _Graph:
    """Nodes and initializers, with fresh names: '<layer>/<Op>', '<layer>/<Op>_1', ..."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.used = [], [], set()

    def fresh(self, hint):
        name, n = hint, 0
        while name in self.used:
            n += 1
            name = f"{hint}_{n}"
        self.used.add(name)
        return name

    def const(self, array, hint, dtype=np.float32):
        name = self.fresh(hint)
        array = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, values, hint):
        return self.const(np.asarray(values, dtype=np.int64), hint, np.int64)

    def op(self, op_type, inputs, scope, **attributes):
        out = self.fresh(f"{scope}/{op_type}")
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attributes))
        return out


# ============================================================================ activations
_NAME_OF = {fn: fn.__name__ for fn in activations.ALL_OBJECTS.values()}  # silu, not its alias swish
_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "selu": "Selu", "softplus": "Softplus",
           "softsign": "Softsign", "exponential": "Exp", "hard_silu": "HardSwish"}


def _activation(g, fn, x, scope, owner):
    """`fn` (a chainrule activation function, or None) applied to x."""
    name = "linear" if fn is None else _NAME_OF.get(fn)
    if name is None:
        raise ValueError(f"export_onnx: {owner} uses the activation {getattr(fn, '__name__', fn)!r}, which has no "
                         f"ONNX form here; use one of {sorted(set(_NAME_OF.values()))}")
    if name == "linear":
        return x
    if name in _SIMPLE:
        return g.op(_SIMPLE[name], [x], scope)
    if name in ("softmax", "log_softmax"):
        return g.op("Softmax" if name == "softmax" else "LogSoftmax", [x], scope, axis=-1)
    if name == "elu":
        return g.op("Elu", [x], scope, alpha=1.0)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], scope, alpha=0.2)  # the function's default slope
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], scope, alpha=1.0 / 6.0, beta=0.5)
    if name in ("relu6", "hard_tanh"):
        low, high = (0.0, 6.0) if name == "relu6" else (-1.0, 1.0)
        return g.op("Clip", [x, g.const(low, f"{scope}/min"), g.const(high, f"{scope}/max")], scope)
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x], scope)], scope)
    if name == "gelu":  # x/2 (1 + erf(x / sqrt 2)); opset 17 has no Gelu node
        half = g.op("Mul", [x, g.const(0.5, f"{scope}/half")], scope)
        erf = g.op("Erf", [g.op("Mul", [x, g.const(1 / math.sqrt(2), f"{scope}/rsqrt2")], scope)], scope)
        return g.op("Mul", [half, g.op("Add", [erf, g.const(1.0, f"{scope}/one")], scope)], scope)
    if name == "mish":
        return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x], scope)], scope)], scope)
    if name == "log_sigmoid":  # -softplus(-x), finite for large negative x
        return g.op("Neg", [g.op("Softplus", [g.op("Neg", [x], scope)], scope)], scope)
    if name == "tanh_shrink":
        return g.op("Sub", [x, g.op("Tanh", [x], scope)], scope)
    raise ValueError(f"export_onnx: {owner}: activation {name!r} has no ONNX form here")


# ============================================================================ layout helpers
def _to_channels_first(g, x, rank, scope):
    return g.op("Transpose", [x], scope, perm=[0, rank - 1] + list(range(1, rank - 1)))


def _to_channels_last(g, x, rank, scope):
    return g.op("Transpose", [x], scope, perm=[0] + list(range(2, rank)) + [1])


def _same_pads(sizes, kernels, strides, dilations):
    """Keras's 'same' padding per spatial axis as ONNX pads [begins..., ends...]; None if a size is unknown."""
    if any(n is None for n in sizes):
        return None
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernels, strides, dilations):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _padding_attributes(padding, sizes, kernels, strides, dilations):
    padding = padding.lower()
    rank = len(kernels)
    if padding == "valid":
        return {"pads": [0] * (2 * rank)}
    if padding == "causal":
        return {"pads": [d * (k - 1) for k, d in zip(kernels, dilations)] + [0] * rank}
    pads = _same_pads(sizes, kernels, strides, dilations)
    return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": pads}


def _weight(layer, attribute):
    variable = getattr(layer, attribute, None)
    return None if variable is None else backend.to_numpy(variable.data).astype(np.float32)


# ============================================================================ the layers
# Each converter takes (graph, layer, input names, input shapes, output shape) and returns the
# output name. Shapes have None for the batch axis and any unknown size.
def _dense(g, layer, xs, shapes, out_shape):
    scope = layer.name
    y = g.op("MatMul", [xs[0], g.const(_weight(layer, "kernel"), f"{scope}/kernel")], scope)
    if layer.bias is not None:
        y = g.op("Add", [y, g.const(_weight(layer, "bias"), f"{scope}/bias")], scope)
    return _activation(g, layer.activation, y, scope, f"Dense '{scope}'")


def _conv(g, layer, xs, shapes, out_shape):
    scope, rank = layer.name, len(shapes[0])
    kernel = _weight(layer, "kernel")
    if type(layer).__name__ == "Conv2DTranspose":
        attributes = _transpose_padding(layer, shapes[0][1:-1])
        op, weight = "ConvTranspose", kernel.transpose(3, 2, 0, 1)  # (kh, kw, out, in) -> (in, out, kh, kw)
    else:
        attributes = _padding_attributes(layer.padding, shapes[0][1:-1], layer.kernel_size, layer.strides,
                                         layer.dilation_rate)
        op, weight = "Conv", kernel.transpose([rank - 1, rank - 2] + list(range(rank - 2)))  # -> (out, in, *k)
    inputs = [_to_channels_first(g, xs[0], rank, scope), g.const(weight, f"{scope}/kernel")]
    if layer.bias is not None:
        inputs.append(g.const(_weight(layer, "bias"), f"{scope}/bias"))
    y = g.op(op, inputs, scope, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             dilations=list(layer.dilation_rate), **attributes)
    return _activation(g, layer.activation, _to_channels_last(g, y, rank, scope), scope,
                       f"{type(layer).__name__} '{scope}'")


def _transpose_padding(layer, sizes):
    """Conv2DTranspose's Keras sizes in ONNX terms. ONNX gives out = full - pads + output_padding, with
    full = (n - 1) s + span every position an input reaches; Keras (see Conv2DTranspose) keeps
        'valid': n s + max(span - s, 0)    or full + output_padding
        'same':  n s                       or full - 2 (span // 2) + output_padding
    positions, after cropping max(full - out, 0) // 2 of them at the start. The pads do not depend
    on n, so unknown sizes work too."""
    begins, ends, extra = [], [], []
    for axis, (k, s, d) in enumerate(zip(layer.kernel_size, layer.strides, layer.dilation_rate)):
        n = 1 if sizes[axis] is None else sizes[axis]
        span = d * (k - 1) + 1
        full = (n - 1) * s + span
        asked = None if layer.output_padding is None else layer.output_padding[axis]
        if layer.padding == "valid":
            out = n * s + max(span - s, 0) if asked is None else full + asked
        else:
            out = n * s if asked is None else full - 2 * (span // 2) + asked
        before = max(full - out, 0) // 2
        tail = full - before - out  # positions to crop at the end; negative: zeros to add there
        begins.append(before)
        ends.append(max(tail, 0))
        extra.append(max(-tail, 0))
    return {"pads": begins + ends, "output_padding": extra}


def _pool(g, layer, xs, shapes, out_shape):
    scope, rank = layer.name, len(shapes[0])
    is_max = "Max" in type(layer).__name__
    attributes = _padding_attributes(layer.padding, shapes[0][1:-1], layer.pool_size, layer.strides,
                                     (1,) * len(layer.pool_size))
    if not is_max:
        attributes["count_include_pad"] = 0  # Keras averages the real elements only
    y = g.op("MaxPool" if is_max else "AveragePool", [_to_channels_first(g, xs[0], rank, scope)], scope,
             kernel_shape=list(layer.pool_size), strides=list(layer.strides), **attributes)
    return _to_channels_last(g, y, rank, scope)


def _global_pool(g, layer, xs, shapes, out_shape):
    op = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    return g.op(op, [xs[0]], layer.name, axes=list(range(1, len(shapes[0]) - 1)), keepdims=int(layer.keepdims))


def _channel_vector(g, values, rank, axis, hint):
    """A per-channel vector shaped to broadcast against a rank-`rank` tensor along `axis`."""
    axis = axis % rank
    return g.const(values.reshape((-1,) + (1,) * (rank - 1 - axis)), hint)


def _batch_norm(g, layer, xs, shapes, out_shape):
    scope, rank = layer.name, len(shapes[0])
    mean, variance = _weight(layer, "moving_mean").astype(np.float64), _weight(layer, "moving_variance")
    gamma = _weight(layer, "gamma") if layer.gamma is not None else np.ones_like(mean)
    beta = _weight(layer, "beta") if layer.beta is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance.astype(np.float64) + layer.epsilon)
    shift = beta - mean * scale
    y = g.op("Mul", [xs[0], _channel_vector(g, scale, rank, layer.axis, f"{scope}/scale")], scope)
    return g.op("Add", [y, _channel_vector(g, shift, rank, layer.axis, f"{scope}/shift")], scope)


def _layer_norm(g, layer, xs, shapes, out_shape):
    scope, rank = layer.name, len(shapes[0])
    axes = sorted(a % rank for a in (layer.axis if isinstance(layer.axis, list) else [layer.axis]))
    if axes != list(range(axes[0], rank)):
        raise ValueError(f"export_onnx: LayerNormalization '{scope}' normalizes axes {layer.axis}; ONNX's "
                         "LayerNormalization needs the last axes")
    normalized = [shapes[0][a] for a in axes]
    gamma = _weight(layer, "gamma") if getattr(layer, "gamma", None) is not None else np.ones(normalized)
    beta = _weight(layer, "beta") if getattr(layer, "beta", None) is not None else np.zeros(normalized)
    return g.op("LayerNormalization", [xs[0], g.const(gamma, f"{scope}/gamma"), g.const(beta, f"{scope}/beta")],
                scope, axis=axes[0], epsilon=float(layer.epsilon))


def _identity(g, layer, xs, shapes, out_shape):
    return xs[0]


def _activation_layer(g, layer, xs, shapes, out_shape):
    return _activation(g, layer.activation, xs[0], layer.name, f"Activation '{layer.name}'")


def _relu_layer(g, layer, xs, shapes, out_shape):
    scope, x = layer.name, xs[0]
    if not layer.negative_slope and not layer.threshold:
        y = g.op("Relu", [x], scope)
        if layer.max_value is not None:
            y = g.op("Min", [y, g.const(layer.max_value, f"{scope}/max_value")], scope)
        return y
    # f(x) = min(x, max_value) for x >= threshold, negative_slope * (x - threshold) below it
    threshold = g.const(layer.threshold, f"{scope}/threshold")
    above = x if layer.max_value is None else g.op("Min", [x, g.const(layer.max_value, f"{scope}/max_value")], scope)
    below = g.op("Mul", [g.op("Sub", [x, threshold], scope), g.const(layer.negative_slope, f"{scope}/slope")], scope)
    return g.op("Where", [g.op("GreaterOrEqual", [x, threshold], scope), above, below], scope)


def _leaky_relu(g, layer, xs, shapes, out_shape):
    return g.op("LeakyRelu", [xs[0]], layer.name, alpha=float(layer.negative_slope))


def _elu(g, layer, xs, shapes, out_shape):
    return g.op("Elu", [xs[0]], layer.name, alpha=float(layer.alpha))


def _prelu(g, layer, xs, shapes, out_shape):
    return g.op("PRelu", [xs[0], g.const(_weight(layer, "alpha"), f"{layer.name}/alpha")], layer.name)


def _softmax(g, layer, xs, shapes, out_shape):
    if not isinstance(layer.axis, int):
        raise ValueError(f"export_onnx: Softmax '{layer.name}' over several axes {layer.axis} has no ONNX form")
    return g.op("Softmax", [xs[0]], layer.name, axis=int(layer.axis))


def _flatten(g, layer, xs, shapes, out_shape):
    x = xs[0]
    if layer.data_format == "channels_first" and len(shapes[0]) > 2:
        x = _to_channels_last(g, x, len(shapes[0]), layer.name)
    return g.op("Flatten", [x], layer.name, axis=1)


def _reshape(g, layer, xs, shapes, out_shape):
    # 0 copies the batch size from the input (allowzero=0); the target never holds a 0 itself
    return g.op("Reshape", [xs[0], g.ints([0] + list(layer.target_shape), f"{layer.name}/shape")], layer.name)


def _permute(g, layer, xs, shapes, out_shape):
    return g.op("Transpose", [xs[0]], layer.name, perm=[0] + list(layer.dims))


def _concatenate(g, layer, xs, shapes, out_shape):
    return g.op("Concat", xs, layer.name, axis=layer.axis % len(shapes[0]))


def _merge(op):
    def convert(g, layer, xs, shapes, out_shape):
        if op == "Add":  # a chain of binary Adds, as chainrule sums them
            y = xs[0]
            for x in xs[1:]:
                y = g.op("Add", [y, x], layer.name)
            return y
        return g.op(op, xs, layer.name)
    return convert


def _upsampling(g, layer, xs, shapes, out_shape):
    scope, rank = layer.name, len(shapes[0])
    if rank == 3:  # UpSampling1D: nearest along the steps axis, which Resize takes as it is
        scales = g.const([1.0, float(layer.size), 1.0], f"{scope}/scales")
        return g.op("Resize", [xs[0], "", scales], scope, mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    scales = g.const([1.0, 1.0, float(layer.size[0]), float(layer.size[1])], f"{scope}/scales")
    if layer.interpolation == "nearest":  # y[i] = x[floor(i / f)]
        attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:  # half-pixel centres, edges clamped: Keras 3 and PyTorch's align_corners=False
        attributes = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    y = g.op("Resize", [_to_channels_first(g, xs[0], rank, scope), "", scales], scope, **attributes)
    return _to_channels_last(g, y, rank, scope)


def _zero_padding(g, layer, xs, shapes, out_shape):
    rank = len(shapes[0])
    pairs = [layer.padding] if rank == 3 else list(layer.padding)
    begins = [0] + [p[0] for p in pairs] + [0]
    ends = [0] + [p[1] for p in pairs] + [0]
    return g.op("Pad", [xs[0], g.ints(begins + ends, f"{layer.name}/pads")], layer.name)


def _cropping(g, layer, xs, shapes, out_shape):
    pairs = [layer.cropping] if len(shapes[0]) == 3 else list(layer.cropping)
    big = np.iinfo(np.int64).max
    starts = [p[0] for p in pairs]
    ends = [-p[1] if p[1] else big for p in pairs]
    axes = list(range(1, len(pairs) + 1))
    return g.op("Slice", [xs[0], g.ints(starts, f"{layer.name}/starts"), g.ints(ends, f"{layer.name}/ends"),
                          g.ints(axes, f"{layer.name}/axes")], layer.name)


_CONVERTERS = {
    "Dense": _dense, "Conv1D": _conv, "Conv2D": _conv, "Conv2DTranspose": _conv,
    "MaxPooling1D": _pool, "MaxPooling2D": _pool, "AveragePooling1D": _pool, "AveragePooling2D": _pool,
    "GlobalAveragePooling1D": _global_pool, "GlobalAveragePooling2D": _global_pool,
    "GlobalMaxPooling1D": _global_pool, "GlobalMaxPooling2D": _global_pool,
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "Dropout": _identity, "SpatialDropout1D": _identity, "SpatialDropout2D": _identity,
    "GaussianNoise": _identity, "GaussianDropout": _identity, "Identity": _identity,
    "ActivityRegularization": _identity,
    "Activation": _activation_layer, "ReLU": _relu_layer, "LeakyReLU": _leaky_relu, "ELU": _elu,
    "PReLU": _prelu, "Softmax": _softmax,
    "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute,
    "Concatenate": _concatenate, "Add": _merge("Add"), "Subtract": _merge("Sub"), "Multiply": _merge("Mul"),
    "Average": _merge("Mean"), "Maximum": _merge("Max"), "Minimum": _merge("Min"),
    "UpSampling1D": _upsampling, "UpSampling2D": _upsampling,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding,
    "Cropping1D": _cropping, "Cropping2D": _cropping,
}


def _converter(layer):
    cls = type(layer)
    convert = _CONVERTERS.get(cls.__name__)
    # only chainrule's own classes: a subclass may compute something else in its call()
    if convert is None or not cls.__module__.startswith("chainrule.layers"):
        raise ValueError(f"export_onnx: layer '{layer.name}' ({cls.__name__}) has no ONNX conversion. Supported "
                         f"layers: {', '.join(sorted(_CONVERTERS))}, and nested Sequential/functional models")
    return convert


# ============================================================================ walking the model
def _is_model(layer):
    from ..models import Model
    return isinstance(layer, Model)


def _emit_layer(g, layer, xs, shapes, out_shapes):
    """Names of the outputs of one layer call."""
    if _is_model(layer):
        return _emit_model(g, layer, xs, shapes)
    out = _converter(layer)(g, layer, xs, shapes, out_shapes[0])
    return [out]


def _emit_model(g, model, xs, shapes):
    from ..models import Sequential
    if isinstance(model, Sequential):
        shape = shapes[0]
        x = xs[0]
        for layer in model.layers:
            out_shape = tuple(layer.compute_output_shape(shape))
            (x,) = _emit_layer(g, layer, [x], [shape], [out_shape])
            shape = out_shape
        return [x]
    if model.inputs is None:
        raise ValueError(f"export_onnx: model '{model.name}' is a subclassed Model (its forward pass is Python "
                         "code, not a graph of layers); rebuild it as a Sequential or functional model")
    values = {id(t): x for t, x in zip(model.inputs, xs)}
    for node in _call_order(model):
        ins = node.input_tensors
        outs = _emit_layer(g, node.layer, [values[id(t)] for t in ins], [t.shape for t in ins],
                           [t.shape for t in node.output_tensors])
        if len(outs) != len(node.output_tensors):
            raise ValueError(f"export_onnx: layer '{node.layer.name}' gives {len(outs)} outputs where the graph "
                             f"expects {len(node.output_tensors)}")
        for t, name in zip(node.output_tensors, outs):
            values[id(t)] = name
    return [values[id(t)] for t in model.outputs]


def _call_order(model):
    """The layer calls from the model's inputs to its outputs, each after the calls it depends on."""
    inputs = {id(t) for t in model.inputs}
    order, done = [], set()

    def visit(tensor):
        if id(tensor) in inputs:
            return
        node = tensor.node
        if id(node) in done:
            return
        done.add(id(node))
        for t in node.input_tensors:
            visit(t)
        order.append(node)
    for t in model.outputs:
        visit(t)
    return order


def _input_signature(model):
    """[(name, shape)] of the model's inputs."""
    from ..models import Sequential
    if isinstance(model, Sequential):
        shape = getattr(model, "_build_shape", None) or model.input_shape
        if not model.built or shape is None:
            raise ValueError(f"export_onnx: Sequential '{model.name}' has no input shape yet: start it with "
                             "layers.Input(shape=...) or call it on data once")
        return [("input", tuple(shape))]
    if model.inputs is None:
        return []  # reported by _emit_model
    return [(t.node.layer.name, tuple(t.shape)) for t in model.inputs]


def _value_info(helper, onnx, name, shape, what):
    dims = ["batch" if i == 0 else f"{what}_dim{i}" if s is None else int(s) for i, s in enumerate(shape)]
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)


# ============================================================================ the public function
def export_onnx(model, filepath, opset=OPSET):
    """Write `model` as an ONNX file (inference graph, channels-last inputs as for predict).

    Returns the onnx.ModelProto. The inputs are named after the model's Input layers ('input'
    for a Sequential), the outputs after the layers that produce them. Raises ValueError naming
    the first layer (or activation) that has no ONNX conversion.
    """
    onnx = _onnx()
    helper = onnx.helper
    g = _Graph(onnx)
    signature = _input_signature(model)
    for name, _ in signature:
        g.used.add(name)
    outputs = _emit_model(g, model, [name for name, _ in signature], [shape for _, shape in signature])
    out_shapes = ([tuple(model.compute_output_shape(signature[0][1]))] if not model.outputs
                  else [tuple(t.shape) for t in model.outputs])
    graph_outputs = []
    for name, value, shape in zip(_output_names(model, len(outputs)), outputs, out_shapes):
        final = g.fresh(name)
        # an Identity gives each output its public name, even when it is an input or another output
        g.nodes.append(helper.make_node("Identity", [value], [final], name=f"{final}/output"))
        graph_outputs.append(_value_info(helper, onnx, final, shape, final))
    graph = helper.make_graph(g.nodes, model.name, [_value_info(helper, onnx, n, s, n) for n, s in signature],
                              graph_outputs, initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="chainrule", producer_version=_version())
    proto.ir_version = 8  # what opset 17 came with: readable by onnxruntime >= 1.13
    onnx.checker.check_model(proto)
    atomic_write_bytes(filepath, proto.SerializeToString())
    return proto


def _output_names(model, count):
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == count else [f"output_{i}" for i in range(count)]


def _version():
    from .. import __version__
    return __version__
