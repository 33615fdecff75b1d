"""chainrule's native model file, `name.chainrule`: one zip archive of data, never code.

    config.json             the architecture and compile settings (Keras 3's config layout:
                            `chainrule.models.serialization.model_to_config`)
    model.safetensors       every weight, keyed by its structural path ('conv2d/kernel', 'dense_1/bias',
                            ...: layers named by class and position, as Keras's .weights.h5 does)
    optimizer.safetensors   the optimizer's state when it has taken a step: Keras's numbered
                            variables '0', '1', ... (iterations, learning rate, slots)
    metadata.json           chainrule version, date saved, format version
    training_state.json     checkpoints only (see checkpoint.py): epoch, RNG and callback states

Loading reads JSON and safetensors only (no pickle anywhere), rebuilds the layers from
registered classes by name, then checks every array's name, shape and dtype before any
weight is assigned. A damaged or mismatched file raises `ModelFileError`.
Writing goes through `chainrule.io.atomic`, so an interrupted save leaves the old file whole.
"""
import datetime
import json
import zipfile
import zlib

from ... import backend
from ..atomic import atomic_open, atomic_write_bytes
from .tensors import ModelFileError, assign_arrays, check_arrays_fit, decode_arrays, encode_arrays, weight_keys

__all__ = ["FORMAT_VERSION", "save_native", "load_native", "save_weights_safetensors", "load_weights_safetensors",
           "model_members", "write_archive", "read_archive", "load_from_members"]

FORMAT_VERSION = 1
CONFIG, WEIGHTS, OPTIMIZER, METADATA = "config.json", "model.safetensors", "optimizer.safetensors", "metadata.json"
MAX_JSON_BYTES = 64 * 2**20  # a config this large is not a config: refuse before reading it into memory


def _version():
    from ... import __version__
    return __version__


def _metadata():
    return {"format": "chainrule", "format_version": FORMAT_VERSION, "chainrule_version": _version(),
            "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S")}


def _to_json_bytes(obj):
    return json.dumps(obj, indent=1, allow_nan=True).encode("utf-8")


def _weight_arrays(model):
    return {key: backend.to_numpy(w.data) for key, w in weight_keys(model)}


def _require_built(model, what):
    if not getattr(model, "built", False):
        raise ValueError(f"{what}: model '{model.name}' is not built, so it has no weights yet; call it on data, "
                         "train it, or give it an Input first")


# ----------------------------------------------------------------------------- the optimizer
def _optimizer_arrays(model):
    """(arrays, metadata) of the compiled model's optimizer state, or None before its first step."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return None
    store = {}
    optimizer.save_own_variables(store)
    metadata = {"class_name": type(optimizer).__name__, "count": str(len(store))}
    if _has_float_learning_rate(optimizer):
        # The state stores the rate as float32; the exact Python float is kept too, because weight decay
        # combines it in double precision and callbacks derive new rates from it (lr * factor): a resumed
        # run must repeat those bit for bit.
        metadata["learning_rate"] = repr(float(optimizer.learning_rate))
    return store, metadata


def _has_float_learning_rate(optimizer):
    return isinstance(optimizer.get_config().get("learning_rate"), (int, float))


def _load_optimizer(model, data, filepath):
    """Build the model's (freshly compiled) optimizer on its trainable weights and restore its state."""
    arrays, metadata = decode_arrays(data, filepath, OPTIMIZER)
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)  # the order fit builds it in: the saved state follows it
    current = optimizer.variables
    keys = [str(i) for i in range(len(current))]
    if sorted(arrays, key=lambda k: (len(k), k)) != keys:
        raise ModelFileError(filepath, f"the optimizer state holds {len(arrays)} arrays but "
                                       f"{type(optimizer).__name__} '{optimizer.name}' on this model has "
                                       f"{len(current)} (saved from a different optimizer or architecture?)",
                             OPTIMIZER)
    for key, array in zip(keys, current):
        if tuple(arrays[key].shape) != tuple(array.shape):
            raise ModelFileError(filepath, f"optimizer array {key} has shape {tuple(arrays[key].shape)} in the file "
                                           f"but {tuple(array.shape)} in the optimizer", OPTIMIZER)
    optimizer.load_own_variables(arrays)
    if "learning_rate" in metadata and _has_float_learning_rate(optimizer):
        optimizer.learning_rate = float(metadata["learning_rate"])


# ----------------------------------------------------------------------------- the archive
def model_members(model):
    """The archive's members for `model`, as a dict name -> bytes."""
    from ...models.serialization import model_to_config
    _require_built(model, "save")
    members = {CONFIG: _to_json_bytes(model_to_config(model)),
               WEIGHTS: encode_arrays(_weight_arrays(model),
                                      {"format": "chainrule", "format_version": str(FORMAT_VERSION)})}
    optimizer = _optimizer_arrays(model)
    if optimizer is not None:
        members[OPTIMIZER] = encode_arrays(*optimizer)
    members[METADATA] = _to_json_bytes(_metadata())
    return members


def write_archive(filepath, members):
    """Write the members into a zip at `filepath`, atomically. JSON is deflated; safetensors are
    stored as they are (float data barely compresses, and stored members read back faster)."""
    with atomic_open(filepath, "wb") as f, zipfile.ZipFile(f, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=method)


def _check_declared_size(info, filepath):
    """Refuse, before decompressing anything, members whose declared size is implausible: a config
    bigger than any config, or a large member inflating more than 200-fold (a "zip bomb"; real weights
    barely compress, and we store them uncompressed)."""
    if info.filename.endswith(".json") and info.file_size > MAX_JSON_BYTES:
        raise ModelFileError(filepath, f"{info.filename} claims {info.file_size} bytes, far more than any model "
                                       "config: the file is corrupted or not a chainrule model")
    if info.file_size > MAX_JSON_BYTES and info.file_size > 200 * max(info.compress_size, 1):
        raise ModelFileError(filepath, f"{info.filename} claims to inflate from {info.compress_size} to "
                                       f"{info.file_size} bytes: the file is corrupted or malicious")


def read_archive(filepath):
    """Every member of a .chainrule zip as a dict name -> bytes; ModelFileError if it is not one."""
    filepath = str(filepath)
    try:
        with zipfile.ZipFile(filepath) as archive:
            for info in archive.infolist():
                _check_declared_size(info, filepath)
            members = {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise ModelFileError(filepath, f"it is not a complete zip archive ({e}): the file is truncated, corrupted, "
                                       "or not a .chainrule model") from None
    for name in (METADATA, CONFIG, WEIGHTS):
        if name not in members:
            raise ModelFileError(filepath, f"the archive has no {name} (it holds {sorted(members)}): not a "
                                           ".chainrule model file")
    metadata = read_json(members, METADATA, filepath)
    if not isinstance(metadata, dict):
        metadata = {"not a JSON object": metadata}
    version = metadata.get("format_version")
    if metadata.get("format") != "chainrule" or not isinstance(version, int):
        raise ModelFileError(filepath, f"{METADATA} does not describe a chainrule model: {metadata!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(filepath, f"it was written in format version {version} by chainrule "
                                       f"{metadata.get('chainrule_version')}, newer than this chainrule "
                                       f"{_version()} reads (format {FORMAT_VERSION}): upgrade chainrule")
    return members


def read_json(members, name, filepath):
    """A JSON member, parsed; ModelFileError if it is not valid JSON."""
    try:
        return json.loads(members[name].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFileError(filepath, f"{name} is not valid JSON ({e}): the file is corrupted") from None


def load_from_members(members, filepath, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild the model described by an archive's members (see `load_native`)."""
    from ...models.serialization import DeserializationError, model_from_config
    config = read_json(members, CONFIG, filepath)
    if not isinstance(config, dict):
        raise ModelFileError(filepath, f"{CONFIG} is not a JSON object")
    if not compile:
        config = dict(config)
        config.pop("compile_config", None)
    weights, _ = decode_arrays(members[WEIGHTS], filepath, WEIGHTS)  # a damaged file fails before any build
    try:
        model = model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode)
    except DeserializationError as e:
        raise ModelFileError(filepath, str(e), CONFIG) from e
    pairs = weight_keys(model)
    check_arrays_fit(pairs, weights, filepath, member=WEIGHTS)
    assign_arrays(pairs, weights)
    if compile and OPTIMIZER in members and getattr(model, "optimizer", None) is not None:
        _load_optimizer(model, members[OPTIMIZER], filepath)
    return model


# ----------------------------------------------------------------------------- the public functions
def save_native(model, filepath):
    """Save architecture, weights, optimizer state and compile settings to one `.chainrule` file.

    The write is atomic: if it fails midway (an error, a kill, a full disk), a previous file at
    `filepath` is left as it was.
    """
    write_archive(filepath, model_members(model))


def load_native(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `save_native` (or a checkpoint: its training state is ignored here).

    Args:
        custom_objects: dict name -> class or function, for custom layers and objects the config
            names that are not registered with chainrule.
        compile: compile the model as it was saved and restore the optimizer state (when the file has
            one); False gives an uncompiled model with the same weights.
        safe_mode: refuse configs that would need code to be run (a Lambda's bytecode).

    Raises `ModelFileError` (a ValueError) for a truncated, corrupted or mismatched file.
    """
    members = read_archive(filepath)
    return load_from_members(members, str(filepath), custom_objects, compile, safe_mode)


def save_weights_safetensors(model, filepath):
    """Write every weight of `model` to a `.safetensors` file, keyed by its path, atomically."""
    _require_built(model, "save_weights")
    data = encode_arrays(_weight_arrays(model),
                         {"format": "chainrule", "format_version": str(FORMAT_VERSION)})
    atomic_write_bytes(filepath, data)


def load_weights_safetensors(model, filepath):
    """Load weights saved by `save_weights_safetensors` into `model` (same architecture).

    Every name, shape and dtype is checked before any weight changes: on a `ModelFileError`
    the model keeps the weights it had.
    """
    _require_built(model, "load_weights")
    with open(filepath, "rb") as f:
        data = f.read()
    arrays, _ = decode_arrays(data, str(filepath))
    pairs = weight_keys(model)
    check_arrays_fit(pairs, arrays, str(filepath))
    assign_arrays(pairs, arrays)
