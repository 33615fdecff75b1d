"""Models: Sequential, functional Model(inputs, outputs), subclassed Model; training in trainer.py."""
from .model import Model
from .sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save` ('.chainrule', or a '.keras' file from chainrule or Keras 3).

    Loading never runs code from the file: classes are looked up by name among chainrule's
    and those you pass in `custom_objects` (or register); a Lambda needs safe_mode=False.
    """
    from ..io import load_model as load
    return load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


__all__ = ["Model", "Sequential", "load_model"]
