"""Initializers: how a layer's weights start, with Keras 3's names, arguments and defaults.

An initializer is called as `init(shape, dtype=None)` and returns a NumPy array of that
dtype (float32 unless told otherwise). Random ones draw from `chainrule.random.generator()`,
so `cr.random.seed(n)` makes every weight repeatable; given a `seed`, an initializer uses its
own generator seeded afresh on every call, so (as in Keras) it returns the same values each time.

    glorot_uniform   U(-limit, limit),  limit = sqrt(6 / (fan_in + fan_out))
    he_normal        truncated N(0, sigma^2),  sigma = sqrt(2 / fan_in) (before the truncation correction)

For a Dense kernel (in, out), fan_in = in and fan_out = out; for a convolution kernel
(kh, kw, c_in, c_out) both are multiplied by the receptive field kh * kw, as Keras does.
"""
import math
import re

import numpy as np

from . import backend
from . import random as _random

# Std of a standard normal truncated to [-2, 2]: dividing by it keeps the requested variance.
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape, input_axes=None, output_axes=None):
    """(fan_in, fan_out) of a weight shape, as Keras computes them.

    Scalars: (1, 1); vectors: (n, n); matrices (in, out); higher ranks are convolution kernels
    (..., c_in, c_out) whose leading axes form the receptive field:
    fan_in = c_in * prod(shape[:-2]), fan_out = c_out * prod(shape[:-2]).
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(math.prod(shape[a] for a in input_axes)), int(math.prod(shape[a] for a in output_axes)))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = math.prod(shape[:-2])
    return int(shape[-2] * receptive), int(shape[-1] * receptive)


def _dtype(dtype):
    return backend.default_float() if dtype is None else np.dtype(getattr(dtype, "name", dtype))


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


class Initializer:
    """Base class: `__call__(shape, dtype=None)` returns a NumPy array; `get_config` its arguments."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(shape, dtype=None)")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------- constants
class Constant(Initializer):
    """Every element equal to `value`."""

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(_shape(shape), self.value, dtype=_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class Zeros(Initializer):
    """All zeros (Keras's default for biases)."""

    def __call__(self, shape, dtype=None):
        return np.zeros(_shape(shape), dtype=_dtype(dtype))


class Ones(Initializer):
    """All ones (Keras's default for BatchNormalization's gamma)."""

    def __call__(self, shape, dtype=None):
        return np.ones(_shape(shape), dtype=_dtype(dtype))


class Identity(Initializer):
    """gain * I for a 2-D shape (rectangular shapes get ones on the main diagonal)."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError(f"Identity initializer makes 2-D matrices only, got shape {shape}; "
                             f"use Orthogonal for convolution kernels")
        dtype = _dtype(dtype)
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


# ----------------------------------------------------------------------------- random
class RandomInitializer(Initializer):
    """Base of the random initializers: picks the generator and checks the dtype is a float."""

    def __init__(self, seed=None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: seed must be an int or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def _generator(self):
        # a fresh generator per call: a seeded initializer repeats its values, as Keras's does
        return _random.generator() if self.seed is None else np.random.default_rng(self.seed)

    def _float(self, dtype):
        dtype = _dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"{type(self).__name__} draws floats, but dtype {dtype} was asked for; "
                             f"use Zeros/Ones/Constant for integer weights")
        return dtype

    def get_config(self):
        return {"seed": self.seed}


def _truncated_normal(gen, shape, mean, stddev):
    """N(mean, stddev^2) samples, redrawing any farther than 2 stddev from the mean (as Keras)."""
    z = gen.standard_normal(shape)
    bad = np.abs(z) > 2
    while bad.any():  # about 4.6% redrawn per round, so a few rounds suffice
        z[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2
    return mean + stddev * z


class RandomNormal(RandomInitializer):
    """Samples of N(mean, stddev^2)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        dtype = self._float(dtype)
        return self._generator().normal(self.mean, self.stddev, _shape(shape)).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Samples of U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        dtype = self._float(dtype)
        return self._generator().uniform(self.minval, self.maxval, _shape(shape)).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "minval": self.minval, "maxval": self.maxval}


class TruncatedNormal(RandomInitializer):
    """N(mean, stddev^2) with values beyond 2 stddev redrawn (the result's std is about 0.88 stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        dtype = self._float(dtype)
        return _truncated_normal(self._generator(), _shape(shape), self.mean, self.stddev).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


class VarianceScaling(RandomInitializer):
    """Samples whose variance is scale / n, n = fan_in, fan_out or (fan_in + fan_out) / 2 by `mode`.

        truncated_normal    truncated N(0, s^2), s = sqrt(scale / n) / 0.8796 (so the variance is scale / n)
        untruncated_normal  N(0, s^2), s = sqrt(scale / n)
        uniform             U(-limit, limit), limit = sqrt(3 scale / n)
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be a positive float, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        distribution = distribution.lower()
        if distribution == "normal":  # Keras reads the old name as the truncated normal
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: distribution must be 'truncated_normal', 'untruncated_normal' "
                             f"or 'uniform', got {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes, self.output_axes = input_axes, output_axes

    def __call__(self, shape, dtype=None):
        dtype = self._float(dtype)
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        scale = self.scale / max(1.0, n)
        gen = self._generator()
        if self.distribution == "truncated_normal":
            values = _truncated_normal(gen, shape, 0.0, math.sqrt(scale) / _TRUNCATED_STD)
        elif self.distribution == "untruncated_normal":
            values = gen.normal(0.0, math.sqrt(scale), shape)
        else:
            limit = math.sqrt(3.0 * scale)
            values = gen.uniform(-limit, limit, shape)
        return values.astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "input_axes": self.input_axes, "output_axes": self.output_axes}


class _Preset(VarianceScaling):
    """A VarianceScaling with fixed scale/mode/distribution; only the seed is configurable."""

    preset = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        scale, mode, distribution = self.preset
        super().__init__(scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_Preset):
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010). Keras's default kernel."""
    preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""
    preset = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_Preset):
    """Truncated normal with variance 2 / fan_in (He et al., 2015), for ReLU networks."""
    preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Preset):
    """U(-limit, limit), limit = sqrt(6 / fan_in)."""
    preset = (2.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal with variance 1 / fan_in (for SELU networks)."""
    preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """U(-limit, limit), limit = sqrt(3 / fan_in)."""
    preset = (1.0, "fan_in", "uniform")


class Orthogonal(RandomInitializer):
    """gain * Q, Q from the QR decomposition of a standard normal matrix, signs fixed by diag(R).

    The shape is seen as a (prod(shape[:-1]), shape[-1]) matrix, whose rows (or columns,
    whichever are fewer) come out orthonormal.
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        dtype = self._float(dtype)
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal initializer needs a shape of rank >= 2, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes Q uniformly distributed over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "gain": self.gain}


# ----------------------------------------------------------------------------- lookup
_CLASSES = [Constant, Zeros, Ones, Identity, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
            GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal]


def _snake(name):
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


ALL_OBJECTS = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS.update({_snake(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS.update({"normal": RandomNormal, "uniform": RandomUniform, "zero": Zeros, "one": Ones,
                    "IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal})

# snake_case callables as Keras exports them: initializers.glorot_uniform(seed=1)
constant, zeros, ones, identity = Constant, Zeros, Ones, Identity
random_normal, random_uniform, truncated_normal, variance_scaling = (RandomNormal, RandomUniform,
                                                                     TruncatedNormal, VarianceScaling)
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform, orthogonal = LecunNormal, LecunUniform, Orthogonal


def serialize(initializer):
    """{'module', 'class_name', 'config', 'registered_name'} as Keras writes it (None stays None;
    a plain function gives its name)."""
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        # a plain function is saved by name; loading it back needs it registered under that name
        name = getattr(initializer, "__name__", None)
        if name is None:
            raise ValueError(f"initializers.serialize: cannot serialize {initializer!r}: pass an Initializer "
                             f"instance or a named function")
        return name
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}


def deserialize(config):
    """An initializer from a `serialize` dict (or a bare name)."""
    if isinstance(config, str):
        return get(config)
    name = config.get("class_name")
    cls = ALL_OBJECTS.get(name)
    if cls is None:
        raise ValueError(f"Unknown initializer class_name {name!r}; known: {sorted(c.__name__ for c in _CLASSES)}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """An initializer from a name ('glorot_uniform', 'HeNormal', 'zeros'), a config dict, a class,
    an instance, a callable (shape, dtype=None) -> array, or an array of the exact shape; None -> None."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = ALL_OBJECTS.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer {identifier!r}; use one of "
                             f"{sorted(k for k in ALL_OBJECTS if k.islower())}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, (np.ndarray, np.generic)) or hasattr(identifier, "__array__"):
        value = np.asarray(identifier)

        def initialize_fn(shape, dtype=None):
            if _shape(shape) != value.shape:
                raise ValueError(f"initializer array has shape {value.shape} but the weight has shape {tuple(shape)}")
            return value.astype(_dtype(dtype))
        return initialize_fn
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier {identifier!r}: pass a name such as "
                     f"'glorot_uniform', an Initializer, or a function (shape, dtype=None) -> array")
