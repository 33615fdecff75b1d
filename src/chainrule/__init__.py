"""chainrule: a readable reverse-mode autodiff engine on NumPy, with the Keras API on top.

Low level, like PyTorch::

    import chainrule as cr
    w = cr.randn(3, 2, requires_grad=True)
    loss = (cr.tensor([[1.0, 2.0, 3.0]]) @ w).relu().sum()
    loss.backward()
    w.grad          # d loss / d w, a NumPy array
"""
import numpy as _np

from . import backend, ops, random
from .autograd import Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .creation import (arange, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand, randint,
                       randn, tensor, zeros, zeros_like)
from .ops import (abs, concat, exp, log, matmul, maximum, mean, minimum, relu, reshape, sigmoid, softmax, split,
                  sqrt, stack, sum, tanh, where)
from .teach.gradcheck import GradcheckError, gradcheck

float32 = _np.float32
float64 = _np.float64

__version__ = "0.1.0"
