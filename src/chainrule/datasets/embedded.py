"""A small Fashion-MNIST shipped inside chainrule, so a demo runs with no network and no system package.

6000 training images (600 per class) and 1000 test images (100 per class), drawn without
replacement from the full Fashion-MNIST with a fixed seed, kept in their original order,
stored as gzipped IDX files under ``datasets/data/fashion-mnist-subset/`` with Fashion-MNIST's
MIT license and attribution (Zalando Research: Han Xiao, Kashif Rasul, Roland Vollgraf).

    from chainrule.datasets import embedded
    (x_train, y_train), (x_test, y_test) = embedded.load_data()   # uint8, like fashion_mnist

The same data: ``fashion_mnist.load_data(subset="embedded")``.

To regenerate the files from a full copy (e.g. Debian's dataset-fashion-mnist)::

    python -m chainrule.datasets.embedded --source /usr/share/datasets/fashion-mnist

which calls ``make_subset`` then ``write_subset``; the output is byte-for-byte reproducible.
"""
from pathlib import Path

import numpy as np

from .idx import read_idx_set, write_idx

DATA_DIR = Path(__file__).parent / "data" / "fashion-mnist-subset"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SEED = 20170828  # the day Fashion-MNIST was published
TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def load_data():
    """The embedded subset as ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes
    (6000, 28, 28), (6000,), (1000, 28, 28), (1000,), every class 600 / 100 times."""
    paths = [DATA_DIR / f for f in FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the embedded Fashion-MNIST subset is missing from this installation ({missing}); "
                                f"reinstall chainrule or regenerate it with "
                                f"`python -m chainrule.datasets.embedded --source DIR`")
    return read_idx_set(*paths)


def stratified_indices(labels, per_class, rng):
    """Sorted indices of `per_class` samples of every class, drawn without replacement."""
    labels = np.asarray(labels)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has only {len(members)} samples, fewer than per_class={per_class}")
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


def make_subset(source=None, train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS, seed=SEED):
    """The stratified subset drawn from the full Fashion-MNIST found at `source` (or the usual places)."""
    from . import fashion_mnist
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=source)
    rng = np.random.default_rng(seed)
    train = stratified_indices(y_train, train_per_class, rng)
    test = stratified_indices(y_test, test_per_class, rng)
    return (x_train[train], y_train[train]), (x_test[test], y_test[test])


def write_subset(subset, folder=DATA_DIR):
    """Write ``(x_train, y_train), (x_test, y_test)`` as the four gzipped IDX files in `folder`."""
    (x_train, y_train), (x_test, y_test) = subset
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILES, (x_train, y_train, x_test, y_test)):
        write_idx(folder / name, np.asarray(array, dtype=np.uint8))
    return folder


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m chainrule.datasets.embedded",
                                     description="Regenerate chainrule's embedded Fashion-MNIST subset.")
    parser.add_argument("--source", default=None, help="folder with the full Fashion-MNIST IDX files "
                                                       "(default: the usual search, e.g. Debian's copy)")
    parser.add_argument("--out", default=str(DATA_DIR), help="where to write the four .gz files")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    folder = write_subset(make_subset(args.source, seed=args.seed), args.out)
    print(f"wrote {', '.join(FILES)} to {folder}")


if __name__ == "__main__":
    main()
