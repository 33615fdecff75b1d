"""Users' own images: ``image_dataset_from_directory`` with Keras's arguments and semantics.

    main_directory/
        class_a/  a_image_1.jpg  a_image_2.jpg ...
        class_b/  b_image_1.jpg  ...

    train_ds, val_ds = image_dataset_from_directory("main_directory", validation_split=0.2,
                                                    subset="both", seed=123, image_size=(180, 180))
    model.fit(train_ds, validation_data=val_ds, epochs=10)

What Keras does, we do: class names are the sorted sub-folder names (or `class_names=` in
that order); files are listed recursively in sorted order, then shuffled once with
``np.random.RandomState(seed)`` exactly as Keras does, so a given seed puts the very same
files in the training and the validation subset as Keras would; the last
``int(validation_split * n)`` files are the validation subset. Images are decoded by Pillow
(an optional dependency, imported only here), converted to grayscale / RGB / RGBA, and resized
with half-pixel-centre bilinear (or nearest) interpolation without antialiasing, like
``tf.image.resize``; pixel values stay in 0..255, as float32.

Instead of a ``tf.data.Dataset`` you get an ``ImageDataset``: an iterable of ``(x, y)`` NumPy
batches that ``Model.fit`` accepts, with ``class_names``, ``file_paths``, ``len()`` (batches per
epoch), ``as_arrays()``, and no-op-or-simple ``cache()``, ``shuffle()``, ``prefetch()``, ``map()``
so tutorial code chaining them still runs. ``load_images_from_directory`` returns plain arrays.
"""
import math
import os

import numpy as np

from .. import random

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _pillow():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading image files needs Pillow, which is not installed: `pip install pillow` "
                          "(or `pip install chainrule[data]`)") from e
    return Image


# ----------------------------------------------------------------------------- finding the files
def index_directory(directory, labels="inferred", class_names=None, shuffle=True, seed=None, follow_links=False,
                    formats=ALLOWLIST_FORMATS):
    """(file paths, integer labels or None, class names) in Keras's order (see the module docstring)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"image_dataset_from_directory: {directory!r} is not a directory")
    if labels == "inferred":
        subdirs = sorted(d for d in os.listdir(directory)
                         if os.path.isdir(os.path.join(directory, d)) and not d.startswith("."))
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError(f"class_names={list(class_names)} do not match the sub-folders of {directory!r}: "
                                 f"expected names among {subdirs}")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError("class_names can only be given with labels='inferred' (the sub-folder names)")
        subdirs = [""]
    paths, found_labels = [], []
    for index, subdir in enumerate(subdirs):
        root_dir = os.path.join(directory, subdir)
        for root, _, files in sorted(os.walk(root_dir, followlinks=follow_links), key=lambda w: w[0]):
            for name in sorted(files):
                if name.lower().endswith(formats):
                    paths.append(os.path.join(root, name))
                    found_labels.append(index)
    if labels == "inferred":
        labels = np.asarray(found_labels, dtype=np.int32)
        class_names = list(subdirs)
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(paths):
            raise ValueError(f"labels has {len(labels)} entries but {directory!r} holds {len(paths)} image files; "
                             f"give one label per file, in sorted file-path order")
        labels = np.asarray(labels, dtype=np.int32)
        class_names = [str(v) for v in sorted(set(labels.tolist()))]
    if shuffle:
        # Keras shuffles paths and labels with two RandomState(seed) of the same seed: same permutation
        if seed is None:
            seed = int(random.generator().integers(1_000_000))
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, class_names


def split_subset(paths, labels, validation_split, subset):
    """Keras's split: the last int(validation_split * n) files validate, the rest train."""
    if not validation_split:
        return paths, labels
    n_val = int(validation_split * len(paths))
    keep = slice(None, len(paths) - n_val) if subset == "training" else slice(len(paths) - n_val, None)
    return paths[keep], None if labels is None else labels[keep]


# ----------------------------------------------------------------------------- decoding and resizing
def resize(image, size, interpolation="bilinear"):
    """Resize an (h, w, c) array to `size` = (height, width) as tf.image.resize does without
    antialiasing: output pixel i samples input coordinate (i + 1/2) * in/out - 1/2, interpolated
    linearly between its two neighbours (or taking the nearest pixel, floor((i + 1/2) * in/out))."""
    image = np.asarray(image, dtype=np.float32)
    for axis, (n_in, n_out) in enumerate(zip(image.shape[:2], size)):
        if n_in == n_out:
            continue
        scale = n_in / n_out
        if interpolation == "nearest":
            idx = np.minimum(np.floor((np.arange(n_out) + 0.5) * scale).astype(np.int64), n_in - 1)
            image = np.take(image, idx, axis=axis)
            continue
        src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (src - lo).astype(np.float32).reshape((-1,) + (1,) * (image.ndim - 1 - axis))
        image = np.take(image, lo, axis=axis) * (1 - frac) + np.take(image, hi, axis=axis) * frac
    return image


def _crop_or_pad_box(height, width, target_h, target_w, pad):
    """Keras's centred box of the target aspect ratio: the largest inside the image (crop) or
    the smallest around it (pad)."""
    pick = max if pad else min
    box_h = max(pick(height, int(width * target_h / target_w)), 1)
    box_w = max(pick(width, int(height * target_w / target_h)), 1)
    return box_h, box_w


def load_image(path, color_mode="rgb", image_size=(256, 256), interpolation="bilinear",
               crop_to_aspect_ratio=False, pad_to_aspect_ratio=False):
    """One image file as a float32 array (height, width, channels) with values 0..255."""
    Image = _pillow()
    with Image.open(path) as img:
        array = np.asarray(img.convert(_PIL_MODES[color_mode]), dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    target_h, target_w = image_size
    h, w = array.shape[:2]
    if crop_to_aspect_ratio:
        box_h, box_w = _crop_or_pad_box(h, w, target_h, target_w, pad=False)
        top, left = (h - box_h) // 2, (w - box_w) // 2
        array = array[top:top + box_h, left:left + box_w]
    elif pad_to_aspect_ratio:
        box_h, box_w = _crop_or_pad_box(h, w, target_h, target_w, pad=True)
        top, left = (box_h - h) // 2, (box_w - w) // 2
        padded = np.zeros((box_h, box_w, array.shape[2]), dtype=np.float32)
        padded[top:top + h, left:left + w] = array
        array = padded
    return resize(array, (target_h, target_w), interpolation)


def encode_labels(labels, label_mode, num_classes):
    """Integer labels as Keras's label_mode asks: 'int' int32 (n,), 'categorical' float32 one-hot
    (n, num_classes), 'binary' float32 (n, 1)."""
    if label_mode == "int":
        return labels.astype(np.int32)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    raise ValueError(f"label_mode must be 'int', 'categorical', 'binary' or None, got {label_mode!r}")


# ----------------------------------------------------------------------------- the dataset
class ImageDataset:
    """Batches of images read from files: iterate for ``(x, y)`` NumPy batches (x alone without labels).

    x is float32 (batch, height, width, channels); y as `label_mode` asks. Each iteration is
    one epoch, reshuffled when `shuffle` is on. ``len()`` is the number of batches per epoch.
    """

    def __init__(self, file_paths, labels, class_names, label_mode="int", batch_size=32, shuffle=True, seed=None,
                 image_options=None, data_format="channels_last"):
        self.file_paths = list(file_paths)
        self.class_names = class_names
        self.label_mode = label_mode
        self.batch_size = batch_size
        self._labels = None if labels is None or label_mode is None else encode_labels(
            np.asarray(labels), label_mode, len(class_names or ()))
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed) if seed is not None else random.generator()
        self._image_options = dict(image_options or {})
        self._data_format = data_format
        self._cache = None
        self._maps = []

    def __len__(self):
        if self.batch_size is None:
            return len(self.file_paths)
        return math.ceil(len(self.file_paths) / self.batch_size)

    def __repr__(self):
        return (f"<ImageDataset files={len(self.file_paths)}, classes={self.class_names}, "
                f"batch_size={self.batch_size}, batches={len(self)}>")

    def _image(self, i):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        image = load_image(self.file_paths[i], **self._image_options)
        if self._cache is not None:
            self._cache[i] = image
        return image

    def _batch(self, rows):
        x = np.stack([self._image(i) for i in rows])
        if self._data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        item = x if self._labels is None else (x, self._labels[rows])
        for fn in self._maps:
            item = _to_numpy(fn(*item) if isinstance(item, tuple) else fn(item))
        return item

    def __iter__(self):
        n = len(self.file_paths)
        order = self._rng.permutation(n) if self._shuffle else np.arange(n)
        if self.batch_size is None:
            for i in order:
                item = self._batch(np.array([i]))
                yield tuple(a[0] for a in item) if isinstance(item, tuple) else item[0]
            return
        for start in range(0, n, self.batch_size):
            yield self._batch(order[start:start + self.batch_size])

    def as_arrays(self):
        """Every image and label in file order (unshuffled): ``(x, y)``, or x alone without labels."""
        return self._batch(np.arange(len(self.file_paths)))

    # --- tf.data-style chaining, so tutorial code runs unchanged -------------------------------
    def cache(self, filename=""):
        """Keep decoded images in memory after their first read (the `filename` form is not supported)."""
        if filename:
            raise NotImplementedError("ImageDataset.cache(filename) is not supported; call cache() to keep images "
                                      "in memory")
        if self._cache is None:
            self._cache = {}
        return self

    def shuffle(self, buffer_size=None, seed=None, reshuffle_each_iteration=True):
        """Reshuffle every epoch (a full shuffle, so `buffer_size` does not matter)."""
        self._shuffle = True
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        return self

    def prefetch(self, buffer_size=None):
        """Nothing to do: batches are read on demand. Returns the dataset itself."""
        return self

    def map(self, fn):
        """Apply `fn` to every batch, as ``fn(x, y)`` (or ``fn(x)`` without labels); returns the dataset."""
        self._maps.append(fn)
        return self


def _to_numpy(item):
    from ..variable import as_numpy
    if isinstance(item, tuple):
        return tuple(as_numpy(a) for a in item)
    return as_numpy(item)


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """An ImageDataset (or, with ``subset="both"``, a (training, validation) pair) of the
    images under `directory`, with Keras's arguments; see the module docstring."""
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f"labels must be 'inferred', None, or a list of integer labels (one per file), "
                         f"got {labels!r}")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f"label_mode must be 'int', 'categorical', 'binary' or None, got {label_mode!r}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if color_mode not in _CHANNELS:
        raise ValueError(f"color_mode must be one of {sorted(_CHANNELS)}, got {color_mode!r}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation {interpolation!r} is not supported here: use 'bilinear' or 'nearest'")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be True")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    _check_split(validation_split, subset, shuffle, seed)
    _pillow()  # fail now, with the install hint, rather than at the first batch
    if seed is None:
        seed = int(random.generator().integers(1_000_000))

    paths, int_labels, names = index_directory(directory, labels, class_names, shuffle, seed, follow_links)
    if verbose:
        print(f"Found {len(paths)} files." if int_labels is None else
              f"Found {len(paths)} files belonging to {len(names)} classes.")
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes, found {len(names)}: {names}")
    options = dict(color_mode=color_mode, image_size=tuple(image_size), interpolation=interpolation,
                   crop_to_aspect_ratio=crop_to_aspect_ratio, pad_to_aspect_ratio=pad_to_aspect_ratio)

    def make(which, shuffled):
        p, y = split_subset(paths, int_labels, validation_split, which)
        if not p:
            what = f"{which} images" if which else "images"
            raise ValueError(f"no {what} found in {directory!r} (allowed formats: {', '.join(ALLOWLIST_FORMATS)})")
        if verbose and validation_split:
            print(f"Using {len(p)} files for {which}.")
        return ImageDataset(p, y, names, label_mode, batch_size, shuffled, seed, options, data_format)

    if subset == "both":
        return make("training", shuffle), make("validation", False)
    return make(subset, shuffle)


def _check_split(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {validation_split}")
    if bool(validation_split) != bool(subset):
        raise ValueError("subset and validation_split go together: give both (e.g. validation_split=0.2, "
                         "subset='training') or neither")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f"subset must be 'training', 'validation' or 'both', got {subset!r}")
    if validation_split and shuffle and seed is None:
        raise ValueError("with validation_split and shuffle=True, pass a seed= so that the training and "
                         "validation subsets (made by two separate calls) do not overlap")


def load_images_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                               image_size=(256, 256), interpolation="bilinear", follow_links=False,
                               crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, verbose=False):
    """Every image under `directory` as arrays, in sorted file order: ``(x, y, class_names)``
    with x float32 (n, height, width, channels) in 0..255 and y as `label_mode` asks (None
    without labels). Same arguments as image_dataset_from_directory."""
    ds = image_dataset_from_directory(directory, labels, label_mode, class_names, color_mode, batch_size=None,
                                      image_size=image_size, shuffle=False, interpolation=interpolation,
                                      follow_links=follow_links, crop_to_aspect_ratio=crop_to_aspect_ratio,
                                      pad_to_aspect_ratio=pad_to_aspect_ratio, verbose=verbose)
    data = ds.as_arrays()
    x, y = data if isinstance(data, tuple) else (data, None)
    return x, y, ds.class_names
