"""Normalization and dropout: batch_norm and layer_norm as single fused nodes, inverted dropout.

Batch and layer normalization differ only in which axes they average over: batch norm over
every axis but the channel axis (statistics shared across the batch), layer norm over the
feature axes of each sample. Each has a closed-form backward: building them from a dozen
primitive ops would record a dozen nodes and keep as many intermediate arrays.

Where the speed comes from: both see x as a matrix with the averaged axes on one side, batch
norm as (pixels, channels), layer norm as (samples, features). Every statistic is then a GEMV
(`ones @ X`, `X @ ones`) or a row-wise einsum instead of NumPy's reductions over leading axes
(whose inner loop runs only c floats wide), and the elementwise work is a few in-place passes
over one new buffer per result. x in the common layout (normalized axes last, contiguous) is
only reshaped; any other layout is transposed into it, one copy in and one per result out.
Where numba is allowed (chainrule.accelerate), batch norm over the last axis runs compiled passes
instead (ops/norm_numba.py), 1.2-2.2x faster: each pass one loop over a thread's rows, no GIL.
"""
import functools
import math
import numbers

import numpy as np

from .. import accelerate, backend
from .. import random as _random
from .base import Tensor, as_tensor, normalize_axis, record


def _param(p, name, op, shape, bshape, dtype):
    """`p` as a tensor of `shape` (or already of the broadcast shape `bshape`) and its data as a flat vector."""
    p = as_tensor(p)
    if tuple(p.shape) not in (shape, bshape):
        raise ValueError(f"{op}: {name} has shape {p.shape} but the input's normalized axes give {shape}; "
                         f"pass a {name} with one value per feature, shape {shape}")
    return p, p.data.reshape(-1).astype(dtype, copy=False)


def _matrix(a, order, shape):
    """`a` with its axes in `order`, as a C-contiguous matrix of `shape`: a view when `a` is already laid
    out so (the common case), otherwise one copy."""
    if order != tuple(range(a.ndim)):
        a = a.transpose(order)
    return a.reshape(shape)


def _restore(out, order):
    """`out`, computed with x's axes in `order`, back in x's own axis order (a copy only if they differ)."""
    if order == tuple(range(out.ndim)):
        return out
    xp = backend.array_module(out)
    return xp.ascontiguousarray(out.transpose(tuple(int(i) for i in np.argsort(order))))


# ------------------------------------------------------------------ batch_norm

def _running_array(r, name, shape):
    """The backend array behind a running statistic (a plain array or a Tensor), checked."""
    arr = r.data if isinstance(r, Tensor) else r
    xp = backend.array_module(arr)
    if not isinstance(arr, xp.ndarray):
        raise TypeError(f"batch_norm: {name} must be an array or Tensor that can be updated in place, "
                        f"got {type(r).__name__}; create it with e.g. np.zeros({shape}, np.float32)")
    if arr.size != math.prod(shape):
        raise ValueError(f"batch_norm: {name} has shape {arr.shape} but the input has {shape} channels")
    return arr


_ROW_WIDTH = 16384  # floats per row of batch norm's matrix: NumPy's per-row loop overhead fades by then
_BLOCK = 1 << 17  # floats per block of rows in the elementwise passes: 512 KiB, so a block stays in L2


def _pixels_per_row(m, c):
    """The largest k dividing m with k * c <= _ROW_WIDTH (at least 1)."""
    for k in range(max(1, min(m, _ROW_WIDTH // c)), 1, -1):
        if m % k == 0:
            return k
    return 1


@functools.lru_cache(maxsize=64)
def _channel_rows(xp, shape, dtype, kept):
    """The _ChannelRows of x's shape and dtype (cached: training asks again every batch)."""
    return _ChannelRows(xp, shape, dtype, kept)


class _ChannelRows:
    """x's data as m pixels by c channels, k pixels side by side per row: a (m / k, k * c) matrix.

    A per-channel vector is tiled k times to broadcast against a row. Rows thousands of floats
    wide rather than c wide halve the time of NumPy's elementwise passes at c = 16..64 (its loop
    overhead is per row), and a per-channel sum is a GEMV `ones @ X` whose k pixels a second
    GEMV folds: 3-15x faster than NumPy's axis-0 sum, and more accurate (each column adds only
    m / k values).
    """

    def __init__(self, xp, shape, dtype, kept):
        reduced = tuple(a for a in range(len(shape)) if a not in kept)
        self.xp, self.dtype = xp, dtype
        self.order = reduced + kept
        self.shape = tuple(shape[a] for a in kept)
        self.m = math.prod(shape[a] for a in reduced)
        c = math.prod(self.shape)
        # measured: below these sizes tiling the per-channel vectors costs more than wide rows save
        wide = self.m * c >= (_ROW_WIDTH if c < 64 else 4 * _ROW_WIDTH)
        self.k = _pixels_per_row(self.m, c) if wide else 1
        self.rows = (self.m // self.k, self.k * c)
        self.t_shape = tuple(shape[a] for a in self.order)
        self.ones = xp.ones(max(self.rows[0], self.k), dtype=dtype)  # only ever read
        # Row slices of about _BLOCK floats. A result's passes run block by block, so that only the
        # first one of each block goes to memory: 10-20% faster on arrays of tens of MB.
        step = max(1, _BLOCK // max(1, self.rows[1]))
        self.blocks = [slice(i, i + step) for i in range(0, self.rows[0], step)]

    def view(self, a):
        """`a` (x's shape) as the matrix: a view unless x's layout needs a transposing copy."""
        return _matrix(a, self.order, self.rows)

    def empty(self):
        """A new result array (x's axes in the matrix's order) and its matrix view to write into.

        Results are handed on as this array, not as a reshaped view: autograd copies a gradient
        that does not own its memory before it becomes a .grad."""
        out = self.xp.empty(self.t_shape, self.dtype)
        return out, out.reshape(self.rows)

    def result(self, out):
        """An array from `empty()` in x's own axis order."""
        return _restore(out, self.order)

    def sum(self, a):
        """Per-channel sum of the matrix `a` (the threads each sum a slice of the rows)."""
        return self._fold(backend.parallel_sum(a.shape[0], lambda r: self.ones[:r.stop - r.start] @ a[r], a.size))

    def dot(self, a, b):
        """Per-channel sum of a * b, without an a * b temporary."""
        return self._fold(backend.parallel_sum(a.shape[0], lambda r: self.xp.einsum("ij,ij->j", a[r], b[r]),
                                               a.size))

    def each_block(self, fn):
        """fn(rows) for each block of rows, the blocks shared out over the threads."""
        runs = backend.share(self.blocks, self.m * math.prod(self.shape), backend.FACTOR_REDUCE)
        backend.parallel_map(lambda run: [fn(b) for b in run], runs)

    def minus(self, a, v):
        """a - v (v a row vector) as a new array, the rows shared out over the threads."""
        out = self.xp.empty_like(a)
        backend.parallel_slices(a.shape[0], lambda r: self.xp.subtract(a[r], v, out=out[r]), a.size,
                                backend.FACTOR_REDUCE)
        return out

    def spread(self, v):
        """A per-channel vector tiled to broadcast against the matrix's rows."""
        v = v.reshape(-1)
        return v if self.k == 1 else v[None].repeat(self.k, axis=0).reshape(-1)  # np.tile, 4x less overhead

    def _fold(self, s):
        return s if self.k == 1 else self.ones[:self.k] @ s.reshape(self.k, -1)


def batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.99, epsilon=1e-3, axis=-1):
    """y = gamma * (x - mean) / sqrt(var + epsilon) + beta, statistics per channel `axis`.

    The mean and the (biased, divide-by-m) variance are taken over every axis but `axis` (an int or
    a tuple of kept axes; the default -1 is the channel of NWC/NHWC data), m being the number of
    elements averaged.

    training=True: normalize with the batch's mean and variance and update the running statistics
    IN PLACE (plain backend arrays, or Tensors whose .data is updated), with Keras's convention:
        running_mean = running_mean * momentum + mean * (1 - momentum)
        running_var  = running_var  * momentum + var  * (1 - momentum)     (biased var, as Keras 3)
    PyTorch weighs the new value by its momentum instead (torch_momentum = 1 - keras_momentum,
    so Keras's 0.99 is PyTorch's 0.01) and feeds its running variance the unbiased batch variance
    var * m / (m - 1). Pass None for both running statistics to skip the update.

    training=False: normalize with the running statistics (constants); y stays differentiable in
    x, gamma and beta.

    gamma or beta may be None (Keras's scale=False / center=False). Gradients, one fused node:
        dx     = gamma / sigma * (g - mean(g) - xhat * mean(g * xhat))   (means over the reduced axes)
        dgamma = sum(g * xhat),  dbeta = sum(g)                          (sums over the reduced axes)
    """
    x = as_tensor(x)
    if x.ndim < 1 or x.dtype.kind != "f":
        raise ValueError(f"batch_norm expects a float tensor with a channel axis, got shape {x.shape} "
                         f"and dtype {x.dtype}")
    kept = normalize_axis(axis, x.ndim)
    dtype = x.dtype
    layout = _channel_rows(backend.array_module(x.data), tuple(x.shape), dtype, kept)
    shape, m, xp = layout.shape, layout.m, layout.xp
    bshape = tuple(n if a in kept else 1 for a, n in enumerate(x.shape))
    gamma_d = beta_d = None
    if gamma is not None:
        gamma, gamma_d = _param(gamma, "gamma", "batch_norm", shape, bshape, dtype)
    if beta is not None:
        beta, beta_d = _param(beta, "beta", "batch_norm", shape, bshape, dtype)

    if training:
        if m == 0:
            raise ValueError(f"batch_norm: training needs at least one element per channel, got shape {x.shape}")
        if (running_mean is None) != (running_var is None):
            raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: training=False normalizes with the running statistics; "
                         "pass running_mean and running_var")
    if kept == (x.ndim - 1,) and x.shape[-1] and accelerate.wants_numba(x.data):
        return _batch_norm_compiled(x, gamma, gamma_d, beta, beta_d, running_mean, running_var, training,
                                    momentum, epsilon)
    xd = layout.view(x.data)
    if training:
        inv_m = dtype.type(1 / m)
        mean = layout.sum(xd) * inv_m
        centred = layout.minus(xd, layout.spread(mean))
        # Corrected two-pass variance: centring first avoids E[x^2] - mean^2's cancellation for large
        # means; what is left of the centred values' mean is the rounding error of the float32 mean,
        # carried as a per-channel `shift` instead of a pass over the data (4-10x more accurate).
        shift = layout.sum(centred) * inv_m
        var = layout.dot(centred, centred) * inv_m - shift * shift
        if running_mean is not None:
            mean += shift
            _update_running(running_mean, running_var, mean, var, momentum, shape)
    else:
        rm = _running_array(running_mean, "running_mean", shape).reshape(-1).astype(dtype, copy=False)
        var = _running_array(running_var, "running_var", shape).reshape(-1).astype(dtype, copy=False)
        centred = layout.minus(xd, layout.spread(rm))
        shift = None
    inv_std = 1 / xp.sqrt(var + dtype.type(epsilon))  # a fresh array: later running updates cannot reach it
    scale = inv_std if gamma_d is None else gamma_d * inv_std
    offset = beta_d if shift is None else -shift * scale if beta_d is None else beta_d - shift * scale
    y, y_rows = layout.empty()
    scale_t = layout.spread(scale)
    offset_t = None if offset is None else layout.spread(offset)
    def y_block(b):
        y_b = y_rows[b]
        xp.multiply(centred[b], scale_t, out=y_b)
        if offset_t is not None:
            y_b += offset_t

    layout.each_block(y_block)
    return _batch_norm_node(x, layout.result(y), centred, shift, inv_std, scale, gamma, beta, layout,
                            bool(training))


def _update_running(running_mean, running_var, mean, var, momentum, shape):
    """running = running * momentum + batch * (1 - momentum), in place (Keras's convention)."""
    for r, name, batch in ((running_mean, "running_mean", mean), (running_var, "running_var", var)):
        arr = _running_array(r, name, shape)
        arr *= arr.dtype.type(momentum)
        arr += (batch.reshape(arr.shape) * (1 - momentum)).astype(arr.dtype, copy=False)
        if isinstance(r, Tensor):
            r._version += 1


def _batch_norm_compiled(x, gamma, gamma_d, beta, beta_d, running_mean, running_var, training, momentum, epsilon):
    """`batch_norm` over the channels-last axis by the compiled passes of ops/norm_numba.py, x seen as
    (pixels, channels) and its rows shared out over the threads: two passes forward (the statistics
    in float64 from one pass, shifted by the first pixel; then y), two backward (the sums; then dx),
    none of them through the GIL. It keeps x itself for the backward, not x - mean. Measured
    against NumPy's passes (forward + backward, in one process, PyTorch alongside): two threads,
    CNN-B's 128x24x24x64 11.0 -> 4.9 ms (PyTorch 10.0), the U-Net's 8x64x64x16 0.87 -> 0.58 ms
    (PyTorch 0.75); one thread 13.3 -> 6.1 and 0.88 -> 0.71 ms."""
    from . import norm_numba
    dtype = x.dtype
    c = x.shape[-1]
    xd = np.ascontiguousarray(x.data).reshape(-1, c)
    m = xd.shape[0]
    runs = backend.slices(m) if backend.worth_threads(xd.size) else [slice(0, m)]

    def over_rows(kernel, *inputs, out=None, sums=False):
        """kernel(*inputs, first, last, out) for each run of rows, on its own thread; with `sums`, each
        run's (2, C) float64 sums, added up in the runs' order."""
        parts = np.empty((len(runs), 2, c)) if sums else None
        backend.parallel_map(lambda i, post: kernel(
            *inputs, runs[i].start, runs[i].stop, parts[i] if sums else out, *post), range(len(runs)), handoff=True)
        return parts.sum(axis=0) if sums else out

    if training:
        ref = xd[0].astype(np.float64)
        total = over_rows(norm_numba.stats, xd, ref, sums=True)
        shift = total[0] / m
        mean64 = ref + shift
        var64 = np.maximum(total[1] / m - shift * shift, 0)
        if running_mean is not None:
            _update_running(running_mean, running_var, mean64, var64, momentum, (c,))
    else:
        mean64 = _running_array(running_mean, "running_mean", (c,)).reshape(-1).astype(np.float64)
        var64 = _running_array(running_var, "running_var", (c,)).reshape(-1).astype(np.float64)
    mean = mean64.astype(dtype)          # the centre the passes subtract
    left = mean64 - mean                 # and what its rounding left out, folded into the constants
    inv_std = 1 / np.sqrt(var64 + epsilon)
    scale = inv_std if gamma_d is None else gamma_d.reshape(-1).astype(np.float64) * inv_std
    offset = -left * scale if beta_d is None else beta_d.reshape(-1).astype(np.float64) - left * scale
    y = over_rows(norm_numba.normalize, xd, mean, scale.astype(dtype), offset.astype(dtype), out=np.empty_like(xd))
    parents = [x] + [p for p in (gamma, beta) if p is not None]
    batch_stats = bool(training)

    def backward(g):
        need_dx = x.requires_grad
        need_gamma = gamma is not None and gamma.requires_grad
        need_beta = beta is not None and beta.requires_grad
        g = np.ascontiguousarray(g, dtype=dtype).reshape(-1, c)
        sum_g = sum_gc = None
        if need_beta or need_gamma or (need_dx and batch_stats):
            total = over_rows(norm_numba.grad_sums, xd, g, mean, sums=True)
            sum_g, sum_gc = total[0], total[1] - left * total[0]    # sum g * (x - the exact mean)
        dx = None
        if need_dx:
            if batch_stats:
                #   dx = scale * (g - sum_g / m - (x - mean64) * inv_std^2 * sum_gc / m)
                b = -scale * inv_std * inv_std * sum_gc / m
                k = -scale * sum_g / m - b * left
            else:
                b = k = np.zeros(c)
            dx = over_rows(norm_numba.grad_input, xd, g, mean, scale.astype(dtype), b.astype(dtype), k.astype(dtype),
                           out=np.empty_like(xd)).reshape(x.shape)
        grads = [dx]
        if gamma is not None:
            grads.append((sum_gc * inv_std).reshape(gamma.shape).astype(gamma.dtype) if need_gamma else None)
        if beta is not None:
            grads.append(sum_g.reshape(beta.shape).astype(beta.dtype) if need_beta else None)
        return tuple(grads)
    return record(y.reshape(x.shape), tuple(parents), backward, "batch_norm")


def _batch_norm_node(x, y, centred, shift, inv_std, scale, gamma, beta, layout, batch_stats):
    """Record y = (centred - shift) * scale + beta, scale = gamma * inv_std, as one node.

    It keeps `centred` (x - mean + shift, as the matrix), not xhat: y came from it directly, and
    the backward folds inv_std and `shift` (None: zero) into per-channel factors, which saves
    full-size passes. With `batch_stats` the mean and inv_std depend on x, and with
    c = centred - shift (so xhat = c * inv_std):
        dx = scale * (g - sum(g) / m - c * inv_std^2 * sum(g * c) / m)
    where sum(g) is dbeta and sum(g * c) is dgamma / inv_std: each computed once, for both.
    At inference mean and inv_std are constants: dx = scale * g.
    """
    parents = [x] + [p for p in (gamma, beta) if p is not None]
    m, xp = layout.m, layout.xp

    def backward(g):
        need_dx = x.requires_grad
        need_gamma = gamma is not None and gamma.requires_grad
        need_beta = beta is not None and beta.requires_grad
        need_gc = need_gamma or (need_dx and batch_stats)
        g = layout.view(g)
        sum_g = layout.sum(g) if need_beta or need_gc else None
        sum_gc = None
        if need_gc:
            sum_gc = layout.dot(g, centred)
            if shift is not None:
                sum_gc -= shift * sum_g
        dx = None
        if need_dx:
            dx, dx_rows = layout.empty()
            scale_t = layout.spread(scale)
            if batch_stats:
                # one new array updated in place: the textbook form's temporaries cost more than its math
                k = -(inv_std * inv_std) * sum_gc / m
                k_t = layout.spread(k)
                const_t = layout.spread(-sum_g / m if shift is None else -sum_g / m - shift * k)
                def dx_block(b):
                    d = dx_rows[b]
                    xp.multiply(centred[b], k_t, out=d)
                    d += g[b]
                    d += const_t
                    d *= scale_t

                layout.each_block(dx_block)
            else:
                xp.multiply(g, scale_t, out=dx_rows)
            dx = layout.result(dx)
        grads = [dx]
        if gamma is not None:
            grads.append((sum_gc * inv_std).reshape(gamma.shape).astype(gamma.dtype, copy=False)
                         if need_gamma else None)
        if beta is not None:
            grads.append(sum_g.reshape(beta.shape).astype(beta.dtype, copy=False) if need_beta else None)
        return tuple(grads)
    return record(y, tuple(parents), backward, "batch_norm")


# ------------------------------------------------------------------ layer_norm

def layer_norm(x, gamma=None, beta=None, axis=-1, epsilon=1e-3):
    """y = gamma * (x - mean) / sqrt(var + epsilon) + beta, statistics over `axis` of each sample.

    `axis` is an int or a tuple (Keras's LayerNormalization; PyTorch's F.layer_norm normalizes the
    trailing `normalized_shape` axes); the variance is biased (divide by the count). gamma and beta
    have the shape of the normalized axes, or are None. One fused node:
        dx     = gamma / sigma * (g - mean(g) - xhat * mean(g * xhat))   (means over `axis`)
        dgamma = sum(g * xhat),  dbeta = sum(g)                          (sums over the other axes)
    """
    x = as_tensor(x)
    if x.ndim < 1 or x.dtype.kind != "f":
        raise ValueError(f"layer_norm expects a float tensor, got shape {x.shape} and dtype {x.dtype}")
    axes = normalize_axis(axis, x.ndim)
    others = tuple(a for a in range(x.ndim) if a not in axes)
    shape = tuple(x.shape[a] for a in axes)
    bshape = tuple(n if a in axes else 1 for a, n in enumerate(x.shape))
    dtype = x.dtype
    d = math.prod(shape)
    if d == 0:
        raise ValueError(f"layer_norm: the normalized axes {axes} of shape {x.shape} are empty")
    gamma_d = beta_d = None
    if gamma is not None:
        gamma, gamma_d = _param(gamma, "gamma", "layer_norm", shape, bshape, dtype)
    if beta is not None:
        beta, beta_d = _param(beta, "beta", "layer_norm", shape, bshape, dtype)

    # x as (samples, features): per-sample statistics are GEMVs and row-wise einsums
    order = others + axes
    rows = (x.data.size // d, d)
    xp = backend.array_module(x.data)
    xd = _matrix(x.data, order, rows)
    inv_d = dtype.type(1 / d)
    ones = xp.ones(d, dtype=dtype)
    mean = (xd @ ones) * inv_d
    xhat = xd - mean[:, None]
    var = xp.einsum("ij,ij->i", xhat, xhat) * inv_d  # two-pass: centred first, no cancellation
    inv_std = 1 / xp.sqrt(var + dtype.type(epsilon))
    xhat *= inv_std[:, None]  # in place: the centred values are not needed again
    t_shape = tuple(x.shape[a] for a in order)
    y = xp.empty(t_shape, dtype)
    y_rows = y.reshape(rows)
    if gamma_d is not None:
        xp.multiply(xhat, gamma_d, out=y_rows)
    else:
        y_rows[...] = xhat
    if beta_d is not None:
        y_rows += beta_d
    parents = [x] + [p for p in (gamma, beta) if p is not None]

    def backward(g):
        g = _matrix(g, order, rows)
        grads = [None]
        if x.requires_grad:
            # dx = inv_std * (gx - mean(gx) - xhat * mean(gx * xhat)), gx = g * gamma, means along rows
            gx = g if gamma_d is None else g * gamma_d
            mean_gx = (gx @ ones) * inv_d
            mean_gxx = xp.einsum("ij,ij->i", gx, xhat) * inv_d
            dx = xp.empty(t_shape, dtype)
            dx_rows = dx.reshape(rows)
            xp.multiply(xhat, -mean_gxx[:, None], out=dx_rows)
            dx_rows += gx
            dx_rows -= mean_gx[:, None]
            dx_rows *= inv_std[:, None]
            grads[0] = _restore(dx, order)
        if gamma is not None:
            grads.append(xp.einsum("ij,ij->j", g, xhat).reshape(gamma.shape).astype(gamma.dtype, copy=False)
                         if gamma.requires_grad else None)
        if beta is not None:
            grads.append((xp.ones(rows[0], dtype=dtype) @ g).reshape(beta.shape).astype(beta.dtype, copy=False)
                         if beta.requires_grad else None)
        return tuple(grads)
    return record(_restore(y, order), tuple(parents), backward, "layer_norm")


# ------------------------------------------------------------------ dropout

def dropout(x, rate, training=True, rng=None):
    """Inverted dropout: y = x * mask / (1 - rate), mask_i ~ Bernoulli(1 - rate);  dL/dx = g * mask / (1 - rate).

    Each element is kept with probability 1 - rate and the kept ones are scaled up, so E[y] = x
    and inference needs no rescaling: with training=False (or rate == 0) x is returned unchanged.
    The mask comes from `chainrule.random.generator()` (so `cr.random.seed(n)` repeats it) unless a
    numpy.random.Generator is passed as `rng`.
    """
    x = as_tensor(x)
    if not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be a number in [0, 1), the fraction of inputs dropped, "
                         f"got {rate!r}")
    if not training or rate == 0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout expects a float tensor, got dtype {x.dtype}: cast it with .float()")
    gen = _random.generator() if rng is None else rng
    keep = gen.random(x.shape, dtype=np.float32) >= rate  # float32 draws: half the bits, same law
    xp = backend.array_module(x.data)
    mask = xp.asarray(keep.astype(x.dtype))
    mask *= x.dtype.type(1 / (1 - rate))
    return record(x.data * mask, (x,), lambda g: (g * mask,), "dropout")
