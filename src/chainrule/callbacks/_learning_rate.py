"""Reading and writing `model.optimizer.learning_rate` for the callbacks that change it."""
import numbers


def get_learning_rate(optimizer, who):
    """The optimizer's current learning rate as a Python float."""
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{who}: the optimizer {type(optimizer).__name__} has no `learning_rate` attribute; "
                         "compile the model with an optimizer such as optimizers.SGD(learning_rate=0.01).")
    value = optimizer.learning_rate
    try:
        return float(value.numpy() if hasattr(value, "numpy") else value)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: optimizer.learning_rate is {value!r}, not a number. A learning-rate schedule "
                        "already sets the rate at each step: give the optimizer a float learning_rate to "
                        "use this callback.") from None


def as_float_learning_rate(value, who):
    """A schedule's output as a float; ValueError if it is not a real number."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "numpy"):
        value = value.numpy()
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if getattr(value, "size", None) == 1 and kind is not None and kind in "fiu":
        return float(value.reshape(()))  # a 0-d array or a one-element Tensor
    raise ValueError(f"{who}: the output of the `schedule` function should be a float. Got: {value!r}")


def set_learning_rate(optimizer, value):
    optimizer.learning_rate = float(value)
