"""Saving and loading models, weights and checkpoints; PyTorch and ONNX interop.

The format follows the file's suffix:
    .chainrule     our zip: config.json (Keras 3's layout) + safetensors weights + optimizer state
    .safetensors   weights only (safetensors)
    .keras         Keras 3's own zip (config.json, metadata.json, model.weights.h5)
    .weights.h5    Keras 3's weights layout (HDF5)
    .npz           weights as a NumPy archive (no pickle)
Nothing here ever unpickles or runs code stored in a file.
"""
from .keras_dispatch import load_model, load_weights, save_model, save_weights
from .native import (ModelFileError, load_checkpoint, load_native, restore_training_state, save_checkpoint,
                     save_native)
from .onnx_export import export_onnx
from .torch_interop import export_state_dict, import_state_dict

__all__ = ["ModelFileError", "export_onnx", "export_state_dict", "import_state_dict", "load_checkpoint",
           "load_model", "load_native", "load_weights", "restore_training_state", "save_checkpoint", "save_model",
           "save_native", "save_weights"]
