"""The IDX file format of MNIST and Fashion-MNIST (optionally gzipped).

Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then
one big-endian uint32 per dimension, then the data in C order.
"""
import gzip

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array stored in an IDX file, gzipped or not (told by its first bytes, not its name)."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: a gzip file that does not decompress ({e}); the file is truncated or "
                             f"corrupted") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX header promises shape {shape} ({expected} bytes) but the file holds "
                         f"{len(data) - header} bytes of data; the file is truncated or corrupted")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array, compresslevel=9):
    """Write a uint8/int8 `array` as an IDX file, gzipped (reproducibly) when the name ends in .gz."""
    array = np.ascontiguousarray(array)
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}.get(array.dtype)
    if code is None:
        raise ValueError(f"write_idx supports uint8 and int8 arrays, got {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    if str(path).endswith(".gz"):
        # no timestamp and no name in the gzip header: the same array always gives the same bytes
        with open(str(path), "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0,
                                                       compresslevel=compresslevel) as f:
            f.write(header + array.tobytes())
    else:
        with open(str(path), "wb") as f:
            f.write(header + array.tobytes())


def read_idx_set(train_images, train_labels, test_images, test_labels):
    """(x_train, y_train), (x_test, y_test) from the four IDX files of an MNIST-like set."""
    x_train, y_train, x_test, y_test = (read_idx(p) for p in (train_images, train_labels, test_images, test_labels))
    for x, y, xp, yp in ((x_train, y_train, train_images, train_labels), (x_test, y_test, test_images, test_labels)):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{xp} holds images of shape {x.shape} but {yp} holds labels of shape {y.shape}: "
                             f"expected (n, rows, cols) images and (n,) labels; the files do not belong together")
    return (x_train, y_train), (x_test, y_test)
