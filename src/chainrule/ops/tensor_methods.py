"""Tensor's operators and methods, each a thin call of the op that does the work.

Kept apart from autograd.py so the engine stays small; reductions accept both the
NumPy/Keras names (axis, keepdims) and PyTorch's (dim, keepdim).
"""
import numpy as np

from ..autograd import Tensor
from . import activation, linalg, math, reduce, shape
from .base import operands


def _reduction(fn):
    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=None, **kw):
        axis = dim if dim is not None else axis
        keepdims = keepdim if keepdim is not None else keepdims
        return fn(self, axis=axis, keepdims=keepdims, **kw)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _inplace(op, np_op):
    def method(self, other):
        self._check_inplace(op)
        _, other = operands(self, other)
        np_op(self.data, other.data, out=self.data, casting="same_kind")
        return self
    method.__name__ = op
    return method


def _setitem(self, index, value):
    self._check_inplace("__setitem__")
    self.data[index] = value.data if isinstance(value, Tensor) else value


def _cast_method(dtype):
    return lambda self: math.cast(self, dtype)


methods = {
    "__add__": math.add, "__radd__": _reflected(math.add),
    "__sub__": math.sub, "__rsub__": _reflected(math.sub),
    "__mul__": math.mul, "__rmul__": _reflected(math.mul),
    "__truediv__": math.div, "__rtruediv__": _reflected(math.div),
    "__pow__": math.pow, "__rpow__": _reflected(math.pow),
    "__matmul__": linalg.matmul, "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": math.neg, "__pos__": lambda self: self, "__abs__": math.abs,
    "__eq__": math.eq, "__ne__": math.ne, "__lt__": math.lt, "__le__": math.le, "__gt__": math.gt, "__ge__": math.ge,
    "__iadd__": _inplace("__iadd__", np.add), "__isub__": _inplace("__isub__", np.subtract),
    "__imul__": _inplace("__imul__", np.multiply), "__itruediv__": _inplace("__itruediv__", np.true_divide),
    "__getitem__": shape.getitem, "__setitem__": _setitem,
    "sum": _reduction(reduce.sum), "mean": _reduction(reduce.mean), "max": _reduction(reduce.max),
    "min": _reduction(reduce.min), "var": _reduction(reduce.var), "std": _reduction(reduce.std),
    "logsumexp": _reduction(reduce.logsumexp), "argmax": _reduction(reduce.argmax),
    "argmin": _reduction(reduce.argmin),
    "reshape": shape.reshape, "view": shape.reshape, "flatten": shape.flatten, "permute": shape.permute,
    "transpose": shape.transpose, "expand": shape.expand, "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze,
    "split": shape.split, "matmul": linalg.matmul, "pow": math.pow,
    "exp": math.exp, "log": math.log, "log1p": math.log1p, "sqrt": math.sqrt, "abs": math.abs, "sign": math.sign,
    "clip": math.clip, "clamp": math.clip, "square": math.square, "maximum": math.maximum, "minimum": math.minimum,
    "sigmoid": activation.sigmoid, "tanh": activation.tanh, "relu": activation.relu,
    "softmax": activation.softmax, "log_softmax": activation.log_softmax,
    "astype": math.cast, "to": math.cast, "float": _cast_method(np.float32), "double": _cast_method(np.float64),
}
for _name, _fn in methods.items():
    setattr(Tensor, _name, _fn)

Tensor.T = property(lambda self: shape.permute(self, tuple(reversed(range(self.ndim)))),
                    doc="The tensor with all axes reversed (the transpose of a matrix).")
Tensor.mT = property(lambda self: shape.transpose(self, -2, -1),
                     doc="The last two axes swapped (a batch of transposed matrices).")
