"""Small helpers shared by the high-level API (the progress bar, ...)."""
from .numerical import normalize, to_categorical


def image_dataset_from_directory(*args, **kwargs):
    """keras.utils.image_dataset_from_directory; see chainrule.datasets.image_dataset_from_directory."""
    from ..datasets import image_dataset_from_directory as load
    return load(*args, **kwargs)


__all__ = ["image_dataset_from_directory", "normalize", "to_categorical"]
