"""chainrule: a readable reverse-mode autodiff engine on NumPy, with the Keras API on top.

Low level, like PyTorch::

    import chainrule as cr
    w = cr.randn(3, 2, requires_grad=True)
    loss = (cr.tensor([[1.0, 2.0, 3.0]]) @ w).relu().sum()
    loss.backward()
    w.grad          # d loss / d w, a NumPy array

High level, like Keras (``from chainrule import layers, models, optimizers, losses``)::

    model = models.Sequential([layers.Input((784,)), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""
import numpy as _np

from . import accelerate, backend, ops, random
from .accelerate import set_numba
from .autograd import Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .backend import num_threads, set_num_threads
from .creation import (arange, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand, randint,
                       randn, tensor, zeros, zeros_like)
from .ops import (abs, concat, exp, log, matmul, maximum, mean, minimum, relu, reshape, sigmoid, softmax, split,
                  sqrt, stack, sum, tanh, where)
from .ops.conv import set_conv_algorithm
from .teach.gradcheck import GradcheckError, gradcheck

float32 = _np.float32
float64 = _np.float64

__version__ = "0.1.0"

# The Keras-level modules load on first use (`cr.layers`, or `from chainrule import layers`),
# so `import chainrule` stays as light as the engine.
_LAZY = {"activations", "callbacks", "data", "datasets", "initializers", "io", "layers", "losses", "metrics",
         "models", "optimizers", "regularizers", "schedules", "utils"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
