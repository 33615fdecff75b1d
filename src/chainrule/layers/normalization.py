"""Normalization layers: BatchNormalization and LayerNormalization, Keras 3's arguments and weights.

Both compute  y = gamma * (x - mean) / sqrt(var + epsilon) + beta  in one fused node of
`chainrule.ops.norm`; they differ in where the mean and variance come from:

    BatchNormalization   per channel, over the batch (and spatial axes) while training; from the
                         moving averages at inference
    LayerNormalization   per sample, over the feature axes; the same in training and inference
"""
import numbers

from .. import initializers, regularizers
from ..ops import norm as norm_ops
from .base import Layer, serializable


__all__ = ["BatchNormalization", "LayerNormalization"]


def _serialize(module, obj):
    """Keras-style config entry for an initializer or regularizer (None stays None)."""
    return None if obj is None else module.serialize(obj)


@serializable
class BatchNormalization(Layer):
    """Normalize each channel (`axis`, default the last) with statistics over all other axes.

    training=True (inside `fit`, or `layer(x, training=True)`): the batch's mean and biased
    variance normalize x, and the moving statistics move towards them:
        moving_mean = moving_mean * momentum + mean * (1 - momentum)
        moving_var  = moving_var  * momentum + var  * (1 - momentum)
    training=False (predict, evaluate, a plain call): the moving statistics normalize x.

    A frozen layer (`trainable=False`) always runs in inference mode, even inside `fit`, and so
    neither learns nor updates its statistics: Keras 3's rule, which is what fine-tuning needs.

    Weights, in Keras's order: gamma and beta (trainable, one per channel; absent when scale=False
    or center=False), moving_mean and moving_variance (non-trainable, never get a gradient).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm=False, renorm_clipping=None, renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise TypeError(f"BatchNormalization: axis must be an int (the channel axis, -1 for "
                            f"channels-last data), got {axis!r}")
        if renorm:
            raise ValueError("BatchNormalization: renorm=True (batch renormalization) is not supported; "
                             "leave renorm=False")
        if synchronized:
            raise ValueError("BatchNormalization: synchronized=True needs Keras's TensorFlow distribution "
                             "strategy; leave it False")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = beta_constraint
        self.gamma_constraint = gamma_constraint
        self.renorm = renorm
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.synchronized = synchronized
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def _channel_axis(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(f"BatchNormalization '{self.name}': axis={self.axis} is out of range for input "
                             f"of shape {tuple(input_shape)}; use axis=-1 for the last (channel) axis")
        return self.axis % rank

    def build(self, input_shape):
        axis = self._channel_axis(input_shape)
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(f"BatchNormalization '{self.name}' needs the size of axis {self.axis} to create its "
                             f"weights, but input shape {tuple(input_shape)} leaves it None")
        shape = (int(channels),)
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=shape, initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(name="beta", shape=shape, initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, trainable=False,
                                           initializer=self.moving_mean_initializer)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape, trainable=False,
                                               initializer=self.moving_variance_initializer)
        self._built_rank = len(input_shape)
        self.built = True

    def _check_input(self, input_shape):
        if not self.built:
            return
        channels = self.moving_mean.shape[0]
        ok = len(input_shape) == self._built_rank
        if ok:
            n = input_shape[self._channel_axis(input_shape)]
            ok = n is None or n == channels
        if not ok:
            raise ValueError(f"BatchNormalization '{self.name}' was built for inputs of rank {self._built_rank} "
                             f"with {channels} channels on axis {self.axis}, but got shape {tuple(input_shape)}; "
                             f"a layer keeps its weights, so create a new BatchNormalization for this input")

    def compute_output_shape(self, input_shape):
        """The input's shape: normalization changes values, not shapes."""
        self._channel_axis(input_shape)
        self._check_input(input_shape)
        return tuple(input_shape)

    def call(self, inputs, training=False):
        self._check_input(tuple(inputs.shape))
        # Keras 3: batch statistics only when training AND the layer is trainable
        use_batch_stats = bool(training) and self.trainable
        return norm_ops.batch_norm(inputs, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                                   training=use_batch_stats, momentum=self.momentum, epsilon=self.epsilon,
                                   axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _serialize(initializers, self.beta_initializer),
            "gamma_initializer": _serialize(initializers, self.gamma_initializer),
            "moving_mean_initializer": _serialize(initializers, self.moving_mean_initializer),
            "moving_variance_initializer": _serialize(initializers, self.moving_variance_initializer),
            "beta_regularizer": _serialize(regularizers, self.beta_regularizer),
            "gamma_regularizer": _serialize(regularizers, self.gamma_regularizer),
            "beta_constraint": self.beta_constraint,
            "gamma_constraint": self.gamma_constraint,
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        })
        return config


@serializable
class LayerNormalization(Layer):
    """Normalize each sample over `axis` (default the last, the features), then scale and shift:

        y = gamma * (x - mean) / sqrt(var + epsilon) + beta,   mean and (biased) var over `axis`

    The statistics belong to one sample, so training and inference compute the same thing and the
    batch size does not matter. gamma and beta have the shape of the normalized axes.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if kwargs.pop("rms_scaling", False):
            raise ValueError("LayerNormalization: rms_scaling=True is deprecated in Keras 3 and not supported; "
                             "leave it False")
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(f"LayerNormalization: axis must be an int or a list of ints, got {axis!r}")
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = beta_constraint
        self.gamma_constraint = gamma_constraint
        self.gamma = self.beta = None

    def _axes(self, input_shape):
        """The normalized axes as sorted non-negative ints, checked against the input's rank."""
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(f"LayerNormalization '{self.name}': axis {a} is out of range for input of "
                                 f"shape {tuple(input_shape)}")
        return tuple(sorted({a % rank for a in axes}))

    def build(self, input_shape):
        axes = self._axes(input_shape)
        shape = tuple(input_shape[a] for a in axes)
        if any(n is None for n in shape):
            raise ValueError(f"LayerNormalization '{self.name}' needs the sizes of axes {axes} to create its "
                             f"weights, but input shape {tuple(input_shape)} leaves them None")
        # Keras keeps the axes as a sorted list once built (get_config then shows [-1])
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=shape, initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(name="beta", shape=shape, initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)
        self._norm_shape = shape
        self.built = True

    def _check_input(self, input_shape):
        if not self.built:
            return
        axes = self._axes(input_shape)
        got = tuple(input_shape[a] for a in axes)
        if len(got) != len(self._norm_shape) or any(g is not None and g != w for g, w in zip(got, self._norm_shape)):
            raise ValueError(f"LayerNormalization '{self.name}' was built to normalize axes {self.axis} of size "
                             f"{self._norm_shape}, but input of shape {tuple(input_shape)} has {got} there; "
                             f"create a new LayerNormalization for this input")

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        self._axes(input_shape)
        self._check_input(input_shape)
        return tuple(input_shape)

    def call(self, inputs):
        self._check_input(tuple(inputs.shape))
        return norm_ops.layer_norm(inputs, self.gamma, self.beta, axis=self._axes(inputs.shape),
                                   epsilon=self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": False,
            "beta_initializer": _serialize(initializers, self.beta_initializer),
            "gamma_initializer": _serialize(initializers, self.gamma_initializer),
            "beta_regularizer": _serialize(regularizers, self.beta_regularizer),
            "gamma_regularizer": _serialize(regularizers, self.gamma_regularizer),
            "beta_constraint": self.beta_constraint,
            "gamma_constraint": self.gamma_constraint,
        })
        return config
