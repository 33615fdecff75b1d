"""Recurrent layers (Keras's keras/src/layers/rnn/): SimpleRNN, LSTM, GRU and the Bidirectional wrapper.

Input (batch, timesteps, features); output the last state h_T, (batch, units), or every h_t with
`return_sequences=True`, (batch, timesteps, units); `return_state=True` appends the final states
([h_T] for SimpleRNN and GRU, [h_T, c_T] for the LSTM). Weights as Keras names and lays them out:
`kernel` (features, gates * units), `recurrent_kernel` (units, gates * units), `bias`, with the gates
side by side in Keras's order (LSTM i, f, c, o; GRU z, r, h), so Keras weights load unchanged.

How a call runs:
1. x_t @ kernel + bias for ALL steps is one GEMM on x reshaped to (batch * T, features): it does not
   depend on h_{t-1}, and one large GEMM runs far closer to BLAS's peak than T small ones.
2. Only h_{t-1} @ recurrent_kernel and the gates are sequential. By default that loop is one fused
   node (chainrule.ops.recurrent) whose backward is BPTT in closed form; `layer.fused = False` runs
   each cell's `step` below instead, composed from ops, so the engine derives BPTT itself. Both give
   the same numbers (tests check it); the composed form is the one to read, the fused one is faster.
"""
import numbers

import numpy as np

from .. import activations, backend, initializers, ops, regularizers
from .. import random as _random
from ..autograd import Tensor
from ..ops import recurrent as fused_ops
from .base import Layer, is_shape, registered, serializable
from .core import add_activity_loss, float_input, get_constraint, serialize_constraint

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]


def _rate(layer, arg, value):
    if not isinstance(value, numbers.Real):
        raise ValueError(f"{layer}: {arg} must be a number in [0, 1], got {value!r}")
    return min(1.0, max(0.0, float(value)))  # Keras clips the same way


def _with_states(layer_call, args, initial_state, kwargs):
    """Call with `initial_state` moved into the inputs, [sequences, *states]: a functional model then
    wires the states like any other tensor (e.g. an encoder's final states into a decoder)."""
    if initial_state is None or len(args) != 1:
        return layer_call(*args, **kwargs)
    states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    return layer_call([args[0]] + states, **kwargs) if states else layer_call(*args, **kwargs)


def _split_inputs(inputs, initial_state):
    """(sequences, initial_state) from a call's inputs, which may be [sequences, *states]."""
    if isinstance(inputs, (list, tuple)):
        return inputs[0], (list(inputs[1:]) or initial_state)
    return inputs, initial_state


def _sequence_shape(input_shape):
    """The sequences' shape from a build/output-shape argument that may list the states' shapes too."""
    return input_shape if is_shape(tuple(input_shape)) else tuple(input_shape[0])


def _fused_name(fn):
    """The name under which ops.recurrent knows activation `fn`, or None when it has no fused form."""
    for name in fused_ops.ACTIVATIONS:
        if fn is activations.get(name):
            return name
    return None


class _RNN(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, the time loop, shapes and config.

    A subclass sets `gates` (blocks of `units` columns in the kernels) and `n_states`, and writes
    `step` (one time step from ops) and `scan` (all steps as one fused op).
    """

    gates = 1
    n_states = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        for keras_only in ("use_cudnn", "implementation"):  # kernels Keras picks; one path here
            kwargs.pop(keras_only, None)
        super().__init__(**kwargs)
        kind = f"{type(self).__name__} '{self.name}'"
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{kind}: units must be a positive int (the size of the state), got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = get_constraint(kernel_constraint)
        self.recurrent_constraint = get_constraint(recurrent_constraint)
        self.bias_constraint = get_constraint(bias_constraint)
        self.dropout = _rate(kind, "dropout", dropout)
        self.recurrent_dropout = _rate(kind, "recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras code: the loop here is always a Python loop
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.fused = True  # False: run `step` composed from ops (the reference; slower)
        self.states = None  # with stateful=True: the final states of the last call, as arrays
        self.kernel = self.recurrent_kernel = self.bias = None

    # ------------------------------------------------------------------ weights
    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        input_shape = _sequence_shape(input_shape)
        self._check_input(input_shape)
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs a known number of features per step "
                             f"to size its kernel, got input shape {tuple(input_shape)}; give Input a full "
                             f"shape, e.g. Input(shape=(None, 8))")
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(features, width), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, width), initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint, name="recurrent_kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=self._bias_shape(), initializer=self._bias_initializer(),
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")

    def _biases(self):
        """(bias added to x @ kernel, bias added to h @ recurrent_kernel); only GRU(reset_after) has the second."""
        return self.bias, None

    # ------------------------------------------------------------------ checks
    def _check_input(self, shape):
        shape = tuple(shape)
        kind = f"{type(self).__name__} '{self.name}'"
        if len(shape) != 3:
            if len(shape) == 2:
                fix = ("add a time axis, e.g. x[:, :, None] for one feature per step, or Reshape((steps, "
                       "features)) in a model")
            else:
                fix = "merge the extra axes into the features, e.g. with Reshape((steps, -1))"
            raise ValueError(f"{kind} expects (batch, timesteps, features) but got shape {shape}: {fix}")
        if self.kernel is not None and shape[-1] not in (None, self.kernel.shape[0]):
            raise ValueError(f"{kind} was built for {self.kernel.shape[0]} features per step but got input of "
                             f"shape {shape}; use a new layer for inputs of this size")

    # ------------------------------------------------------------------ states
    def _initial_states(self, batch, initial_state, dtype, xp):
        kind = f"{type(self).__name__} '{self.name}'"
        if initial_state is None and self.stateful and self.states is not None:
            if self.states[0].shape[0] != batch:
                raise ValueError(f"{kind} is stateful and holds states for batch size {self.states[0].shape[0]} "
                                 f"but got a batch of {batch}: keep the batch size fixed (e.g. drop the last "
                                 f"partial batch) or call reset_states() first")
            initial_state = [Tensor(s) for s in self.states]
        if initial_state is None:
            return [Tensor(xp.zeros((batch, self.units), dtype=dtype)) for _ in range(self.n_states)]
        if isinstance(initial_state, (Tensor, np.ndarray)):
            initial_state = [initial_state]
        states = [s if isinstance(s, Tensor) else Tensor(xp.asarray(s, dtype=dtype)) for s in initial_state]
        if len(states) != self.n_states or any(tuple(s.shape) != (batch, self.units) for s in states):
            raise ValueError(f"{kind} expects initial_state as {self.n_states} array(s) of shape (batch, units) = "
                             f"{(batch, self.units)}, got {[tuple(s.shape) for s in states]}")
        return states

    def reset_states(self, states=None):
        """Forget a stateful layer's states (the next call starts from zeros), or set them to `states`."""
        if states is not None:
            states = [s.data.copy() if isinstance(s, Tensor) else np.array(s, dtype=self.dtype)
                      for s in (states if isinstance(states, (list, tuple)) else [states])]
        self.states = states

    reset_state = reset_states

    # ------------------------------------------------------------------ dropout
    def _masks(self, rate, count, shape, x):
        """`count` inverted-dropout masks of `shape`, drawn once per call and reused at every step
        (as Keras does: the same units are dropped all along a sequence)."""
        gen = _random.generator() if self._rng is None else self._rng
        keep = gen.random((count,) + tuple(shape), dtype=np.float32) >= rate
        masks = keep.astype(x.dtype) * x.dtype.type(1 / (1 - rate))
        return backend.array_module(x.data).asarray(masks)

    def _mask_count(self):
        # Keras's LSTM and GRU switch to one mask per gate when recurrent dropout is on
        return self.gates if self.recurrent_dropout > 0 else 1

    # ------------------------------------------------------------------ the call
    def __call__(self, *args, initial_state=None, **kwargs):
        return _with_states(super().__call__, args, initial_state, kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences, initial_state = _split_inputs(sequences, initial_state)
        kind = f"{type(self).__name__} '{self.name}'"
        if mask is not None:
            raise NotImplementedError(f"{kind}: masked (padded) sequences are not supported; trim the padding "
                                      f"or use sequences of equal length")
        self._check_input(sequences.shape)
        x = float_input(self, sequences)
        batch, steps, features = x.shape
        if steps == 0:
            raise ValueError(f"{kind} got a sequence of 0 timesteps, shape {tuple(x.shape)}")
        xp = backend.array_module(x.data)
        states = self._initial_states(batch, initial_state, x.dtype, xp)
        if self.go_backwards:
            x = x[:, ::-1]
        xw = self._project_inputs(x, training)
        rec_masks = None
        if training and 0 < self.recurrent_dropout < 1:
            rec_masks = self._masks(self.recurrent_dropout, self._mask_count(), (batch, self.units), x)
        if self.fused and self._fused_activations() is not None:
            sequence, states = self.scan(xw, states, rec_masks)
        else:
            sequence, states = self._loop(xw, states, rec_masks)
        output = sequence if self.return_sequences else states[0]
        if self.stateful:
            self.states = [s.data.copy() for s in states]
        outputs = [output] + states if self.return_state else [output]
        for out in outputs:
            add_activity_loss(self, out)
        return outputs if self.return_state else output

    def _project_inputs(self, x, training):
        """x_t @ kernel + input bias for every step at once: (batch, T, features) -> (batch, T, gates * units)."""
        batch, steps, features = x.shape
        input_bias = self._biases()[0]
        masks = None
        if training and 0 < self.dropout < 1:
            masks = self._masks(self.dropout, self._mask_count(), (batch, 1, features), x)
        if masks is None or len(masks) == 1:
            if masks is not None:
                x = x * masks[0]
            flat = ops.reshape(x, (batch * steps, features))  # one GEMM over all steps (see the module notes)
            return ops.reshape(ops.linear(flat, self.kernel, input_bias), (batch, steps, -1))
        # one input mask per gate (Keras with recurrent dropout): one GEMM per gate, still over all steps
        u = self.units
        parts = [ops.linear(ops.reshape(x * m, (batch * steps, features)), self.kernel[:, g * u:(g + 1) * u])
                 for g, m in enumerate(masks)]
        xw = ops.concat(parts, axis=1)
        if input_bias is not None:
            xw = xw + input_bias
        return ops.reshape(xw, (batch, steps, -1))

    def _loop(self, xw, states, rec_masks):
        """The reference path: `step` composed from ops at every time step; the engine does BPTT."""
        outputs = []
        for t in range(xw.shape[1]):
            h, states = self.step(xw[:, t], states, rec_masks)
            outputs.append(h)
        sequence = ops.stack(outputs, axis=1) if self.return_sequences else None
        return sequence, states

    @staticmethod
    def _recurrent(h, kernel, masks):
        """h @ kernel, or with recurrent dropout (h * mask_g) @ kernel_g per gate, side by side."""
        if masks is None:
            return ops.matmul(h, kernel)
        u = kernel.shape[1] // len(masks)
        return ops.concat([ops.matmul(h * m, kernel[:, g * u:(g + 1) * u]) for g, m in enumerate(masks)], axis=1)

    def _fused_activations(self):
        """The activation names for the fused op, or None to run the composed path."""
        name = _fused_name(self.activation)
        return None if name is None else (name,)

    # ------------------------------------------------------------------ shapes and config
    def compute_output_shape(self, input_shape):
        input_shape = _sequence_shape(input_shape)
        self._check_input(input_shape)
        batch, steps = input_shape[0], input_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return (output,) + ((batch, self.units),) * self.n_states
        return output

    def get_config(self):
        config = super().get_config()
        config.update({
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": serialize_constraint(self.kernel_constraint),
            "recurrent_constraint": serialize_constraint(self.recurrent_constraint),
            "bias_constraint": serialize_constraint(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        })
        return config


# ----------------------------------------------------------------------------- SimpleRNN
@serializable
class SimpleRNN(_RNN):
    """Fully connected recurrence:  h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    kernel (features, units), recurrent_kernel (units, units), bias (units,); h_0 = 0.
    """

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, seed=None, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)

    def _mask_count(self):
        return 1

    def step(self, xw_t, states, rec_masks=None):
        """One step from ops: xw_t is x_t @ kernel + bias; returns (h_t, [h_t])."""
        h = self.activation(xw_t + self._recurrent(states[0], self.recurrent_kernel, rec_masks))
        return h, [h]

    def scan(self, xw, states, rec_masks=None):
        (act,) = self._fused_activations()
        hs = fused_ops.simple_rnn(xw, self.recurrent_kernel, states[0], activation=act, recurrent_masks=rec_masks)
        return hs, [hs[:, -1]]


# ----------------------------------------------------------------------------- LSTM
@serializable
class LSTM(_RNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), gates in Keras's order i, f, c, o:

        [z_i, z_f, z_c, z_o] = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
        i, f, o = recurrent_activation(z_i, z_f, z_o);  g = activation(z_c)
        c_t = f * c_{t-1} + i * g;   h_t = o * activation(c_t)

    kernel (features, 4 units), recurrent_kernel (units, 4 units), bias (4 units,). With
    `unit_forget_bias` the forget gate's bias starts at 1, so early on the cell remembers.
    """

    gates = 4
    n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, u = self.bias_initializer, self.units

        def forget_gate_ones(shape, dtype=None):  # [init(u), ones(u), init(2u)], as Keras builds it
            return np.concatenate([np.asarray(init((u,), dtype=dtype)), np.ones(u, dtype=dtype),
                                   np.asarray(init((2 * u,), dtype=dtype))])
        return forget_gate_ones

    def _fused_activations(self):
        names = (_fused_name(self.activation), _fused_name(self.recurrent_activation))
        return None if None in names else names

    def step(self, xw_t, states, rec_masks=None):
        """One step from ops: returns (h_t, [h_t, c_t])."""
        h, c = states
        u = self.units
        z = xw_t + self._recurrent(h, self.recurrent_kernel, rec_masks)
        i = self.recurrent_activation(z[:, :u])
        f = self.recurrent_activation(z[:, u:2 * u])
        g = self.activation(z[:, 2 * u:3 * u])
        o = self.recurrent_activation(z[:, 3 * u:])
        c = f * c + i * g
        h = o * self.activation(c)
        return h, [h, c]

    def scan(self, xw, states, rec_masks=None):
        act, rec_act = self._fused_activations()
        hc = fused_ops.lstm(xw, self.recurrent_kernel, states[0], states[1], activation=act,
                            recurrent_activation=rec_act, recurrent_masks=rec_masks)
        u = self.units
        hs = hc[:, :, :u]
        return hs, [hs[:, -1], hc[:, -1, u:]]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


# ----------------------------------------------------------------------------- GRU
@serializable
class GRU(_RNN):
    """Gated recurrent unit (Cho et al., 2014), gates in Keras's order z, r, h:

        z = recurrent_activation(x_t W_z + h_{t-1} U_z + b_z)        (update gate)
        r = recurrent_activation(x_t W_r + h_{t-1} U_r + b_r)        (reset gate)
        n = activation(x_t W_h + r * (h_{t-1} U_h + b'_h))           reset_after=True (Keras 3's default)
        n = activation(x_t W_h + (r * h_{t-1}) U_h + b_h)            reset_after=False
        h_t = z * h_{t-1} + (1 - z) * n

    With reset_after the bias is (2, 3 units): row 0 goes with the input, row 1 with the state
    (PyTorch's nn.GRU is this form, with bias_ih and bias_hh); otherwise it is (3 units,).
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, reset_after=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         seed=seed, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _biases(self):
        if self.bias is None or not self.reset_after:
            return self.bias, None
        return self.bias[0], self.bias[1]

    _fused_activations = LSTM._fused_activations

    def step(self, xw_t, states, rec_masks=None):
        """One step from ops: returns (h_t, [h_t])."""
        h = states[0]
        u = self.units
        U = self.recurrent_kernel
        if self.reset_after:
            inner = self._recurrent(h, U, rec_masks)
            recurrent_bias = self._biases()[1]
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            z = self.recurrent_activation(xw_t[:, :u] + inner[:, :u])
            r = self.recurrent_activation(xw_t[:, u:2 * u] + inner[:, u:2 * u])
            n = self.activation(xw_t[:, 2 * u:] + r * inner[:, 2 * u:])
        else:
            zr_masks, h_masks = (None, None) if rec_masks is None else (rec_masks[:2], rec_masks[2:])
            zr = xw_t[:, :2 * u] + self._recurrent(h, U[:, :2 * u], zr_masks)
            z = self.recurrent_activation(zr[:, :u])
            r = self.recurrent_activation(zr[:, u:])
            n = self.activation(xw_t[:, 2 * u:] + self._recurrent(r * h, U[:, 2 * u:], h_masks))
        h = z * h + (1 - z) * n
        return h, [h]

    def scan(self, xw, states, rec_masks=None):
        act, rec_act = self._fused_activations()
        hs = fused_ops.gru(xw, self.recurrent_kernel, states[0], recurrent_bias=self._biases()[1],
                           reset_after=self.reset_after, activation=act, recurrent_activation=rec_act,
                           recurrent_masks=rec_masks)
        return hs, [hs[:, -1]]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["reset_after"] = self.reset_after
        return config


# ----------------------------------------------------------------------------- Bidirectional
def _layer_config(layer):
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": None}


def _layer_from_config(config):
    cls = registered(config["class_name"])
    if cls is None:
        raise ValueError(f"Bidirectional: unknown layer class {config['class_name']!r} in the config")
    return cls.from_config(config["config"])


@serializable
class Bidirectional(Layer):
    """Runs a recurrent layer forward and a copy of it backward in time, and merges the two.

    y_t = merge(forward h_t, backward h_t), where the backward layer reads x_T ... x_1 and its sequence
    is flipped back so both outputs at t describe step t. merge_mode: 'concat' (default: 2 units
    features), 'sum', 'mul', 'ave', or None (both outputs, as a list). With return_state the output
    is followed by the forward layer's final states, then the backward layer's.
    """

    MERGE_MODES = ("concat", "sum", "mul", "ave", None)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if isinstance(layer, dict):  # from a config
            layer = _layer_from_config(layer)
        if isinstance(backward_layer, dict):
            backward_layer = _layer_from_config(backward_layer)
        if not isinstance(layer, _RNN):
            raise ValueError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer!r}")
        if merge_mode not in self.MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {self.MERGE_MODES}, got {merge_mode!r}")
        super().__init__(**kwargs)
        config = layer.get_config()
        base = layer.name.removeprefix("forward_")
        self.forward_layer = type(layer).from_config(dict(config, name="forward_" + base))
        if backward_layer is None:
            backward_layer = type(layer).from_config(dict(config, name="backward_" + base,
                                                          go_backwards=not layer.go_backwards))
        elif not isinstance(backward_layer, _RNN):
            raise ValueError(f"Bidirectional: backward_layer must be a recurrent layer, got {backward_layer!r}")
        if (backward_layer.return_sequences, backward_layer.return_state) != (layer.return_sequences,
                                                                              layer.return_state):
            raise ValueError("Bidirectional: the forward and backward layers must agree on return_sequences "
                             "and return_state")
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(f"Bidirectional: backward_layer must read the sequence the other way: both layers "
                             f"have go_backwards={layer.go_backwards}; set go_backwards=True on one of them")
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._initial_weights = weights

    def build(self, input_shape):
        input_shape = _sequence_shape(input_shape)
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        if self._initial_weights is not None:
            self.built = True
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _merge(self, y, y_rev):
        if self.merge_mode == "concat":
            return ops.concat([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "mul":
            return y * y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) * 0.5
        return [y, y_rev]

    def __call__(self, *args, initial_state=None, **kwargs):
        return _with_states(super().__call__, args, initial_state, kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences, initial_state = _split_inputs(sequences, initial_state)
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, mask=mask, training=training)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, mask=mask, training=training)
        states = []
        if self.return_state:
            states = y[1:] + y_rev[1:]
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]  # back to the forward layer's time order
        output = self._merge(y, y_rev)
        if not self.return_state:
            return output
        return (output if isinstance(output, list) else [output]) + states

    def compute_output_shape(self, input_shape):
        input_shape = _sequence_shape(input_shape)
        out = self.forward_layer.compute_output_shape(input_shape)
        states = ()
        if self.return_state:
            out, states = out[0], tuple(out[1:])
            states = states + tuple(self.backward_layer.compute_output_shape(input_shape)[1:])
        if self.merge_mode == "concat":
            out = out[:-1] + (None if out[-1] is None else 2 * out[-1],)
        outputs = (out, out) if self.merge_mode is None else (out,)
        if self.return_state:
            return outputs + states
        return outputs if self.merge_mode is None else out

    def reset_states(self, states=None):
        """Reset both directions (stateful layers)."""
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    reset_state = reset_states

    def get_config(self):
        config = super().get_config()
        config.update({"merge_mode": self.merge_mode, "layer": _layer_config(self.forward_layer),
                       "backward_layer": _layer_config(self.backward_layer)})
        return config
