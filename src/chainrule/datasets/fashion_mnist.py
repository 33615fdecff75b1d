"""Fashion-MNIST (Zalando Research, MIT license): 28x28 grayscale images of 10 kinds of clothing.

``load_data()`` returns exactly what ``keras.datasets.fashion_mnist.load_data()`` returns. The
files are looked for as ``_resolve.py`` describes (path=, $CHAINRULE_DATA, ~/.cache/chainrule,
~/.keras/datasets, Debian's /usr/share/datasets/fashion-mnist) and otherwise downloaded from
Zalando's mirror, checked against the SHA-256 sums below.

``load_data(subset="embedded")`` returns the small stratified subset shipped inside chainrule
(6000 train + 1000 test images, see ``embedded.py``): no network, no system package.

About the sums: they are those of the canonical ``.gz`` files on Zalando's mirror (whose MD5s
the Fashion-MNIST README publishes). Debian's package holds the same compressed data with
the gzip header rewritten (file name dropped, new timestamp), so its ``.gz`` files hash
differently; putting the original header back reproduces these sums byte for byte.
"""
from . import _resolve
from .idx import read_idx_set

NAME = "fashion-mnist"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
# Zalando's own mirror first (canonical; plain http, which the pinned SHA-256 makes safe),
# then the copy Keras downloads from.
MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
           "https://storage.googleapis.com/tensorflow/tf-keras-datasets/")
MIRROR_ENV = "CHAINRULE_FASHION_MNIST_MIRROR"
SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)  # Debian's dataset-fashion-mnist package
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def load_data(path=None, subset=None, base_url=None, download=True):
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of shapes
    (60000, 28, 28), (60000,), (10000, 28, 28), (10000,), as Keras returns them.

    path: a folder holding the four IDX files (gzipped or not); searched alone when given.
    subset: None for the full set, "embedded" for the 6000 + 1000 subset shipped in the package.
    base_url: mirror(s) to download from instead of Zalando's (also $CHAINRULE_FASHION_MNIST_MIRROR).
    download: False never touches the network (as $CHAINRULE_OFFLINE=1 does).
    """
    if subset == "embedded":
        from . import embedded
        return embedded.load_data()
    if subset is not None:
        raise ValueError(f"fashion_mnist.load_data: subset must be None (the full set) or 'embedded', got {subset!r}")
    from . import _download
    _, paths = _resolve.locate(
        NAME, "Fashion-MNIST", [FILES], path=path, keras_subdir="fashion-mnist", system_dirs=SYSTEM_DIRS,
        download=download, download_layout=FILES, sums=SHA256,
        bases=_download.mirrors(MIRROR_ENV, MIRRORS, base_url),
        hints=["apt-get install dataset-fashion-mnist (Debian/Ubuntu)",
               "download the four files from " + MIRRORS[0],
               "or use the small copy shipped with chainrule: fashion_mnist.load_data(subset='embedded')"])
    return read_idx_set(*paths)
