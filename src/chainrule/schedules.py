"""Learning-rate schedules: the learning rate as a function of the optimizer step.

Pass one as an optimizer's `learning_rate`; the optimizer calls it with its iteration
count (0 on the first update) before every update::

    lr = schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
    opt = optimizers.SGD(learning_rate=lr)       # 0.1 at step 0, 0.05 at step 1000, ...

Same classes, argument names, defaults and formulas as `keras.optimizers.schedules`
(also reachable here as `chainrule.optimizers.schedules`). Keras computes in float32
tensors; these compute in Python floats and return a Python float.
"""
import bisect
import math

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay",
           "InverseTimeDecay", "serialize", "deserialize", "get"]


class LearningRateSchedule:
    """Base class: subclasses implement `__call__(step) -> float` and `get_config()`.

    Example, a schedule of your own::

        class InverseStep(LearningRateSchedule):
            def __init__(self, initial_learning_rate):
                self.initial_learning_rate = initial_learning_rate
            def __call__(self, step):
                return self.initial_learning_rate / (step + 1)
            def get_config(self):
                return {"initial_learning_rate": self.initial_learning_rate}
    """

    def __call__(self, step):
        raise NotImplementedError(f"learning-rate schedule '{type(self).__name__}' must override "
                                  "`__call__(self, step)`")

    def get_config(self):
        raise NotImplementedError(f"learning-rate schedule '{type(self).__name__}' must override "
                                  "`get_config()` to be saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_decay_steps(owner, decay_steps):
    if decay_steps <= 0:
        raise ValueError(f"{owner}: argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")


class ExponentialDecay(LearningRateSchedule):
    """Exponential decay: lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps).

    With `staircase=True` the exponent is floored, so the rate drops by a factor
    `decay_rate` once every `decay_steps` steps instead of smoothly.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        _check_decay_steps("ExponentialDecay", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        p = float(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate) * float(self.decay_rate) ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant learning rate on each interval between `boundaries` (steps).

    lr(step) = values[0] for step <= boundaries[0],
               values[i] for boundaries[i-1] < step <= boundaries[i],
               values[-1] for step > boundaries[-1].

    The classic recipe "start at 0.1 and divide by 10 three times" (at epochs 30, 60
    and 80, say) is, with `steps_per_epoch` batches per epoch::

        lr = PiecewiseConstantDecay(boundaries=[30 * steps_per_epoch, 60 * steps_per_epoch,
                                                80 * steps_per_epoch],
                                    values=[0.1, 0.01, 0.001, 0.0001])

    Boundaries count optimizer steps (batches), not epochs, as in Keras.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError("PiecewiseConstantDecay: `boundaries` must have one element fewer than `values`. "
                             f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                             f"values={values} of length {len(values)}")
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            # Keras does not check this and silently returns sums of values; we refuse
            raise ValueError(f"PiecewiseConstantDecay: `boundaries` must be strictly increasing, got {boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        # bisect_left counts the boundaries strictly below `step`: that is the interval index
        return float(self.values[bisect.bisect_left(self.boundaries, float(step))])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay, with an optional linear warmup first.

    Without warmup (`warmup_target=None`), with s = min(step, decay_steps)::

        lr(step) = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

    With warmup, the rate first rises linearly from `initial_learning_rate` to
    `warmup_target` over `warmup_steps` steps::

        lr(step) = initial_learning_rate + (warmup_target - initial_learning_rate) * step / warmup_steps

    and then decays from `warmup_target` by the cosine formula above, applied to
    `step - warmup_steps` (so it ends at `alpha * warmup_target`).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        _check_decay_steps("CosineDecay", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, decay_from):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return float(decay_from) * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = float(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = float(self.warmup_target) - float(self.initial_learning_rate)
            return delta * step / self.warmup_steps + float(self.initial_learning_rate)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class InverseTimeDecay(LearningRateSchedule):
    """Inverse-time decay: lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps).

    With `staircase=True`, `step / decay_steps` is floored.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        _check_decay_steps("InverseTimeDecay", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        p = float(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


_SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay,
                                            InverseTimeDecay)}


def serialize(schedule):
    """A schedule as plain data: {'class_name': ..., 'config': ...} (Keras's layout)."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config, custom_objects=None):
    """The schedule described by `serialize`'s output (extra keys such as Keras's 'module' are ignored)."""
    name = config.get("class_name")
    known = dict(_SCHEDULES, **(custom_objects or {}))
    cls = known.get(name)
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule {name!r}; known: {sorted(known)} "
                         "(pass your own class in `custom_objects`)")
    return cls.from_config(dict(config.get("config", {})))


def get(identifier):
    """A schedule from an instance (returned as is) or a serialized dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"could not interpret learning-rate schedule identifier: {identifier!r}")
