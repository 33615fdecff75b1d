"""Fused recurrences: the whole time loop of a SimpleRNN, LSTM or GRU as one graph node.

Each function takes `xw`, the input projection x_t @ kernel + bias of every step, computed by the
layer in one GEMM before the loop, and runs only what must be sequential: h_{t-1} @ recurrent_kernel
and the gates. Its backward is backpropagation through time in closed form: one reversed loop that
carries dh (and dc for the LSTM); the recurrent kernel's gradient sum_t h_{t-1}^T da_t is one GEMM
over all steps after the loop.

Why fused (chainrule.layers.recurrent keeps the same cells composed from ops as the reference): an
LSTM step composed from ops records about a dozen nodes, and every time slice xw[:, t] has a backward
that scatters into zeros the size of the whole sequence, so backward costs O(T^2) memory traffic.
Forward + backward on batch 32, 100 steps, 16 features, 64 units, one thread (a busy 2-core machine,
best of 25): SimpleRNN 3.5 ms fused / 10 ms composed (PyTorch 4.1), LSTM 16 / 39 (PyTorch 8.4),
GRU 16 / 38 (PyTorch 31). The loops below work on small per-step blocks that stay in cache: whole-
sequence elementwise passes measured slower here than the same work done step by step.

Gate layouts follow Keras: LSTM [i, f, c, o], GRU [z, r, h]. Activations are named ('tanh',
'sigmoid', 'relu', 'linear'): each has a derivative written from its output, so only outputs are kept.
`recurrent_masks` (gates, batch, units), when given, is recurrent dropout as Keras applies it: gate g
sees (h_{t-1} * mask_g) @ recurrent_kernel_g, with the same masks at every step.
"""
from .. import backend
from .base import as_tensor, record


def _sigmoid(a):
    return a.dtype.type(0.5) * backend.array_module(a).tanh(a * a.dtype.type(0.5)) + a.dtype.type(0.5)


# name: (f(a), f'(a) written as a function of y = f(a))
ACTIVATIONS = {
    "tanh": (lambda a: backend.array_module(a).tanh(a), lambda y: 1 - y * y),
    "sigmoid": (_sigmoid, lambda y: y * (1 - y)),
    "relu": (lambda a: backend.array_module(a).maximum(a, 0), lambda y: (y > 0).astype(y.dtype)),
    "linear": (lambda a: a, lambda y: backend.array_module(y).ones_like(y)),
}


def _activation(name, op):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"{op}: activation {name!r} has no fused form; use one of {sorted(ACTIVATIONS)}, "
                         f"or run the layer's step-by-step path (layer.fused = False)") from None


def _project(h, kernel, masks):
    """(h * mask_g) @ kernel_g for each gate g, side by side; plain h @ kernel without masks."""
    if masks is None:
        return h @ kernel
    u = kernel.shape[1] // len(masks)
    xp = backend.array_module(h)
    return xp.concatenate([(h * m) @ kernel[:, g * u:(g + 1) * u] for g, m in enumerate(masks)], axis=1)


def _project_back(d, kernel, masks):
    """The gradient w.r.t. h of `_project(h, kernel, masks)`, given its output gradient d."""
    if masks is None:
        return d @ kernel.T
    u = kernel.shape[1] // len(masks)
    total = 0
    for g, m in enumerate(masks):
        total = total + (d[:, g * u:(g + 1) * u] @ kernel[:, g * u:(g + 1) * u].T) * m
    return total


def _kernel_grad(hs, d, masks):
    """sum over batch and steps of (h_{t-1} * mask_g)^T d_g, for hs (batch, T, units) and d (batch, T, n):
    the recurrent kernel's gradient as one GEMM (one per mask) after the loop, not T small ones in it."""
    n, out = hs.shape[-1], d.shape[-1]
    if masks is None:
        return hs.reshape(-1, n).T @ d.reshape(-1, out)
    u = out // len(masks)
    xp = backend.array_module(hs)
    return xp.concatenate([(hs * m[:, None]).reshape(-1, n).T @ d[..., g * u:(g + 1) * u].reshape(-1, u)
                           for g, m in enumerate(masks)], axis=1)


def _check(op, xw, kernel, gates, states, masks):
    if xw.ndim != 3:
        raise ValueError(f"{op}: xw must be (batch, timesteps, {gates} * units), got shape {xw.shape}")
    if kernel.ndim != 2 or kernel.shape[1] != gates * kernel.shape[0]:
        raise ValueError(f"{op}: recurrent_kernel must be (units, {gates} * units), got shape {kernel.shape}")
    batch, units = xw.shape[0], kernel.shape[0]
    if xw.shape[2] != gates * units:
        raise ValueError(f"{op}: xw has {xw.shape[2]} columns per step but recurrent_kernel {kernel.shape} "
                         f"needs {gates} * {units} = {gates * units}")
    for s in states:
        if s.shape != (batch, units):
            raise ValueError(f"{op}: initial state has shape {s.shape}, expected (batch, units) = {(batch, units)}")
    if masks is not None and masks.shape != (gates, batch, units):
        raise ValueError(f"{op}: recurrent_masks has shape {masks.shape}, expected {(gates, batch, units)}")


def simple_rnn(xw, recurrent_kernel, h0, activation="tanh", recurrent_masks=None):
    """h_t = f(xw_t + h_{t-1} @ U) for every step; returns all h_t, (batch, T, units).

    BPTT: with dh_t = g_t + dh carried from step t+1, da_t = dh_t * f'(a_t), dxw_t = da_t,
    dh_{t-1} = da_t @ U^T, dU = sum_t h_{t-1}^T da_t.
    """
    xw, U, h0 = as_tensor(xw), as_tensor(recurrent_kernel), as_tensor(h0)
    _check("simple_rnn", xw, U, 1, [h0], recurrent_masks)
    f, df = _activation(activation, "simple_rnn")
    xp = backend.array_module(xw.data)
    xs, Ud, masks = xw.data, U.data, recurrent_masks
    B, T, u = xs.shape[0], xs.shape[1], Ud.shape[0]
    hs = xp.empty((B, T + 1, u), dtype=xs.dtype)  # hs[:, t] is h_{t-1}; hs[:, 0] the initial state
    hs[:, 0] = h = h0.data
    for t in range(T):
        hs[:, t + 1] = h = f(xs[:, t] + _project(h, Ud, masks))

    def backward(g):
        da = xp.empty_like(xs)
        dh = xp.zeros((B, u), dtype=g.dtype)
        for t in range(T - 1, -1, -1):
            dh += g[:, t]
            da[:, t] = d = dh * df(hs[:, t + 1])
            dh = _project_back(d, Ud, masks)
        return da, _kernel_grad(hs[:, :-1], da, masks), dh
    return record(hs[:, 1:], (xw, U, h0), backward, "simple_rnn")


def lstm(xw, recurrent_kernel, h0, c0, activation="tanh", recurrent_activation="sigmoid", recurrent_masks=None):
    """The LSTM over every step; returns [h_t, c_t] side by side, (batch, T, 2 * units).

    With z = xw_t + h_{t-1} @ U split into [i, f, c, o] blocks:
        i, f, o = s(z_i), s(z_f), s(z_o);  g = f_act(z_c)
        c_t = f * c_{t-1} + i * g;  h_t = o * f_act(c_t)
    BPTT carries dh and dc: dc_t = gc_t + dc_{t+1} + dh_t * o * f_act'(c_t), then
    dz_i = dc_t g s'(i), dz_f = dc_t c_{t-1} s'(f), dz_c = dc_t i f_act'(g), dz_o = dh_t f_act(c_t) s'(o),
    dc_{t-1} = dc_t * f, dh_{t-1} = dz @ U^T.
    """
    xw, U, h0, c0 = as_tensor(xw), as_tensor(recurrent_kernel), as_tensor(h0), as_tensor(c0)
    _check("lstm", xw, U, 4, [h0, c0], recurrent_masks)
    f_act, df_act = _activation(activation, "lstm")
    s_act, ds_act = _activation(recurrent_activation, "lstm")
    xp = backend.array_module(xw.data)
    xs, Ud, masks = xw.data, U.data, recurrent_masks
    B, T, u = xs.shape[0], xs.shape[1], Ud.shape[0]
    hs = xp.empty((B, T + 1, u), dtype=xs.dtype)
    cs = xp.empty((B, T + 1, u), dtype=xs.dtype)
    gates = xp.empty_like(xs)                 # activated [i, f, g, o] of every step
    tc = xp.empty((B, T, u), dtype=xs.dtype)  # f_act(c_t)
    hs[:, 0] = h = h0.data
    cs[:, 0] = c = c0.data
    for t in range(T):
        a = xs[:, t] + _project(h, Ud, masks)
        a[:, :2 * u] = s_act(a[:, :2 * u])
        a[:, 2 * u:3 * u] = f_act(a[:, 2 * u:3 * u])
        a[:, 3 * u:] = s_act(a[:, 3 * u:])
        c = a[:, u:2 * u] * c + a[:, :u] * a[:, 2 * u:3 * u]
        tc[:, t] = f_act(c)
        h = a[:, 3 * u:] * tc[:, t]
        gates[:, t], cs[:, t + 1], hs[:, t + 1] = a, c, h

    def backward(g):
        dz = xp.empty_like(xs)
        dh = xp.zeros((B, u), dtype=g.dtype)
        dc = xp.zeros((B, u), dtype=g.dtype)
        for t in range(T - 1, -1, -1):
            a = gates[:, t]
            i, f, gg, o = (a[:, k * u:(k + 1) * u] for k in range(4))
            dh += g[:, t, :u]
            dc += g[:, t, u:] + dh * o * df_act(tc[:, t])
            d = xp.concatenate([dc * gg, dc * cs[:, t], dc * i, dh * tc[:, t]], axis=1)
            da = ds_act(a)  # each gate's derivative, from its output
            da[:, 2 * u:3 * u] = df_act(gg)
            d *= da
            dz[:, t] = d
            dc = dc * f
            dh = _project_back(d, Ud, masks)
        return dz, _kernel_grad(hs[:, :-1], dz, masks), dh, dc
    out = xp.concatenate([hs[:, 1:], cs[:, 1:]], axis=2)
    return record(out, (xw, U, h0, c0), backward, "lstm")


def gru(xw, recurrent_kernel, h0, recurrent_bias=None, reset_after=True, activation="tanh",
        recurrent_activation="sigmoid", recurrent_masks=None):
    """The GRU over every step; returns all h_t, (batch, T, units).

    With xw_t split into [x_z, x_r, x_h] and U into [U_z, U_r, U_h]:
        z = s(x_z + h U_z + b_z),  r = s(x_r + h U_r + b_r)
        reset_after=True (Keras 3's default, cuDNN's and PyTorch's form):  n = f(x_h + r * (h U_h + b_h))
        reset_after=False (the original paper's):                        n = f(x_h + (r * h) U_h)
        h_t = z * h_{t-1} + (1 - z) * n
    `recurrent_bias` (3 * units,) is the second row of Keras's (2, 3 * units) bias; reset_after only.
    """
    xw, U, h0 = as_tensor(xw), as_tensor(recurrent_kernel), as_tensor(h0)
    _check("gru", xw, U, 3, [h0], recurrent_masks)
    parents = (xw, U, h0)
    if recurrent_bias is not None:
        if not reset_after:
            raise ValueError("gru: recurrent_bias exists only with reset_after=True; add it to xw instead")
        recurrent_bias = as_tensor(recurrent_bias)
        if recurrent_bias.shape != (U.shape[1],):
            raise ValueError(f"gru: recurrent_bias has shape {recurrent_bias.shape}, expected ({U.shape[1]},)")
        parents += (recurrent_bias,)
    f_act, df_act = _activation(activation, "gru")
    s_act, ds_act = _activation(recurrent_activation, "gru")
    xp = backend.array_module(xw.data)
    xs, Ud, masks = xw.data, U.data, recurrent_masks
    B, T, u = xs.shape[0], xs.shape[1], Ud.shape[0]
    U_zr, U_h = Ud[:, :2 * u], Ud[:, 2 * u:]
    m_zr, m_h = (None, None) if masks is None else (masks[:2], masks[2:])
    hs = xp.empty((B, T + 1, u), dtype=xs.dtype)
    zr = xp.empty((B, T, 2 * u), dtype=xs.dtype)
    ns = xp.empty((B, T, u), dtype=xs.dtype)
    saved = xp.empty((B, T, u), dtype=xs.dtype)  # reset_after: h U_h + b_h;  else: r * h
    hs[:, 0] = h = h0.data
    for t in range(T):
        x = xs[:, t]
        if reset_after:
            inner = _project(h, Ud, masks)
            if recurrent_bias is not None:
                inner += recurrent_bias.data
            zr[:, t] = gates = s_act(x[:, :2 * u] + inner[:, :2 * u])
            saved[:, t] = inner[:, 2 * u:]
            n = f_act(x[:, 2 * u:] + gates[:, u:] * inner[:, 2 * u:])
        else:
            zr[:, t] = gates = s_act(x[:, :2 * u] + _project(h, U_zr, m_zr))
            saved[:, t] = rh = gates[:, u:] * h
            n = f_act(x[:, 2 * u:] + _project(rh, U_h, m_h))
        ns[:, t] = n
        hs[:, t + 1] = h = n + gates[:, :u] * (h - n)

    def backward(g):
        dx = xp.empty_like(xs)
        dinner = xp.empty_like(xs) if reset_after else None
        dh = xp.zeros((B, u), dtype=g.dtype)
        for t in range(T - 1, -1, -1):
            h, n, gates = hs[:, t], ns[:, t], zr[:, t]
            z, r = gates[:, :u], gates[:, u:]
            dgates = ds_act(gates)
            dh += g[:, t]
            dn = dh * (1 - z) * df_act(n)
            dz = dh * (h - n) * dgates[:, :u]
            if reset_after:
                dr = dn * saved[:, t] * dgates[:, u:]
                d = xp.concatenate([dz, dr, dn * r], axis=1)  # gradient of h U + b_h
                dinner[:, t] = d
                dh = dh * z + _project_back(d, Ud, masks)
            else:
                drh = _project_back(dn, U_h, m_h)  # gradient w.r.t. r * h
                dr = drh * h * dgates[:, u:]
                d = xp.concatenate([dz, dr], axis=1)
                dh = dh * z + drh * r + _project_back(d, U_zr, m_zr)
            dx[:, t, :2 * u] = d[:, :2 * u]
            dx[:, t, 2 * u:] = dn
        if reset_after:
            dU = _kernel_grad(hs[:, :-1], dinner, masks)
        else:
            dU = xp.concatenate([_kernel_grad(hs[:, :-1], dx[..., :2 * u], m_zr),
                                 _kernel_grad(saved, dx[..., 2 * u:], m_h)], axis=1)
        grads = (dx, dU, dh)
        if recurrent_bias is not None:
            grads += (dinner.sum(axis=(0, 1)),)
        return grads
    return record(hs[:, 1:], parents, backward, "gru")
