"""Convolutions over channels-last data: conv2d, conv1d, conv_transpose2d.

Layouts are Keras's: images (batch, height, width, channels), kernels
(kernel_height, kernel_width, in_channels, out_channels). Stride-1 3x3 and 5x5 convolutions with
8+ channels run Winograd's minimal filtering (ops/winograd.py: 3 to 6 times fewer multiplications);
convolutions of small images whose padding would fill much of im2col run one GEMM per kernel tap
(see "one GEMM per kernel tap"); `set_conv_algorithm("im2col")` turns both off. One direct
algorithm serves all three ops otherwise:

    forward      y  = im2col(x) @ W            one strided copy, one GEMM
    backward     dW = im2col(x)^T @ g          one GEMM
                 dx = col2im(g @ W^T)          one GEMM, then kh*kw strided adds
                    (at stride 1: dx = im2col(g) @ W_flipped, the forward run on g)

im2col turns every output pixel's receptive field into one row of a matrix, so a whole
convolution becomes a matrix product that BLAS runs at full speed (taken in batch chunks that
stay in cache: see "the kernels" below). conv1d is conv2d on a height-1 image; conv_transpose2d
runs the same pieces in the other direction (its forward is conv2d's input gradient, its
backward conv2d's forward and weight gradient).

Output length along one axis (see `conv_output_length`):

    out = floor((in + pad_total - dilation * (kernel - 1) - 1) / stride) + 1
"""
import functools
import numbers

import numpy as np

from .. import accelerate, backend
from . import winograd
from ..autograd import is_grad_enabled
from .base import as_tensor, record

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "conv_output_length", "set_conv_algorithm"]


# ------------------------------------------------------------------ sizes and padding

def _axis_padding(length, kernel, stride, padding, dilation):
    """(before, after) padding of one axis for a padding spec of that axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        span = dilation * (kernel - 1) + 1
        if padding == "same":
            # TensorFlow's rule: out = ceil(in / stride), the smaller half of the padding first
            out = -(-length // stride)
            total = max((out - 1) * stride + span - length, 0)
            return total // 2, total - total // 2
        if padding == "causal":
            return span - 1, 0
        raise ValueError(f"unknown padding {padding!r}: use 'valid', 'same', 'causal' or numbers")
    before, after = padding
    return int(before), int(after)


def conv_output_length(length, kernel, stride=1, padding="valid", dilation=1):
    """Length of a convolution's output along one axis (None stays None, for unknown sizes).

    `padding` is "valid" (no padding), "same" (out = ceil(length / stride), as TensorFlow),
    "causal" (dilation * (kernel - 1) zeros before), an int p (p on both sides) or a
    pair (before, after). Then

        out = floor((length + pad_total - dilation * (kernel - 1) - 1) / stride) + 1

    e.g. conv_output_length(28, 5) == 24, conv_output_length(28, 5, padding="same") == 28,
    conv_output_length(10, 3, stride=3) == 3. A result <= 0 means the input is too small.
    """
    if length is None:
        return None
    if isinstance(padding, numbers.Integral):
        padding = (padding, padding)
    before, after = _axis_padding(length, kernel, stride, padding, dilation)
    return (length + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _pair(value, name, op):
    """An int or a pair of ints (height, width), all >= 1."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and v >= 1 for v in pair):
        raise ValueError(f"{op}: {name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _single(value, name, op):
    """An int (or a 1-tuple) >= 1, as a 1-tuple."""
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return (int(v),)


def _pair_nonneg(value, op):
    """output_padding: an int or a pair of ints >= 0."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and v >= 0 for v in pair):
        raise ValueError(f"{op}: output_padding must be a non-negative int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding_2d(padding, op):
    """A 2-D padding spec as a string or ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding in ("valid", "same"):
            return padding
        raise ValueError(f"{op}: padding {padding!r} is not one of 'valid', 'same', an int, a pair (ph, pw) "
                         f"or ((top, bottom), (left, right))" + (" ('causal' is for conv1d)"
                                                                  if padding == "causal" else ""))
    try:
        if isinstance(padding, numbers.Integral):
            spec = ((padding, padding), (padding, padding))
        elif all(isinstance(p, numbers.Integral) for p in padding):
            ph, pw = padding
            spec = ((ph, ph), (pw, pw))
        else:
            (top, bottom), (left, right) = padding
            spec = ((top, bottom), (left, right))
    except (TypeError, ValueError):
        spec = None
    if spec is None or not all(isinstance(p, numbers.Integral) and p >= 0 for pair in spec for p in pair):
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int, a pair (ph, pw) or "
                         f"((top, bottom), (left, right)) of non-negative ints; got {padding!r}")
    return tuple((int(a), int(b)) for a, b in spec)


# ------------------------------------------------------------------ geometry

class _Geometry:
    """One convolution seen from the conv2d side: (N, H, W, C) -> (N, Ho, Wo, Co).

    `pads` is ((top, bottom), (left, right)); the padded input is (N, Hp, Wp, C).
    conv_transpose2d uses the geometry of the conv2d whose input gradient it computes.
    """

    __slots__ = ("n", "h", "w", "c", "kh", "kw", "co", "sh", "sw", "dh", "dw", "pads", "ho", "wo", "hp", "wp")

    def __init__(self, n, hw, c, khw, co, stride, dilation, pads, out_hw):
        self.n, (self.h, self.w), self.c, (self.kh, self.kw), self.co = n, hw, c, khw, co
        (self.sh, self.sw), (self.dh, self.dw), self.pads, (self.ho, self.wo) = stride, dilation, pads, out_hw
        self.hp = self.h + pads[0][0] + pads[0][1]
        self.wp = self.w + pads[1][0] + pads[1][1]

    @property
    def pointwise(self):
        """A 1x1 kernel at stride 1 with no padding: the convolution is a plain matmul."""
        return (self.kh, self.kw, self.sh, self.sw, self.ho, self.wo) == (1, 1, 1, 1, self.h, self.w) \
            and self.pads == ((0, 0), (0, 0))


# ------------------------------------------------------------------ the kernels
#
# Why this form is fast (measured on the layers of benchmarks/conv_kernels.py):
# - The batch is processed in chunks whose im2col block is about _CHUNK_BYTES, so a block is still
#   in cache when its GEMM reads it (and the g @ W^T block when col2im reads it): 20-40% faster than
#   one big im2col matrix (the GEMM shape per chunk is as good; 0.5 to 4 MB chunks all measure alike).
# - The backward recomputes each block rather than keep the whole im2col matrix from the forward
#   (about kh*kw times the input's size: 30 MB for CNN-A's second layer, 81 MB for CNN-B's second).
#   Keeping it measured slower as well as bigger: the kept matrix comes back from DRAM, a recomputed
#   block from cache (forward + weight gradient, one thread: 23.3 vs 19.2 ms and 65 vs 54 ms).
# - A block is filled by ONE copy of a strided view (N, Ho, Wo, kh, kw, C) of the padded input, into
#   a buffer reused from chunk to chunk (no allocation, no page faults).
# - A single-channel input (first layers) gets a tap-major block, (kh*kw, rows) in memory: one copy
#   in runs of Wo floats, where the row-major block would copy runs of kw floats (3-10x faster);
#   BLAS reads that block transposed at no cost. One copy of the whole block, not one per tap:
#   NumPy calls of ~20K elements do not overlap on two threads (each comes back to wait for the
#   GIL), calls of ~500K do (CNN-A's first layer, 25 images a thread: 1.0x -> 1.8x on 2 threads).
# - At stride 1 the input gradient is itself a convolution of g (kernel flipped, its channel axes
#   swapped, "full" padding); when C_in >= C_out that is cheaper than col2im: one im2col copy of g
#   and one GEMM instead of a wider GEMM and kh*kw strided adds over runs of only C floats.
# - The chunks are shared out over chainrule's threads (backend.parallel_map), each with its own
#   block buffer and a single-threaded GEMM.
# What is left is BLAS time: the GEMMs take 65-95% of a layer's forward + backward, and they already
# run near BLAS's peak; the way past it is fewer multiplications (Winograd) where the shapes allow.

_CHUNK_BYTES = 2 << 20


def _chunks(geom, k, width):
    """(images per chunk, the batch ranges (n0, n1), the work in `backend.worth_threads`' terms), so
    that a chunk's im2col block (rows x k floats) is about _CHUNK_BYTES, and there is a chunk for
    every thread when the work is worth sharing: the block's copy, or its GEMMs (`width` output
    columns in all) counted in multiply-adds (the U-Net's 2x2 up-convolution of 4x4 images copies
    65K floats, too few to share, but multiplies 17M times: on two threads 1.27 -> 1.06 ms, and
    that of 8x8 images 1.40 -> 0.98 ms)."""
    elements = geom.n * geom.ho * geom.wo * k
    work = max(elements, elements * width // backend.FACTOR_GEMM)
    per_image = geom.ho * geom.wo * k * 4
    step = max(1, min(geom.n, _CHUNK_BYTES // max(per_image, 1)))
    step = backend.balanced_step(geom.n, step, work)
    return step, [(n0, min(n0 + step, geom.n)) for n0 in range(0, geom.n, step)], work


def _block(buf, count, geom, channels, tap_major):
    """Two views of the im2col block of `count` images held in `buf`: the matrix
    (rows, kh*kw*C) that the GEMMs read and the taps (kh, kw, count, Ho, Wo, C) that the copies write."""
    rows, k = count * geom.ho * geom.wo, geom.kh * geom.kw * channels
    flat = buf[:rows * k]
    if tap_major:
        taps = flat.reshape(geom.kh, geom.kw, channels, count, geom.ho, geom.wo).transpose(0, 1, 3, 4, 5, 2)
        return flat.reshape(k, rows).T, taps
    taps = flat.reshape(count, geom.ho, geom.wo, geom.kh, geom.kw, channels).transpose(3, 4, 0, 1, 2, 5)
    return flat.reshape(rows, k), taps


def _pad(x, geom):
    """x zero-padded to (N, Hp, Wp, C); x itself when there is no padding."""
    (top, bottom), (left, right) = geom.pads
    if top == bottom == left == right == 0:
        return x
    xp = backend.array_module(x)
    out = xp.zeros((x.shape[0], geom.hp, geom.wp, x.shape[3]), dtype=x.dtype)
    out[:, top:top + geom.h, left:left + geom.w] = x
    return out


def _windows(xpad, geom):
    """Read-only view (N, Ho, Wo, kh, kw, C) of every receptive field of the padded input."""
    xp = backend.array_module(xpad)
    sn, sh, sw, sc = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, (xpad.shape[0], geom.ho, geom.wo, geom.kh, geom.kw, xpad.shape[3]),
        (sn, sh * geom.sh, sw * geom.sw, sh * geom.dh, sw * geom.dw, sc), writeable=False)


def _epilogue(y, bias, relu):
    """y += bias, then y = max(y, 0) if relu: in place, on a block still in cache."""
    if bias is not None:
        y += bias
    if relu:
        backend.array_module(y).maximum(y, 0, out=y)


def _windows_matmul(xpad, geom, right=None, left=None, bias=None, relu=False, col2im=None, bias_grad=False):
    """im2col(xpad) @ right  and  im2col(xpad)^T @ left, block by block.

    im2col(xpad) is the (N*Ho*Wo, kh*kw*C) matrix of receptive fields, its columns ordered
    (kh, kw, C) like a Keras kernel reshaped to (kh*kw*C, C_out). `right` is (kh*kw*C, C_out)
    (a forward pass, to which `bias` and `relu` are applied block by block), `left` is
    (N*Ho*Wo, C_out) (a weight gradient). Returns both products (None for the one not asked).
    With `col2im` (the kernel matrix, alongside `left`) also the input gradient col2im(left @
    col2im^T) (see `_col2im_matmul`), from the same blocks in the same pass over the batch: a
    third result. One parallel region for both gradients instead of two, each block of `left`
    read twice while in cache (forward + backward of the one-channel first layers, two threads:
    CNN-B's 8.3 -> 6.3 ms, the U-Net's 1.58 -> 1.32, CNN-A's 3.79 -> 3.54; one thread 5-8% less).
    With `bias_grad` and a tap-major block the weight gradient has one more row, the bias's
    gradient (the sum of `left`'s rows), from the block's row of ones (see `ones_row` below).
    """
    xp = backend.array_module(xpad)
    c = xpad.shape[3]
    k, rows = geom.kh * geom.kw * c, geom.ho * geom.wo
    if geom.pointwise:  # the receptive fields are the pixels themselves: no copy at all
        cols = xpad.reshape(-1, k)
        out = None
        if right is not None:
            out = cols @ right
            _epilogue(out, bias, relu)
        return out, (None if left is None else cols.T @ left)
    windows = _windows(xpad, geom)
    tap_major = c == 1
    out = None if right is None else xp.empty((xpad.shape[0] * rows, right.shape[1]), dtype=xpad.dtype)
    # A tap-major block (one input channel) takes the bias into its GEMM: one more row of ones in the
    # block times the bias as one more row of the kernel (and, backward, the bias's gradient out of
    # the weight gradient's GEMM as one more row). Added to the output afterwards, a bias only a few
    # channels wide is a pass whose inner loop runs that few floats (the U-Net's first layer, a block
    # of 4 images: GEMM and add 0.27 ms, the GEMM with the bias row 0.14). Forward + backward, both
    # folds, two threads: CNN-A's first layer 0.84x the time, CNN-B's 0.81x, the U-Net's 0.88x; one
    # thread 0.94x, 0.81x, 0.81x.
    fold_bias = right is not None and bias is not None and tap_major and left is None
    if fold_bias:
        right, bias = xp.concatenate([right, bias.reshape(1, -1).astype(right.dtype, copy=False)]), None
    fold_grad = bias_grad and tap_major and left is not None and right is None   # the same for the gradients
    ones_row = fold_bias or fold_grad
    wgrad = None if left is None else xp.empty((k + fold_grad, left.shape[1]), dtype=xpad.dtype)
    dx = None if col2im is None else xp.zeros((geom.n, geom.h, geom.w, c), dtype=xpad.dtype)
    places = None if col2im is None else _tap_places(geom)
    width = (0 if right is None else right.shape[1]) + (0 if left is None else left.shape[1] * (1 + (dx is not None)))
    step, chunks, work = _chunks(geom, k, width)
    if wgrad is not None and not chunks:  # an empty batch
        wgrad.fill(0)
    def run(part):  # a run of chunks on one thread; returns its share of the weight gradient
        scratch = backend.Scratch(xp, xpad.dtype)
        buf = scratch("im2col", (step * rows * (k + ones_row),))
        share = None
        for n0, n1 in part:
            cols, taps = _block(buf, n1 - n0, geom, c, tap_major)
            if tap_major:
                xp.copyto(taps, windows[n0:n1].transpose(3, 4, 0, 1, 2, 5))
            else:
                xp.copyto(cols.reshape(windows[n0:n1].shape), windows[n0:n1])
            with_ones = cols
            if ones_row:   # the block's rows of taps, then its row of ones
                with_ones = buf[:(n1 - n0) * rows * (k + 1)].reshape(k + 1, -1)
                with_ones[k] = 1
                with_ones = with_ones.T
            if right is not None:
                xp.matmul(with_ones, right, out=out[n0 * rows:n1 * rows])
                _epilogue(out[n0 * rows:n1 * rows], bias, relu)
            if left is not None:
                if share is None:
                    share = xp.matmul(with_ones.T, left[n0 * rows:n1 * rows], out=wgrad if n0 == 0 else None)
                else:
                    share += xp.matmul(with_ones.T, left[n0 * rows:n1 * rows], out=scratch("wgrad", wgrad.shape))
            if dx is not None:   # the block, used, now takes this chunk's share of the input gradient
                _col2im_block(left[n0 * rows:n1 * rows], col2im, cols, taps, dx[n0:n1], places, tap_major)
        scratch.release()
        return share

    shares = backend.parallel_map(run, backend.share(chunks, work))
    if wgrad is not None:
        for share in shares[1:]:
            if share is not None:
                wgrad += share
    return (out, wgrad) if dx is None else (out, wgrad, dx)


def _col2im_block(part, w2, cols, taps, target, places, tap_major):
    """target += col2im(part @ w2^T) for one block: the GEMM into the block's buffer (`cols`, seen
    by tap as `taps`), then one strided add per kernel tap that reaches the input."""
    xp = backend.array_module(part)
    if tap_major:
        xp.matmul(w2, part.T, out=cols.T)  # the (k, rows) block, written contiguously
    else:
        xp.matmul(part, w2.T, out=cols)
    for i, j, into, source in places:
        target[into] += taps[i, j][source]


def _tap_range(tap, stride, pad, n_in, n_out):
    """Where kernel tap `tap` (already times dilation) lands along one axis: the slice of input
    positions tap - pad + stride*h inside [0, n_in), and the slice of outputs h that put it there."""
    offset = tap - pad
    lo = max(0, -(offset // stride))
    hi = min(n_out, (n_in - 1 - offset) // stride + 1)
    if hi <= lo:
        return None, None
    start = offset + stride * lo
    return slice(start, start + stride * (hi - lo - 1) + 1, stride), slice(lo, hi)


def _tap_places(geom):
    """(i, j, where tap (i, j) reads x, where it adds into y) for every kernel tap that reaches the
    input, the places as index tuples over (N, H, W) and (N, Ho, Wo); taps that fall wholly in the
    padding are left out."""
    (top, _), (left, _) = geom.pads
    places = []
    for i in range(geom.kh):
        rows_in, rows_out = _tap_range(i * geom.dh, geom.sh, top, geom.h, geom.ho)
        for j in range(geom.kw):
            cols_in, cols_out = _tap_range(j * geom.dw, geom.sw, left, geom.w, geom.wo)
            if rows_in is not None and cols_in is not None:
                places.append((i, j, (slice(None), rows_in, cols_in), (slice(None), rows_out, cols_out)))
    return places


def _col2im_matmul(grad, w2, geom):
    """col2im(grad @ w2^T), (N, H, W, C): each receptive field's gradient added back where it came from.

    `grad` is (N*Ho*Wo, C_out), `w2` (kh*kw*C, C_out). Block by block, the GEMM's rows are added
    into dx tap by tap (kh*kw strided adds); taps that fall in the padding are skipped, so no
    padded buffer is needed.
    """
    xp = backend.array_module(grad)
    c = w2.shape[0] // (geom.kh * geom.kw)
    if _tiles_exactly(geom):
        return _scatter_tiles(grad, w2, geom, c)
    dx = xp.zeros((geom.n, geom.h, geom.w, c), dtype=grad.dtype)
    places = _tap_places(geom)
    tap_major = c == 1
    k, rows = w2.shape[0], geom.ho * geom.wo
    step, chunks, work = _chunks(geom, k, w2.shape[1])

    def run(part_chunks):  # a run of chunks on one thread, each adding into its own images of dx
        scratch = backend.Scratch(xp, grad.dtype)
        buf = scratch("col2im", (step * rows * k,))
        for n0, n1 in part_chunks:
            cols, taps = _block(buf, n1 - n0, geom, c, tap_major)
            _col2im_block(grad[n0 * rows:n1 * rows], w2, cols, taps, dx[n0:n1], places, tap_major)
        scratch.release()

    backend.parallel_map(run, backend.share(chunks, work))
    return dx


def _tiles_exactly(geom):
    """Whether the receptive fields tile the input exactly, each pixel in one field (stride = kernel,
    no dilation or padding, nothing left over): a 2x2 stride-2 transposed convolution, say."""
    return (geom.kh, geom.kw, geom.dh, geom.dw) == (geom.sh, geom.sw, 1, 1) and geom.pads == ((0, 0), (0, 0)) \
        and (geom.h, geom.w) == (geom.ho * geom.sh, geom.wo * geom.sw)


def _scatter_tiles(grad, w2, geom, c, bias=None):
    """col2im when the fields tile the input exactly: each block of the GEMM's rows is the input's
    pixels in another order, so one transposing copy puts it in place, with no zero-filled dx and
    no adds (the U-Net's 32->16 up-convolution to 64x64, forward + backward: 2.0 -> 1.2-1.5 ms).
    Plus `bias` when given (a transposed convolution's forward)."""
    xp = backend.array_module(grad)
    dx = xp.empty((geom.n, geom.h, geom.w, c), dtype=grad.dtype)
    if dx.size and accelerate.wants_numba(grad, w2):   # (a bias has their dtype: _check_dtypes)
        from . import tiles_numba
        grad, w2 = np.ascontiguousarray(grad), np.ascontiguousarray(w2)
        b = np.empty(0, grad.dtype) if bias is None else np.ascontiguousarray(bias)
        runs, block = _tile_runs(geom, w2.shape[0], w2.shape[1], grad.itemsize)
        backend.parallel_map(lambda run, post: tiles_numba.untile(
            grad, w2, b, geom.kh, geom.kw, run[0], run[1], block, dx, *post), runs, handoff=True)
        return dx
    rows = geom.ho * geom.wo
    step, chunks, work = _chunks(geom, w2.shape[0], w2.shape[1])

    def run(part_chunks):
        scratch = backend.Scratch(xp, grad.dtype)
        for n0, n1 in part_chunks:
            cols = xp.matmul(grad[n0 * rows:n1 * rows], w2.T, out=scratch("cols", ((n1 - n0) * rows, w2.shape[0])))
            xp.copyto(dx[n0:n1].reshape(n1 - n0, geom.ho, geom.kh, geom.wo, geom.kw, c),
                      cols.reshape(n1 - n0, geom.ho, geom.wo, geom.kh, geom.kw, c).transpose(0, 1, 3, 2, 4, 5))
        scratch.release()

    backend.parallel_map(run, backend.share(chunks, work))
    if bias is not None:
        dx += bias
    return dx


# Where the fields tile the image exactly, the compiled kernels (ops/tiles_numba.py) take a thread's
# rows in one call that holds no GIL, the copy and the bias (or its gradient) in the same pass as the
# GEMMs' blocks. On two threads NumPy's path had gained little over one (the GEMMs are 17-34M
# multiply-adds; each thread's NumPy calls waited for the GIL between them): the U-Net's four 2x2
# up-convolutions, forward + backward, in 0.80-0.91x the time of that path (A/B in one process),
# on one thread 0.93-0.99x.
_TILE_BLOCK_BYTES = 256 << 10


def _tile_runs(geom, k, width, itemsize):
    """For the compiled kernels: row ranges (r0, r1) of the small image's N*Ho*Wo rows, one per thread
    when the work (as `_chunks` counts it) is worth sharing, and the rows per block (about
    _TILE_BLOCK_BYTES of tiles, k floats a row)."""
    rows = geom.n * geom.ho * geom.wo
    parts = backend.slices(rows) if backend.worth_threads(_chunks(geom, k, width)[2]) else [slice(0, rows)]
    return [(s.start, s.stop) for s in parts], max(1, _TILE_BLOCK_BYTES // (k * itemsize))


def _tile_products(p, w2, q, geom, need_q, need_w, need_b):
    """(tiles(p) @ w2, tiles(p)^T @ q, the sum of p's pixels), each None when not asked, compiled (see
    ops/tiles_numba.py): a transposed convolution's (dx, dW, db) from its output gradient p. Each
    thread takes a run of rows and returns its shares of dW and db, added up here."""
    from . import tiles_numba
    p, w2, q = np.ascontiguousarray(p), np.ascontiguousarray(w2), np.ascontiguousarray(q)
    runs, block = _tile_runs(geom, w2.shape[0], w2.shape[1] * (need_q + need_w), p.itemsize)
    dq = np.empty(q.shape, p.dtype) if need_q else np.empty((0, 0), p.dtype)

    def run(rows, post):
        dw = np.empty(w2.shape if need_w else (0, 0), p.dtype)
        db = np.empty(geom.c if need_b else 0)   # float64: a sum over every pixel of the batch
        tiles_numba.tile_products(p, w2, q, geom.kh, geom.kw, rows[0], rows[1], block, need_q, need_w, need_b,
                                  dq, dw, db, *post)
        return dw, db
    shares = backend.parallel_map(run, runs, handoff=True)
    return (dq if need_q else None, _sum_of([dw for dw, _ in shares]) if need_w else None,
            _sum_of([db for _, db in shares]).astype(p.dtype) if need_b else None)


# ------------------------------------------------------------------ one GEMM per kernel tap
#
# On small images the padding puts many of im2col's entries on zeros: a "same" 3x3 kernel on 4x4
# images multiplies padding in 31% of its products (21% on 6x6, 16% on 8x8), and BLAS multiplies
# them all. One GEMM per kernel tap, each over only the outputs whose input that tap reaches, skips
# them (oneDNN's direct convolution does the same):
#
#     y[:, out_t] += x[:, in_t] @ W[t]      dx[:, in_t] += g[:, out_t] @ W[t]^T      dW[t] = x[:, in_t]^T @ g[:, out_t]
#
# Each tap copies its slice of x (or g) into a block, so the copies add up to about what im2col
# copies; the GEMMs are C_in deep instead of kh*kw*C_in, which costs BLAS efficiency when channels
# are few. Measured (forward + backward, one thread, batch 8, 3x3 "same"), im2col -> taps:
# 4x4 256->256 5.4 -> 3.9 ms, 4x4 128->256 2.8 -> 2.0, 6x6 128->128 2.9 -> 2.5, 8x8 128->128 5.2 -> 4.5;
# but 16x16 64->64 (8% padding) 6.2 -> 7.5 and 14x14 5x5 32->64 (16%) 39.7 -> 45.6. Hence taps
# where at least _TAPS_MIN_PADDING of im2col's products are padding and Winograd does not apply
# (where it does, it is faster still: 6x6 128->128 by F(3x3, 3x3) 2.2 ms).
# The threads share out the taps, each summing y or dx into its own array: those are small on the
# images this runs on, so adding them up costs little.

_TAPS_MIN_PADDING = 0.2


def _padding_share(geom, places):
    """The share of im2col's products that multiply padding: 1 - (tap, output) pairs reaching x / all pairs."""
    reached = sum(_positions(out) for *_, out in places)
    return 1 - reached / (geom.kh * geom.kw * geom.ho * geom.wo)


def _extent(place):
    """(rows, columns) that an index tuple (:, rows, cols) of `_tap_places` covers."""
    _, rows, cols = place
    return len(range(rows.start, rows.stop, rows.step or 1)), len(range(cols.start, cols.stop, cols.step or 1))


def _positions(place):
    rows, cols = _extent(place)
    return rows * cols


def _taps_for(geom):
    """The taps' places (`_tap_places`) when this convolution runs one GEMM per tap, else None."""
    if _algorithm == "taps":
        return _tap_places(geom)
    if _algorithm != "auto" or min(geom.c, geom.co) < 8 or geom.pointwise or geom.pads == ((0, 0), (0, 0)):
        return None
    places = _tap_places(geom)
    return places if _padding_share(geom, places) >= _TAPS_MIN_PADDING else None


def _tap_runs(geom, places):
    """The taps shared out over the threads when their GEMMs are worth it, as evenly as whole taps
    allow (`_tap_shares`)."""
    macs = geom.n * geom.c * geom.co * sum(_positions(out) for *_, out in places)
    parts = backend.num_threads() if backend.worth_threads(macs, backend.FACTOR_GEMM) else 1
    parts = max(1, min(parts, len(places)))
    shares = _tap_shares(tuple(_positions(out) for *_, out in places), parts)
    return [[places[i] for i in share] for share in shares]


@functools.lru_cache(maxsize=256)
def _tap_shares(sizes, parts):
    """Indices of the taps (their output positions `sizes`) for each of `parts` threads, the largest
    share as small as can be: biggest first to the least loaded, then, for two threads, the best of
    every split (on 4x4 images the biggest share is 51 of 100 rows, 54 by the greedy deal, 58 dealt
    round: the U-Net's 4x4 layers on two threads 0.92-0.95x the time of the greedy deal's)."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    shares, loads = [[] for _ in range(parts)], [0] * parts
    for i in order:
        t = loads.index(min(loads))
        shares[t].append(i)
        loads[t] += sizes[i]
    if parts == 2 and len(sizes) <= 16:
        total, best = sum(sizes), max(loads)
        for mask in range(1 << (len(sizes) - 1)):   # the last tap stays in share 1: each split once
            first = sum(sizes[i] for i in range(len(sizes)) if mask >> i & 1)
            if max(first, total - first) < best:
                best = max(first, total - first)
                shares = [[i for i in order if mask >> i & 1], [i for i in order if not mask >> i & 1]]
    return [share for share in shares if share]


def _gather(src, where, scratch, name):
    """src[where] (a strided (N, a, b, C) region) copied into a scratch block, as (N*a*b, C)."""
    block = src[where]
    out = scratch(name, block.shape)
    backend.array_module(src).copyto(out, block)
    return out.reshape(-1, block.shape[3])


def _add_into(out, product, where, shape):
    """out[where] += product, the (N*a*b, D) product laid over that region of an array of `shape`;
    with no `out` yet, a product that covers all of `shape` becomes it (no zero fill, no add)."""
    if out is None:
        if _extent(where) == tuple(shape[1:3]):
            return product.reshape(shape)
        out = backend.array_module(product).zeros(shape, dtype=product.dtype)
    out[where] += product.reshape((shape[0],) + _extent(where) + (shape[3],))
    return out


def _sum_of(partials):
    """The threads' partial sums added up (None from a thread whose taps reached nothing)."""
    total = None
    for part in partials:
        if part is not None:
            if total is None:
                total = part
            else:
                total += part
    return total


def _by_taps(xd, wd, bd, geom, places, relu=False):
    """The forward of a convolution computed one kernel tap at a time (see "one GEMM per kernel
    tap"), with bias and `relu` applied: (y (N, Ho, Wo, C_out), grads), where grads(g2, need_x,
    need_w) gives (dx, dW, None) for the output gradient g2 (N*Ho*Wo, C_out), each None when not
    asked (the bias's gradient is the caller's).
    Each thread's run of taps goes through NumPy here or, where numba is allowed, through the
    compiled kernels of ops/taps_numba.py as one call that holds no GIL."""
    xp = backend.array_module(xd)
    wk = wd.reshape(geom.kh, geom.kw, geom.c, geom.co)
    runs = _tap_runs(geom, places)
    y_shape, x_shape = (geom.n, geom.ho, geom.wo, geom.co), (geom.n, geom.h, geom.w, geom.c)
    compiled = accelerate.wants_numba(xd, wd)
    if compiled:
        from . import taps_numba
        xd, wk = np.ascontiguousarray(xd), np.ascontiguousarray(wk)
        none4 = np.empty((0, 0, 0, 0), dtype=xd.dtype)

    def forward(run, post=backend._NO_POST):  # NumPy's path is called without post
        if compiled:
            y = np.empty(y_shape, dtype=xd.dtype)
            taps_numba.forward(xd, wk, _tap_table(run), geom.sh, geom.sw, y, *post)
            return y
        scratch, y = backend.Scratch(xp, xd.dtype), None
        for i, j, into, source in run:
            y = _add_into(y, _gather(xd, into, scratch, "x") @ wk[i, j], source, y_shape)
        scratch.release()
        return y
    y = _sum_of(backend.parallel_map(forward, runs, handoff=compiled))
    if y is None:  # no tap reaches the input: y is the bias alone
        y = xp.zeros(y_shape, dtype=xd.dtype)
    _epilogue(y.reshape(-1, geom.co), bd, relu)

    def grads(g2, need_x, need_w, need_b=False):
        g4 = g2.reshape(y_shape)
        gw = None
        if need_w:  # taps that reach no input keep a zero gradient
            gw = (xp.empty if len(places) == geom.kh * geom.kw else xp.zeros)(wk.shape, dtype=wk.dtype)
        if compiled:
            g4 = np.ascontiguousarray(g4)

        def run_backward(run, post=backend._NO_POST):  # each tap's g block serves both gradients
            if compiled:
                dx = np.empty(x_shape, dtype=xd.dtype) if need_x else none4
                taps_numba.backward(xd, wk, g4, _tap_table(run), geom.sh, geom.sw, bool(need_x), bool(need_w), dx,
                                    none4 if gw is None else gw, *post)
                return dx if need_x else None
            scratch, dx = backend.Scratch(xp, g4.dtype), None
            for i, j, into, source in run:
                gt = _gather(g4, source, scratch, "g")
                if need_w:
                    xp.matmul(_gather(xd, into, scratch, "x").T, gt, out=gw[i, j])
                if need_x:
                    dx = _add_into(dx, gt @ wk[i, j].T, into, x_shape)
            scratch.release()
            return dx
        dx = _sum_of(backend.parallel_map(run_backward, runs, handoff=compiled)) if need_x or need_w else None
        if need_x and dx is None:
            dx = xp.zeros(x_shape, dtype=g4.dtype)
        return dx, gw, None
    return y, grads


def _tap_table(run):
    """A run of `_tap_places` as the compiled kernels take it: one row per tap, (i, j, first input row,
    first input column, first output row, first output column, output rows, output columns)."""
    return np.array([(i, j, into[1].start, into[2].start, out[1].start, out[2].start) + _extent(out)
                     for i, j, into, out in run], dtype=np.int64).reshape(-1, 8)


def _flipped(geom):
    """For a stride-1 convolution, the geometry of the convolution that gives its input gradient:
    g (N, Ho, Wo, C_out) -> dx (N, H, W, C) with padding span - 1 - pad per side; None when that
    does not apply (stride > 1, or padding wider than the kernel's span)."""
    spans = (geom.dh * (geom.kh - 1) + 1, geom.dw * (geom.kw - 1) + 1)
    if (geom.sh, geom.sw) != (1, 1) or (geom.hp - spans[0] + 1, geom.wp - spans[1] + 1) != (geom.ho, geom.wo):
        return None
    pads = tuple((s - 1 - a, s - 1 - b) for s, (a, b) in zip(spans, geom.pads))
    if min(min(p) for p in pads) < 0:
        return None
    return _Geometry(geom.n, (geom.ho, geom.wo), geom.co, (geom.kh, geom.kw), geom.c, (1, 1), (geom.dh, geom.dw),
                     pads, (geom.h, geom.w))


def _sum_rows(g2):
    """g2.sum(axis=0) for a tall (rows, C_out) gradient, as a GEMV (ones @ g2): 3-15x faster than
    NumPy's axis-0 reduction, whose inner loop runs only C_out wide, and no less accurate. The
    threads each take a slice of the rows."""
    xp = backend.array_module(g2)
    ones = xp.ones(g2.shape[0], dtype=g2.dtype)
    return backend.parallel_sum(g2.shape[0], lambda r: ones[r] @ g2[r], g2.size)


def _outer(g, w):
    """g[:, None] * w[None, :] as a (len(g), len(w)) array.

    With one output channel g @ W^T is this outer product. As a GEMM with inner dimension 1 it is
    slow (OpenBLAS: 0.62 ms for 32768 x 16), and so is the broadcast multiply, whose inner loop runs
    only len(w) wide (0.36 ms). Two rows at a time it is a GEMM with inner dimension 2, which BLAS
    runs fast: rows 2r and 2r + 1 side by side are [g[2r], g[2r+1]] @ [[w, 0], [0, w]]
    (0.09 ms; 2-4x faster than broadcasting for 3 to 128 columns)."""
    xp = backend.array_module(g)
    m, c = g.shape[0], w.shape[0]
    out = xp.empty((m, c), dtype=g.dtype)
    pairs = xp.zeros((2, 2 * c), dtype=g.dtype)
    pairs[0, :c] = pairs[1, c:] = w
    even = m - m % 2
    xp.matmul(g[:even].reshape(-1, 2), pairs, out=out[:even].reshape(-1, 2 * c))
    if m % 2:
        xp.multiply(g[-1], w, out=out[-1])
    return out


def _by_col2im(geom, w2):
    """Whether `_input_grad` takes `_col2im_matmul`'s general path (not a 1x1 kernel, not fields that
    tile the input, not the flipped convolution)."""
    c = w2.shape[0] // (geom.kh * geom.kw)
    return not geom.pointwise and not _tiles_exactly(geom) and (c < geom.co or _flipped(geom) is None)


def _input_grad(grad, w2, geom):
    """dL/dx (N, H, W, C) of a convolution with kernel matrix w2 (kh*kw*C, C_out), from g (N*Ho*Wo, C_out)."""
    c = w2.shape[0] // (geom.kh * geom.kw)
    if geom.pointwise:
        dx = _outer(grad[:, 0], w2[:, 0]) if geom.co == 1 else grad @ w2.T
        return dx.reshape(geom.n, geom.h, geom.w, c)
    flipped = _flipped(geom) if c >= geom.co else None
    if flipped is None:
        return _col2im_matmul(grad, w2, geom)
    # dx = conv(g, W flipped in space, in/out channels swapped): W'[i, j, o, c] = W[kh-1-i, kw-1-j, c, o].
    # W' is built as its transpose (c, kh*kw*C_out), a copy in runs of C_out, and handed to the GEMM
    # transposed (BLAS reads it so at no cost): copying W' itself transposes every (c, o) block,
    # 10x slower (256 -> 256 channels: 0.52 vs 0.055 ms, more than the GEMM on a 4x4 batch of 8).
    xp = backend.array_module(w2)
    w_flipped = xp.ascontiguousarray(w2.reshape(geom.kh, geom.kw, c, geom.co)[::-1, ::-1].transpose(2, 0, 1, 3))
    w_flipped = w_flipped.reshape(c, -1).T
    gpad = _pad(grad.reshape(geom.n, geom.ho, geom.wo, geom.co), flipped)
    return _windows_matmul(gpad, flipped, right=w_flipped)[0].reshape(geom.n, geom.h, geom.w, c)


# ------------------------------------------------------------------ checks shared by the ops

def _check_dtypes(op, x, w, b):
    """The arrays of x, w, b in one float dtype (integer images take the kernel's dtype)."""
    xd, wd = x.data, w.data
    if wd.dtype.kind != "f":
        raise TypeError(f"{op}: the kernel must be a float tensor, got dtype {wd.dtype}")
    if xd.dtype.kind in "biu":
        xd = xd.astype(wd.dtype)
    elif xd.dtype != wd.dtype:
        raise TypeError(f"{op}: input is {xd.dtype} but the kernel is {wd.dtype}; cast one to match "
                        f"(e.g. x.float() for float32) so no silent promotion happens")
    bd = None
    if b is not None:
        bd = b.data
        if bd.dtype != wd.dtype:
            raise TypeError(f"{op}: bias is {bd.dtype} but the kernel is {wd.dtype}; cast one to match")
    return xd, wd, bd


# per op: the input's layout, the kernel's layout, and which kernel axis holds the input channels
_LAYOUTS = {
    "conv1d": ("(batch, steps, channels)", "(kernel_size, in_channels, out_channels)", -2),
    "conv2d": ("(batch, height, width, channels)", "(kernel_height, kernel_width, in_channels, out_channels)", -2),
    "conv_transpose2d": ("(batch, height, width, channels)",
                         "(kernel_height, kernel_width, out_channels, in_channels)", -1),
}


def _check_shapes(op, x, w, b):
    """Ranks, channels and bias of a convolution's operands; returns C_out."""
    data, kernel, in_axis = _LAYOUTS[op]
    rank = data.count(",") + 1
    if x.ndim != rank:
        hint = f": add a batch axis, e.g. x.reshape(1, *{tuple(x.shape)})" if x.ndim == rank - 1 else ""
        raise ValueError(f"{op}: expects {data} input but got shape {tuple(x.shape)}{hint}")
    if w.ndim != rank:
        raise ValueError(f"{op}: expects a {kernel} kernel but got shape {tuple(w.shape)}")
    c, c_in = x.shape[-1], w.shape[in_axis]
    c_out = w.shape[-1] if in_axis == -2 else w.shape[-2]
    if c != c_in:
        fixed = list(w.shape)
        fixed[in_axis] = c
        layout = "" if in_axis == -2 else f", laid out as {kernel}"
        raise ValueError(f"{op}: input has {c} channels but the kernel expects {c_in} (kernel shape "
                         f"{tuple(w.shape)}{layout}); make the kernel {tuple(fixed)} or give the input {c_in} "
                         f"channel{'' if c_in == 1 else 's'}")
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{op}: bias has shape {tuple(b.shape)} but the kernel has {c_out} output channels; "
                         f"expected a bias of shape ({c_out},)")
    return c_out


def _too_small(op, in_hw, khw, dilation, pads):
    span = tuple(d * (k - 1) + 1 for k, d in zip(khw, dilation))
    padded = tuple(n + a + b for n, (a, b) in zip(in_hw, pads))
    return ValueError(f"{op}: the input's spatial size {in_hw} padded by {pads} to {padded} is smaller than the "
                      f"kernel's span {span} (kernel {khw}, dilation {dilation}), so the output would be empty; "
                      f"use padding='same' or a smaller kernel")


# ------------------------------------------------------------------ the graph node

_ALGORITHMS = ("auto", "im2col", "taps")
_algorithm = "auto"


def set_conv_algorithm(name):
    """Choose how conv2d and conv1d run: "auto" (Winograd's F(4x4, 3x3), F(3x3, 3x3), F(6x6, 3x3)
    or F(4x4, 5x5) where `winograd.plan` accepts the shape; one GEMM per kernel tap where at least 20% of im2col's
    products would multiply padding, as "same" convolutions of small images do; im2col elsewhere),
    "im2col" (always the direct GEMM, whose sums are the plain definition; in float32 Winograd
    differs from it by rounding, ~1e-5 of the output's largest value) or "taps" (always one GEMM per
    tap, for tests and comparisons). Returns the previous setting."""
    global _algorithm
    if name not in _ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: {name!r} is not one of {_ALGORITHMS}")
    previous, _algorithm = _algorithm, name
    return previous


def _convolve(op, x, w, b, xd, wd, bd, geom, out_shape, relu=False):
    """One graph node for a convolution; xd is x.data seen as (N, H, W, C), wd the kernel as
    (kh*kw*C, Co). The backward keeps x and W (not the im2col matrix; see the speed notes).
    With `relu` the node is relu(conv + b): the bias and the max run on each output block while
    it is in cache, and the backward masks g by y > 0 first."""
    plan = winograd.plan(geom, xd.dtype) if _algorithm == "auto" else None
    if plan is not None:
        return _convolve_winograd(op, x, w, b, xd, wd, bd, plan, out_shape, relu)
    places = _taps_for(geom)
    if places is not None:
        y, grads = _by_taps(xd, wd, bd, geom, places, relu)
    else:
        y = _windows_matmul(_pad(xd, geom), geom, right=wd, bias=bd, relu=relu)[0]

        def grads(g2, need_x, need_w, need_b):
            if need_x and need_w and _by_col2im(geom, wd):
                _, gw, gx = _windows_matmul(_pad(xd, geom), geom, left=g2, col2im=wd, bias_grad=need_b)
                if gw.shape[0] > wd.shape[0]:   # the bias's gradient came as the last row
                    return gx, gw[:-1], gw[-1]
                return gx, gw, None
            return (_input_grad(g2, wd, geom) if need_x else None,
                    _windows_matmul(_pad(xd, geom), geom, left=g2)[1] if need_w else None, None)
    y = y.reshape(out_shape)
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        if relu:
            g = g * (y > 0)
        g2 = g.reshape(-1, geom.co)
        need_b = b is not None and b.requires_grad
        gx, gw, gb = grads(g2, x.requires_grad, w.requires_grad, need_b)
        gx = None if gx is None else gx.reshape(x.shape)
        gw = None if gw is None else gw.reshape(w.shape)
        if b is None:
            return gx, gw
        if need_b and gb is None:   # not folded into the weight gradient's GEMM
            gb = _sum_rows(g2)
        return gx, gw, gb
    return record(y, parents, backward, op)


def _convolve_winograd(op, x, w, b, xd, wd, bd, plan, out_shape, relu=False):
    """The same node as `_convolve`, computed with Winograd's transforms (see ops/winograd.py)."""
    geom = plan.geom
    y, state = winograd.forward_kernel(xd, wd.reshape(geom.kh, geom.kw, geom.c, geom.co), plan, bd,
                                       keep=w.requires_grad and is_grad_enabled(), relu=relu)
    y = y.reshape(out_shape)
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        g4 = g.reshape(geom.n, geom.ho, geom.wo, geom.co)
        need_b = b is not None and b.requires_grad
        dx, dw, db = winograd.backward_kernel(g4, xd, state, plan, x.requires_grad, w.requires_grad,
                                              y.reshape(g4.shape) if relu else None, need_b)
        gx = None if dx is None else dx.reshape(x.shape)
        gw = None if dw is None else dw.reshape(w.shape)
        if b is None:
            return gx, gw
        return gx, gw, db
    return record(y, parents, backward, op)


def _fused_activation(op, activation):
    if activation not in (None, "relu"):
        raise ValueError(f"{op}: activation={activation!r} cannot be fused; pass None or 'relu' and apply any "
                         f"other activation to the result")
    return activation == "relu"


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1, activation=None):
    """2-D convolution (cross-correlation, as in every DL library) of channels-last images.

    x (N, H, W, C_in), w (kh, kw, C_in, C_out) as Keras stores it, b (C_out,) or None;
    returns (N, Ho, Wo, C_out) with, per spatial axis,

        out = floor((in + pad_total - dilation * (k - 1) - 1) / stride) + 1

        y[n, i, j, o] = b[o] + sum_{p, q, c} xpad[n, i*s_h + p*d_h, j*s_w + q*d_w, c] * w[p, q, c, o]

    stride, dilation: an int or a pair (height, width).
    padding: "valid" (none), "same" (out = ceil(in / stride); TensorFlow's split with the
    smaller half first, which matters for even kernels and stride 2), an int p (p on every
    side), a pair (ph, pw) or ((top, bottom), (left, right)).
    activation: None, or "relu" for relu(conv + b) as one node (the bias and the max applied to
    each output block while it is in cache: two passes over the output fewer than relu(conv2d(...))).

    Computed as im2col(x) @ w.reshape(kh*kw*C_in, C_out); backward: dW = im2col(x)^T @ g,
    dx = col2im(g @ W^T) (at stride 1 with C_in >= C_out: the same convolution run on g with the
    kernel flipped), db = sum of g over batch and positions. Where they are faster, the same sums
    run by Winograd's transforms or one GEMM per kernel tap (see `set_conv_algorithm`).

    >>> import chainrule as cr
    >>> x, w = cr.randn(8, 28, 28, 1), cr.randn(3, 3, 1, 16)
    >>> conv2d(x, w, padding="same").shape
    (8, 28, 28, 16)
    """
    op = "conv2d"
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    c_out = _check_shapes(op, x, w, b)
    kh, kw = w.shape[:2]
    n, h, wid, c = x.shape
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    spec = _padding_2d(padding, op)
    if isinstance(spec, str):
        spec = tuple(_axis_padding(n_in, k, s, spec, d)
                     for n_in, k, s, d in zip((h, wid), (kh, kw), stride, dilation))
    out_hw = tuple(conv_output_length(n_in, k, s, p, d)
                   for n_in, k, s, p, d in zip((h, wid), (kh, kw), stride, spec, dilation))
    if min(out_hw) <= 0:
        raise _too_small(op, (h, wid), (kh, kw), dilation, spec)
    xd, wd, bd = _check_dtypes(op, x, w, b)
    geom = _Geometry(n, (h, wid), c, (kh, kw), c_out, stride, dilation, spec, out_hw)
    return _convolve(op, x, w, b, xd, wd.reshape(-1, c_out), bd, geom, (n,) + out_hw + (c_out,),
                     _fused_activation(op, activation))


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1, activation=None):
    """1-D convolution of channels-last sequences: x (N, W, C_in), w (k, C_in, C_out), b (C_out,).

    Returns (N, Wo, C_out), out = floor((in + pad_total - dilation * (k - 1) - 1) / stride) + 1.
    padding: "valid", "same" (out = ceil(in / stride)), "causal" (dilation * (k - 1) zeros on the
    left only, so y[t] sees x[<= t], as Keras's Conv1D), an int p or a pair (left, right).
    activation: None or "relu", fused as in conv2d.

    Runs conv2d's kernels on a height-1 image: x as (N, 1, W, C_in), w as (1, k, C_in, C_out).
    """
    op = "conv1d"
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    c_out = _check_shapes(op, x, w, b)
    k = w.shape[0]
    n, length, c = x.shape
    (stride,), (dilation,) = _single(stride, "stride", op), _single(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"{op}: padding {padding!r} is not one of 'valid', 'same', 'causal', an int or a "
                             f"pair (left, right)")
        pads = _axis_padding(length, k, stride, padding, dilation)
    else:
        pads = (padding, padding) if isinstance(padding, numbers.Integral) else tuple(padding)
        if len(pads) != 2 or not all(isinstance(p, numbers.Integral) and p >= 0 for p in pads):
            raise ValueError(f"{op}: padding must be 'valid', 'same', 'causal', an int or a pair (left, right) "
                             f"of non-negative ints; got {padding!r}")
        pads = (int(pads[0]), int(pads[1]))
    out = conv_output_length(length, k, stride, pads, dilation)
    if out <= 0:
        raise _too_small(op, (length,), (k,), (dilation,), (pads,))
    xd, wd, bd = _check_dtypes(op, x, w, b)
    geom = _Geometry(n, (1, length), c, (1, k), c_out, (1, stride), (1, dilation), ((0, 0), pads), (1, out))
    return _convolve(op, x, w, b, xd.reshape(n, 1, length, c), wd.reshape(-1, c_out), bd, geom, (n, out, c_out),
                     _fused_activation(op, activation))


def _transpose_axis(n_in, k, s, d, padding, output_padding):
    """(pad_before, output length) of one axis of a transposed convolution, as Keras sizes it."""
    span = d * (k - 1) + 1
    full = (n_in - 1) * s + span  # every position some input pixel reaches
    if padding == "valid":
        out = n_in * s + max(span - s, 0) if output_padding is None else full + output_padding
        return 0, out
    if padding == "same":
        out = n_in * s if output_padding is None else full - 2 * (span // 2) + output_padding
        return max(full - out, 0) // 2, out
    before, after = padding
    return before, full - before - after + (output_padding or 0)


def conv_transpose2d(x, w, b=None, stride=1, padding="valid", output_padding=None, dilation=1):
    """Transposed 2-D convolution ("deconvolution"): the gradient of conv2d with respect to its input.

    x (N, H, W, C_in), w (kh, kw, C_out, C_in) as Keras's Conv2DTranspose stores it, b (C_out,).
    Each input pixel adds w[:, :, :, c] * x[n, i, j, c] onto the output from (i*s, j*s) on (before
    the padding is cropped).
    Output size per axis, as Keras:

        "valid":  in * s + max(k_eff - s, 0)           (= (in - 1) * s + k_eff when k_eff >= s)
        "same":   in * s
        with output_padding op:  (in - 1) * s + k_eff - 2 * pad + op,  pad = 0 or k_eff // 2
        explicit padding ((top, bottom), (left, right)) or int p: (in - 1) * s + k_eff - top - bottom (+ op)

    with k_eff = dilation * (k - 1) + 1. conv2d applied to the output with the same kernel,
    stride and padding gives back the input's spatial size.

    Forward is col2im(x @ W^T) and backward im2col(g) @ W and im2col(g)^T @ x: conv2d's pieces
    run the other way.
    """
    op = "conv_transpose2d"
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    c_out = _check_shapes(op, x, w, b)
    kh, kw = w.shape[:2]
    n, h, wid, c_in = x.shape
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    spec = _padding_2d(padding, op)
    if output_padding is not None:
        output_padding = _pair_nonneg(output_padding, op)
        for p, s, d in zip(output_padding, stride, dilation):
            if p >= max(s, d):
                raise ValueError(f"{op}: output_padding {output_padding} must be smaller than the stride "
                                 f"{stride} (or the dilation {dilation}) along each axis")
    axes = [_transpose_axis(n_in, k, s, d, spec if isinstance(spec, str) else spec[a],
                            None if output_padding is None else output_padding[a])
            for a, (n_in, k, s, d) in enumerate(zip((h, wid), (kh, kw), stride, dilation))]
    out_hw = tuple(out for _, out in axes)
    if min(out_hw) <= 0:
        raise ValueError(f"{op}: padding {padding!r} crops the whole output (input {(h, wid)}, kernel {(kh, kw)}, "
                         f"stride {stride}); use less padding")
    xd, wd, bd = _check_dtypes(op, x, w, b)
    # the conv2d whose input gradient this is: (N, out_h, out_w, C_out) -> (N, H, W, C_in);
    # its bottom/right padding makes its padded input cover every position the kernel reaches
    pads = tuple((before, max((n_in - 1) * s + d * (k - 1) + 1 - before - out, 0))
                 for (before, out), n_in, k, s, d in zip(axes, (h, wid), (kh, kw), stride, dilation))
    geom = _Geometry(n, out_hw, c_out, (kh, kw), c_in, stride, dilation, pads, (h, wid))
    w2 = wd.reshape(-1, c_in)
    x2 = xd.reshape(-1, c_in)
    tiles = _tiles_exactly(geom) and not geom.pointwise and x2.size > 0
    if tiles:  # each input pixel owns a tile of the output: a copy, no col2im sums
        y = _scatter_tiles(x2, w2, geom, c_out, bd)
    else:
        y = _input_grad(x2, w2, geom)
        if bd is not None:
            y += bd
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        need_x, need_w = x.requires_grad, w.requires_grad
        need_b = b is not None and b.requires_grad
        if tiles and accelerate.wants_numba(g, w2, x2):
            gx, gw, gb = _tile_products(g, w2, x2, geom, need_x, need_w, need_b)
        else:
            gx, gw = _windows_matmul(_pad(g, geom), geom, right=w2 if need_x else None, left=x2 if need_w else None)
            gb = _sum_rows(g.reshape(-1, c_out)) if need_b else None
        gx = None if gx is None else gx.reshape(x.shape)
        gw = None if gw is None else gw.reshape(w.shape)
        return (gx, gw) if b is None else (gx, gw, gb)
    return record(y, parents, backward, op)
