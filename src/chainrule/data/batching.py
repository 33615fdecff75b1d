"""Batches for the training loop: from in-memory arrays, or from a Python generator/iterable.

Arrays come in as nested structures (an array, a list of arrays for several inputs, a
dict keyed by input name); every leaf is sliced on its first axis.
"""
import math

import numpy as np

from .. import random
from ..layers.base import flatten, map_structure


def _num_samples(structure):
    leaves = [leaf for leaf in flatten(structure) if leaf is not None]
    sizes = {len(leaf) for leaf in leaves}
    if len(sizes) > 1:
        raise ValueError(f"all inputs and targets must have the same number of samples (first axis); "
                         f"got sizes {sorted(sizes)}")
    return sizes.pop() if sizes else 0


def as_array(x):
    """A NumPy array (floats as float32 unless they are already a float dtype)."""
    from ..variable import as_numpy
    a = as_numpy(x)
    if a.dtype == np.float64:
        a = a.astype(np.float32)  # user data in float64 would promote every layer; Keras casts too
    return a


class ArrayBatches:
    """Iterate (x, y, sample_weight) batches over arrays, reshuffled every epoch.

    The permutation comes from chainrule's seeded generator, so `cr.random.seed(n)`
    repeats the batch order. Each batch gathers rows with np.take into a buffer reused
    from the previous batch, so an epoch allocates once instead of once per batch.
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, drop_remainder=False):
        self.x = map_structure(as_array, x)
        self.y = None if y is None else map_structure(as_array, y)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        self.n = _num_samples([self.x, self.y, self.sample_weight])
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self._buffers = {}

    def __len__(self):
        if self.drop_remainder:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)

    def _gather(self, array, rows):
        if array is None:
            return None
        if isinstance(rows, slice):
            return array[rows]
        buf = self._buffers.get(id(array))
        if buf is None or buf.shape[0] != len(rows):
            buf = np.empty((len(rows),) + array.shape[1:], dtype=array.dtype)
            self._buffers[id(array)] = buf
        np.take(array, rows, axis=0, out=buf)
        return buf

    def __iter__(self):
        order = random.generator().permutation(self.n) if self.shuffle else None
        for b in range(len(self)):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
            rows = slice(start, stop) if order is None else order[start:stop]

            def take(a):
                return self._gather(a, rows)
            yield (map_structure(take, self.x), None if self.y is None else map_structure(take, self.y),
                   take(self.sample_weight))


class GeneratorBatches:
    """Batches from an iterable yielding x, (x,), (x, y) or (x, y, sample_weight).

    A generator is consumed as it goes: with `steps` set, each epoch takes that many batches
    from the same running generator (as Keras does); otherwise an epoch ends when it is exhausted
    (a re-iterable object such as a list or a Sequence is iterated afresh every epoch).
    """

    def __init__(self, data, steps=None):
        self.data = data
        self.steps = steps
        self._running = None

    def __len__(self):
        if self.steps is not None:
            return self.steps
        try:
            return len(self.data)
        except TypeError:
            return None

    def __iter__(self):
        if self.steps is None:
            source = iter(self.data)
        else:
            if self._running is None:
                self._running = iter(self.data)
            source = self._running
        count = 0
        while self.steps is None or count < self.steps:
            try:
                item = next(source)
            except StopIteration:
                self._running = None
                return
            count += 1
            yield unpack(item)


def unpack(item):
    """(x, y, sample_weight) from a batch given as x, (x,), (x, y) or (x, y, sw)."""
    if isinstance(item, tuple):
        if len(item) == 1:
            return item[0], None, None
        if len(item) == 2:
            return item[0], item[1], None
        if len(item) == 3:
            return item
        raise ValueError(f"a batch must be x, (x, y) or (x, y, sample_weight); got a tuple of {len(item)}")
    return item, None, None


def is_array_like(x):
    leaves = flatten(x)
    return all(hasattr(leaf, "shape") and hasattr(leaf, "__len__") for leaf in leaves if leaf is not None)


def split_validation(x, y, sample_weight, fraction):
    """Keras's validation_split: the last `fraction` of the samples, taken before any shuffling."""
    n = _num_samples([x, y, sample_weight])
    cut = int(n * (1 - fraction))
    if cut <= 0 or cut >= n:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation samples out of {n}")

    def head(a):
        return None if a is None else a[:cut]

    def tail(a):
        return None if a is None else a[cut:]
    return ((map_structure(head, x), map_structure(head, y), head(sample_weight)),
            (map_structure(tail, x), map_structure(tail, y), tail(sample_weight)))
