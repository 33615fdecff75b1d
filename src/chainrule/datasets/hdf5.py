"""Arrays stored in HDF5 files (e.g. the course's malaria cell images: an ``images`` and a ``labels`` dataset).

    x, y = load_hdf5("malaria.h5")                          # keys guessed: images/x/..., labels/y/...
    x, y = load_hdf5("cells.h5", x_key="data/images", y_key="data/labels")

h5py is an optional dependency, imported only here.
"""
import numpy as np

X_NAMES = ("x", "images", "image", "x_train", "inputs", "input", "data", "features", "imgs")
Y_NAMES = ("y", "labels", "label", "y_train", "targets", "target", "classes", "class", "masks", "mask")


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading HDF5 files needs h5py, which is not installed: `pip install h5py` (or `pip install chainrule[data]`)") from e
    return h5py


def list_datasets(path):
    """{name: (shape, dtype)} of every dataset in the file, nested groups included ('group/name')."""
    h5py = _h5py()
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, (obj.shape, obj.dtype))
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def _describe(datasets):
    return ", ".join(f"'{k}' {shape} {dtype}" for k, (shape, dtype) in datasets.items()) or "no datasets"


def _guess(datasets, names, role, path):
    """The one dataset whose last name component is a usual name for `role`, else None."""
    hits = [k for k in datasets if k.rsplit("/", 1)[-1].lower() in names]
    if len(hits) > 1:
        raise KeyError(f"{path}: several datasets could be the {role} ({hits}); pass {role}_key=... "
                       f"(the file holds {_describe(datasets)})")
    return hits[0] if hits else None


def load_hdf5(path, x_key=None, y_key=None):
    """``(x, y)`` NumPy arrays read from the datasets `x_key` and `y_key` of an HDF5 file.

    Without keys they are guessed from usual names (x: x, images, data, ...; y: y, labels,
    targets, ...); a file holding a single dataset gives it as x. y is None when there is no
    label dataset and no `y_key`. A missing key raises KeyError listing every dataset in the file.
    """
    h5py = _h5py()
    datasets = list_datasets(path)
    for key in (x_key, y_key):
        if key is not None and key.strip("/") not in datasets:
            raise KeyError(f"{path}: no dataset '{key}'; the file holds {_describe(datasets)}")
    if x_key is None:
        x_key = _guess(datasets, X_NAMES, "x", path)
        if x_key is None and len(datasets) == 1:
            x_key = next(iter(datasets))
        if x_key is None:
            raise KeyError(f"{path}: cannot tell which dataset holds the inputs; pass x_key=... "
                           f"(the file holds {_describe(datasets)})")
    if y_key is None:
        y_key = _guess({k: v for k, v in datasets.items() if k != x_key.strip("/")}, Y_NAMES, "y", path)
    with h5py.File(path, "r") as f:
        x = np.asarray(f[x_key])
        y = None if y_key is None else np.asarray(f[y_key])
    if y is not None and len(y) != len(x):
        raise ValueError(f"{path}: '{x_key}' has {len(x)} samples but '{y_key}' has {len(y)}; they must match "
                         f"on the first axis")
    return x, y
