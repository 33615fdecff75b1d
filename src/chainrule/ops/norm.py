"""Normalization and dropout: batch_norm and layer_norm as single fused nodes, inverted dropout.

Batch and layer normalization differ only in which axes they average over: batch norm over
every axis but the channel axis (statistics shared across the batch), layer norm over the
feature axes of each sample. Both share one closed-form backward: building them from a dozen
primitive ops would record a dozen nodes and keep as many intermediate arrays.
"""
import math
import numbers

import numpy as np

from .. import backend
from .. import random as _random
from .base import Tensor, as_tensor, normalize_axis, record


def _param(p, name, op, shape, bshape, dtype):
    """`p` as a tensor of `shape` (or already of the broadcast shape) and its data broadcastable to x."""
    p = as_tensor(p)
    if tuple(p.shape) not in (shape, bshape):
        raise ValueError(f"{op}: {name} has shape {p.shape} but the input's normalized axes give {shape}; "
                         f"pass a {name} with one value per feature, shape {shape}")
    return p, p.data.reshape(bshape).astype(dtype, copy=False)


def _normalized_backward(g, xhat, inv_std, gamma_b, axes, count):
    """dL/dx of y = xhat * gamma + beta, xhat = (x - mean) / sigma, mean and sigma taken over `axes`.

    Since d xhat_i / d x_j = (delta_ij - 1/m - xhat_i xhat_j / m) / sigma over the m averaged elements,
        dx = (1 / sigma) * (gx - mean(gx) - xhat * mean(gx * xhat)),   gx = g * gamma.
    """
    gx = g if gamma_b is None else g * gamma_b
    inv_m = g.dtype.type(1 / count)
    mean_g = gx.sum(axis=axes, keepdims=True) * inv_m
    mean_gx = (gx * xhat).sum(axis=axes, keepdims=True) * inv_m
    return (gx - mean_g - xhat * mean_gx) * inv_std


def _fused_node(x, xhat, inv_std, gamma, gamma_b, beta, beta_b, stat_axes, param_axes, batch_stats, op):
    """Record y = xhat * gamma + beta as one node.

    `stat_axes` are the axes the statistics averaged over; `param_axes` those gamma and beta are
    shared over (their gradients sum over these). With `batch_stats` False the mean and sigma are
    constants (batch norm at inference), so dx is just g * gamma / sigma.
    """
    y = xhat if gamma_b is None else xhat * gamma_b
    if beta_b is not None:
        y = y + beta_b
    parents = [x] + [p for p in (gamma, beta) if p is not None]
    count = math.prod(x.shape[a] for a in stat_axes)

    def backward(g):
        if not x.requires_grad:
            dx = None
        elif batch_stats:
            dx = _normalized_backward(g, xhat, inv_std, gamma_b, stat_axes, count)
        else:
            dx = g * inv_std if gamma_b is None else g * (gamma_b * inv_std)
        grads = [dx]
        if gamma is not None:
            grads.append((g * xhat).sum(axis=param_axes).reshape(gamma.shape).astype(gamma.dtype, copy=False)
                         if gamma.requires_grad else None)
        if beta is not None:
            grads.append(g.sum(axis=param_axes).reshape(beta.shape).astype(beta.dtype, copy=False)
                         if beta.requires_grad else None)
        return tuple(grads)
    return record(y, tuple(parents), backward, op)


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
    reduced = tuple(a for a in range(x.ndim) if a not in kept)
    shape = tuple(x.shape[a] for a in kept)
    bshape = tuple(n if a in kept else 1 for a, n in enumerate(x.shape))
    dtype = x.dtype
    xd = x.data
    eps = dtype.type(epsilon)
    if gamma is not None:
        gamma, gamma_b = _param(gamma, "gamma", "batch_norm", shape, bshape, dtype)
    else:
        gamma_b = None
    if beta is not None:
        beta, beta_b = _param(beta, "beta", "batch_norm", shape, bshape, dtype)
    else:
        beta_b = None

    xp = backend.array_module(xd)
    if training:
        if math.prod(x.shape[a] for a in reduced) == 0:
            raise ValueError(f"batch_norm: training needs at least one element per channel, got shape {x.shape}")
        mean = xd.mean(axis=reduced, keepdims=True)
        centred = xd - mean
        var = (centred * centred).mean(axis=reduced, keepdims=True)  # two-pass: no cancellation
        inv_std = 1 / xp.sqrt(var + eps)
        xhat = centred * inv_std
        if (running_mean is None) != (running_var is None):
            raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
        if running_mean is not None:
            for r, name, batch in ((running_mean, "running_mean", mean), (running_var, "running_var", var)):
                arr = _running_array(r, name, shape)
                arr *= arr.dtype.type(momentum)
                arr += (batch.reshape(arr.shape) * (1 - momentum)).astype(arr.dtype, copy=False)
                if isinstance(r, Tensor):
                    r._version += 1
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: training=False normalizes with the running statistics; "
                             "pass running_mean and running_var")
        rm = _running_array(running_mean, "running_mean", shape).reshape(bshape).astype(dtype, copy=False)
        rv = _running_array(running_var, "running_var", shape).reshape(bshape).astype(dtype, copy=False)
        inv_std = 1 / xp.sqrt(rv + eps)  # a fresh array: later running updates cannot reach the closure
        xhat = (xd - rm) * inv_std
    return _fused_node(x, xhat, inv_std, gamma, gamma_b, beta, beta_b, reduced, reduced, bool(training),
                       "batch_norm")


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
    xd = x.data
    if math.prod(shape) == 0:
        raise ValueError(f"layer_norm: the normalized axes {axes} of shape {x.shape} are empty")
    gamma_b = beta_b = None
    if gamma is not None:
        gamma, gamma_b = _param(gamma, "gamma", "layer_norm", shape, bshape, dtype)
    if beta is not None:
        beta, beta_b = _param(beta, "beta", "layer_norm", shape, bshape, dtype)
    xp = backend.array_module(xd)
    mean = xd.mean(axis=axes, keepdims=True)
    centred = xd - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = 1 / xp.sqrt(var + dtype.type(epsilon))
    xhat = centred * inv_std
    return _fused_node(x, xhat, inv_std, gamma, gamma_b, beta, beta_b, axes, others, True, "layer_norm")


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
