"""One entry point for model files: the format is chosen BY THE FILE NAME'S SUFFIX.

    model.keras          Keras 3's model file (config + weights + optimizer)   chainrule.io.keras_format
    model.weights.h5     Keras 3's weights file (HDF5, needs h5py)              chainrule.io.keras_format
    model.chainrule      chainrule's own model file (JSON + safetensors)        chainrule.io.native
    model.safetensors    weights only, safetensors                              chainrule.io.native
    model.npz            weights only, NumPy .npz                               chainrule.io.simple

`.keras` and `.weights.h5` files travel between chainrule and Keras 3 in both directions;
`.chainrule` is our own format (also Keras's config layout, with safetensors weights).
Each format module is imported only when a file of its kind is used.
"""
import os

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "MODEL_SUFFIXES", "WEIGHTS_SUFFIXES"]

MODEL_SUFFIXES = (".keras", ".chainrule")
WEIGHTS_SUFFIXES = (".weights.h5", ".safetensors", ".npz")


def _suffix(path, known, what):
    name = os.fspath(path).lower()
    for suffix in known:
        if name.endswith(suffix):
            return suffix
    hint = ""
    if what == "model" and any(name.endswith(s) for s in WEIGHTS_SUFFIXES):
        hint = " (that is a weights-only file: use save_weights/load_weights)"
    elif what == "weights" and name.endswith(".chainrule"):
        hint = " (that is a whole-model file: use models.load_model)"
    elif name.endswith(".h5"):
        hint = " (Keras 3 weights files end in '.weights.h5'; legacy Keras 2 '.h5' model files are not supported)"
    raise ValueError(f"cannot tell the file format of '{os.fspath(path)}' from its name{hint}: {what} files must end "
                     f"in one of {', '.join(known)}")


def save_model(model, path):
    """Save the whole model (architecture, weights, optimizer state) in the format its suffix names."""
    suffix = _suffix(path, MODEL_SUFFIXES, "model")
    if suffix == ".keras":
        from .keras_format import save_keras
        return save_keras(model, path)
    from .native import save_native
    return save_native(model, path)


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `save_model` or by Keras 3 (`.keras`); runs no code from the file."""
    suffix = _suffix(path, MODEL_SUFFIXES, "model")
    if suffix == ".keras":
        from .keras_format import load_keras
        return load_keras(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    from .native import load_native
    return load_native(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_weights(model, path):
    """Save the weights in the format the suffix names (.weights.h5, .safetensors or .npz)."""
    suffix = _suffix(path, WEIGHTS_SUFFIXES, "weights")
    if suffix == ".weights.h5":
        from .keras_format import save_weights_h5
        return save_weights_h5(model, path)
    if suffix == ".safetensors":
        from .native import save_weights_safetensors
        return save_weights_safetensors(model, path)
    from .simple import save_weights_npz
    return save_weights_npz(model, path)


def load_weights(model, path, skip_mismatch=False):
    """Load weights saved by `save_weights` (or by Keras 3, `.weights.h5`) into `model`; every shape
    is checked before anything changes. As in Keras, a `.keras` model file can be read for its weights."""
    suffix = _suffix(path, WEIGHTS_SUFFIXES + (".keras",), "weights")
    if suffix in (".weights.h5", ".keras"):
        from .keras_format import load_weights_h5
        return load_weights_h5(model, path, skip_mismatch=skip_mismatch)
    if skip_mismatch:
        raise ValueError(f"load_weights('{os.fspath(path)}'): skip_mismatch is supported for .weights.h5 files only")
    if suffix == ".safetensors":
        from .native import load_weights_safetensors
        return load_weights_safetensors(model, path)
    from .simple import load_weights_npz
    return load_weights_npz(model, path)
