"""Merging layers (Keras's keras/src/layers/merging/): combine a list of tensors into one.

    Add, Subtract, Multiply, Average, Maximum, Minimum   elementwise; size-1 axes broadcast
    Concatenate(axis=-1)                                  joined along an axis

Each is called on a list: `Add()([a, b])`. The lower-case functions (`add([a, b])`,
`concatenate([a, b], axis=1)`) make the layer and call it, as in Keras.
"""
from functools import reduce

from .. import ops
from .base import Layer, is_shape, serializable

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"]


class _Merge(Layer):
    """Shared: input checks and the broadcast output shape of an elementwise merge."""

    min_inputs = 1

    def _check_list(self, shapes):
        if is_shape(shapes) or not isinstance(shapes, (list, tuple)):
            raise ValueError(f"{type(self).__name__} '{self.name}' merges a list of tensors, e.g. "
                             f"{type(self).__name__}()([a, b]); got a single input of shape {shapes}")
        if len(shapes) < self.min_inputs:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs at least {self.min_inputs} inputs, "
                             f"got {len(shapes)}")
        return [tuple(s) for s in shapes]

    def _broadcast(self, shapes):
        batches = {s[0] for s in shapes if s and s[0] is not None}
        if len(batches) > 1:
            raise ValueError(f"{type(self).__name__} '{self.name}' cannot merge tensors with different batch "
                             f"sizes: {[tuple(s) for s in shapes]}")
        out = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(out):
                raise self._mismatch(shapes, "they have different ranks; Reshape one of them first")
            dims = []
            for a, b in zip(out, s):
                if a is None or b is None:
                    dims.append(a if b is None else b if a is None else None)
                elif a == 1 or b == 1 or a == b:
                    dims.append(b if a == 1 else a)
                else:
                    raise self._mismatch(shapes, "every axis must be equal (or 1, which broadcasts)")
            out = tuple(dims)
        return out

    def _mismatch(self, shapes, why):
        listed = ", ".join(str(tuple(s)) for s in shapes)
        return ValueError(f"{type(self).__name__} '{self.name}' got inputs of incompatible shapes {listed}: "
                          f"{why}; add a Dense or Reshape layer so the shapes agree")

    def build(self, input_shape):
        self._broadcast(self._check_list(input_shape))

    def call(self, inputs):
        shapes = self._check_list([tuple(t.shape) for t in inputs] if isinstance(inputs, (list, tuple))
                                  else tuple(inputs.shape))
        self._broadcast(shapes)
        return self._merge(list(inputs))

    def compute_output_shape(self, input_shape):
        return self._broadcast(self._check_list(input_shape))


@serializable
class Add(_Merge):
    """y = x1 + x2 + ... (e.g. a residual connection)."""

    def _merge(self, xs):
        return reduce(ops.add, xs)


@serializable
class Subtract(_Merge):
    """y = x1 - x2, for exactly two inputs."""

    min_inputs = 2

    def _check_list(self, shapes):
        shapes = super()._check_list(shapes)
        if len(shapes) != 2:
            raise ValueError(f"Subtract '{self.name}' takes exactly 2 inputs [a, b] (computing a - b), "
                             f"got {len(shapes)}")
        return shapes

    def _merge(self, xs):
        return ops.sub(xs[0], xs[1])


@serializable
class Multiply(_Merge):
    """y = x1 * x2 * ... elementwise (e.g. a gate)."""

    def _merge(self, xs):
        return reduce(ops.mul, xs)


@serializable
class Average(_Merge):
    """y = (x1 + ... + xn) / n."""

    def _merge(self, xs):
        return reduce(ops.add, xs) * (1.0 / len(xs))


@serializable
class Maximum(_Merge):
    """y = max(x1, x2, ...) elementwise; the gradient goes to the largest input (split on ties)."""

    def _merge(self, xs):
        return reduce(ops.maximum, xs)


@serializable
class Minimum(_Merge):
    """y = min(x1, x2, ...) elementwise; the gradient goes to the smallest input (split on ties)."""

    def _merge(self, xs):
        return reduce(ops.minimum, xs)


@serializable
class Concatenate(_Merge):
    """Joins the inputs along `axis` (default -1, the features); all other axes must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def _broadcast(self, shapes):
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise self._mismatch(shapes, f"they have different ranks, so they cannot be joined along axis {self.axis}")
        if not -rank <= self.axis < rank:
            raise ValueError(f"Concatenate '{self.name}': axis {self.axis} is out of range for inputs of rank {rank}")
        axis = self.axis % rank
        out = []
        for i in range(rank):
            dims = [s[i] for s in shapes]
            if i == axis:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise self._mismatch(shapes, f"all axes except the concatenation axis {self.axis} must match")
            out.append(known.pop() if known else None)
        return tuple(out)

    def _merge(self, xs):
        return ops.concat(xs, axis=self.axis % xs[0].ndim)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


def _functional(cls, doc):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = doc
    return merge


add = _functional(Add, "add([a, b, ...]) = Add()([a, b, ...]).")
subtract = _functional(Subtract, "subtract([a, b]) = Subtract()([a, b]).")
multiply = _functional(Multiply, "multiply([a, b, ...]) = Multiply()([a, b, ...]).")
average = _functional(Average, "average([a, b, ...]) = Average()([a, b, ...]).")
maximum = _functional(Maximum, "maximum([a, b, ...]) = Maximum()([a, b, ...]).")
minimum = _functional(Minimum, "minimum([a, b, ...]) = Minimum()([a, b, ...]).")
concatenate = _functional(Concatenate, "concatenate([a, b, ...], axis=-1) = Concatenate(axis)([a, b, ...]).")
