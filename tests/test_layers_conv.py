"""Convolution, pooling and spatial layers against Keras 3: outputs, gradients, output shapes,
parameter counts, weight names, configs; gradient flow through a small CNN; error messages."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import convolutional, pooling, spatial
from chainrule.layers.convolutional import Conv1D, Conv2D, Conv2DTranspose
from chainrule.layers.input_layer import Input
from chainrule.layers.normalization import BatchNormalization
from chainrule.layers.pooling import GlobalAveragePooling2D, MaxPooling2D
from chainrule.layers.spatial import Cropping2D, UpSampling2D, ZeroPadding2D
from chainrule.variable import Variable

# Keras's torch backend converts our float32 arrays through a deprecated NumPy path; not our concern
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on PyTorch's backend; tests that use it are skipped when it is not installed."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def ours_class(name):
    for module in (convolutional, pooling, spatial):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


def compare_with_keras(keras, name, kwargs, shape, rng, atol=1e-5):
    """Build our layer and Keras's on `shape`, give both Keras's (randomized) weights, and assert equal
    weight names/shapes, parameter counts, output shapes (also with unknown spatial sizes), outputs,
    and gradients of a random projection of the output with respect to the input and every weight."""
    torch = pytest.importorskip("torch")
    ours, theirs = ours_class(name)(**kwargs), getattr(keras.layers, name)(**kwargs)
    x = rng.standard_normal(shape).astype(np.float32)
    batch_shape = (None,) + shape[1:]
    theirs.build(batch_shape)
    ours(x)
    weights = [rng.standard_normal(tuple(w.shape)).astype(np.float32) * 0.5 for w in theirs.weights]
    theirs.set_weights(weights)
    ours.set_weights(weights)

    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    if ours.weights:
        assert ours.count_params() == theirs.count_params()
    assert ours.compute_output_shape(batch_shape) == tuple(theirs.compute_output_shape(batch_shape))
    unknown = (None,) + (None,) * (len(shape) - 2) + (shape[-1],)  # a fully convolutional input
    assert ours.compute_output_shape(unknown) == tuple(theirs.compute_output_shape(unknown))

    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    xc = cr.Tensor(x, requires_grad=True)
    y = ours(xc)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-4, atol=atol)

    seed = rng.standard_normal(y.shape).astype(np.float32)
    (yt * torch.from_numpy(seed)).sum().backward()
    (y * cr.Tensor(seed)).sum().backward()
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-4, atol=atol, err_msg="input gradient")
    for w, tw in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(w.grad, tw.value.grad.numpy(), rtol=1e-4, atol=10 * atol, err_msg=w.name)
    return ours, theirs


# ----------------------------------------------------------------------------- convolutions
CONV_CASES = [
    ("Conv2D", {"filters": 4, "kernel_size": 3}, (2, 9, 10, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "strides": 2}, (2, 9, 10, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}, (2, 9, 10, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}, (2, 9, 10, 3)),  # even kernel
    ("Conv2D", {"filters": 4, "kernel_size": 2, "padding": "same"}, (2, 7, 8, 3)),                # pads after only
    ("Conv2D", {"filters": 5, "kernel_size": (2, 3), "strides": (1, 2), "padding": "same"}, (2, 7, 9, 2)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "dilation_rate": 2}, (2, 9, 10, 3)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "dilation_rate": (2, 1), "padding": "same"}, (2, 9, 10, 3)),
    ("Conv2D", {"filters": 3, "kernel_size": 1}, (2, 5, 5, 4)),                                   # 1x1: a matmul
    ("Conv2D", {"filters": 4, "kernel_size": 3, "activation": "relu", "use_bias": False}, (2, 6, 6, 2)),
    ("Conv1D", {"filters": 4, "kernel_size": 3}, (2, 11, 3)),
    ("Conv1D", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}, (2, 11, 3)),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "causal"}, (2, 11, 3)),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (2, 11, 3)),
    ("Conv1D", {"filters": 2, "kernel_size": 2, "strides": 3, "activation": "tanh"}, (2, 11, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 3}, (2, 5, 6, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 2, "strides": 2}, (2, 5, 6, 3)),            # exact 2x upsample
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2}, (2, 5, 6, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"}, (2, 5, 6, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 1}, (2, 5, 6, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 2, "strides": 3}, (2, 4, 5, 3)),            # stride > kernel
    ("Conv2DTranspose", {"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (2, 5, 6, 2)),
]


@pytest.mark.parametrize("name, kwargs, shape", CONV_CASES)
def test_convolution_layers_match_keras(keras, rng, name, kwargs, shape):
    compare_with_keras(keras, name, kwargs, shape, rng)


def test_conv2d_parameter_count_of_the_lecture():
    conv = Conv2D(6, 5)
    conv.build((None, 32, 32, 3))
    # each of the 6 filters has a 5x5 window on 3 channels plus one bias: 6 * (5*5*3 + 1) = 456
    assert conv.count_params() == 6 * (5 * 5 * 3 + 1) == 456
    assert conv.kernel.shape == (5, 5, 3, 6) and conv.bias.shape == (6,)
    # LeNet's second convolution, 16 filters on the 6 maps of the first: 16 * (5*5*6 + 1) = 2416
    conv2 = Conv2D(16, 5)
    conv2.build((None, 14, 14, 6))
    assert conv2.count_params() == 2416
    # transposed: the kernel is (kh, kw, filters, C_in), the count the same product: 6 * 3*3*4 + 6 = 222
    up = Conv2DTranspose(6, 3)
    up.build((None, 7, 7, 4))
    assert up.kernel.shape == (3, 3, 6, 4) and up.count_params() == 222
    assert Conv1D(8, 3).compute_output_shape((None, 100, 2)) == (None, 98, 8)


def test_conv2d_by_hand():
    """One 3x3 image, a 2x2 kernel of ones and bias 1: each output is the sum of a 2x2 window plus 1."""
    conv = Conv2D(1, 2, kernel_initializer="ones", bias_initializer="ones")
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)  # [[0,1,2],[3,4,5],[6,7,8]]
    y = conv(x).numpy()[0, :, :, 0]
    # top-left window 0+1+3+4 = 8, +1 = 9; then 1+2+4+5 + 1 = 13; 3+4+6+7 + 1 = 21; 4+5+7+8 + 1 = 25
    np.testing.assert_array_equal(y, [[9, 13], [21, 25]])


# ----------------------------------------------------------------------------- pooling
POOL_CASES = [
    ("MaxPooling2D", {}, (2, 8, 9, 3)),
    ("MaxPooling2D", {"pool_size": 3, "strides": 1}, (2, 7, 8, 3)),
    ("MaxPooling2D", {"pool_size": (2, 3), "strides": (1, 2), "padding": "same"}, (2, 7, 8, 3)),
    ("MaxPooling2D", {"pool_size": 2, "padding": "same"}, (2, 7, 9, 2)),
    ("AveragePooling2D", {"pool_size": 2}, (2, 8, 9, 3)),
    # 'same' average pooling: here the padding is the same on both sides of each axis; Keras's torch
    # backend counts the zeros of a one-sided pad in the average (TensorFlow and we do not, see below)
    ("AveragePooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 7, 9, 3)),
    ("AveragePooling2D", {"pool_size": (2, 3), "strides": 1}, (2, 5, 6, 2)),
    ("MaxPooling1D", {}, (2, 9, 3)),
    ("MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 10, 3)),
    ("AveragePooling1D", {"pool_size": 3}, (2, 10, 3)),
    ("AveragePooling1D", {"pool_size": 3, "strides": 1, "padding": "same"}, (2, 7, 3)),
    ("GlobalAveragePooling2D", {}, (2, 5, 6, 3)),
    ("GlobalAveragePooling2D", {"keepdims": True}, (2, 5, 6, 3)),
    ("GlobalMaxPooling2D", {}, (2, 5, 6, 3)),
    ("GlobalMaxPooling2D", {"keepdims": True}, (2, 5, 6, 3)),
    ("GlobalAveragePooling1D", {}, (2, 7, 3)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (2, 7, 3)),
]


@pytest.mark.parametrize("name, kwargs, shape", POOL_CASES)
def test_pooling_layers_match_keras(keras, rng, name, kwargs, shape):
    ours, _ = compare_with_keras(keras, name, kwargs, shape, rng)
    assert ours.weights == []


def test_max_pooling_by_hand():
    """2x2 max pooling of a 4x4 image keeps the largest of each block; the gradient goes to it alone."""
    x = cr.Tensor(np.array([[1, 2, 5, 0],
                            [3, 4, 1, 1],
                            [0, 0, 9, 8],
                            [7, 6, 2, 3]], np.float32).reshape(1, 4, 4, 1), requires_grad=True)
    y = MaxPooling2D()(x)
    np.testing.assert_array_equal(y.numpy()[0, :, :, 0], [[4, 5], [7, 9]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])


def test_average_pooling_same_counts_only_real_elements():
    """TensorFlow's rule (Keras's reference backend): a 'same' window that hangs over the border
    averages only the pixels inside the image. 2x2 windows, stride 1, on [[1, 2], [3, 4]]: the pad
    goes after (bottom, right), so the bottom-right window holds 4 alone and averages to 4, not 4/4 = 1."""
    x = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 2, 2, 1)
    y = pooling.AveragePooling2D(2, strides=1, padding="same")(x).numpy()[0, :, :, 0]
    # (1+2+3+4)/4 = 2.5; (2+4)/2 = 3; (3+4)/2 = 3.5; 4/1 = 4
    np.testing.assert_allclose(y, [[2.5, 3.0], [3.5, 4.0]])


def test_pooling_aliases_and_defaults(keras):
    assert pooling.MaxPool2D is pooling.MaxPooling2D and pooling.AvgPool2D is pooling.AveragePooling2D
    assert pooling.MaxPool1D is pooling.MaxPooling1D and pooling.AvgPool1D is pooling.AveragePooling1D
    assert pooling.GlobalAvgPool2D is GlobalAveragePooling2D and pooling.GlobalMaxPool1D is pooling.GlobalMaxPooling1D
    assert convolutional.Convolution2D is Conv2D
    for alias in pooling.__all__ + convolutional.__all__ + spatial.__all__:
        assert hasattr(keras.layers, alias), alias
    # Keras: max pooling defaults to 2 (strides = pool_size); average pooling needs a pool_size
    assert MaxPooling2D().get_config()["strides"] == (2, 2)
    with pytest.raises(TypeError):
        pooling.AveragePooling2D()


# ----------------------------------------------------------------------------- spatial
SPATIAL_CASES = [
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (2, 3)}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": 2, "interpolation": "bilinear"}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (3, 2), "interpolation": "bilinear"}, (2, 4, 3, 2)),
    ("UpSampling1D", {"size": 3}, (2, 4, 3)),
    ("ZeroPadding2D", {}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": 2}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": (1, 2)}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": ((0, 1), (2, 0))}, (2, 3, 4, 2)),
    ("ZeroPadding1D", {"padding": (2, 1)}, (2, 4, 3)),
    ("Cropping2D", {}, (2, 5, 6, 2)),
    ("Cropping2D", {"cropping": 1}, (2, 5, 6, 2)),
    ("Cropping2D", {"cropping": (1, 2)}, (2, 5, 6, 2)),
    ("Cropping2D", {"cropping": ((0, 2), (1, 0))}, (2, 5, 6, 2)),
    ("Cropping1D", {}, (2, 5, 3)),
    ("Cropping1D", {"cropping": (0, 2)}, (2, 5, 3)),
]


@pytest.mark.parametrize("name, kwargs, shape", SPATIAL_CASES)
def test_spatial_layers_match_keras(keras, rng, name, kwargs, shape):
    compare_with_keras(keras, name, kwargs, shape, rng)


# ----------------------------------------------------------------------------- configs
CONFIG_CASES = [(name, kwargs) for name, kwargs, _ in CONV_CASES + POOL_CASES + SPATIAL_CASES] + [
    ("Conv2D", {"filters": 8, "kernel_size": 3, "kernel_initializer": "he_normal", "kernel_regularizer": "l2",
                "bias_initializer": "ones", "activity_regularizer": "l1"}),
    ("MaxPooling2D", {"padding": "SAME"}),  # Keras keeps the pooling padding as given
]


def same_config(a, b):
    """Equal configs, floats up to float32 rounding (Keras stores a regularizer's 0.01 as float32)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_config(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6)
    return a == b


@pytest.mark.parametrize("name, kwargs", CONFIG_CASES)
def test_config_matches_keras_and_round_trips(keras, name, kwargs):
    cls = ours_class(name)
    ours, theirs = cls(name="layer", **kwargs), getattr(keras.layers, name)(name="layer", **kwargs)
    config, expected = ours.get_config(), theirs.get_config()
    assert set(config) == set(expected)
    for key in set(config) - {"dtype"}:  # Keras writes its dtype policy as an object
        assert same_config(config[key], expected[key]), (key, config[key], expected[key])
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config


# ----------------------------------------------------------------------------- whole networks
def test_fully_convolutional_shapes_stay_unknown():
    x = Input(shape=(None, None, 3))
    h = Conv2D(8, 3, padding="same", activation="relu")(x)
    h = MaxPooling2D()(h)
    h = Conv2DTranspose(4, 2, strides=2)(h)
    h = ZeroPadding2D(1)(h)
    h = Cropping2D(1)(h)
    h = UpSampling2D()(h)
    assert h.shape == (None, None, None, 4)
    assert GlobalAveragePooling2D()(h).shape == (None, 4)
    # the same layers then run on images of any size
    conv = Conv2D(2, 3, padding="same")
    assert conv(np.zeros((1, 7, 5, 3), np.float32)).shape == (1, 7, 5, 2)
    assert conv(np.zeros((2, 4, 9, 3), np.float32)).shape == (2, 4, 9, 2)


def test_gradients_flow_through_conv_batchnorm_pool_dense(rng):
    """conv -> BN -> relu -> pool -> dense: every trainable weight gets a finite gradient of its
    own shape; the moving statistics of BN get none."""
    conv = Conv2D(4, 3, padding="same", kernel_regularizer="l2")
    bn = BatchNormalization()
    pool = MaxPooling2D()
    gap = GlobalAveragePooling2D()
    w = Variable(rng.standard_normal((4, 3)).astype(np.float32) * 0.1, name="kernel")
    b = Variable(np.zeros(3, np.float32), name="bias")
    x = rng.standard_normal((5, 8, 8, 2)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])

    h = pool(cr.relu(bn(conv(x), training=True)))
    logits = cr.ops.linear(gap(h), w, b)
    loss = cr.ops.sparse_softmax_cross_entropy(logits, labels) + sum(conv.losses)
    loss.backward()
    for weight in conv.trainable_weights + bn.trainable_weights + [w, b]:
        assert weight.grad is not None, weight.path
        assert weight.grad.shape == weight.shape and weight.grad.dtype == np.float32
        assert np.all(np.isfinite(weight.grad)) and np.any(weight.grad != 0), weight.path
    assert bn.moving_mean.grad is None and bn.moving_variance.grad is None
    assert [v.name for v in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]


def test_activity_regularizer_adds_a_loss_per_call(rng):
    conv = Conv2D(2, 3, activity_regularizer="l2")
    y = conv(rng.standard_normal((4, 5, 5, 1)).astype(np.float32))
    # Keras divides the activity penalty by the batch size: 0.01 * sum(y^2) / 4
    assert len(conv.losses) == 1
    np.testing.assert_allclose(float(conv.losses[0].numpy()), 0.01 * (y.numpy() ** 2).sum() / 4, rtol=1e-5)


# ----------------------------------------------------------------------------- errors
def test_conv_rank_errors_name_the_layer_the_shape_and_the_fix():
    with pytest.raises(ValueError, match=r"Conv2D 'c2' expects input of rank 4 \(batch, height, width, channels\), "
                                         r"got shape \(2, 28, 28\): add a channel axis: x\[\.\.\., None\] or "
                                         r"Reshape\(\(28, 28, 1\)\)"):
        Conv2D(4, 3, name="c2")(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"Reshape\(\(100, 1\)\)"):
        Conv1D(4, 3)(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match=r"use Conv2D"):
        Conv1D(4, 3)(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match=r"MaxPooling2D .*rank 4.*Reshape\(\(6, 6, 1\)\)"):
        MaxPooling2D()(np.zeros((2, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"expects input of rank 4"):
        Conv2D(4, 3)(Input(shape=(28, 28)))  # symbolic calls check too


def test_conv_channel_mismatch_after_build():
    conv = Conv2D(4, 3, name="conv_rgb")
    conv(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"Conv2D 'conv_rgb' was built for inputs with 3 channels .*\(1, 5, 5, 1\)"):
        conv(np.zeros((1, 5, 5, 1), np.float32))
    with pytest.raises(ValueError, match=r"3 channels"):
        conv.compute_output_shape((None, 5, 5, 4))


def test_unsupported_arguments_are_refused_clearly():
    for make in (lambda: Conv2D(4, 3, data_format="channels_first"),
                 lambda: MaxPooling2D(data_format="channels_first"),
                 lambda: UpSampling2D(data_format="channels_first"),
                 lambda: GlobalAveragePooling2D(data_format="channels_first")):
        with pytest.raises(ValueError, match=r"only data_format='channels_last'.*transpose"):
            make()
    with pytest.raises(ValueError, match=r"groups=2 is not supported"):
        Conv2D(4, 3, groups=2)
    with pytest.raises(ValueError, match=r"'causal' exists for Conv1D only"):
        Conv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match=r"strides > 1 together with dilation_rate > 1"):
        Conv2D(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"output_padding"):
        Conv2DTranspose(4, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"filters must be a positive int"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"interpolation 'bicubic' is not supported"):
        UpSampling2D(interpolation="bicubic")


def test_too_small_inputs():
    with pytest.raises(ValueError, match=r"Conv2D .*too small.*padding='same'"):
        Conv2D(4, 5)(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match=r"smaller than pool_size"):
        MaxPooling2D(3).compute_output_shape((None, 2, 8, 1))
    with pytest.raises(ValueError, match=r"removes the whole"):
        Cropping2D(((2, 2), (0, 0)))(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"needs the number of input channels"):
        Conv2D(4, 3)(Input(shape=(None, None, None)))
