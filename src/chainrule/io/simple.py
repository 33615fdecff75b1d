"""Weights as a NumPy .npz file: one array per weight, keyed by position and path. No pickle."""
import numpy as np

from .atomic import atomic_open


def _key(i, w):
    return f"{i:04d}:{w.path}"


def save_weights_npz(model, filepath):
    """Write the model's weights atomically (temporary file, fsync, rename)."""
    arrays = {_key(i, w): w.numpy() for i, w in enumerate(model.weights)}
    with atomic_open(filepath) as f:
        np.savez(f, **arrays)


def load_weights_npz(model, filepath):
    """Read weights saved by `save_weights_npz`; every shape is checked before any weight changes."""
    weights = model.weights
    with np.load(filepath, allow_pickle=False) as data:
        keys = sorted(data.files)
        if len(keys) != len(weights):
            raise ValueError(f"load_weights('{filepath}'): the file holds {len(keys)} weights, "
                             f"the model has {len(weights)}")
        arrays = [data[k] for k in keys]
    for w, a, k in zip(weights, arrays, keys):
        if a.shape != w.shape:
            raise ValueError(f"load_weights('{filepath}'): '{k}' has shape {a.shape}, "
                             f"but weight '{w.path}' has shape {w.shape}")
    for w, a in zip(weights, arrays):
        w.assign(a)
