"""Checkpoints that resume exactly: a `.chainrule` model file plus what training needs to go on.

A run interrupted after epoch k and resumed from its checkpoint ends with the same weights, bit
for bit, as a run that was never interrupted. Besides the weights and the optimizer state
(momenta, `iterations`, the exact learning rate) that every `.chainrule` file holds, that takes:

    training_state.json     {"epoch": k + 1, the epoch to resume at (= initial_epoch),
                             "epoch_complete": true, "batch": null,
                             "rng": chainrule.random's generator state (it draws each epoch's
                                    shuffle order and unseeded dropout masks),
                             "layer_rngs": the generators of seeded layers (Dropout(seed=...)),
                             "callbacks": EarlyStopping's wait/best, ReduceLROnPlateau's
                                    wait/best/cooldown, ModelCheckpoint's best, ...}
    callbacks.safetensors   arrays a callback holds (EarlyStopping's best_weights)

Resuming, in three calls:

    model, state = load_checkpoint("run/ckpt.chainrule")
    model.fit(x, y, epochs=20, initial_epoch=state["epoch"], callbacks=[...the same kinds...])

`load_checkpoint` restores the RNG state after building the model (building draws initial
weights from it); `fit` calls `restore_training_state` right after its callbacks' on_train_begin
(which resets EarlyStopping and ReduceLROnPlateau), putting back their state and the RNG state
again, in case anything drew random numbers between loading and fitting.

Exactness holds for checkpoints written at the end of an epoch. One written mid-epoch
(ModelCheckpoint(save_freq=N)) restarts that epoch on resuming: the shuffle order of the
interrupted epoch was already drawn, so such a resume is close, not identical (a warning says so).
"""
import json
import warnings

import numpy as np

from ... import random as cr_random
from .model_file import load_from_members, model_members, read_archive, read_json, write_archive
from .tensors import ModelFileError, decode_arrays, encode_arrays

__all__ = ["save_checkpoint", "load_checkpoint", "restore_training_state", "training_state"]

TRAINING_STATE, CALLBACK_ARRAYS = "training_state.json", "callbacks.safetensors"

# The attributes that carry a callback's memory from one epoch to the next. The counters and "best"
# values are what on_train_begin resets; restoring them makes a resumed run decide as the
# uninterrupted one would have.
_CALLBACK_FIELDS = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "ModelCheckpoint": ("best", "_batches_seen_since_last_saving", "_last_batch_seen"),
}
_CALLBACK_ARRAY_LISTS = {"EarlyStopping": "best_weights"}  # lists of arrays, kept in callbacks.safetensors


# ----------------------------------------------------------------------------- random generators
def _plain(value):
    """A generator state (nested dicts, ints, NumPy arrays and scalars) as JSON-able data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unplain(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _unplain(v) for k, v in value.items()}
    return value


def _layers_by_path(model):
    """{'outer/inner': layer} for every layer nested in `model` (names joined by '/')."""
    found = {}

    def visit(layer, prefix):
        for sub in getattr(layer, "layers", []):
            path = f"{prefix}{sub.name}"
            if path not in found:
                found[path] = sub
                visit(sub, path + "/")
    visit(model, "")
    return found


def _layer_generators(model):
    """{'layer_path.attribute': Generator} for layers owning their own generator (seeded noise layers)."""
    shared = cr_random.generator()
    out = {}
    for path, layer in _layers_by_path(model).items():
        for attr, value in sorted(vars(layer).items()):
            if isinstance(value, np.random.Generator) and value is not shared:
                out[f"{path}.{attr}"] = value
    return out


# ----------------------------------------------------------------------------- callbacks
def _callback_kind(callback):
    """The name in _CALLBACK_FIELDS of chainrule's callback class `callback` is (or derives from)."""
    for cls in type(callback).__mro__:
        if cls.__name__ in _CALLBACK_FIELDS and cls.__module__.startswith("chainrule.callbacks"):
            return cls.__name__
    return None


def _number(value):
    return value.item() if isinstance(value, np.generic) else value


def _callback_states(callbacks):
    """(JSON list, arrays dict) of the state of every callback whose memory matters."""
    states, arrays, counts = [], {}, {}
    for callback in callbacks or []:
        kind = _callback_kind(callback)
        if kind is None:
            continue
        occurrence = counts.get(kind, 0)
        counts[kind] = occurrence + 1
        entry = {"class_name": kind, "occurrence": occurrence,
                 "fields": {f: _number(getattr(callback, f, None)) for f in _CALLBACK_FIELDS[kind]}}
        list_name = _CALLBACK_ARRAY_LISTS.get(kind)
        values = getattr(callback, list_name, None) if list_name else None
        if values is not None:
            entry["array_list"] = {"name": list_name, "length": len(values)}
            for j, a in enumerate(values):
                arrays[f"{len(states)}/{list_name}/{j}"] = np.asarray(a)
        states.append(entry)
    return states, arrays


def _restore_callbacks(states, callbacks):
    by_kind = {}
    for callback in callbacks or []:
        kind = _callback_kind(callback)
        if kind is not None:
            by_kind.setdefault(kind, []).append(callback)
    for entry in states:
        candidates = by_kind.get(entry["class_name"], [])
        if entry["occurrence"] >= len(candidates):
            continue  # this run does not use that callback any more: nothing to restore
        callback = candidates[entry["occurrence"]]
        for name, value in entry["fields"].items():
            setattr(callback, name, value)
        if "array_list" in entry:
            setattr(callback, entry["array_list"]["name"], [a.copy() for a in entry["arrays"]])


# ----------------------------------------------------------------------------- saving
def training_state(model, epoch, batch=None, callbacks=None):
    """(JSON-able dict, arrays dict): what a resumed run needs besides the model file.

    `epoch` and `batch` are 0-based, as callbacks receive them: a save from on_epoch_end(epoch)
    has batch None and resumes at epoch + 1; a save after `batch` of `epoch` resumes at `epoch`.
    """
    callback_states, arrays = _callback_states(callbacks)
    state = {
        "epoch": int(epoch) + 1 if batch is None else int(epoch),
        "epoch_complete": batch is None,
        "batch": None if batch is None else int(batch),
        "rng": _plain(cr_random.get_state()),
        "layer_rngs": {key: _plain(g.bit_generator.state) for key, g in _layer_generators(model).items()},
        "callbacks": callback_states,
    }
    return state, arrays


def save_checkpoint(model, filepath, epoch, batch=None, callbacks=None):
    """Write a `.chainrule` checkpoint: the model file plus the training state (atomically).

    Args:
        epoch: 0-based index of the epoch that just ended (or is under way, with `batch`).
        batch: None at an epoch's end; the 0-based batch index for a save within an epoch.
        callbacks: the run's callbacks, whose state is saved with it (EarlyStopping,
            ReduceLROnPlateau, ModelCheckpoint). Take the snapshot after every callback has
            seen this epoch's end, so that a reduced learning rate or a new "best" is in it.
    """
    members = model_members(model)
    state, arrays = training_state(model, epoch, batch, callbacks)
    members[TRAINING_STATE] = json.dumps(state, indent=1).encode("utf-8")
    if arrays:
        members[CALLBACK_ARRAYS] = encode_arrays(arrays)
    write_archive(filepath, members)


# ----------------------------------------------------------------------------- loading and resuming
def load_checkpoint(filepath, custom_objects=None, safe_mode=True):
    """Load a checkpoint: returns (model, state), the model compiled with its optimizer state.

    `state['epoch']` is the epoch to resume at: `model.fit(..., initial_epoch=state['epoch'])`.
    The RNG states are restored now (after building the model); the callback states are put back
    by `fit` (through `restore_training_state`) into callbacks of the same kinds, matched by class
    and order.
    """
    filepath = str(filepath)
    members = read_archive(filepath)
    if TRAINING_STATE not in members:
        raise ModelFileError(filepath, f"it is a model file without a {TRAINING_STATE}, not a checkpoint: load it "
                                       "with models.load_model (training then starts afresh)")
    state = read_json(members, TRAINING_STATE, filepath)
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or "rng" not in state:
        raise ModelFileError(filepath, f"{TRAINING_STATE} lacks the epoch or the RNG state", TRAINING_STATE)
    arrays = {}
    if CALLBACK_ARRAYS in members:
        arrays, _ = decode_arrays(members[CALLBACK_ARRAYS], filepath, CALLBACK_ARRAYS)
    for i, entry in enumerate(state.get("callbacks", [])):
        if "array_list" in entry:
            spec = entry["array_list"]
            keys = [f"{i}/{spec['name']}/{j}" for j in range(spec["length"])]
            if any(k not in arrays for k in keys):
                raise ModelFileError(filepath, f"the arrays of callback {entry['class_name']} are missing",
                                     CALLBACK_ARRAYS)
            entry["arrays"] = [arrays[k] for k in keys]
    model = load_from_members(members, filepath, custom_objects, compile=True, safe_mode=safe_mode)
    _restore_generators(model, state)
    model._resume_state = state
    return model, state


def _restore_generators(model, state):
    cr_random.set_state(_unplain(state["rng"]))
    generators = _layer_generators(model)
    for key, saved in state.get("layer_rngs", {}).items():
        if key in generators:
            generators[key].bit_generator.state = _unplain(saved)


def restore_training_state(model, callbacks, initial_epoch):
    """Put back what `load_checkpoint` left pending on `model`; `fit` calls this right after its
    callbacks' on_train_begin. Returns True when the run resumes exactly.

    Only when `initial_epoch` is the checkpoint's epoch: a fit that starts elsewhere is a new run
    from the loaded weights, and the old callback state would not belong to it. The pending state is
    used once; later fits on the same model start afresh.
    """
    state = getattr(model, "_resume_state", None)
    if state is None:
        return False
    model._resume_state = None
    if initial_epoch != state["epoch"]:
        warnings.warn(f"the checkpoint was saved to resume at epoch {state['epoch']} but fit starts at "
                      f"initial_epoch={initial_epoch}: the callback and RNG states are not restored. To resume "
                      "the interrupted run exactly, pass initial_epoch=state['epoch']", stacklevel=3)
        return False
    if not state.get("epoch_complete", True):
        warnings.warn(f"the checkpoint was written within epoch {state['epoch'] + 1} (after batch "
                      f"{state['batch'] + 1}); resuming restarts that epoch with a new shuffle order, so the run "
                      "will be close to, not identical with, an uninterrupted one", stacklevel=3)
    _restore_generators(model, state)
    _restore_callbacks(state.get("callbacks", []), callbacks)
    return True
