"""Variable: a weight. A leaf Tensor with a name, a trainable flag and Keras's assign methods."""
import numpy as np

from . import backend
from .autograd import Tensor


class Variable(Tensor):
    """A named, persistent leaf tensor (a layer's kernel, bias, moving mean, ...).

    `trainable` decides whether the optimizer updates it; it also sets `requires_grad`,
    so frozen weights cost no gradient computation. `regularizer`, when set, is a callable
    whose value on this variable is added to the loss.
    """

    __slots__ = ("_trainable", "regularizer", "constraint", "path")

    def __init__(self, data, trainable=True, name=None, regularizer=None, constraint=None):
        super().__init__(data, name=name)
        self._trainable = bool(trainable)
        self.requires_grad = self._trainable and self.data.dtype.kind == "f"
        self.regularizer = regularizer
        self.constraint = constraint
        self.path = name

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, flag):
        self._trainable = bool(flag)
        self.requires_grad = self._trainable

    @property
    def value(self):
        return self

    def assign(self, value):
        """Overwrite the contents in place (shape must match)."""
        data = value.data if isinstance(value, Tensor) else value
        xp = backend.array_module(self.data)
        data = xp.asarray(data, dtype=self.data.dtype)
        if data.shape != self.data.shape:
            raise ValueError(f"assign to variable '{self.path}': shape {self.data.shape} "
                             f"cannot take a value of shape {data.shape}")
        self.data[...] = data
        self._version += 1
        return self

    def assign_add(self, delta):
        return self.assign(self.data + (delta.data if isinstance(delta, Tensor) else delta))

    def assign_sub(self, delta):
        return self.assign(self.data - (delta.data if isinstance(delta, Tensor) else delta))

    def __repr__(self):
        return (f"<Variable path={self.path!r}, shape={self.shape}, dtype={self.dtype}, "
                f"trainable={self.trainable}>")

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype, copy=False)


def as_numpy(x):
    """A NumPy array from a Tensor, Variable, backend array or nested data."""
    if isinstance(x, Tensor):
        return backend.to_numpy(x.data)
    return np.asarray(x)
