"""Keras-compatible layers, one family per file (as keras/src/layers/<family>/ does).

    base.py            Layer, KerasTensor, naming and the training flag
    input_layer.py     Input, InputLayer
    core.py            Dense, Activation, Embedding, Lambda
    activations.py     ReLU, LeakyReLU, Softmax, ...
    convolutional.py   Conv1D, Conv2D, Conv2DTranspose
    pooling.py         Max/Average pooling 1D/2D, global pooling
    normalization.py   BatchNormalization, LayerNormalization
    regularization.py  Dropout
    reshaping.py       Flatten, Reshape, Permute
    spatial.py         UpSampling2D, ZeroPadding2D, Cropping2D
    merging.py         Concatenate, Add, Multiply, Average, ...
    preprocessing.py   RandomFlip, RandomRotation, ..., Rescaling, Normalization (augmentation)
    recurrent.py       SimpleRNN, LSTM, GRU, Bidirectional
"""
from .activations import *  # noqa: F401,F403
from .base import Layer, clear_session
from .convolutional import *  # noqa: F401,F403
from .core import *  # noqa: F401,F403
from .input_layer import Input, InputLayer
from .merging import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .preprocessing import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .regularization import *  # noqa: F401,F403
from .reshaping import *  # noqa: F401,F403
from .spatial import *  # noqa: F401,F403
