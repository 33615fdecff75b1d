"""Keras 3's own model files, read and written as Keras 3 does: `.keras` and `.weights.h5`.

A `.keras` file is a zip (members stored, not compressed) holding

    metadata.json      {"keras_version": ..., "date_saved": ...}
    config.json        the model as data, in Keras's serialization layout
                       (written and read by chainrule.models.serialization, shared with .chainrule)
    model.weights.h5   the weights, in Keras's HDF5 layout (below)

and a `.weights.h5` file is that HDF5 file on its own. In it, every object Keras saves has a
group `<path>/vars` (attribute `name`: the object's name) whose datasets "0", "1", ... are its
own variables in order (trainable ones first). Paths follow Keras's walk of the model:

    vars                                   the model's own variables (usually none)
    layers/dense/vars/0, 1                 a functional or Sequential model's layers, named by
    layers/dense_1/vars/0, 1               class (snake_case) and numbered in the model's layer
    layers/sequential/layers/conv2d/...    order, nested models inside their parent
    layers/lstm/cell/vars/0, 1, 2          recurrent layers keep their weights in a `cell`
    layers/bidirectional/forward_layer/... wrappers by attribute name
    optimizer/vars/0, 1, 2, ...            iterations, learning rate, then the optimizer's slots
                                           (e.g. Adam: m, v of each variable, in Keras's
                                           order of model.trainable_variables)

The optimizer state travels both ways, so training resumed from a Keras checkpoint continues as
it would have in Keras. Loading checks everything (member names, sizes, HDF5 links, every shape)
before it changes anything, so a failed load leaves the model in memory as it was. Loading runs
no code from the file (see chainrule.models.serialization for `safe_mode`).

h5py is an optional dependency: `pip install h5py` (or `pip install chainrule[save]`).
"""
import datetime
import io
import json
import math
import os
import re
import warnings
import zipfile
import zlib

import numpy as np

__all__ = ["save_keras", "load_keras", "save_weights_h5", "load_weights_h5", "KerasFileError",
           "KERAS_LAYOUT_VERSION"]

KERAS_LAYOUT_VERSION = "3.15.1"   # the Keras release whose file layout this module writes and checks
CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"

# Size limits, checked on the sizes the zip declares and again while reading. Raise them (as
# module attributes) for models bigger than these.
MAX_JSON_BYTES = 64 * 2 ** 20          # config.json, metadata.json
MAX_WEIGHTS_BYTES = 64 * 2 ** 30       # model.weights.h5, and any one dataset in it
MAX_EXPANSION = 100                    # a member may not decompress to more than 100x its stored size
_EXPANSION_FLOOR = 2 ** 20             # ... once it is over 1 MiB (Keras stores members uncompressed)


class KerasFileError(ValueError):
    """A `.keras` / `.weights.h5` file that cannot be loaded: names the file, the member and the problem."""

    def __init__(self, path, member, problem):
        self.path, self.member, self.problem = path, member, problem
        where = f"'{path}'" + (f", member '{member}'" if member else "")
        super().__init__(f"{where}: {problem}")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras's .keras and .weights.h5 files hold their weights in HDF5, which needs h5py: "
                          "pip install h5py  (or: pip install chainrule[save])") from None
    return h5py


def _snake_case(name):
    """Keras's keras.src.utils.naming.to_snake_case: 'Conv2DTranspose' -> 'conv2d_transpose'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ============================================================================ Keras's walk of a model
# Keras's recurrent layers keep their weights in a `cell` sublayer; ours keep them on the layer.
_RNN_CELLS = {"SimpleRNN": "simple_rnn_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}
# Keras's wrappers name their sublayers by attribute
_WRAPPER_CHILDREN = {"Bidirectional": ("backward_layer", "forward_layer"), "TimeDistributed": ("layer",)}


class _Entry:
    """One `<path>/vars` group: whose variables it holds, in Keras's order."""

    def __init__(self, path, name, variables, owner):
        self.path, self.name, self.variables, self.owner = path, name, variables, owner

    @property
    def group(self):
        return f"{self.path}/vars" if self.path else "vars"


def _saveable_name(obj):
    from ..models.serialization import _is_functional
    return "functional" if _is_functional(obj) and type(obj).__name__ == "Model" else _snake_case(type(obj).__name__)


def _own_variables(layer):
    """A layer's own variables as Keras saves them: trainable ones first, each in creation order."""
    own = list(layer._own_weights)
    return [w for w in own if w.trainable] + [w for w in own if not w.trainable]


def _children(obj):
    """(attribute, child) pairs Keras's `_walk_saveable` visits: a layer, a list of layers, an optimizer."""
    from ..layers.base import Layer
    from ..models.model import Model
    from ..models.sequential import Sequential
    from ..models.serialization import _is_builtin, _is_functional, keras_layers_of
    optimizer = getattr(obj, "optimizer", None) if isinstance(obj, Model) else None
    if isinstance(obj, Sequential) or _is_functional(obj):
        children = [("layers", keras_layers_of(obj))]   # Keras visits these first
        return children + ([("optimizer", optimizer)] if optimizer is not None else [])
    cls_name = type(obj).__name__
    if isinstance(obj, Layer) and _is_builtin(type(obj)) and not isinstance(obj, Model):
        return [(attr, getattr(obj, attr)) for attr in _WRAPPER_CHILDREN.get(cls_name, ())
                if isinstance(getattr(obj, attr, None), Layer)]
    # a subclassed model or a custom layer: its public attributes holding layers, sorted by name
    found = {}
    for attr, value in vars(obj).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, Layer) or (isinstance(value, (list, tuple)) and value
                                        and all(isinstance(v, Layer) for v in value)):
            found[attr] = value
    if isinstance(obj, Model):
        found["layers"] = list(obj.layers)
        if optimizer is not None:
            found["optimizer"] = optimizer
    return sorted(found.items())


def keras_entries(model):
    """Every `vars` group Keras writes for `model`, in Keras's walk order (each object once)."""
    from ..layers.base import Layer
    from ..models.serialization import _is_builtin
    from ..optimizers import Optimizer
    entries, visited = [], set()

    def visit(obj, path):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        if isinstance(obj, Optimizer):
            entries.append(_Entry(path, obj.name, None, obj))
            return
        cls_name = type(obj).__name__
        if cls_name in _RNN_CELLS and _is_builtin(type(obj)):
            entries.append(_Entry(path, obj.name, [], obj))
            entries.append(_Entry(f"{path}/cell", _RNN_CELLS[cls_name], _own_variables(obj), obj))
        else:
            entries.append(_Entry(path, obj.name, _own_variables(obj), obj))
        for attr, child in _children(obj):
            child_path = f"{path}/{attr}" if path else attr
            if isinstance(child, (Layer, Optimizer)):
                visit(child, child_path)
            else:  # a container: items named by class, numbered in order (visited ones too)
                used = {}
                for item in child:
                    base = _saveable_name(item)
                    used[base] = used.get(base, -1) + 1
                    name = base if used[base] == 0 else f"{base}_{used[base]}"
                    visit(item, f"{child_path}/{name}")

    visit(model, "")
    return entries


# ============================================================================ optimizer state in Keras's order
def _optimizer_layout(optimizer, keras_variables):
    """[(label, shape, dtype)] of the arrays Keras stores for `optimizer` built on `keras_variables`."""
    layout = [("iterations", (), np.int64)]
    if not callable(optimizer._learning_rate):
        layout.append(("learning_rate", (), np.float32))
    for group in optimizer._slot_groups:
        for v in keras_variables:
            for slot in group:
                layout.append((f"{slot} of {getattr(v, 'path', v.name)}", tuple(v.shape), v.data.dtype))
    if type(optimizer).__name__ == "Nadam":
        layout.append(("u_product", (), keras_variables[0].data.dtype if keras_variables else np.float32))
    return layout


def _optimizer_arrays(optimizer, keras_variables):
    """The optimizer's state as Keras saves it: iterations, learning rate, then slots in Keras's order."""
    iterations = optimizer.iterations
    out = [np.asarray(iterations, dtype=np.int32 if iterations < 2 ** 31 else np.int64)]
    if not callable(optimizer._learning_rate):
        out.append(np.asarray(optimizer._learning_rate, dtype=np.float32))
    if not optimizer.built:
        return out  # as Keras: an optimizer that never ran saves its step count and learning rate only
    built = {id(v) for v in optimizer._variables_built}
    order = [v for v in keras_variables if id(v) in built]
    order += [v for v in optimizer._variables_built if id(v) not in {id(k) for k in order}]
    from .. import backend
    for group in optimizer._slot_groups:
        for v in order:
            slots = optimizer._slots_of(v)
            out.extend(backend.to_numpy(slots[slot]) for slot in group)
    out.extend(backend.to_numpy(a) for a in optimizer._extra_state())
    return out


# ============================================================================ writing
def _write_h5(model, h5file):
    """Write every variable (and the optimizer state) of `model` into an open h5py File."""
    from .. import backend
    from ..models.serialization import keras_trainable_variables
    keras_variables = None
    for entry in keras_entries(model):
        group = h5file.create_group(entry.group)
        group.attrs["name"] = entry.name
        if entry.variables is None:
            if keras_variables is None:
                keras_variables = keras_trainable_variables(model)
            arrays = _optimizer_arrays(entry.owner, keras_variables)
        else:
            arrays = [backend.to_numpy(w.data) for w in entry.variables]
        for i, array in enumerate(arrays):
            group[str(i)] = np.asarray(array, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def _h5_bytes(model):
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        _write_h5(model, f)
    return buffer.getvalue()


def _atomic_write(path, data):
    try:
        from .atomic import atomic_write_bytes
    except ImportError:  # pragma: no cover - atomic.py is part of the package
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    atomic_write_bytes(path, data)


def save_keras(model, path):
    """Write `model` as a Keras 3 `.keras` file (config.json, metadata.json, model.weights.h5),
    atomically: a failure leaves any previous file at `path` as it was."""
    from .. import __version__
    from ..models.serialization import model_to_config
    path = os.fspath(path)
    config = json.dumps(model_to_config(model))
    metadata = json.dumps({"keras_version": KERAS_LAYOUT_VERSION,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                           "producer": f"chainrule {__version__}"})
    weights = _h5_bytes(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:  # as Keras: members stored
        zf.writestr(METADATA, metadata)
        zf.writestr(CONFIG, config)
        zf.writestr(WEIGHTS, weights)
    _atomic_write(path, buffer.getvalue())


def save_weights_h5(model, path):
    """Write the model's weights (and optimizer state, when compiled) as Keras's `.weights.h5`."""
    path = os.fspath(path)
    if not model.built:
        raise ValueError(f"save_weights('{path}'): the model '{model.name}' is not built yet, so it has no "
                         f"weights: call it on data or build it first")
    _atomic_write(path, _h5_bytes(model))


# ============================================================================ reading: the zip
def _check_member_name(path, name):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise KerasFileError(path, name, "unsafe member name (absolute path or '..'): refusing the whole file")


def _open_zip(path):
    try:
        archive = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise KerasFileError(path, None, f"not a readable .keras zip (truncated or corrupted?): {error}") from None
    try:
        names = archive.namelist()
        if len(set(names)) != len(names):
            raise KerasFileError(path, None, "the zip lists a member twice")
        for name in names:
            _check_member_name(path, name)
    except BaseException:
        archive.close()
        raise
    return archive


def _read_member(archive, path, name, limit):
    """A member's bytes, refusing oversized ones (by the declared size and while reading)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise KerasFileError(path, name, f"missing: a .keras file holds {CONFIG}, {METADATA} and {WEIGHTS}; "
                                         f"this one has {archive.namelist()}") from None
    if info.file_size > limit:
        raise KerasFileError(path, name, f"declares {info.file_size} bytes, over the limit of {limit} "
                                         f"(chainrule.io.keras_format.MAX_{'JSON' if name.endswith('json') else 'WEIGHTS'}_BYTES)")
    if info.file_size > _EXPANSION_FLOOR and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
        raise KerasFileError(path, name, f"declares {info.file_size} bytes stored in {info.compress_size}: "
                                         f"refusing a likely decompression bomb")
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError, NotImplementedError) as error:
        raise KerasFileError(path, name, f"cannot be read (truncated, corrupted, encrypted or an unknown "
                                         f"compression): {error}") from None
    if len(data) > limit:
        raise KerasFileError(path, name, f"is larger than the limit of {limit} bytes")
    return data


def _read_json(archive, path, name):
    data = _read_member(archive, path, name, MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KerasFileError(path, name, f"is not valid JSON: {error}") from None


# ============================================================================ reading: HDF5, safely
class _H5Reader:
    """Read-only access to a Keras weights file that refuses links, external or virtual datasets,
    non-numeric data and oversized datasets (the checks Keras 3.15 makes, and a few more)."""

    def __init__(self, h5file, path, member):
        self.h5py = _h5py()
        self.file, self.path, self.member = h5file, path, member

    def error(self, problem):
        return KerasFileError(self.path, self.member, problem)

    def group(self, name):
        """The group at `name` ('a/b/vars'), or None when it does not exist."""
        current = self.file
        for part in name.split("/"):
            if part not in current:
                return None
            link = current.get(part, getlink=True)
            if isinstance(link, (self.h5py.SoftLink, self.h5py.ExternalLink)):
                raise self.error(f"'{name}' goes through an HDF5 link ({type(link).__name__}), which is refused")
            current = current[part]
            if not isinstance(current, self.h5py.Group):
                raise self.error(f"'{name}' should be a group, found {type(current).__name__}")
        return current

    def arrays(self, group, name):
        """The datasets '0', '1', ... of a vars group, as arrays (checked, then read)."""
        keys = list(group.keys())
        expected = [str(i) for i in range(len(keys))]
        if sorted(keys, key=lambda k: (len(k), k)) != expected:
            raise self.error(f"'{name}' should hold datasets named 0..{len(keys) - 1}, found {sorted(keys)}")
        out = []
        for key in expected:
            link = group.get(key, getlink=True)
            if isinstance(link, (self.h5py.SoftLink, self.h5py.ExternalLink)):
                raise self.error(f"'{name}/{key}' is an HDF5 link ({type(link).__name__}), which is refused")
            ds = group[key]
            if not isinstance(ds, self.h5py.Dataset):
                raise self.error(f"'{name}/{key}' should be a dataset, found {type(ds).__name__}")
            if ds.external:
                raise self.error(f"'{name}/{key}' is stored in an external file, which is refused")
            if ds.is_virtual:
                raise self.error(f"'{name}/{key}' is a virtual dataset, which is refused")
            if ds.dtype.kind not in "fiub":
                raise self.error(f"'{name}/{key}' has dtype {ds.dtype}, not a number")
            declared = math.prod(ds.shape or ()) * ds.dtype.itemsize
            if declared > MAX_WEIGHTS_BYTES:
                raise self.error(f"'{name}/{key}' declares {declared} bytes, over the limit of "
                                 f"{MAX_WEIGHTS_BYTES} (chainrule.io.keras_format.MAX_WEIGHTS_BYTES)")
            try:
                out.append(np.asarray(ds[()]))
            except (OSError, ValueError) as error:
                raise self.error(f"'{name}/{key}' cannot be read (truncated or corrupted): {error}") from None
        return out


def _open_h5(data_or_path, path, member):
    h5py = _h5py()
    try:
        source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
        return h5py.File(source, "r")
    except (OSError, ValueError) as error:
        raise KerasFileError(path, member, f"is not a readable HDF5 file (truncated or corrupted?): {error}") \
            from None


# ============================================================================ reading: plan, then assign
def _plan(model, reader, skip_mismatch=False, load_optimizer=True):
    """Every (variable, array) pair and the optimizer state to restore, all checked; nothing assigned."""
    from ..models.serialization import keras_trainable_variables
    assignments, optimizer_state, skipped = [], None, []
    for entry in keras_entries(model):
        if entry.variables is None:
            if load_optimizer:
                optimizer_state = _plan_optimizer(model, entry, reader, keras_trainable_variables(model))
            continue
        group = reader.group(entry.group)
        if group is None:
            if entry.variables:
                problem = (f"has no group '{entry.group}' for the {len(entry.variables)} weights of layer "
                           f"'{entry.owner.name}' ({type(entry.owner).__name__}); the file was saved from a "
                           f"different model (groups at the top: {sorted(reader.file.keys())})")
                if skip_mismatch:
                    skipped.append(problem)
                    continue
                raise reader.error(problem)
            continue
        arrays = reader.arrays(group, entry.group)
        problem = _mismatch(entry, arrays)
        if problem:
            if skip_mismatch:
                skipped.append(problem)
                continue
            raise reader.error(problem)
        assignments.extend(zip(entry.variables, arrays))
    for problem in skipped:
        warnings.warn(f"'{reader.path}': skipped (skip_mismatch=True): {problem}", stacklevel=3)
    return assignments, optimizer_state


def _mismatch(entry, arrays):
    layer = f"layer '{entry.owner.name}' ({type(entry.owner).__name__})"
    if len(arrays) != len(entry.variables):
        return (f"'{entry.group}' holds {len(arrays)} arrays but {layer} has {len(entry.variables)} weights "
                f"{[w.path for w in entry.variables]}")
    for i, (w, a) in enumerate(zip(entry.variables, arrays)):
        if tuple(a.shape) != tuple(w.shape):
            return (f"'{entry.group}/{i}' has shape {tuple(a.shape)} but weight '{w.path}' of {layer} has shape "
                    f"{tuple(w.shape)}: the file was saved from a model with different layer sizes")
    return None


def _plan_optimizer(model, entry, reader, keras_variables):
    """The optimizer arrays mapped to (kind, key, array) assignments, or None to leave it as it is."""
    optimizer = entry.owner
    group = reader.group(entry.group)
    if group is None:
        return None
    arrays = reader.arrays(group, entry.group)
    layout = _optimizer_layout(optimizer, keras_variables)
    head = 2 if not callable(optimizer._learning_rate) else 1
    if len(arrays) == head and len(layout) > head:
        layout = layout[:head]  # the optimizer had not run yet when the file was saved: no slots
    elif len(arrays) != len(layout):
        warnings.warn(f"'{reader.path}': '{entry.group}' holds {len(arrays)} optimizer arrays but optimizer "
                      f"'{optimizer.name}' ({type(optimizer).__name__}) on this model has {len(layout)}: its state "
                      f"is not restored (as Keras does), so training restarts the optimizer from zero",
                      stacklevel=4)
        return None
    for i, ((label, shape, _), array) in enumerate(zip(layout, arrays)):
        if tuple(array.shape) != tuple(shape):
            raise reader.error(f"'{entry.group}/{i}' ({label}) has shape {tuple(array.shape)}, expected {shape}")
    return optimizer, keras_variables, arrays, len(layout) > head


def _commit(model, assignments, optimizer_state):
    for variable, array in assignments:
        variable.assign(np.asarray(array, dtype=variable.data.dtype))
    if optimizer_state is None:
        return
    optimizer, keras_variables, arrays, has_slots = optimizer_state
    if has_slots:
        optimizer.build(model.trainable_weights)  # the order training will use; slots are keyed by variable
    optimizer.iterations = int(arrays[0])
    k = 1
    if not callable(optimizer._learning_rate):
        optimizer.learning_rate = float(arrays[1])
        k = 2
    if not has_slots:
        return
    for group in optimizer._slot_groups:
        for v in keras_variables:
            slots = optimizer._slots_of(v)
            for slot in group:
                slots[slot][...] = np.asarray(arrays[k], dtype=slots[slot].dtype)
                k += 1
    for extra in optimizer._extra_state():
        extra[...] = arrays[k]
        k += 1


def _keras_vs_trainer_check(model, reader):
    """Our optimizer builds on model.trainable_weights; Keras's order must cover the same variables."""
    from ..models.serialization import keras_trainable_variables
    ours = {id(w) for w in model.trainable_weights}
    theirs = {id(w) for w in keras_trainable_variables(model)}
    if ours != theirs:
        raise reader.error("the model's trainable variables differ from Keras's view of them; cannot map the "
                           "optimizer state")


def load_weights_h5(model, path, skip_mismatch=False):
    """Load a Keras `.weights.h5` file (written by Keras 3 or by chainrule) into `model`; a `.keras`
    file works too (its weights member is read, as Keras's load_weights does).

    Every group and shape is checked first; on any problem nothing is changed. With
    skip_mismatch=True, layers whose weights do not match are skipped with a warning.
    The optimizer state is restored too when the file has it and the model is compiled.
    """
    path = os.fspath(path)
    if not model.built:
        raise ValueError(f"load_weights('{path}'): the model '{model.name}' is not built yet: call it on data or "
                         f"build it first, so that its weights exist")
    member, source = None, path
    if path.lower().endswith(".keras"):
        with _open_zip(path) as archive:
            member, source = WEIGHTS, _read_member(archive, path, WEIGHTS, MAX_WEIGHTS_BYTES)
    with _open_h5(source, path, member) as h5file:
        reader = _H5Reader(h5file, path, member)
        assignments, optimizer_state = _plan(model, reader, skip_mismatch=skip_mismatch)
        if optimizer_state is not None:
            _keras_vs_trainer_check(model, reader)
    _commit(model, assignments, optimizer_state)


def load_keras(path, custom_objects=None, compile=True, safe_mode=True):
    """A model from a `.keras` file written by Keras 3 or by chainrule: built from config.json
    (classes looked up by name, no code run), weights and optimizer state from model.weights.h5.
    `compile=False` skips the compile_config (and the optimizer state)."""
    from ..models.serialization import DeserializationError, model_from_config
    path = os.fspath(path)
    with _open_zip(path) as archive:
        config = _read_json(archive, path, CONFIG)
        if METADATA in archive.namelist():
            _read_member(archive, path, METADATA, MAX_JSON_BYTES)
        if not isinstance(config, dict):
            raise KerasFileError(path, CONFIG, f"should hold a JSON object, found {type(config).__name__}")
        if not compile:
            config = dict(config, compile_config=None)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*input_shape.*")
                model = model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode)
        except DeserializationError as error:
            raise KerasFileError(path, CONFIG, str(error)) from error
        weights = _read_member(archive, path, WEIGHTS, MAX_WEIGHTS_BYTES)
    with _open_h5(weights, path, WEIGHTS) as h5file:
        reader = _H5Reader(h5file, path, WEIGHTS)
        assignments, optimizer_state = _plan(model, reader, load_optimizer=compile)
        if optimizer_state is not None:
            _keras_vs_trainer_check(model, reader)
    _commit(model, assignments, optimizer_state)
    return model
