"""Models: Sequential, functional Model(inputs, outputs), subclassed Model; training in trainer.py."""
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
