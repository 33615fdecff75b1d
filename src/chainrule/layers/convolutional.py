"""Convolution layers: Conv1D, Conv2D and Conv2DTranspose on one base class, as Keras 3 has them.

Data is channels-last, as Keras's default: (batch, steps, channels) for 1-D, (batch, height,
width, channels) for 2-D. A layer builds its kernel on first call from the input's channel count:

    Conv1D           kernel (k, C_in, filters)
    Conv2D           kernel (kh, kw, C_in, filters)
    Conv2DTranspose  kernel (kh, kw, filters, C_in)     (Keras's layout: output channels first)

and a bias of shape (filters,). The arithmetic lives in `chainrule.ops.conv` (im2col + one GEMM);
a layer only checks shapes, holds the weights and applies the activation.

The small helpers at the top (data format, rank checks) are shared with the pooling and spatial
layers.
"""
import numbers

from .. import activations, initializers, regularizers
from ..ops import conv as conv_ops
from .base import Layer, serializable, standardize_tuple

__all__ = ["Conv1D", "Conv2D", "Conv2DTranspose", "Convolution1D", "Convolution2D",
           "Convolution2DTranspose"]

_LAYOUT = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)"}


# ----------------------------------------------------------------------------- shared helpers
def standardize_data_format(data_format, layer_class):
    """'channels_last' (Keras's default, also for None); any other value is refused with the fix."""
    value = "channels_last" if data_format is None else str(data_format).lower()
    if value == "channels_last":
        return value
    if value == "channels_first":
        raise ValueError(f"{layer_class}: only data_format='channels_last' is supported (NHWC images, NWC "
                         f"sequences), got 'channels_first'; move the channel axis last with "
                         f"x.transpose(0, 2, 3, 1) (or np.moveaxis(x, 1, -1)) and drop data_format")
    raise ValueError(f"{layer_class}: data_format must be 'channels_last' (or None), got {data_format!r}")


def check_spatial_input(layer, input_shape, dims):
    """Raise a Keras-like error when `input_shape` is not (batch, <dims spatial axes>, channels)."""
    rank = len(input_shape)
    if rank == dims + 2:
        return
    kind = type(layer).__name__
    message = (f"{kind} '{layer.name}' expects input of rank {dims + 2} {_LAYOUT[dims]}, "
               f"got shape {tuple(input_shape)}")
    if rank == dims + 1:
        # the usual case: grayscale images (batch, 28, 28) or a plain sequence (batch, steps)
        inner = tuple(-1 if n is None else n for n in input_shape[1:]) + (1,)
        fix = f"add a channel axis: x[..., None] or Reshape({inner})"
    elif rank > dims + 2 and rank - 2 in _LAYOUT and kind[-2:] in ("1D", "2D"):
        fix = f"for {_LAYOUT[rank - 2]} data use {kind[:-2]}{rank - 2}D, or Reshape(...) the input first"
    else:
        fix = f"Reshape(...) the input to {_LAYOUT[dims]}"
    raise ValueError(f"{message}: {fix}")


def _serialize(module, obj):
    """Keras-style config entry for an initializer or regularizer (None stays None)."""
    return None if obj is None else module.serialize(obj)


def _input_error(layer, input_shape, built_channels):
    return ValueError(f"{type(layer).__name__} '{layer.name}' was built for inputs with {built_channels} "
                      f"channels (last axis) but got shape {tuple(input_shape)}: a layer keeps its weights, so "
                      f"feed it {built_channels} channels or create a new layer for this input")


# ----------------------------------------------------------------------------- the base
class BaseConv(Layer):
    """What Conv1D, Conv2D and Conv2DTranspose share: arguments, weights, checks and config.

    Subclasses set `rank` (number of spatial axes) and `transpose`, and implement `_convolve`
    and `_output_length`.
    """

    rank = None
    transpose = False
    _fuses_relu = False  # whether _convolve(x, activation="relu") exists

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.input_ndim = self.rank + 2
        self.filters = filters
        self.groups = groups
        self.kernel_size = standardize_tuple(kernel_size, self.rank, f"{kind}: kernel_size")
        self.strides = standardize_tuple(strides, self.rank, f"{kind}: strides")
        self.dilation_rate = standardize_tuple(dilation_rate, self.rank, f"{kind}: dilation_rate")
        self.padding = str(padding).lower()
        allowed = ("valid", "same", "causal") if self.rank == 1 and not self.transpose else ("valid", "same")
        if self.padding not in allowed:
            raise ValueError(f"{kind}: padding must be one of {allowed}, got {padding!r}"
                             + ("; 'causal' exists for Conv1D only" if self.padding == "causal" else ""))
        self.data_format = standardize_data_format(data_format, kind)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint
        if not isinstance(filters, numbers.Integral) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{kind}: filters must be a positive int (the number of output channels), "
                             f"got {filters!r}")
        if groups != 1:
            raise ValueError(f"{kind}: groups={groups} is not supported, only groups=1 (every filter sees every "
                             f"input channel); for depthwise convolutions use one Conv per channel group")
        for what, value in (("kernel_size", self.kernel_size), ("strides", self.strides),
                            ("dilation_rate", self.dilation_rate)):
            if min(value) < 1:
                raise ValueError(f"{kind}: {what} must be positive, got {value}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{kind}: strides > 1 together with dilation_rate > 1 is not supported (as in "
                             f"Keras), got strides={self.strides} and dilation_rate={self.dilation_rate}; "
                             f"use one of them, e.g. follow the dilated conv with a pooling layer")

    # ------------------------------------------------------------------ shapes
    def _check_rank(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)

    def _check_input(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)
        if self.built and input_shape[-1] is not None and input_shape[-1] != self._input_channels:
            raise _input_error(self, input_shape, self._input_channels)

    def compute_output_shape(self, input_shape):
        """(batch, *spatial_out, filters); an unknown (None) spatial size stays None."""
        input_shape = tuple(input_shape)
        self._check_input(input_shape)
        spatial = []
        for axis, n in enumerate(input_shape[1:-1]):
            spatial.append(None if n is None else self._output_length(axis, n, input_shape))
        return (input_shape[0],) + tuple(spatial) + (self.filters,)

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs the number of input channels to create "
                             f"its kernel, but the last axis of {tuple(input_shape)} is None; give Input a "
                             f"shape with a known channel count, e.g. Input(shape=(None, None, 3))")
        self._input_channels = int(channels)
        self.compute_output_shape(input_shape)  # fail now, not at the first batch, if the kernel is too big
        if self.transpose:
            kernel_shape = self.kernel_size + (self.filters, self._input_channels)
        else:
            kernel_shape = self.kernel_size + (self._input_channels, self.filters)
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape, initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    # ------------------------------------------------------------------ computing
    def call(self, inputs):
        self._check_input(tuple(inputs.shape))
        # the bias is added inside the op's node; so is a ReLU, for Conv1D and Conv2D (same values,
        # two passes over the output fewer)
        fused = self.activation is activations.relu and self._fuses_relu
        outputs = self._convolve(inputs, activation="relu") if fused else self._convolve(inputs)
        if self.activation is not None and not fused:
            outputs = self.activation(outputs)
        if self.activity_regularizer is not None:
            # Keras divides the penalty by the batch size, so its strength does not depend on it
            self.add_loss(self.activity_regularizer(outputs) / float(outputs.shape[0]))
        return outputs

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _serialize(initializers, self.kernel_initializer),
            "bias_initializer": _serialize(initializers, self.bias_initializer),
            "kernel_regularizer": _serialize(regularizers, self.kernel_regularizer),
            "bias_regularizer": _serialize(regularizers, self.bias_regularizer),
            "activity_regularizer": _serialize(regularizers, self.activity_regularizer),
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
        })
        return config


# ----------------------------------------------------------------------------- the layers
@serializable
class Conv1D(BaseConv):
    """1-D convolution over (batch, steps, channels):

        y[n, t, f] = b[f] + sum over i, c of  x[n, t*s + i*d - p, c] * kernel[i, c, f]

    with kernel (kernel_size, C_in, filters). padding 'valid' (no padding), 'same' (output length
    ceil(steps / s), the smaller half of the padding before) or 'causal' (k-1 zeros before only, so
    y[t] never sees x after t: for sequence models).
    """

    rank = 1
    _fuses_relu = True

    def _output_length(self, axis, n, input_shape):
        return _conv_length(self, axis, n, input_shape)

    def _convolve(self, x, activation=None):
        return conv_ops.conv1d(x, self.kernel, self.bias, stride=self.strides[0], padding=self.padding,
                               dilation=self.dilation_rate[0], activation=activation)


@serializable
class Conv2D(BaseConv):
    """2-D convolution over (batch, height, width, channels), Keras's Conv2D:

        y[n, i, j, f] = b[f] + sum over u, v, c of  x[n, i*sh + u*dh - pt, j*sw + v*dw - pl, c] * kernel[u, v, c, f]

    with kernel (kh, kw, C_in, filters), so the layer has kh*kw*C_in*filters + filters parameters
    (Conv2D(6, 5) on 3 channels: 6 * (5*5*3 + 1) = 456). padding 'valid' gives
    out = floor((n - d(k-1) - 1) / s) + 1; 'same' gives out = ceil(n / s), padding the smaller half
    before (TensorFlow's rule, which Keras follows on every backend).
    """

    rank = 2
    _fuses_relu = True

    def _output_length(self, axis, n, input_shape):
        return _conv_length(self, axis, n, input_shape)

    def _convolve(self, x, activation=None):
        return conv_ops.conv2d(x, self.kernel, self.bias, stride=self.strides, padding=self.padding,
                               dilation=self.dilation_rate, activation=activation)


@serializable
class Conv2DTranspose(BaseConv):
    """Transposed 2-D convolution ("deconvolution"): the gradient of Conv2D with respect to its input,
    used to upsample (decoders, GANs). Each input pixel scatters kernel[:, :, f, c] * x[n, i, j, c]
    into the output window at (i*sh, j*sw).

    Kernel (kh, kw, filters, C_in), Keras's layout. Output size per spatial axis (k' = d(k-1)+1):
        'valid': (n - 1) * s + max(k', s)            or (n - 1) * s + k' + output_padding
        'same':  n * s                               or (n - 1) * s + k' % 2 + output_padding
    `output_padding` (each < stride) picks among the input sizes a strided Conv2D maps to the same n.
    """

    rank = 2
    transpose = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = standardize_tuple(output_padding, 2, "Conv2DTranspose: output_padding")
            for p, s in zip(self.output_padding, self.strides):
                if not 0 <= p < s:
                    raise ValueError(f"Conv2DTranspose: each output_padding must be >= 0 and strictly less than "
                                     f"the stride, got output_padding={self.output_padding} with "
                                     f"strides={self.strides}")

    def _output_length(self, axis, n, input_shape):
        k = (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1
        s = self.strides[axis]
        extra = None if self.output_padding is None else self.output_padding[axis]
        if self.padding == "valid":
            return (n - 1) * s + (max(k, s) if extra is None else k + extra)
        return n * s if extra is None else (n - 1) * s + k % 2 + extra

    def _convolve(self, x):
        return conv_ops.conv_transpose2d(x, self.kernel, self.bias, stride=self.strides, padding=self.padding,
                                         output_padding=self.output_padding, dilation=self.dilation_rate)

    def get_config(self):
        config = super().get_config()
        del config["groups"]  # Keras's Conv2DTranspose has no groups argument
        config["output_padding"] = self.output_padding
        return config


def _conv_length(layer, axis, n, input_shape):
    """Output length of a (non-transposed) convolution along one spatial axis, with a readable error."""
    k, s, d = layer.kernel_size[axis], layer.strides[axis], layer.dilation_rate[axis]
    length = conv_ops.conv_output_length(n, k, s, layer.padding, d)
    if length <= 0:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': input of shape {tuple(input_shape)} is too small "
                         f"for kernel_size={layer.kernel_size} (dilation_rate={layer.dilation_rate}) with "
                         f"padding='valid': the output would be empty; use padding='same' or a smaller kernel")
    return length


# Keras's aliases
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution2DTranspose = Conv2DTranspose
