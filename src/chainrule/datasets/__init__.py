"""Datasets, Keras-compatible where Keras has them.

Real data (uint8 arrays, exactly as Keras returns them)::

    mnist.load_data()            (x_train, y_train), (x_test, y_test)
    fashion_mnist.load_data()    found locally (path=, $CHAINRULE_DATA, ~/.cache/chainrule,
                                 ~/.keras/datasets, Debian's package) or downloaded, SHA-256 checked
    embedded.load_data()         6000 + 1000 Fashion-MNIST images shipped inside chainrule
                                 (also fashion_mnist.load_data(subset="embedded"))

Generated data (seeded with ``seed=``, NumPy only)::

    xor, moons, circles, spirals, blobs     2-D toys: x float32 (n, 2), y int64 (n,)
    heartbeat(...)                          1-D signals (n, length, 1) with mask, position, present
    microscopy(...)                         cell images (n, h, w, 1) with masks, density maps, counts

Your own data::

    image_dataset_from_directory(...)   Keras's function; batches of (x, y) NumPy arrays for fit
    load_images_from_directory(...)     the same as arrays (x, y, class_names)
    load_hdf5(path, x_key, y_key)       arrays stored in an HDF5 file
    read_idx(path), write_idx(path, a)  the IDX format of MNIST (gzipped or not)
"""
from . import embedded, fashion_mnist, mnist
from ._resolve import DatasetNotFoundError, cache_dir
from .directory import ImageDataset, image_dataset_from_directory, load_images_from_directory
from .hdf5 import load_hdf5
from .heartbeat import heartbeat
from .idx import read_idx, write_idx
from .microscopy import microscopy
from .toys import blobs, circles, moons, spirals, xor

__all__ = ["mnist", "fashion_mnist", "embedded", "read_idx", "write_idx", "DatasetNotFoundError", "cache_dir",
           "xor", "moons", "circles", "spirals", "blobs", "heartbeat", "microscopy",
           "image_dataset_from_directory", "load_images_from_directory", "ImageDataset", "load_hdf5"]
