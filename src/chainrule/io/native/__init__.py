"""chainrule's own file formats: `.chainrule` models and checkpoints, `.safetensors` weights.

    tensors.py      safetensors bytes in and out, checked; ModelFileError; weights keyed by path
    model_file.py   the `.chainrule` zip: config.json, model.safetensors, optimizer.safetensors,
                    metadata.json; save_native / load_native; save/load_weights_safetensors
    checkpoint.py   training_state.json on top: save_checkpoint / load_checkpoint and
                    restore_training_state, for runs that resume bit for bit

Nothing here runs code from a file: configs are JSON naming registered classes, arrays are
safetensors, and no pickle is used anywhere.
"""
from .checkpoint import load_checkpoint, restore_training_state, save_checkpoint, training_state
from .model_file import (FORMAT_VERSION, load_native, load_weights_safetensors, save_native,
                         save_weights_safetensors)
from .tensors import ModelFileError

__all__ = ["ModelFileError", "FORMAT_VERSION", "save_native", "load_native", "save_weights_safetensors",
           "load_weights_safetensors", "save_checkpoint", "load_checkpoint", "restore_training_state",
           "training_state"]
