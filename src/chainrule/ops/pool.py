"""Pooling and upsampling over channels-last data: NWC for 1-D, NHWC for 2-D (Keras's layout).

    max_pool1d/2d, avg_pool1d/2d         a window slides over the spatial axes, one value per window
    global_max_pool1d/2d, global_avg_pool1d/2d   the window is the whole spatial extent
    upsample1d/2d                        integer-factor nearest (a repeat) or bilinear (half-pixel) resize

Padding follows Keras/TensorFlow: 'valid' keeps only whole windows, out = floor((n - k) / s) + 1;
'same' gives out = ceil(n / s) and pads total = max((out - 1) s + k - n, 0), the smaller half before.

Where the speed comes from: the kernels walk the kh*kw kernel offsets, never the pixels. For
offset (i, j) the strided slice x[:, i::sh, j::sw] (a view, no copy) holds row i, column j of
every window at once, so max pooling is kh*kw in-place np.maximum calls and average pooling
kh*kw adds; the backward scatters the gradient with one strided add per offset. Stride equal to
size is the same code with non-overlapping slices. Measured on (64, 32, 32, 32) float32, a 2x2/2
max this way is about 4x faster than a reshape to (N, Ho, kh, Wo, kw, C) + max over (kh, kw), and
than a max over an `as_strided` window view (an argmax over such a view is far slower still):
each offset's pass is an elementwise op along the contiguous channel axis, where a reduction over
two short axes pays NumPy's per-row overhead. Where numba is allowed (chainrule.accelerate), max
pooling runs compiled kernels instead (ops/pool_numba.py: one pass over x forward, noting where
each max was; one over g backward), 2-4x faster again.

1-D ops run the 2-D code on a height-1 image.
"""
import math
import numbers

import numpy as np

from .. import accelerate, backend
from .base import as_tensor, record

_LAYOUT = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)"}


# ------------------------------------------------------------------ geometry
def _ints(value, dims, what, op):
    """`value` (an int or a sequence of `dims` ints) as a tuple of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * dims
    else:
        try:
            value = tuple(value)
        except TypeError:
            value = None
        if (value is None or len(value) != dims
                or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
            raise ValueError(f"{op}: {what} must be an int or a tuple of {dims} ints, got {value!r}")
        value = tuple(int(v) for v in value)
    if any(v < 1 for v in value):
        raise ValueError(f"{op}: {what} must be positive, got {value}")
    return value


def _check_input(x, dims, op):
    if x.ndim != dims + 2:
        example = "x.reshape(1, *x.shape, 1)" if x.ndim == dims else "x[None] or x[..., None]"
        raise ValueError(f"{op} expects {_LAYOUT[dims]}, got shape {x.shape}: "
                         f"add the missing batch or channel axis, e.g. {example}")


def _geometry(op, spatial, pool_size, stride, padding):
    """Pool size, stride, padding (before, after) and output length per spatial axis, Keras's rules.

    Returned for two axes: a 1-D op gets a leading height axis of length 1 (k = s = 1, no padding).
    """
    dims = len(spatial)
    k = _ints(pool_size, dims, "pool_size", op)
    s = k if stride is None else _ints(stride, dims, "stride", op)  # Keras: strides default to pool_size
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    pads, out = [], []
    for n, kk, ss in zip(spatial, k, s):
        if n == 0:
            raise ValueError(f"{op}: input has an empty spatial axis, shape {tuple(spatial)}; nothing to pool")
        if mode == "valid":
            if n < kk:
                raise ValueError(f"{op}: pool_size {k} is larger than the input's spatial size {tuple(spatial)} "
                                 f"with padding='valid'; use a smaller pool_size or padding='same'")
            out.append((n - kk) // ss + 1)
            pads.append((0, 0))
        else:
            o = -(-n // ss)
            total = max((o - 1) * ss + kk - n, 0)
            out.append(o)
            pads.append((total // 2, total - total // 2))
    if dims == 1:
        k, s, pads, out = (1,) + k, (1,) + s, [(0, 0)] + pads, [1] + out
    return k, s, tuple(pads), tuple(out)


def _offset(i, j, s, out):
    """The strided slice of the (padded) input that kernel offset (i, j) reads: one element per window.

    x[_offset(i, j)] has the output's shape; element (y, x) of it is row i, column j of window (y, x).
    """
    return (slice(None), slice(i, i + s[0] * (out[0] - 1) + 1, s[0]), slice(j, j + s[1] * (out[1] - 1) + 1, s[1]))


def _offsets(k):
    """Kernel offsets in row-major window order: the order that decides max-pooling ties."""
    return [(i, j) for i in range(k[0]) for j in range(k[1])]


def _pad(a, pads, value):
    xp = backend.array_module(a)
    (t, b), (l, r) = pads
    if t == b == l == r == 0:
        return a
    n, h, w, c = a.shape
    padded = xp.full((n, h + t + b, w + l + r, c), value, dtype=a.dtype)
    padded[:, t:t + h, l:l + w] = a
    return padded


def _crop(a, pads, shape):
    (t, _), (l, _) = pads
    return a[:, t:t + shape[1], l:l + shape[2]]


def _lowest(dtype):
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


# ------------------------------------------------------------------ the two pooling kernels, on 4-D arrays
# Both walk the kernel offsets, not the pixels: kh*kw whole-array operations on strided views.
def _max_pool(xd, k, s, pads, out):
    """max over each window of xd (N, H, W, C); returns the output and its backward g -> dx."""
    if accelerate.wants_numba(xd) and k[0] * k[1] <= 256:   # (the compiled kernels name the max's offset in a byte)
        return _max_pool_compiled(xd, k, s, pads, out)
    xp = backend.array_module(xd)
    padded = _pad(xd, pads, _lowest(xd.dtype))  # the lowest value never wins a window's max
    first, *rest = _offsets(k)
    y = xp.empty((xd.shape[0],) + tuple(out) + (xd.shape[3],), dtype=xd.dtype)

    def forward(part):  # images `part` (a slice of the batch); the threads share the batch
        y_part, source = y[part], padded[part]
        xp.copyto(y_part, source[_offset(*first, s, out)])
        for i, j in rest:
            xp.maximum(y_part, source[_offset(i, j, s, out)], out=y_part)

    backend.parallel_slices(len(xd), forward, padded.size, backend.FACTOR_PASS)
    disjoint = tuple(s) == tuple(k) and padded is xd  # windows that tile the input without overlap

    def backward(g):
        # Each window's gradient goes to the first offset, in row-major order, that holds the max;
        # `taken` marks windows already served, so ties never split the gradient.
        if disjoint:
            return _disjoint_max_backward(g, xd, y, k, s, out)
        dpad = xp.zeros(padded.shape, dtype=g.dtype)
        taken = xp.zeros(y.shape, dtype=bool)
        late = _last_nans(padded, y, k, s, out)
        for index, (i, j) in enumerate(_offsets(k)):
            window = _offset(i, j, s, out)
            winner = (padded[window] == y) > taken  # for booleans, a > b is "a and not b"
            if late:
                winner |= late[index]
            taken |= winner
            dpad[window] += g * winner  # overlapping windows (stride < size) accumulate here
        return _crop(dpad, pads, xd.shape)
    return y, backward


def _last_nans(source, y, k, s, out):
    """[] when no window's max y is NaN (one pass over y). Else one mask per offset, row-major, of
    the windows whose last NaN sits there: a window holding a NaN has max NaN (np.maximum's rule),
    and PyTorch's max_pool2d and the compiled kernel give its gradient to that NaN (a NaN replaces
    the running max as they walk the window); `v == y` finds no NaN."""
    xp = backend.array_module(y)
    if y.dtype.kind != "f" or not xp.isnan(y).any():
        return []
    masks, seen = [], xp.zeros(y.shape, dtype=bool)
    for i, j in reversed(_offsets(k)):
        v = source[_offset(i, j, s, out)]
        hit = (v != v) > seen
        seen |= hit
        masks.append(hit)
    return masks[::-1]


def _max_pool_compiled(xd, k, s, pads, out):
    """`_max_pool` by the compiled kernels of ops/pool_numba.py, the images shared out over the threads.
    The forward notes which offset of each window held its max (a byte per output), so the backward
    reads only g and those bytes, and writes dx once where the windows tile x. Forward + backward
    of the 2x2/2 pools of the benchmarked CNNs and U-Net, against NumPy's passes (A/B in one
    process): 0.23-0.52x the time on one thread and on two (CNN-B's 128x24x24x64 14.4 -> 3.3 ms
    on one, the U-Net's 8x8x8x128 0.096 -> 0.033 ms). Splitting images below
    `worth_threads(..., FACTOR_PASS)` still costs more than it saves (8x8x8x128 on two threads:
    2.3x the time)."""
    from . import pool_numba
    x = np.ascontiguousarray(xd)
    n, h, w, c = x.shape
    y = np.empty((n,) + tuple(out) + (c,), dtype=x.dtype)
    where = np.empty(y.shape, dtype=np.uint8)
    geometry = (k[0], k[1], s[0], s[1], pads[0][0], pads[1][0])
    tiled = tuple(s) == tuple(k) and (out[0] * s[0], out[1] * s[1]) == (h, w)   # (no padding then)

    images = backend.slices(n) if backend.worth_threads(x.size, backend.FACTOR_PASS) else [slice(0, n)]
    backend.parallel_map(lambda r, post: pool_numba.forward(
        x, *geometry, r.start, r.stop, y, where, *post), images, handoff=True)
    shape, dtype = x.shape, x.dtype   # all the backward needs of x: it reads g and `where`

    def backward(g):
        g = np.ascontiguousarray(g, dtype=dtype)
        dx = np.empty(shape, dtype=dtype)
        backend.parallel_map(lambda r, post: pool_numba.backward(
            g, where, *geometry, tiled, r.start, r.stop, dx, *post), images, handoff=True)
        return dx
    return y, backward


def _disjoint_max_backward(g, xd, y, k, s, out):
    """The max-pool backward when windows neither overlap nor need padding (stride = pool size, the
    usual 2x2/2): every input element belongs to at most one window, so each offset's share is
    written straight into dx, with no zero-filled buffer to add into (3x fewer passes)."""
    xp = backend.array_module(g)
    covered = (out[0] * s[0], out[1] * s[1]) == xd.shape[1:3]
    dx = (xp.empty if covered else xp.zeros)(xd.shape, dtype=g.dtype)
    offsets = _offsets(k)

    def part_backward(part):  # images `part` of the batch; the threads share the batch
        x_p, y_p, g_p, dx_p = xd[part], y[part], g[part], dx[part]
        late = _last_nans(x_p, y_p, k, s, out)
        taken = None
        for index, (i, j) in enumerate(offsets):
            window = _offset(i, j, s, out)
            winner = x_p[window] == y_p
            if taken is not None:
                xp.greater(winner, taken, out=winner)  # for booleans, a > b is "a and not b"
            if index + 1 < len(offsets):
                taken = winner.copy() if taken is None else xp.logical_or(taken, winner, out=taken)
            if late:
                winner |= late[index]
            xp.multiply(g_p, winner, out=dx_p[window])

    backend.parallel_slices(len(xd), part_backward, xd.size, backend.FACTOR_PASS)
    return dx


def _window_counts(n, k, s, pad_before, out):
    """How many real (unpadded) elements each window covers along one axis."""
    start = np.arange(out) * s - pad_before
    return np.minimum(start + k, n) - np.maximum(start, 0)


def _avg_pool(xd, k, s, pads, out):
    """mean over the real elements of each window of xd (N, H, W, C); returns the output and g -> dx."""
    xp = backend.array_module(xd)
    if xd.dtype.kind not in "fc":  # a mean of integers is a float, as in NumPy
        xd = xd.astype(backend.default_float())
    n, h, w, c = xd.shape
    # Keras's 'same' averages only the real elements: each window is divided by its own count
    count = np.outer(_window_counts(h, k[0], s[0], pads[0][0], out[0]),
                     _window_counts(w, k[1], s[1], pads[1][0], out[1]))
    inv_count = xp.asarray((1.0 / count)[None, :, :, None], dtype=xd.dtype)
    padded = _pad(xd, pads, 0)
    first, *rest = _offsets(k)
    y = padded[_offset(*first, s, out)].copy()
    for i, j in rest:
        y += padded[_offset(i, j, s, out)]
    y *= inv_count

    def backward(g):
        share = g * inv_count.astype(g.dtype, copy=False)
        dpad = xp.zeros(padded.shape, dtype=g.dtype)
        for i, j in _offsets(k):
            dpad[_offset(i, j, s, out)] += share
        return _crop(dpad, pads, xd.shape)
    return y, backward


def _pool(x, pool_size, stride, padding, dims, kernel, op):
    x = as_tensor(x)
    _check_input(x, dims, op)
    k, s, pads, out = _geometry(op, x.shape[1:-1], pool_size, stride, padding)
    if dims == 2:
        y, back = kernel(x.data, k, s, pads, out)
        return record(y, (x,), lambda g: (back(g),), op)
    y, back = kernel(x.data[:, None], k, s, pads, out)
    return record(y[:, 0], (x,), lambda g: (back(g[:, None])[:, 0],), op)


# ------------------------------------------------------------------ public pooling ops
def max_pool1d(x, pool_size, stride=None, padding="valid"):
    """y[n, t, c] = max over the window x[n, t*s - p : t*s - p + k, c]  (x is (batch, steps, channels)).

    `stride` defaults to `pool_size` (Keras); padding 'valid' or 'same' (padded with -inf).
    Gradient: all of g[n, t, c] goes to ONE element of its window, the first maximal one;
    see `max_pool2d` for the tie rule.
    """
    return _pool(x, pool_size, stride, padding, 1, _max_pool, "max_pool1d")


def max_pool2d(x, pool_size, stride=None, padding="valid"):
    """y[n, i, j, c] = max of x[n, i*sh - pt : i*sh - pt + kh, j*sw - pl : j*sw - pl + kw, c].

    x is (batch, height, width, channels); `pool_size` and `stride` an int or a pair, `stride`
    defaulting to `pool_size` as in Keras; padding 'valid' or 'same' (Keras/TensorFlow rules,
    padded with -inf so the pad never wins).

    Gradient and ties: all of g[n, i, j, c] goes to ONE element of its window, the first maximal
    element in row-major window order (scan the window's rows top to bottom, each left to right),
    the element PyTorch's and TensorFlow's max-pool argmax pick. Ties therefore never split the
    gradient, and the result is deterministic. With overlapping windows (stride < size) one input
    element can be the maximum of several windows and then receives the sum of their gradients.
    """
    return _pool(x, pool_size, stride, padding, 2, _max_pool, "max_pool2d")


def avg_pool1d(x, pool_size, stride=None, padding="valid"):
    """y[n, t, c] = mean of the real elements of the window x[n, t*s - p : t*s - p + k, c].

    With padding='same' the padded positions are not counted (Keras; PyTorch's count_include_pad=False).
    Gradient: g[n, t, c] / (window's count) to every real element of the window.
    """
    return _pool(x, pool_size, stride, padding, 1, _avg_pool, "avg_pool1d")


def avg_pool2d(x, pool_size, stride=None, padding="valid"):
    """y[n, i, j, c] = mean of the real elements of window (i, j), channel c of x (batch, height, width, channels).

    A window with padding='same' averages only the elements inside the image, as Keras does
    (PyTorch's count_include_pad=False). Gradient: g / (window's count) to each of its real elements.
    """
    return _pool(x, pool_size, stride, padding, 2, _avg_pool, "avg_pool2d")


# ------------------------------------------------------------------ global pooling
def _global(x, dims, keepdims, op):
    x = as_tensor(x)
    _check_input(x, dims, op)
    n, c = x.shape[0], x.shape[-1]
    kept = (n,) + (1,) * dims + (c,)
    return x, kept, (kept if keepdims else (n, c))


def _global_avg(x, dims, keepdims, op):
    x, kept, shape = _global(x, dims, keepdims, op)
    xp = backend.array_module(x.data)
    axes = tuple(range(1, dims + 1))
    count = math.prod(x.shape[1:-1])
    y = x.data.mean(axis=axes).reshape(shape)

    def backward(g):
        return (xp.broadcast_to(g.reshape(kept) * g.dtype.type(1 / count), x.shape),)
    return record(y, (x,), backward, op)


def _global_max(x, dims, keepdims, op):
    x, kept, shape = _global(x, dims, keepdims, op)
    xp = backend.array_module(x.data)
    n, c = x.shape[0], x.shape[-1]
    flat = x.data.reshape(n, -1, c)
    if flat.shape[1] == 0:
        raise ValueError(f"{op}: input of shape {x.shape} has no spatial elements to pool")
    first = flat.argmax(axis=1)  # the first maximal element in row-major order, as in max_pool2d
    y = xp.take_along_axis(flat, first[:, None], axis=1).reshape(shape)

    def backward(g):
        hit = xp.arange(flat.shape[1]).reshape(-1, 1) == first[:, None, :]
        return ((hit * g.reshape(n, 1, c)).reshape(x.shape),)
    return record(y, (x,), backward, op)


def global_avg_pool1d(x, keepdims=False):
    """y[n, c] = mean over t of x[n, t, c]  (Keras's GlobalAveragePooling1D); (N, 1, C) with keepdims."""
    return _global_avg(x, 1, keepdims, "global_avg_pool1d")


def global_avg_pool2d(x, keepdims=False):
    """y[n, c] = mean over (i, j) of x[n, i, j, c]  (GlobalAveragePooling2D); (N, 1, 1, C) with keepdims."""
    return _global_avg(x, 2, keepdims, "global_avg_pool2d")


def global_max_pool1d(x, keepdims=False):
    """y[n, c] = max over t of x[n, t, c]  (GlobalMaxPooling1D).

    The gradient goes to the first maximal element, exactly as `max_pool1d` with a window the size of
    the input (Keras's layer, built on reduce_max, would split it among ties instead).
    """
    return _global_max(x, 1, keepdims, "global_max_pool1d")


def global_max_pool2d(x, keepdims=False):
    """y[n, c] = max over (i, j) of x[n, i, j, c]  (GlobalMaxPooling2D).

    The gradient goes to the first maximal element in row-major order, exactly as `max_pool2d` with
    a window the size of the image (Keras's layer, built on reduce_max, would split it among ties).
    """
    return _global_max(x, 2, keepdims, "global_max_pool2d")


# ------------------------------------------------------------------ upsampling
def _bilinear_matrix(n, factor, dtype):
    """(n * factor, n) matrix A with out = A @ in: linear interpolation with half-pixel centres.

    Output pixel o samples the input at src = (o + 0.5) / factor - 0.5, clamped to [0, n - 1]
    (align_corners=False), and mixes its two neighbours floor(src) and floor(src) + 1.
    """
    dst = np.arange(n * factor)
    src = np.maximum((dst + 0.5) / factor - 0.5, 0.0)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = src - lo
    a = np.zeros((n * factor, n))
    a[dst, lo] += 1 - frac
    a[dst, hi] += frac  # at the last edge lo == hi and the weights add up to 1
    return a.astype(dtype)


def _sum_copies(g, axes):
    """g summed over `axes` (each the copies axis of a nearest upsampling) by adding slabs: NumPy's
    reduction over middle axes runs an inner loop only c wide (4.7x slower on (8, 64, 64, 32))."""
    for done, axis in enumerate(sorted(axes)):  # the outer axis first: its slabs are the longest runs
        axis -= done
        parts = [g[(slice(None),) * axis + (i,)] for i in range(g.shape[axis])]
        total = parts[0] + parts[1] if len(parts) > 1 else parts[0].copy()
        for part in parts[2:]:
            total += part
        g = total
    return g


def upsample1d(x, size=2):
    """y[n, t, c] = x[n, t // size, c]: each step repeated `size` times (Keras's UpSampling1D).

    Gradient: the sum of g over the `size` copies of each step.
    """
    x = as_tensor(x)
    _check_input(x, 1, "upsample1d")
    (f,) = _ints(size, 1, "size", "upsample1d")
    xp = backend.array_module(x.data)
    n, w, c = x.shape
    y = xp.broadcast_to(x.data[:, :, None], (n, w, f, c)).reshape(n, w * f, c)
    return record(y, (x,), lambda g: (_sum_copies(g.reshape(n, w, f, c), (2,)),), "upsample1d")


def upsample2d(x, size=2, interpolation="nearest"):
    """Enlarge x (batch, height, width, channels) by integer factors `size` = f or (fh, fw).

    'nearest':  y[n, i, j, c] = x[n, i // fh, j // fw, c]; the gradient sums g over each fh x fw block.
    'bilinear': y = A_h x A_w^T per image and channel, A the interpolation matrices of
                `_bilinear_matrix` (half-pixel centres, edge-clamped: PyTorch's
                F.interpolate(mode='bilinear', align_corners=False), Keras 3's UpSampling2D);
                the gradient is the transpose, dx = A_h^T g A_w.
    """
    x = as_tensor(x)
    _check_input(x, 2, "upsample2d")
    fh, fw = _ints(size, 2, "size", "upsample2d")
    xp = backend.array_module(x.data)
    n, h, w, c = x.shape
    ho, wo = h * fh, w * fw
    if interpolation == "nearest":
        y = xp.broadcast_to(x.data[:, :, None, :, None], (n, h, fh, w, fw, c)).reshape(n, ho, wo, c)
        return record(y, (x,), lambda g: (_sum_copies(g.reshape(n, h, fh, w, fw, c), (2, 4)),), "upsample2d")
    if interpolation != "bilinear":
        raise ValueError(f"upsample2d: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    # two small dense matrices, applied as GEMMs along H then W: each output mixes 2 x 2 inputs,
    # and the dense form costs a factor h (or w) in flops but runs in BLAS with no index gathers
    dtype = x.dtype if x.dtype.kind == "f" else backend.default_float()
    a_h = xp.asarray(_bilinear_matrix(h, fh, dtype))
    a_w = xp.asarray(_bilinear_matrix(w, fw, dtype))
    rows = a_h @ x.data.astype(dtype, copy=False).reshape(n, h, w * c)  # (n, ho, w*c)
    y = (a_w @ rows.reshape(n * ho, w, c)).reshape(n, ho, wo, c)  # (n, ho, wo, c)

    def backward(g):
        g_rows = a_w.T @ g.reshape(n * ho, wo, c)  # (n*ho, w, c)
        return ((a_h.T @ g_rows.reshape(n, ho, w * c)).reshape(x.shape),)
    return record(y, (x,), backward, "upsample2d")
