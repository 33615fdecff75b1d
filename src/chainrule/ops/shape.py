"""Movement ops: they rearrange elements without arithmetic, so each backward is the
inverse movement of the gradient (reshape back, transpose back, scatter-add into place).
"""
import numpy as np

from .. import backend
from .base import Tensor, as_tensor, normalize_axis, record, unbroadcast


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    """x with a new shape of the same size (one entry may be -1)."""
    x = as_tensor(x)
    shape = _shape_arg(shape)
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                         f"into {shape}; the sizes must match (use -1 for one inferred axis)") from None
    return record(y, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes start_axis..end_axis into one (Keras's Flatten is flatten(x, 1))."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = start_axis % x.ndim, end_axis % x.ndim
    merged = 1
    for n in x.shape[s:e + 1]:
        merged *= n
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1:])


def permute(x, *axes):
    """x with its axes reordered: output axis i is input axis axes[i]."""
    x = as_tensor(x)
    axes = _shape_arg(axes)
    if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    inverse = tuple(np.argsort([a % x.ndim for a in axes]))
    return record(x.data.transpose(axes), (x,), lambda g: (g.transpose(inverse),), "permute")


def transpose(x, axis0=-2, axis1=-1):
    """x with two axes swapped (PyTorch's transpose); for a matrix, its transpose."""
    x = as_tensor(x)
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
    return permute(x, axes)


def expand(x, *shape):
    """x broadcast to `shape` without copying (-1 keeps an axis);  backward sums over the copies."""
    x = as_tensor(x)
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    xp = backend.array_module(x.data)
    try:
        y = xp.broadcast_to(x.data, shape)
    except ValueError:
        raise ValueError(f"expand: cannot broadcast shape {x.shape} to {shape}; only axes of size 1 "
                         f"can be expanded") from None
    return record(y, (x,), lambda g: (unbroadcast(g, x.shape),), "expand")


def squeeze(x, axis=None):
    """x without its size-1 axes (or only the given ones)."""
    x = as_tensor(x)
    if axis is None:
        axis = tuple(i for i, n in enumerate(x.shape) if n == 1)
    axes = normalize_axis(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x, axis):
    """x with a new size-1 axis inserted at `axis` (NumPy's expand_dims)."""
    x = as_tensor(x)
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _plain_index(index):
    """Indexes made only of ints, slices, None and Ellipsis select a view: no repeats possible."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


def getitem(x, index):
    """x[index] with slices, ints, integer arrays or boolean masks;
    backward scatters the gradient into zeros, adding where an element was picked twice."""
    x = as_tensor(x)
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    y = x.data[index]
    xp = backend.array_module(x.data)
    plain = _plain_index(index)

    def backward(g):
        gx = xp.zeros(x.shape, dtype=g.dtype)
        if plain:
            gx[index] = g
        else:
            xp.add.at(gx, index, g)
        return (gx,)
    return record(y, (x,), backward, "getitem")


def concat(tensors, axis=0):
    """Join tensors along an existing axis;  backward slices the gradient back apart."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    xp = backend.array_module(tensors[0].data)
    try:
        y = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"concat: shapes {[t.shape for t in tensors]} differ outside axis {axis}; "
                         f"all other axes must match") from None
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(xp.split(g, bounds, axis=axis))
    return record(y, tuple(tensors), backward, "concat")


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    return concat([unsqueeze(t, axis) for t in tensors], axis=axis)


def split(x, indices_or_sections, axis=0):
    """Split x along `axis` into equal sections (an int) or at the given indices (a list)."""
    x = as_tensor(x)
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of shape {x.shape} has size {n}, "
                             f"which {indices_or_sections} sections do not divide")
        step = n // indices_or_sections
        cuts = list(range(step, n, step))
    else:
        cuts = list(indices_or_sections)
    edges = [0] + cuts + [n]
    lead = (slice(None),) * (axis % x.ndim)
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(edges[:-1], edges[1:])]


def pad(x, pad_width, value=0.0):
    """x padded with a constant; `pad_width` as in NumPy: ((before, after), ...) per axis."""
    x = as_tensor(x)
    xp = backend.array_module(x.data)
    width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    y = xp.pad(x.data, width, mode="constant", constant_values=value)
    inner = tuple(slice(b, b + n) for (b, _), n in zip(width, x.shape))
    return record(y, (x,), lambda g: (g[inner],), "pad")
