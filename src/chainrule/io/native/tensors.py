"""Arrays in and out of safetensors bytes, checked before anything is trusted.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON describing each
tensor (dtype, shape, byte offsets) plus an optional "__metadata__" map of strings, then the raw
data. It holds no code, so reading one can never run any. The `safetensors` package does the
encoding and decoding (its NumPy API); this module adds the checks that turn a bad file into one
clear `ModelFileError` that names the file and what is wrong with it.
"""
import json
import math
import struct

import numpy as np

from ...layers.base import snake_case

__all__ = ["ModelFileError", "encode_arrays", "decode_arrays", "weight_keys",
           "check_arrays_fit", "assign_arrays"]

# The safetensors library refuses headers over 100 MB too; no real header is anywhere near that.
MAX_HEADER_BYTES = 100_000_000

_DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class ModelFileError(ValueError):
    """A model, weights or checkpoint file that cannot be loaded: truncated, corrupted, not ours,
    or not matching the model. The message names the file and the problem; the model in
    memory is left as it was."""

    def __init__(self, filepath, problem, member=None):
        self.filepath = str(filepath)
        self.problem = problem
        self.member = member
        where = f"'{self.filepath}'" + (f" (its {member})" if member else "")
        super().__init__(f"cannot load {where}: {problem}")


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("chainrule's model files store weights as safetensors: "
                          "pip install safetensors  (or: pip install chainrule[save])") from None
    return safetensors


def _error(source, member, problem):
    return ModelFileError(source, problem, member)


def encode_arrays(arrays, metadata=None):
    """safetensors bytes of `arrays` (a dict name -> array) and an optional dict of strings."""
    safetensors = _safetensors()
    # np.require, not np.ascontiguousarray: that one turns 0-d arrays (the optimizer's step count) into 1-d
    contiguous = {name: np.require(a, requirements="C") for name, a in arrays.items()}
    return safetensors.numpy.save(contiguous, metadata=metadata)


def _parse_header(data, source, member=None):
    """The header dict of safetensors bytes, after checking that its length is sane."""
    if len(data) < 8:
        raise _error(source, member, f"the safetensors data is {len(data)} bytes long, too short to hold even "
                                     "its 8-byte header length (the file is truncated)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise _error(source, member, f"the safetensors header claims {n} bytes but only {len(data) - 8} follow "
                                     f"(and at most {MAX_HEADER_BYTES} are allowed): the file is truncated or "
                                     "corrupted")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _error(source, member, f"the safetensors header is not valid JSON ({e}): the file is corrupted") \
            from None
    if not isinstance(header, dict):
        raise _error(source, member, "the safetensors header is not a JSON object: the file is corrupted")
    return header, 8 + n


def _check_entries(header, data_bytes, source, member=None):
    """Every tensor's dtype, shape and byte range must be consistent and inside the data."""
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            size = _DTYPE_SIZES[dtype] * math.prod(int(s) for s in shape)
            ok = all(int(s) >= 0 for s in shape) and 0 <= begin <= end <= data_bytes and end - begin == size
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise _error(source, member, f"tensor '{name}' has an inconsistent header entry {entry!r} "
                                         f"(the data section is {data_bytes} bytes): the file is corrupted")


def decode_arrays(data, source, member=None):
    """(dict name -> NumPy array, metadata dict) from safetensors bytes; ModelFileError if bad."""
    header, start = _parse_header(data, source, member)
    _check_entries(header, len(data) - start, source, member)
    safetensors = _safetensors()
    try:
        arrays = safetensors.numpy.load(bytes(data))
    except Exception as e:  # the library's own SafetensorError (or a dtype NumPy cannot hold)
        raise _error(source, member, f"the safetensors data is invalid: {e}") from None
    metadata = header.get("__metadata__") or {}
    return arrays, dict(metadata)


# ----------------------------------------------------------------------------- model weights
def weight_keys(model):
    """[(key, variable)] for every weight of `model`, in `model.weights` order.

    A key is the weight's path through the model's structure, with each layer named by its class
    and its position among the layers of that class in its container, as Keras's .weights.h5
    files do: 'dense/kernel', 'dense_1/bias', 'batch_normalization/moving_mean', and
    'sequential/dense/kernel' inside a nested model. Two builds of the same architecture give the
    same keys even when their layers got other automatic names ('dense_7' in a busy session) or
    custom ones, so weights load into a fresh copy of the model. A layer's own weights come
    before its sublayers'; a weight shared by two layers is keyed where it is met first.
    """
    keys = {}

    def visit(layer, prefix):
        sublayers = list(getattr(layer, "layers", None) or [])
        inner = {id(w) for sub in sublayers for w in sub.weights}
        taken = set()
        for w in layer.weights:
            if id(w) in inner or id(w) in keys:
                continue
            name = _unique(str(getattr(w, "name", None) or "weight").split("/")[-1], taken)
            keys[id(w)] = prefix + name
        counts = {}
        for sub in sublayers:
            base = snake_case(type(sub).__name__)
            n = counts.get(base, 0)
            counts[base] = n + 1
            visit(sub, f"{prefix}{base if n == 0 else f'{base}_{n}'}/")

    visit(model, "")
    return [(keys[id(w)], w) for w in model.weights]


def _unique(name, taken):
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    taken.add(candidate)
    return candidate


def check_arrays_fit(pairs, arrays, source, what="weight", member=None):
    """Check that `arrays` (dict key -> array) holds exactly the keys of `pairs` [(key, variable)],
    each with the variable's shape and a compatible dtype. Raises ModelFileError, changing nothing."""
    expected = [key for key, _ in pairs]
    missing = [k for k in expected if k not in arrays]
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"the model's {what}s {_listing(missing)} are not in the file")
        if unexpected:
            parts.append(f"the file has {what}s {_listing(unexpected)} that the model lacks")
        raise _error(source, member, "; ".join(parts) + " (was it saved from a different architecture?)")
    for key, variable in pairs:
        array = arrays[key]
        shape = tuple(variable.shape)
        if tuple(array.shape) != shape:
            raise _error(source, member, f"{what} '{key}' has shape {tuple(array.shape)} in the file but "
                                         f"{shape} in the model")
        want = np.dtype(variable.dtype)
        if _kind(array.dtype) != _kind(want):
            raise _error(source, member, f"{what} '{key}' is {array.dtype} in the file but {want} in the model")


def assign_arrays(pairs, arrays):
    """Copy each checked array into its variable (in place, in the variable's dtype)."""
    for key, variable in pairs:
        variable.assign(arrays[key])


def _kind(dtype):
    # floats load into floats of another width (cast as Keras does), ints into ints; never across kinds
    return {"f": "float", "i": "integer", "u": "integer", "b": "bool"}.get(dtype.kind, dtype.kind)


def _listing(keys, limit=6):
    shown = ", ".join(f"'{k}'" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
