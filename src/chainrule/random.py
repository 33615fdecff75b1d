"""The library's seeded random source (weights, dropout, shuffling, rand/randn).

One NumPy Generator for everything, so `cr.random.seed(n)` makes a run repeatable.
"""
import numpy as np

_generator = np.random.default_rng()


def seed(n):
    """Reseed the shared generator: everything random after this call repeats exactly."""
    global _generator
    _generator = np.random.default_rng(n)


def generator():
    """The shared numpy.random.Generator."""
    return _generator


def get_state():
    """The generator's state as plain data (a dict), to save with a checkpoint."""
    return _generator.bit_generator.state


def set_state(state):
    """Restore a state returned by `get_state`."""
    _generator.bit_generator.state = state
