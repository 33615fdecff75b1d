"""Small helpers shared by the high-level API (the progress bar, ...)."""
from .numerical import normalize, to_categorical

__all__ = ["normalize", "to_categorical"]
