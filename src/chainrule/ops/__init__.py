"""Every differentiable operation, forward and backward side by side, grouped by kind.

    math        elementwise arithmetic, exp/log/pow/where/maximum, comparisons
    reduce      sum, mean, max, min, var, std, logsumexp, argmax
    shape       reshape, transpose, permute, getitem, concat/stack/split, pad
    linalg      matmul, linear (x @ W + b fused)
    activation  sigmoid, tanh, relu, ..., softmax, log_softmax
    loss        fused, numerically stable losses
    conv        conv1d, conv2d, conv_transpose2d (channels-last, im2col + one GEMM)
    pool        max/avg pooling 1d/2d, global pooling, upsampling
    norm        batch_norm, layer_norm (fused nodes), dropout
    recurrent   simple_rnn, lstm, gru over whole sequences (fused, closed-form backprop through time)
"""
from .activation import elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, silu, softmax, softplus, swish, tanh
from .conv import conv1d, conv2d, conv_output_length, conv_transpose2d
from .linalg import linear, matmul
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, categorical_cross_entropy, huber, mae,
                   mse, softmax_cross_entropy, sparse_categorical_cross_entropy, sparse_softmax_cross_entropy)
from .math import (abs, add, cast, clip, div, eq, exp, ge, gt, le, log, log1p, lt, maximum, minimum, mul, ne, neg,
                   pow, sign, sqrt, square, sub, where)
from .norm import batch_norm, dropout, layer_norm
from .pool import (avg_pool1d, avg_pool2d, global_avg_pool1d, global_avg_pool2d, global_max_pool1d, global_max_pool2d,
                   max_pool1d, max_pool2d, upsample1d, upsample2d)
from .reduce import argmax, argmin, logsumexp, max, mean, min, std, sum, var
from .shape import concat, expand, flatten, getitem, pad, permute, reshape, split, squeeze, stack, transpose, unsqueeze
from . import tensor_methods  # noqa: F401  (gives Tensor its operators and methods)
