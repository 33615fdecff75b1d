"""Weight penalties added to the loss, with Keras 3's names and defaults.

    L1(l1=0.01)              l1 * sum(|w|)
    L2(l2=0.01)              l2 * sum(w^2)          (no 1/2, as in Keras)
    L1L2(l1=0.0, l2=0.0)     l1 * sum(|w|) + l2 * sum(w^2)

`reg(weight)` returns a scalar Tensor built from chainrule ops, so it is differentiable: the
training loop adds it to the loss and backward sends d penalty / d w = l1 sign(w) + 2 l2 w to
the weight.
"""
from . import ops


class Regularizer:
    """Base class: `__call__(weight) -> scalar Tensor`; `get_config` its arguments."""

    def __call__(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(weight)")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _factor(value, name):
    value = 0.0 if value is None else value
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"regularizer factor {name} must be a number, got {value!r}") from None
    if value < 0:
        raise ValueError(f"regularizer factor {name} must be >= 0, got {value}")
    return value


class L1(Regularizer):
    """l1 * sum(|w|): pushes weights to exactly zero (sparse weights)."""

    def __init__(self, l1=0.01):
        self.l1 = _factor(l1, "l1")

    def __call__(self, x):
        return ops.sum(ops.abs(x)) * self.l1

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """l2 * sum(w^2) (weight decay): shrinks weights toward zero."""

    def __init__(self, l2=0.01):
        self.l2 = _factor(l2, "l2")

    def __call__(self, x):
        return ops.sum(ops.square(x)) * self.l2

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2). Both factors default to 0 (Keras's L1L2 class); the string
    'l1_l2' gives l1 = l2 = 0.01, as Keras documents for it."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1, "l1")
        self.l2 = _factor(l2, "l2")

    def __call__(self, x):
        penalty = None
        if self.l1:
            penalty = ops.sum(ops.abs(x)) * self.l1
        if self.l2:
            term = ops.sum(ops.square(x)) * self.l2
            penalty = term if penalty is None else penalty + term
        if penalty is None:  # both factors zero: a constant 0 of the weight's dtype
            penalty = ops.sum(x) * 0.0
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


# lower-case names as Keras exports them: regularizers.l2(0.001)
l1, l2, l1_l2 = L1, L2, L1L2

ALL_OBJECTS = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2}
_STRINGS = {"l1": lambda: L1(), "l2": lambda: L2(), "l1_l2": lambda: L1L2(0.01, 0.01),
            "l1l2": lambda: L1L2(0.01, 0.01), "L1": lambda: L1(), "L2": lambda: L2(), "L1L2": lambda: L1L2()}


def serialize(regularizer):
    """{'module', 'class_name', 'config', 'registered_name'} as Keras writes it (None stays None;
    a plain function gives its name)."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        # a plain function is saved by name; loading it back needs it registered under that name
        name = getattr(regularizer, "__name__", None)
        if name is None:
            raise ValueError(f"regularizers.serialize: cannot serialize {regularizer!r}: pass a Regularizer "
                             f"instance or a named function")
        return name
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config):
    """A regularizer from a `serialize` dict (or a bare name)."""
    if isinstance(config, str):
        return get(config)
    cls = ALL_OBJECTS.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"Unknown regularizer class_name {config.get('class_name')!r}; known: L1, L2, L1L2")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A regularizer from None (kept None), a name ('l1', 'l2', 'l1_l2'), a config dict, a class,
    an instance, or any callable weight -> scalar Tensor."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        make = _STRINGS.get(identifier)
        if make is None:
            raise ValueError(f"Unknown regularizer {identifier!r}; use 'l1', 'l2', 'l1_l2' or an instance "
                             f"such as regularizers.L2(1e-4)")
        return make()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier {identifier!r}: pass 'l1', 'l2', 'l1_l2', "
                     f"a Regularizer, or a function weight -> scalar Tensor")
