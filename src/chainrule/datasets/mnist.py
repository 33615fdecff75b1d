"""MNIST (Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0): 28x28 handwritten digits.

``load_data()`` returns exactly what ``keras.datasets.mnist.load_data()`` returns. Each place
listed in ``_resolve.py`` may hold the data either as Keras's ``mnist.npz`` or as the four
classic IDX files (gzipped or not). When none does, Keras's ``mnist.npz`` is downloaded from
Keras's mirror and checked against the SHA-256 that Keras itself pins.
"""
from pathlib import Path

import numpy as np

from . import _resolve
from .idx import read_idx_set

NAME = "mnist"
NPZ = ("mnist.npz",)
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
LAYOUTS = [NPZ, IDX_FILES]
SHA256 = {
    # keras/src/datasets/mnist.py pins this sum for its mnist.npz
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    # the canonical IDX files (as mirrored for torchvision and TFDS), for checking copies by hand
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MIRRORS = ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",)
MIRROR_ENV = "CHAINRULE_MNIST_MIRROR"
SYSTEM_DIRS = ()  # no Debian/Ubuntu package ships MNIST (`apt-cache search mnist` lists only Fashion-MNIST)


def load_data(path=None, base_url=None, download=True):
    """MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of shapes
    (60000, 28, 28), (60000,), (10000, 28, 28), (10000,), as Keras returns them.

    path: an ``mnist.npz`` file, or a folder holding it or the four IDX files; searched alone
        when it exists. Keras's default ``path="mnist.npz"`` is accepted and means "look as usual".
    base_url: mirror(s) to download ``mnist.npz`` from (also $CHAINRULE_MNIST_MIRROR).
    download: False never touches the network (as $CHAINRULE_OFFLINE=1 does).
    """
    from . import _download
    if path is not None and str(path).endswith(".npz"):
        if Path(path).is_file():
            return _read_npz(path)
        if Path(path).name == str(path):
            path = None  # Keras's `path="mnist.npz"` names a file inside its cache: look as usual
    index, paths = _resolve.locate(
        NAME, "MNIST", LAYOUTS, path=path, keras_subdir="", system_dirs=SYSTEM_DIRS, download=download,
        download_layout=NPZ, sums=SHA256, bases=_download.mirrors(MIRROR_ENV, MIRRORS, base_url),
        hints=["download " + MIRRORS[0] + NPZ[0] + " (Keras's copy)"])
    return _read_npz(paths[0]) if LAYOUTS[index] == NPZ else read_idx_set(*paths)


def _read_npz(path):
    # allow_pickle=False: an .npz from elsewhere can then hold only plain arrays, never code
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise ValueError(f"{path}: an MNIST .npz needs arrays x_train, y_train, x_test, y_test; "
                             f"missing {sorted(missing)} (it holds {sorted(f.files)})")
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
