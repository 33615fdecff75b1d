"""Activation functions by their Keras 3 names, for `Dense(64, activation="relu")` and friends.

Each takes and returns a Tensor. Where `chainrule.ops` has a single-node op (relu, sigmoid,
softmax, ...) it is used directly; the others are composed from ops, so their gradients
come from the primitives' rules and need no code of their own.
"""
from . import ops
from .ops.base import as_tensor


def linear(x):
    """f(x) = x (no activation; what `activation=None` means)."""
    return as_tensor(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's generalized ReLU:

        f(x) = min(x, max_value)             for x > threshold
        f(x) = negative_slope (x - threshold)  otherwise

    With the defaults it is max(x, 0), one fused op.
    """
    x = as_tensor(x)
    if negative_slope == 0 and max_value is None and threshold == 0:
        return ops.relu(x)
    if negative_slope != 0 and max_value is None and threshold == 0:
        return ops.leaky_relu(x, negative_slope)
    y = ops.where(ops.gt(x, threshold), x, 0.0) if threshold != 0 else ops.relu(x)
    if max_value is not None:
        y = ops.clip(y, 0.0, float(max_value))
    if negative_slope != 0:
        y = y - ops.relu(threshold - x) * float(negative_slope)
    return y


def leaky_relu(x, negative_slope=0.2):
    """x for x > 0, negative_slope * x otherwise (Keras's function default slope is 0.2)."""
    return ops.leaky_relu(x, negative_slope)


def relu6(x):
    """min(max(x, 0), 6)."""
    return ops.clip(as_tensor(x), 0.0, 6.0)


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return ops.sigmoid(x)


def tanh(x):
    """(e^x - e^-x) / (e^x + e^-x)."""
    return ops.tanh(x)


def softmax(x, axis=-1):
    """e^x_i / sum_j e^x_j along `axis`."""
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """x_i - log sum_j e^x_j along `axis`."""
    return ops.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return ops.elu(x, alpha)


def selu(x):
    """scale * elu(x, alpha), scale = 1.0507, alpha = 1.6733 (self-normalizing networks)."""
    return ops.selu(x)


def gelu(x, approximate=False):
    """x * Phi(x), Phi the standard normal CDF; Keras's activation defaults to the exact (erf) form."""
    return ops.gelu(x, approximate=approximate)


def softplus(x):
    """log(1 + e^x)."""
    return ops.softplus(x)


def softsign(x):
    """x / (1 + |x|)."""
    x = as_tensor(x)
    return x / (ops.abs(x) + 1.0)


def silu(x):
    """x * sigmoid(x), also called swish."""
    return ops.silu(x)


swish = silu


def hard_sigmoid(x):
    """Keras 3's piecewise-linear sigmoid: 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between
    (relu6(x + 3) / 6; Keras 2 used x / 5 + 1/2 on [-2.5, 2.5])."""
    x = as_tensor(x)
    return ops.clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)


def hard_silu(x):
    """x * hard_sigmoid(x) (hard swish, MobileNetV3)."""
    x = as_tensor(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def exponential(x):
    """e^x."""
    return ops.exp(x)


def mish(x):
    """x * tanh(softplus(x)) (Misra, 2019)."""
    x = as_tensor(x)
    return x * ops.tanh(ops.softplus(x))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), finite for large negative x."""
    x = as_tensor(x)
    return -ops.softplus(-x)


def tanh_shrink(x):
    """x - tanh(x)."""
    x = as_tensor(x)
    return x - ops.tanh(x)


def hard_tanh(x):
    """max(-1, min(1, x))."""
    return ops.clip(as_tensor(x), -1.0, 1.0)


ALL_OBJECTS = {fn.__name__: fn for fn in (
    linear, relu, leaky_relu, relu6, sigmoid, tanh, softmax, log_softmax, elu, selu, gelu, softplus, softsign,
    silu, hard_sigmoid, hard_silu, exponential, mish, log_sigmoid, tanh_shrink, hard_tanh)}
ALL_OBJECTS.update({"swish": silu, "hard_swish": hard_silu})


def get(identifier):
    """An activation function from None or 'linear' (identity), a name ('relu', 'softmax', ...),
    a dict {'class_name': name} or any callable Tensor -> Tensor."""
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        identifier = identifier.get("config", identifier.get("class_name"))
    if isinstance(identifier, str):
        fn = ALL_OBJECTS.get(identifier)
        if fn is None:
            raise ValueError(f"Unknown activation {identifier!r}; use one of {sorted(ALL_OBJECTS)}, "
                             f"or pass a function Tensor -> Tensor")
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation identifier {identifier!r}: pass a name such as 'relu' "
                     f"or a function Tensor -> Tensor")


def serialize(activation):
    """The activation's name, as Keras writes built-in activations in a layer config ('relu').

    A custom function gives its __name__; loading it back needs it registered under that name.
    """
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation
    for name, fn in ALL_OBJECTS.items():
        if fn is activation:
            return fn.__name__
    name = getattr(activation, "__name__", None)
    if name is None:
        get_config = getattr(activation, "get_config", None)
        if get_config is not None:
            return {"class_name": type(activation).__name__, "config": get_config()}
        raise ValueError(f"activations.serialize: cannot name {activation!r}; use a named function")
    return name


def deserialize(config):
    """The activation function a `serialize` result names."""
    return get(config)
