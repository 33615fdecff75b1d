"""Regularization layers (Keras's keras/src/layers/regularization/): noise that acts only in training.

    Dropout            zero each input with probability `rate`, scale the rest by 1 / (1 - rate)
    SpatialDropout1D/2D  the same, but whole channels at once
    GaussianNoise      add N(0, stddev^2) noise
    GaussianDropout    multiply by N(1, rate / (1 - rate)) noise
    ActivityRegularization  add l1 * sum|x| + l2 * sum x^2 of its input to the loss

At inference (training=False, the default outside `fit`) every one returns its input unchanged.
Seeded layers own a numpy Generator (repeatable from construction on); unseeded ones draw from
`chainrule.random.generator()`, so `cr.random.seed(n)` makes them repeatable too.
"""
import numbers

import numpy as np

from .. import regularizers
from .. import random as _random
from ..autograd import Tensor
from ..ops import norm as norm_ops
from .base import Layer, serializable, unique_name

__all__ = ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
           "ActivityRegularization"]


def _check_rate(layer, rate):
    if not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(f"{layer}: rate must be a number in [0, 1], the fraction of inputs dropped, got {rate!r}")
    return float(rate)


class _Noise(Layer):
    """Shared: a seed, the generator it gives, and shape-preserving output."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _generator(self):
        return _random.generator() if self._rng is None else self._rng

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class Dropout(_Noise):
    """Inverted dropout: in training y = x * mask / (1 - rate), mask_i ~ Bernoulli(1 - rate).

    E[y] = x, so inference needs no rescaling and returns x. `noise_shape` (batch axis included,
    None for "as the input") draws one mask entry per position of that shape and broadcasts it,
    e.g. (None, 1, 1, C) drops whole channels of an image batch.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(f"Dropout '{self.name}'", rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def _mask_shape(self, shape):
        if self.noise_shape is None:
            return None
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"{type(self).__name__} '{self.name}': noise_shape {self.noise_shape} has "
                             f"{len(self.noise_shape)} axes but the input {tuple(shape)} has {len(shape)}")
        return tuple(n if k is None else k for k, n in zip(self.noise_shape, shape))

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:  # every input dropped; 1 / (1 - rate) would divide by zero
            return inputs * 0.0
        mask_shape = self._mask_shape(inputs.shape)
        if mask_shape is None:
            return norm_ops.dropout(inputs, self.rate, training=True, rng=self._rng)
        # the same op on ones of the noise shape gives the scaled mask; broadcasting spreads it
        ones = Tensor(np.ones(mask_shape, dtype=inputs.dtype))
        return inputs * norm_ops.dropout(ones, self.rate, training=True, rng=self._rng)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return config


@serializable
class SpatialDropout1D(Dropout):
    """Dropout of whole channels of (batch, steps, channels) inputs: one mask entry per (sample, channel)."""

    input_ndim = 3

    def __init__(self, rate, seed=None, name=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, name=name or unique_name("spatial_dropout1d"), **kwargs)

    def _mask_shape(self, shape):
        return (shape[0], 1, shape[2])

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return config


@serializable
class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps of image batches: one mask entry per (sample, channel)."""

    input_ndim = 4

    def __init__(self, rate, data_format=None, seed=None, name=None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, name=name or unique_name("spatial_dropout2d"), **kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"SpatialDropout2D: data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format

    def _mask_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], shape[1], 1, 1)
        return (shape[0], 1, 1, shape[3])

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        config["data_format"] = self.data_format
        return config


@serializable
class GaussianNoise(_Noise):
    """In training y = x + n, n ~ N(0, stddev^2) (a data augmentation on activations)."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev}")
        self.stddev = stddev

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        noise = self._generator().standard_normal(inputs.shape).astype(inputs.dtype)
        return inputs + noise * inputs.dtype.type(self.stddev)

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


@serializable
class GaussianDropout(_Noise):
    """In training y = x * n, n ~ N(1, rate / (1 - rate)): multiplicative noise with mean 1."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(f"GaussianDropout '{self.name}'", rate)

    def call(self, inputs, training=False):
        if not training or not 0 < self.rate < 1:
            return inputs
        stddev = np.sqrt(self.rate / (1.0 - self.rate))
        noise = 1.0 + stddev * self._generator().standard_normal(inputs.shape)
        return inputs * noise.astype(inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@serializable
class ActivityRegularization(Layer):
    """Passes its input through and adds l1 * sum|x| + l2 * sum x^2, divided by the batch size, to the loss."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.l1, self.l2 = l1, l2
        self._penalty = regularizers.L1L2(l1=l1, l2=l2)

    def call(self, inputs):
        if self.l1 or self.l2:
            self.add_loss(self._penalty(inputs) * (1.0 / inputs.shape[0]))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"l1": self.l1, "l2": self.l2})
        return config

