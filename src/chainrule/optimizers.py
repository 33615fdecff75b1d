"""Optimizers: turn gradients into in-place weight updates, as Keras 3 does.

Every optimizer shares one `apply` (the base class), which for each call:

1. drops variables whose gradient is None,
2. clips the gradients (`clipnorm` per variable, `global_clipnorm` across all, or
   `clipvalue` elementwise; at most one of them),
3. applies decoupled weight decay, w <- w * (1 - lr * weight_decay), to every variable,
4. runs the optimizer's own `update_step` on each variable, in place on `var.data`,
5. applies variable constraints and counts the iteration.

The learning rate `lr` is read once per call: a float, or a schedule
(`chainrule.schedules`) evaluated at `iterations` (0 on the first call).

State (momenta, accumulators) is allocated on the first call, once per variable,
in the variable's dtype, and updated in place afterwards; work arrays are reused,
so a step allocates no arrays the size of the weights. Arrays come from the data
(`backend.array_module`), so the same code updates NumPy or CuPy weights.

Names, defaults and formulas are Keras 3's (checked against Keras 3.15 in
tests/test_optimizers.py); each class says where PyTorch's version differs.
"""
import inspect
import math
import numbers
import re
import threading
import warnings

import numpy as np

from . import backend, schedules
from .autograd import Tensor, no_grad
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "AdamW", "Nadam",
           "get", "serialize", "deserialize", "schedules"]

_name_counts = {}


def _unique_name(cls_name):
    # Keras's automatic names: 'adam', 'adam_1', ...; 'RMSprop' -> 'rm_sprop', 'AdamW' -> 'adam_w'
    base = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", cls_name)
    base = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", base).lower()
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _takes_step(fn):
    """Whether a learning-rate callable wants the step (schedules) or nothing (Keras's zero-arg callables)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume a schedule
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _var_label(variable):
    return getattr(variable, "path", None) or getattr(variable, "name", None) or f"variable of shape {variable.shape}"


_BLOCK = 1 << 16  # elements per block of a big variable's update: 256 KB of float32 per array


class _Block:
    """A slice of a variable and of its optimizer state, updated as if it were a variable."""

    __slots__ = ("data", "slots")

    def __init__(self, data, slots):
        self.data, self.slots = data, slots


class Optimizer:
    """Base class: the shared `apply` loop (clip, decay, update, constrain, count).

    Subclasses set `_slot_groups` (the per-variable state arrays they need, in Keras's
    saving order) and implement `update_step(gradient, variable, learning_rate)`,
    which updates `variable.data` and the state from `self._slots_of(variable)` in place.
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        cls = type(self).__name__
        if kwargs.pop("decay", None) is not None:
            warnings.warn(f"{cls}: argument `decay` is no longer supported (Keras 3) and is ignored; "
                          "use a schedule from chainrule.schedules as `learning_rate` instead")
        if kwargs:
            raise ValueError(f"{cls}: argument(s) not recognized: {kwargs}")
        if use_ema:
            raise NotImplementedError(f"{cls}: use_ema=True (weight moving averages) is not supported by chainrule")
        if gradient_accumulation_steps:
            raise NotImplementedError(f"{cls}: gradient_accumulation_steps is not supported by chainrule; "
                                      "use a larger batch_size instead")
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(f"{cls}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                             f"Received: {clips}")
        self.name = name or _unique_name(cls)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._iterations = 0
        self.learning_rate = learning_rate
        self.built = False
        self._variables_built = []   # in build order (which is also the saving order)
        self._slots = {}             # id(variable) -> (variable, {slot name: array}); the variable keeps the id valid
        self._work = {}              # (array module, dtype, index) -> flat scratch buffer
        self._exclude_ids = set()
        self._exclude_pattern = None

    _slot_groups = ()   # e.g. (("momentum", "velocity"), ("velocity_hat",)): one tuple per Keras build call
    _uses_scratch = 1   # how many work arrays update_step needs

    # ------------------------------------------------------------------ learning rate and step count
    @property
    def iterations(self):
        """How many times `apply` has updated the variables (an int)."""
        return self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value)

    @property
    def learning_rate(self):
        """The learning rate for the next update, a float (a schedule is evaluated at `iterations`)."""
        lr = self._learning_rate
        if not callable(lr):
            return lr
        return float(lr(self._iterations) if self._lr_takes_step else lr())

    @learning_rate.setter
    def learning_rate(self, value):
        # Unlike Keras (TypeError), assigning a float over a schedule replaces it: that is what
        # callbacks such as ReduceLROnPlateau and LearningRateScheduler mean to do.
        if callable(value):
            self._learning_rate = value
            self._lr_takes_step = _takes_step(value)
            return
        if isinstance(value, Tensor):
            value = value.data
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{type(self).__name__}: `learning_rate` should be a float, a schedule from "
                             "chainrule.schedules, or a callable step -> learning rate. "
                             f"Received instead: learning_rate={value!r}") from None
        self._learning_rate = value

    # ------------------------------------------------------------------ state
    def build(self, variables):
        """Allocate the state arrays (zeros, in each variable's dtype) for variables not seen before."""
        for variable in variables:
            if id(variable) in self._slots:
                continue
            xp = backend.array_module(variable.data)
            slots = {}
            for group in self._slot_groups:
                for slot in group:
                    slots[slot] = xp.full(variable.data.shape, self._slot_initial_value(slot),
                                          dtype=variable.data.dtype)
            self._slots[id(variable)] = (variable, slots)
            self._variables_built.append(variable)
            for index in range(self._uses_scratch):
                self._scratch(variable.data, index)  # allocate the work buffers now, at their final size
        self.built = True

    def _slot_initial_value(self, slot):
        return 0

    def _slots_of(self, variable):
        if isinstance(variable, _Block):
            return variable.slots
        return self._slots[id(variable)][1]

    def _scratch(self, like, index=0):
        """A work array shaped like `like`: a view of one flat buffer per (module, dtype), reused by every
        variable and every step, so the update formulas can run with `out=` and make no temporaries."""
        xp = backend.array_module(like)
        key = (xp.__name__, like.dtype, index, threading.get_ident())  # one set per thread
        buf = self._work.get(key)
        if buf is None or buf.size < like.size:
            buf = self._work[key] = xp.empty(like.size, dtype=like.dtype)
        return buf[:like.size].reshape(like.shape)

    @property
    def variables(self):
        """The optimizer's state, in Keras's order: iteration count, learning rate (when a float),
        then each state array (the live arrays, not copies). For saving; load with `set_weights`."""
        out = [np.asarray(self._iterations, dtype=np.int64)]
        if not callable(self._learning_rate):
            out.append(np.asarray(self._learning_rate, dtype=backend.default_float()))
        for group in self._slot_groups:
            for variable in self._variables_built:
                slots = self._slots_of(variable)
                out.extend(slots[slot] for slot in group)
        return out + self._extra_state()

    def _extra_state(self):
        return []

    def set_weights(self, weights):
        """Restore the state saved from `variables` (the optimizer must be built on the same variables)."""
        current = self.variables
        if len(weights) != len(current):
            raise ValueError(f"optimizer '{self.name}' has {len(current)} state arrays but {len(weights)} were "
                             "given: build it on the model's variables first (one apply or build(variables))")
        self._iterations = int(weights[0])
        first_array = 1
        if not callable(self._learning_rate):
            self._learning_rate = float(weights[1])
            first_array = 2
        for array, value in zip(current[first_array:], weights[first_array:]):
            if tuple(array.shape) != tuple(value.shape):
                raise ValueError(f"optimizer '{self.name}': state array of shape {array.shape} "
                                 f"cannot take a value of shape {value.shape}")
            array[...] = backend.array_module(array).asarray(value, dtype=array.dtype)

    def save_own_variables(self, store):
        """Keras's saving hook: store['0'], store['1'], ... = the arrays of `variables`."""
        for i, array in enumerate(self.variables):
            store[str(i)] = backend.to_numpy(array)

    def load_own_variables(self, store):
        """Keras's loading hook, the inverse of `save_own_variables`."""
        self.set_weights([store[str(i)] for i in range(len(store))])

    # ------------------------------------------------------------------ weight decay exclusions
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Skip weight decay for these variables, or for variables whose name contains one of
        `var_names` (e.g. ['bias', 'gamma']), as in Keras. Call before the first update."""
        if self.built:
            raise ValueError(f"optimizer '{self.name}': exclude_from_weight_decay() must be called before the "
                             "optimizer is built (before the first update)")
        self._exclude_ids = {id(v) for v in var_list or []}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, variable):
        if id(variable) in self._exclude_ids:
            return False
        name = getattr(variable, "name", None) or ""
        return not (self._exclude_pattern is not None and self._exclude_pattern.search(name))

    # ------------------------------------------------------------------ one update
    def apply_gradients(self, grads_and_vars):
        """Keras's older form: `apply` on a list of (gradient, variable) pairs. Returns `iterations`."""
        grads_and_vars = list(grads_and_vars)
        self.apply([g for g, _ in grads_and_vars], [v for _, v in grads_and_vars])
        return self._iterations

    def apply(self, grads, trainable_variables=None):
        """Update `trainable_variables` in place from `grads` (backend arrays; None skips a variable).

        `trainable_variables` may be left out after the first call: the variables the optimizer
        was built on are used.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(f"optimizer '{self.name}': when passing `grads` without variables, build the "
                                 "optimizer first: call `optimizer.build(trainable_variables)`")
            trainable_variables = self._variables_built
        trainable_variables = list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"optimizer '{self.name}': got {len(grads)} gradients for {len(trainable_variables)} "
                             "variables; pass one gradient (or None) per variable")
        self.build(trainable_variables)

        grads, variables = self._drop_missing(grads, trainable_variables)
        grads = [self._as_gradient_array(g, v) for g, v in zip(grads, variables)]
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        grads = self._clip_gradients(grads)
        learning_rate = self.learning_rate
        self._apply_weight_decay(variables, learning_rate)
        self._update_all(grads, variables, learning_rate)
        for variable in variables:
            variable._version += 1  # the weights changed in place: a graph recorded before this is stale
            if getattr(variable, "constraint", None) is not None:
                with no_grad():
                    variable.assign(variable.constraint(variable))
        self._iterations += 1

    def _drop_missing(self, grads, variables):
        kept = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if not kept:
            raise ValueError(f"optimizer '{self.name}': no gradients provided for any variable")
        missing = [_var_label(v) for g, v in zip(grads, variables) if g is None]
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss. "
                          "If using `model.compile()`, did you forget to provide a `loss` argument?")
        return [g for g, _ in kept], [v for _, v in kept]

    def _as_gradient_array(self, grad, variable):
        if isinstance(grad, Tensor):
            grad = grad.data
        xp = backend.array_module(variable.data)
        grad = xp.asarray(grad)
        if grad.shape != variable.data.shape:
            raise ValueError(f"optimizer '{self.name}': gradient of shape {grad.shape} for variable "
                             f"'{_var_label(variable)}' of shape {variable.data.shape}; grads must be given in "
                             "the same order as the variables")
        # as Keras: the update runs in the variable's dtype (astype copies only when it must)
        return grad.astype(variable.data.dtype, copy=False)

    def _clip_gradients(self, grads):
        """Keras's clipping (new arrays; the caller's gradients are never modified).

        clipnorm:        g <- g * c / max(||g||, c), each variable on its own
        global_clipnorm: g <- g * c / max(sqrt(sum_i ||g_i||^2), c), one factor for all
        clipvalue:       g <- clip(g, -c, c), elementwise
        """
        if self.clipnorm and self.clipnorm > 0:
            c = self.clipnorm
            return [g * (c / backend.array_module(g).maximum(_l2norm(g), c)) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            c = self.global_clipnorm
            xp = backend.array_module(grads[0])
            norm = xp.sqrt(sum(_sum_of_squares(g) for g in grads))
            # (norm - norm) is 0 for a finite norm and NaN otherwise: an inf/NaN gradient poisons the step
            # visibly, as in Keras, instead of being silently scaled to zero
            scale = c / xp.maximum(norm, c) + (norm - norm)
            return [g * scale.astype(g.dtype) for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            c = self.clipvalue
            return [backend.array_module(g).clip(g, -c, c) for g in grads]
        return grads

    def _apply_weight_decay(self, variables, learning_rate):
        """Decoupled weight decay (Keras 3, all optimizers): w <- w * (1 - lr * weight_decay)."""
        if self.weight_decay is None:
            return
        factor = 1.0 - learning_rate * self.weight_decay
        for variable in variables:
            if self._use_weight_decay(variable):
                variable.data *= factor

    def _update_all(self, grads, variables, learning_rate):
        for grad, variable in zip(grads, variables):
            data = variable.data
            if data.size <= _BLOCK or not (data.flags.c_contiguous and grad.flags.c_contiguous):
                self.update_step(grad, variable, learning_rate)
                continue
            # A big variable goes block by block: the formulas' dozen passes then run over arrays that
            # stay in cache, and only the first and last touch memory (Adam on CNN-A's 3.3M weights:
            # 5.7 -> 4.5 ms a step).
            flat_slots = {name: a.reshape(-1) for name, a in self._slots_of(variable).items()}
            flat_data, flat_grad = data.reshape(-1), grad.reshape(-1)

            def update_blocks(starts):  # the blocks are independent: the threads share them out
                for start in starts:
                    part = slice(start, start + _BLOCK)
                    block = _Block(flat_data[part], {name: a[part] for name, a in flat_slots.items()})
                    self.update_step(flat_grad[part], block, learning_rate)

            backend.parallel_map(update_blocks, backend.share(range(0, data.size, _BLOCK), 4 * data.size))

    def update_step(self, gradient, variable, learning_rate):
        """Update `variable.data` (and this variable's state) in place from `gradient`."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_step")

    def finalize_variable_values(self, var_list):
        """Keras calls this at the end of fit to write EMA weights back; without EMA there is nothing to do."""

    # ------------------------------------------------------------------ config
    def get_config(self):
        """The constructor arguments as plain data (Keras's keys)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr) and hasattr(lr, "get_config"):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        elif callable(lr):
            lr = self.learning_rate  # a plain function is code, not data: save its current value
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new optimizer (without state) from `get_config`'s output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, learning_rate={self.learning_rate:g}, " \
               f"iterations={self._iterations}>"


def _sum_of_squares(g):
    """sum(g^2) as a 0-d array of g's dtype (no host sync on a GPU, no g^2 temporary)."""
    flat = g.reshape(-1)
    return flat @ flat


def _l2norm(g):
    return backend.array_module(g).sqrt(_sum_of_squares(g))


def _check_unit_interval(owner, name, value):
    if not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: `{name}` must be a float in [0, 1]. Received: {name}={value!r}")
    return float(value)


# ============================================================================ the optimizers
class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Without momentum:        w <- w - lr * g
    With momentum mu:        m <- mu * m - lr * g ;  w <- w + m
    Nesterov:                m <- mu * m - lr * g ;  w <- w + mu * m - lr * g

    Versus PyTorch's `torch.optim.SGD`: torch keeps b <- mu * b + g and steps w <- w - lr * b
    (Nesterov: w <- w - lr * (g + mu * b)). With a constant learning rate the two agree
    (m = -lr * b); when the rate changes, Keras's velocity keeps the old rates' steps
    while torch rescales the whole velocity by the new rate. torch's `weight_decay` is an
    L2 term added to the gradient, not Keras's decoupled decay. Default lr: Keras 0.01, torch 0.001.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.momentum = _check_unit_interval("SGD", "momentum", momentum)
        self.nesterov = nesterov
        self._slot_groups = (("momentum",),) if self.momentum != 0 else ()

    def update_step(self, gradient, variable, learning_rate):
        w, t = variable.data, self._scratch(variable.data)
        xp = backend.array_module(w)
        xp.multiply(gradient, learning_rate, out=t)          # t = lr * g
        if self.momentum == 0:
            w -= t
            return
        m = self._slots_of(variable)["momentum"]
        m *= self.momentum
        m -= t                                               # m = mu * m - lr * g
        if self.nesterov:
            w -= t
            xp.multiply(m, self.momentum, out=t)
            w += t                                           # w += mu * m - lr * g
        else:
            w += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop: divide the step by a running root mean square of the gradient.

    v <- rho * v + (1 - rho) * g^2
    centered:  a <- rho * a + (1 - rho) * g ;  d = v - a^2 + eps     otherwise d = v + eps
    step = lr * g / sqrt(d)
    momentum:  m <- momentum * m + step ;  w <- w - m                 otherwise w <- w - step

    Versus PyTorch's `torch.optim.RMSprop` (whose `alpha` is `rho`): torch adds eps
    outside the root, g / (sqrt(v) + eps), Keras inside, g / sqrt(v + eps); torch's momentum
    buffer holds g / sqrt(.) and is scaled by lr at the step (same result for a constant
    rate). Defaults differ: torch lr=0.01, alpha=0.99, eps=1e-8; Keras lr=0.001, rho=0.9, eps=1e-7.
    torch's `weight_decay` is an L2 term on the gradient, not Keras's decoupled decay.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        self._slot_groups = (("velocity",),) + ((("momentum",),) if momentum > 0 else ()) + \
            ((("average_gradient",),) if centered else ())

    def update_step(self, gradient, variable, learning_rate):
        w, t = variable.data, self._scratch(variable.data)
        xp = backend.array_module(w)
        slots, rho = self._slots_of(variable), self.rho
        v = slots["velocity"]
        v *= rho
        xp.square(gradient, out=t)
        t *= 1 - rho
        v += t                                               # v = rho * v + (1 - rho) * g^2
        if self.centered:
            a = slots["average_gradient"]
            a *= rho
            xp.multiply(gradient, 1 - rho, out=t)
            a += t                                           # a = rho * a + (1 - rho) * g
            xp.square(a, out=t)
            xp.subtract(v, t, out=t)
            t += self.epsilon                                # t = v - a^2 + eps
        else:
            xp.add(v, self.epsilon, out=t)                   # t = v + eps
        xp.sqrt(t, out=t)
        xp.divide(gradient, t, out=t)
        t *= learning_rate                                   # t = lr * g / sqrt(.)
        if self.momentum > 0:
            m = slots["momentum"]
            m *= self.momentum
            m += t
            w -= m
        else:
            w -= t

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad: per-coordinate steps shrinking with the sum of all past squared gradients.

    acc <- acc + g^2          (acc starts at initial_accumulator_value)
    w   <- w - lr * g / sqrt(acc + eps)

    Versus PyTorch's `torch.optim.Adagrad`: the accumulator starts at 0.1 here and at 0
    in torch (`initial_accumulator_value`), eps sits inside the root here and outside in
    torch (sqrt(acc) + eps, eps=1e-10), and torch's lr defaults to 0.01 (Keras 0.001).
    torch's `lr_decay` has no Keras counterpart (use a schedule), and its `weight_decay` is an
    L2 term on the gradient, not Keras's decoupled decay.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    _slot_groups = (("accumulator",),)

    def _slot_initial_value(self, slot):
        return self.initial_accumulator_value

    def update_step(self, gradient, variable, learning_rate):
        w, t = variable.data, self._scratch(variable.data)
        xp = backend.array_module(w)
        acc = self._slots_of(variable)["accumulator"]
        xp.square(gradient, out=t)
        acc += t                                             # acc += g^2
        xp.add(acc, self.epsilon, out=t)
        xp.sqrt(t, out=t)
        xp.divide(gradient, t, out=t)
        t *= learning_rate
        w -= t                                               # w -= lr * g / sqrt(acc + eps)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta: steps scaled by the ratio of running RMS of past updates to that of gradients.

    Eg  <- rho * Eg + (1 - rho) * g^2
    dx   = -sqrt(Edx + eps) / sqrt(Eg + eps) * g
    Edx <- rho * Edx + (1 - rho) * dx^2
    w   <- w + lr * dx

    PyTorch's `torch.optim.Adadelta` computes the same update; only the defaults differ
    (torch lr=1.0, rho=0.9, eps=1e-6; Keras lr=0.001, rho=0.95, eps=1e-7), and torch's
    `weight_decay` is an L2 term on the gradient, not Keras's decoupled decay.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    _slot_groups = (("accumulated_grad", "accumulated_delta_var"),)
    _uses_scratch = 2

    def update_step(self, gradient, variable, learning_rate):
        w, t, u = variable.data, self._scratch(variable.data, 0), self._scratch(variable.data, 1)
        xp = backend.array_module(w)
        slots, rho, eps = self._slots_of(variable), self.rho, self.epsilon
        eg, edx = slots["accumulated_grad"], slots["accumulated_delta_var"]
        eg *= rho
        xp.square(gradient, out=t)
        t *= 1 - rho
        eg += t                                              # Eg = rho * Eg + (1 - rho) * g^2
        xp.add(edx, eps, out=t)
        xp.sqrt(t, out=t)
        t *= gradient
        xp.add(eg, eps, out=u)
        xp.sqrt(u, out=u)
        t /= u                                               # t = -dx = sqrt(Edx + eps) / sqrt(Eg + eps) * g
        edx *= rho
        xp.square(t, out=u)
        u *= 1 - rho
        edx += u                                             # Edx = rho * Edx + (1 - rho) * dx^2
        t *= learning_rate
        w -= t                                               # w += lr * dx

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adam: momentum on the gradient, divided by a running RMS, with bias correction.

    t = iterations + 1
    m <- m + (1 - beta_1) * (g - m)
    v <- v + (1 - beta_2) * (g^2 - v)
    amsgrad:  v_hat <- max(v_hat, v), and v_hat is used below in place of v
    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    w <- w - alpha * m / (sqrt(v) + eps)

    Versus PyTorch's `torch.optim.Adam`: torch divides by sqrt(v / (1 - beta_2^t)) + eps,
    which is the formula above with eps * sqrt(1 - beta_2^t) in place of eps (Keras's eps
    is "epsilon hat" of the Adam paper, sec. 2); the two agree only as eps -> 0. Default
    eps: Keras 1e-7, torch 1e-8. torch's `weight_decay` in Adam is an L2 term on the gradient;
    Keras's is decoupled (torch's AdamW).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        self._slot_groups = (("momentum", "velocity"),) + ((("velocity_hat",),) if amsgrad else ())

    def update_step(self, gradient, variable, learning_rate):
        w, t = variable.data, self._scratch(variable.data)
        xp = backend.array_module(w)
        slots = self._slots_of(variable)
        m, v = slots["momentum"], slots["velocity"]
        # the bias-correction scalars in the variable's dtype, as Keras computes them
        dtype = w.dtype.type
        step = dtype(self._iterations + 1)
        alpha = dtype(learning_rate) * math.sqrt(1 - dtype(self.beta_2) ** step) / (1 - dtype(self.beta_1) ** step)
        xp.subtract(gradient, m, out=t)
        t *= 1 - self.beta_1
        m += t                                               # m += (1 - beta_1) * (g - m)
        xp.square(gradient, out=t)
        t -= v
        t *= 1 - self.beta_2
        v += t                                               # v += (1 - beta_2) * (g^2 - v)
        if self.amsgrad:
            v_hat = slots["velocity_hat"]
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        xp.sqrt(v, out=t)
        t += self.epsilon
        xp.divide(m, t, out=t)
        t *= float(alpha)
        w -= t                                               # w -= alpha * m / (sqrt(v) + eps)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), weight_decay=0.004 by default.

    w <- w * (1 - lr * weight_decay), then the Adam step (see `Adam`).

    The decay is the one every Keras 3 optimizer applies when `weight_decay` is set; AdamW
    only makes it required and on by default. PyTorch's `torch.optim.AdamW` decays the same
    way before its Adam step, with weight_decay=0.01 and eps=1e-8 by default; its Adam step
    differs from Keras's in where eps goes (see `Adam`).
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        if self.weight_decay is None:
            raise ValueError("AdamW: argument `weight_decay` must be a float. Received: weight_decay=None "
                             "(use Adam for no weight decay)")


class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum, with Dozat's momentum schedule.

    t = iterations + 1,  u_t = beta_1 * (1 - 0.5 * 0.96^t),  u_{t+1} = beta_1 * (1 - 0.5 * 0.96^(t+1))
    P_t = u_1 * u_2 * ... * u_t        (one running product for the optimizer)
    m <- m + (1 - beta_1) * (g - m) ;  v <- v + (1 - beta_2) * (g^2 - v)
    m_hat = u_{t+1} * m / (1 - P_t * u_{t+1}) + (1 - u_t) * g / (1 - P_t)
    v_hat = v / (1 - beta_2^t)
    w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Versus PyTorch's `torch.optim.NAdam`: torch's schedule is 0.96^(t * momentum_decay)
    with momentum_decay=0.004 by default, so it warms the momentum up over thousands of
    steps where Keras does over tens; with momentum_decay=1 the two updates agree. Defaults
    also differ: torch lr=0.002, eps=1e-8. torch's `weight_decay` is an L2 term on the
    gradient unless `decoupled_weight_decay=True`, which is Keras's decay.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self._u_product = None

    _slot_groups = (("momentum", "velocity"),)
    _uses_scratch = 2

    def build(self, variables):
        variables = list(variables)
        if self._u_product is None and variables:
            # P_t lives in the first variable's dtype, as in Keras; a 0-d array so it is saved with the state
            self._u_product = np.ones((), dtype=variables[0].data.dtype)
        super().build(variables)

    def _extra_state(self):
        return [] if self._u_product is None else [self._u_product]

    def _momentum_schedule(self, step):
        dtype = self._u_product.dtype.type
        return dtype(self.beta_1) * (1 - dtype(0.5) * dtype(0.96) ** dtype(step))

    def _update_all(self, grads, variables, learning_rate):
        # P_t is advanced once per apply, before the variables' updates read it
        self._u_product[...] = self._u_product * self._momentum_schedule(self._iterations + 1)
        super()._update_all(grads, variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        w, t, s = variable.data, self._scratch(variable.data, 0), self._scratch(variable.data, 1)
        xp = backend.array_module(w)
        slots = self._slots_of(variable)
        m, v = slots["momentum"], slots["velocity"]
        step = self._iterations + 1
        u_t, u_next = self._momentum_schedule(step), self._momentum_schedule(step + 1)
        p_t = self._u_product[()]
        p_next = p_t * u_next
        beta_2_power = self._u_product.dtype.type(self.beta_2) ** self._u_product.dtype.type(step)
        xp.subtract(gradient, m, out=t)
        t *= 1 - self.beta_1
        m += t                                               # m += (1 - beta_1) * (g - m)
        xp.square(gradient, out=t)
        t -= v
        t *= 1 - self.beta_2
        v += t                                               # v += (1 - beta_2) * (g^2 - v)
        xp.multiply(m, float(u_next / (1 - p_next)), out=t)
        xp.multiply(gradient, float((1 - u_t) / (1 - p_t)), out=s)
        t += s                                               # t = m_hat
        xp.divide(v, float(1 - beta_2_power), out=s)
        xp.sqrt(s, out=s)
        s += self.epsilon
        t /= s
        t *= learning_rate
        w -= t                                               # w -= lr * m_hat / (sqrt(v_hat) + eps)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


# ============================================================================ lookup by name
_OPTIMIZERS = {cls.__name__.lower(): cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Nadam)}


def _lookup(name, custom_objects=None):
    custom = {k.lower(): v for k, v in (custom_objects or {}).items()}
    cls = custom.get(name.lower()) or _OPTIMIZERS.get(name.lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {name!r}. Known optimizers: "
                         f"{', '.join(sorted(_OPTIMIZERS))} (case-insensitive), or pass an Optimizer instance")
    return cls


def serialize(optimizer):
    """An optimizer as plain data: {'class_name': 'Adam', 'config': {...}}."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    """A new optimizer from `serialize`'s output (Keras's extra keys, such as 'module', are ignored)."""
    if "class_name" not in config:
        raise ValueError(f"optimizer config must have a 'class_name' key, got keys {sorted(config)}")
    return _lookup(config["class_name"], custom_objects).from_config(config.get("config", {}), custom_objects)


def get(identifier):
    """An optimizer from a name ('adam', 'SGD', ...), a serialized dict, or an instance (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _lookup(identifier)()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}; pass a name "
                     f"({', '.join(sorted(_OPTIMIZERS))}), a config dict or an Optimizer instance")
