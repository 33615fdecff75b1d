"""Array helpers Keras users reach for: one-hot labels and normalization."""
import numpy as np


def to_categorical(x, num_classes=None):
    """One-hot encode integer labels: (n,) or (n, 1) -> (n, num_classes) float32 (as keras.utils does)."""
    x = np.asarray(x)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.dtype.kind == "f":
        if not np.all(x == np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers, got fractional values")
        x = x.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"to_categorical: label {x.max()} does not fit num_classes={num_classes}")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis=-1, order=2):
    """x divided by its `order`-norm along `axis` (zeros stay zeros)."""
    x = np.asarray(x)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)
