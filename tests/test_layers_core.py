"""Core, activation, regularization, reshaping and merging layers against Keras 3.

For each layer in CASES, the same layer is built in chainrule and in Keras, Keras's weights (set to
random values) are copied into ours, and outputs, parameter counts, weight names and shapes,
symbolic output shapes and config keys must agree. The rest checks what Keras cannot show us:
dropout's statistics, the embedding's scatter-add gradient, error messages.
"""
import os
from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import activations as activation_layers
from chainrule.layers import core, merging, regularization, reshaping
from chainrule.layers.input_layer import Input

# Keras's own torch variables warn about NumPy 2's copy keyword when we read their weights
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")

OURS = SimpleNamespace(**{name: getattr(module, name)
                          for module in (core, activation_layers, regularization, reshaping, merging)
                          for name in module.__all__})


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def double_plus_one(x):
    return x * 2 + 1


# id, layer factory (given a layers namespace: ours or keras.layers), input shapes without batch, int inputs
CASES = [
    ("dense", lambda L: L.Dense(5), [(7,)], None),
    ("dense_relu_nobias", lambda L: L.Dense(4, activation="relu", use_bias=False), [(6,)], None),
    ("dense_3d", lambda L: L.Dense(3, activation="softmax"), [(4, 6)], None),
    ("activation", lambda L: L.Activation("tanh"), [(5,)], None),
    ("embedding", lambda L: L.Embedding(12, 4), [(6,)], 12),
    ("relu", lambda L: L.ReLU(), [(3, 4)], None),
    ("relu_args", lambda L: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), [(6,)], None),
    ("leaky_relu", lambda L: L.LeakyReLU(), [(6,)], None),
    ("softmax_axis1", lambda L: L.Softmax(axis=1), [(3, 4)], None),
    ("elu", lambda L: L.ELU(alpha=0.5), [(6,)], None),
    ("prelu", lambda L: L.PReLU(), [(6,)], None),
    ("prelu_shared", lambda L: L.PReLU(shared_axes=[1]), [(4, 5)], None),
    ("dropout", lambda L: L.Dropout(0.4), [(6,)], None),
    ("spatial_dropout2d", lambda L: L.SpatialDropout2D(0.3), [(4, 4, 3)], None),
    ("gaussian_noise", lambda L: L.GaussianNoise(0.1), [(6,)], None),
    ("gaussian_dropout", lambda L: L.GaussianDropout(0.2), [(6,)], None),
    ("flatten", lambda L: L.Flatten(), [(4, 3, 2)], None),
    ("reshape", lambda L: L.Reshape((2, -1)), [(12,)], None),
    ("permute", lambda L: L.Permute((2, 1)), [(3, 5)], None),
    ("repeat_vector", lambda L: L.RepeatVector(3), [(4,)], None),
    ("identity", lambda L: L.Identity(), [(4,)], None),
    ("lambda", lambda L: L.Lambda(double_plus_one), [(4,)], None),
    ("concatenate", lambda L: L.Concatenate(), [(3,), (5,)], None),
    ("concatenate_axis1", lambda L: L.Concatenate(axis=1), [(2, 4), (3, 4)], None),
    ("add", lambda L: L.Add(), [(4,), (4,), (4,)], None),
    ("add_broadcast", lambda L: L.Add(), [(3, 4), (1, 4)], None),
    ("subtract", lambda L: L.Subtract(), [(4,), (4,)], None),
    ("multiply", lambda L: L.Multiply(), [(4,), (4,)], None),
    ("average", lambda L: L.Average(), [(4,), (4,), (4,)], None),
    ("maximum", lambda L: L.Maximum(), [(4,), (4,)], None),
    ("minimum", lambda L: L.Minimum(), [(4,), (4,)], None),
]
IDS = [c[0] for c in CASES]


def _inputs(shapes, vocab, rng, batch=3):
    if vocab is not None:
        arrays = [rng.integers(0, vocab, (batch,) + s) for s in shapes]
    else:
        arrays = [rng.standard_normal((batch,) + s).astype(np.float32) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def _pair(keras, factory, shapes, vocab, rng):
    """Both layers built on the same inputs and holding the same random weights."""
    x = _inputs(shapes, vocab, rng)
    ours, theirs = factory(OURS), factory(keras.layers)
    theirs(x)
    ours(x)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs, x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_equals_keras_with_the_same_weights(keras, case, rng):
    _, factory, shapes, vocab = case
    ours, theirs, x = _pair(keras, factory, shapes, vocab, rng)
    got = ours(x)
    want = _numpy(theirs(x))
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weights_and_params_equal_keras(keras, case, rng):
    _, factory, shapes, vocab = case
    ours, theirs, _ = _pair(keras, factory, shapes, vocab, rng)
    assert ours.count_params() == theirs.count_params()
    assert [w.path.split("/")[-1] for w in ours.weights] == [w.path.split("/")[-1] for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert [w.trainable for w in ours.weights] == [w.trainable for w in theirs.weights]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_symbolic_shape_equals_keras(keras, case):
    _, factory, shapes, vocab = case
    dtype = "int32" if vocab else "float32"

    def symbolic(inputs, L):
        xs = [inputs(shape=s, dtype=dtype) for s in shapes]
        return factory(L)(xs[0] if len(xs) == 1 else xs)
    ours = symbolic(Input, OURS)
    theirs = symbolic(keras.Input, keras.layers)
    assert ours.shape == tuple(theirs.shape)
    in_shapes = [(None,) + s for s in shapes]
    layer = factory(OURS)
    assert layer.compute_output_shape(in_shapes[0] if len(in_shapes) == 1 else in_shapes) == ours.shape


# Keras 3's Dense config omits activity_regularizer (so it is lost on reload); we keep it. Its
# SpatialDropout2D config omits trainable; quantization does not exist here.
EXTRA_KEYS_OK = {"activity_regularizer", "trainable"}
MISSING_KEYS_OK = {"quantization_config"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_keys_equal_keras_and_round_trip(keras, case, rng):
    _, factory, shapes, vocab = case
    ours, theirs, x = _pair(keras, factory, shapes, vocab, rng)
    config, their_config = ours.get_config(), theirs.get_config()
    assert set(their_config) - set(config) <= MISSING_KEYS_OK
    assert set(config) - set(their_config) <= EXTRA_KEYS_OK
    # a Lambda's config names its function; the code itself must be supplied again
    again = type(ours).from_config(dict(config, function=ours.function) if "function" in config else config)
    assert again.get_config() == config
    again(x)
    again.set_weights(ours.get_weights())
    np.testing.assert_array_equal(again(x).numpy(), ours(x).numpy())


def test_dense_config_values_equal_keras(keras):
    ours = OURS.Dense(3, activation="relu", kernel_initializer="he_normal", kernel_regularizer="l2").get_config()
    theirs = keras.layers.Dense(3, activation="relu", kernel_initializer="he_normal",
                                kernel_regularizer="l2").get_config()
    for key in ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                "bias_regularizer", "kernel_constraint", "bias_constraint"):
        assert ours[key] == theirs[key], key


def test_lambda_config_stores_the_name_not_the_code():
    config = OURS.Lambda(double_plus_one, arguments={}).get_config()
    assert config["function"] == "double_plus_one"
    assert "code" not in str(config)
    with pytest.raises(ValueError, match="not saved"):
        OURS.Lambda.from_config(config)
    rebuilt = OURS.Lambda.from_config(dict(config, function=double_plus_one))
    np.testing.assert_array_equal(rebuilt(np.ones((1, 2), np.float32)).numpy(), [[3.0, 3.0]])
    assert OURS.Lambda.from_config(OURS.Lambda(cr.activations.relu).get_config()).function is cr.activations.relu


def test_regularization_losses_equal_keras(keras, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    kwargs = dict(kernel_regularizer="l2", bias_regularizer=keras.regularizers.L1(0.1), activity_regularizer="l1")
    theirs = keras.layers.Dense(3, **kwargs)
    theirs(x)
    ours = OURS.Dense(3, kernel_regularizer="l2", bias_regularizer=cr.regularizers.L1(0.1), activity_regularizer="l1")
    ours(x)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    theirs(x)
    ours(x)
    # kernel: 0.01 sum k^2;  bias: 0.1 sum |b|;  activity: 0.01 sum |y| / batch
    assert len(ours.losses) == len(theirs.losses) == 3
    assert sum(float(loss.item()) for loss in ours.losses) == pytest.approx(
        sum(float(_numpy(loss)) for loss in theirs.losses), rel=1e-5)
    total = sum(ours.losses[1:], ours.losses[0])
    total.backward()
    expected = 0.02 * weights[0] + (0.01 / 4) * x.T @ np.sign(x @ weights[0] + weights[1])
    np.testing.assert_allclose(ours.kernel.grad, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- Dense
def test_dense_symbolic_call():
    x = Input(shape=(8,))
    y = OURS.Dense(4)(x)
    assert y.shape == (None, 4)
    z = OURS.Dense(2)(Input(shape=(5, 8)))
    assert z.shape == (None, 5, 2)


def test_dense_computes_x_kernel_plus_bias_in_one_node(rng):
    layer = OURS.Dense(3, activation="sigmoid")
    x = rng.standard_normal((2, 4)).astype(np.float32)
    y = layer(x)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y.numpy(), 1 / (1 + np.exp(-(x @ kernel + bias))), rtol=1e-5)
    assert y.node.parents[0].op == "linear"  # sigmoid of the fused linear node


def test_dense_casts_integer_inputs():
    y = OURS.Dense(2)(np.array([[1, 2, 3]]))
    assert y.dtype == np.float32


def test_dense_error_names_layer_shapes_and_fix():
    layer = OURS.Dense(10, name="dense_image")
    layer(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError) as err:
        layer(np.zeros((32, 28, 28, 1), np.float32))
    message = str(err.value)
    assert "Dense 'dense_image'" in message and "(batch, 784)" in message and "(32, 28, 28, 1)" in message
    assert "add Flatten() before it" in message
    with pytest.raises(ValueError, match=r"Dense 'dense_image' expects input \(batch, 784\).*Flatten"):
        layer(Input(shape=(28, 28, 1)))
    with pytest.raises(ValueError, match=r"last axis must have 784 features"):
        layer(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="rank >= 2"):
        OURS.Dense(3)(np.zeros((5,), np.float32))


def test_dense_gradients_match_the_formula(rng):
    layer = OURS.Dense(3)
    x = cr.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((5, 3)).astype(np.float32)
    layer(x).backward(g)
    kernel = layer.kernel.numpy()
    np.testing.assert_allclose(layer.kernel.grad, x.numpy().T @ g, rtol=1e-5)
    np.testing.assert_allclose(layer.bias.grad, g.sum(0), rtol=1e-5)
    np.testing.assert_allclose(x.grad, g @ kernel.T, rtol=1e-5)


def test_dense_weights_repeat_with_the_library_seed():
    cr.random.seed(5)
    a = OURS.Dense(3)
    a(np.zeros((1, 4), np.float32))
    cr.random.seed(5)
    b = OURS.Dense(3)
    b(np.zeros((1, 4), np.float32))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())


# ----------------------------------------------------------------------------- Embedding
def test_embedding_gradient_adds_up_repeated_indices(rng):
    layer = OURS.Embedding(6, 3)
    ids = np.array([[1, 1, 4], [1, 0, 4]])
    out = layer(ids)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    expected = np.zeros((6, 3), np.float32)
    np.add.at(expected, ids, g)  # row 1 gets three gradients, row 4 two, row 0 one
    np.testing.assert_allclose(layer.embeddings.grad, expected, rtol=1e-6)
    np.testing.assert_allclose(layer.embeddings.grad[1], g[0, 0] + g[0, 1] + g[1, 0], rtol=1e-6)
    assert not layer.embeddings.grad[[2, 3, 5]].any()


def test_embedding_keeps_integer_indices_and_checks_range():
    layer = OURS.Embedding(1000, 2)
    big = np.array([[999, 16777217 % 1000]])  # integers stay exact (no float32 round trip)
    np.testing.assert_array_equal(layer(big).numpy(), layer.embeddings.numpy()[big[0]][None])
    with pytest.raises(ValueError, match=r"input_dim=1000.*\[0, 999\]"):
        layer(np.array([[1000]]))
    assert OURS.Embedding(10, 2, input_length=5).input_dim == 10  # Keras 2's argument is ignored


def test_embedding_default_initializer_is_uniform_005():
    cr.random.seed(0)
    layer = OURS.Embedding(500, 64)
    layer(np.array([[0]]))
    w = layer.embeddings.numpy()
    assert np.abs(w).max() <= 0.05 and np.abs(w).max() > 0.0499
    assert layer.get_config()["embeddings_initializer"]["class_name"] == "RandomUniform"


def test_embedding_mask_zero():
    layer = OURS.Embedding(5, 2, mask_zero=True)
    np.testing.assert_array_equal(layer.compute_mask(np.array([[0, 3, 0]])), [[False, True, False]])
    assert OURS.Embedding(5, 2).compute_mask(np.array([[0]])) is None


# ----------------------------------------------------------------------------- Dropout
def test_dropout_inactive_at_inference():
    x = np.ones((4, 10), np.float32)
    layer = OURS.Dropout(0.5)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


def test_dropout_training_keeps_one_minus_rate_and_scales():
    x = np.ones((200, 500), np.float32)
    y = OURS.Dropout(0.3, seed=1)(x, training=True).numpy()
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)   # inverted dropout: E[y] = x
    assert y.mean() == pytest.approx(1.0, abs=0.02)


def test_dropout_seeded_is_repeatable_and_gradient_is_the_mask():
    x = np.ones((8, 16), np.float32)
    a, b = OURS.Dropout(0.5, seed=3), OURS.Dropout(0.5, seed=3)
    first = a(x, training=True).numpy()
    np.testing.assert_array_equal(first, b(x, training=True).numpy())
    assert not np.array_equal(first, a(x, training=True).numpy())  # the next call draws a new mask
    cr.random.seed(9)
    u1 = OURS.Dropout(0.5)(x, training=True).numpy()
    cr.random.seed(9)
    np.testing.assert_array_equal(u1, OURS.Dropout(0.5)(x, training=True).numpy())
    t = cr.tensor(x, requires_grad=True)
    out = OURS.Dropout(0.5, seed=4)(t, training=True)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, out.numpy())  # x = 1, so y = mask / (1 - rate) = dy/dx


def test_dropout_noise_shape_and_spatial_dropout_drop_whole_channels():
    x = np.ones((6, 5, 5, 8), np.float32)
    y = OURS.Dropout(0.5, noise_shape=(None, 1, 1, 8), seed=0)(x, training=True).numpy()
    assert (y == y[:, :1, :1, :]).all()  # one decision per (sample, channel)
    assert 0 < (y == 0).mean() < 1
    z = OURS.SpatialDropout2D(0.5, seed=0)(x, training=True).numpy()
    assert (z == z[:, :1, :1, :]).all() and 0 < (z == 0).mean() < 1


def test_noise_layers_act_only_in_training():
    x = np.ones((50, 40), np.float32)
    for layer in (OURS.GaussianNoise(0.5, seed=0), OURS.GaussianDropout(0.5, seed=0)):
        np.testing.assert_array_equal(layer(x).numpy(), x)
        y = layer(x, training=True).numpy()
        assert y.dtype == np.float32 and y.mean() == pytest.approx(1.0, abs=0.05)
    assert OURS.GaussianNoise(0.5, seed=0)(x, training=True).numpy().std() == pytest.approx(0.5, rel=0.05)


# ----------------------------------------------------------------------------- reshaping
def test_reshaping_errors_and_symbolic_shapes():
    with pytest.raises(ValueError, match="12 values per sample"):
        OURS.Reshape((5, -1))(Input(shape=(12,)))
    with pytest.raises(ValueError, match="holds 10 values per sample"):
        OURS.Reshape((2, 5))(np.zeros((1, 12), np.float32))
    with pytest.raises(ValueError, match="permutation"):
        OURS.Permute((1, 3))
    assert OURS.Flatten()(Input(shape=(None, 4))).shape == (None, None)
    assert OURS.Flatten(data_format="channels_first")(np.arange(8.0).reshape(1, 2, 2, 2)).numpy().tolist() == \
        [[0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]]


def test_repeat_vector_gradient_sums_the_copies():
    x = cr.tensor([[1.0, 2.0]], requires_grad=True)
    OURS.RepeatVector(3)(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3.0, 3.0]])


# ----------------------------------------------------------------------------- merging
def test_merging_mismatched_shapes_raise_clear_errors():
    a, b = Input(shape=(3,)), Input(shape=(4,))
    with pytest.raises(ValueError, match=r"Add 'add\w*' got inputs of incompatible shapes \(None, 3\), \(None, 4\)"):
        OURS.Add()([a, b])
    with pytest.raises(ValueError, match="incompatible shapes"):
        OURS.Multiply()([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="all axes except the concatenation axis"):
        OURS.Concatenate(axis=-1)([Input(shape=(2, 3)), Input(shape=(4, 3))])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        OURS.Subtract()([a, a, a])
    with pytest.raises(ValueError, match="list of tensors"):
        OURS.Add()(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="different batch sizes"):
        OURS.Add()([np.zeros((2, 3), np.float32), np.zeros((5, 3), np.float32)])


def test_merging_gradients():
    a = cr.tensor([[1.0, 5.0]], requires_grad=True)
    b = cr.tensor([[3.0, 2.0]], requires_grad=True)
    OURS.Maximum()([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0]])
    np.testing.assert_array_equal(b.grad, [[1.0, 0.0]])
    a.grad = b.grad = None
    OURS.Average()([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0.5, 0.5]])
    a.grad = b.grad = None
    OURS.Concatenate()([a, b]).backward(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32))
    np.testing.assert_array_equal(b.grad, [[3.0, 4.0]])


def test_functional_merge_helpers():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    assert merging.add([a, b]).shape == (None, 3)
    assert merging.concatenate([a, b], axis=1).shape == (None, 6)


# ----------------------------------------------------------------------------- activation layers
def test_leaky_relu_layer_default_slope_is_keras_03():
    assert OURS.LeakyReLU().negative_slope == 0.3
    y = OURS.LeakyReLU()(np.array([[-1.0, 2.0]], np.float32))
    np.testing.assert_allclose(y.numpy(), [[-0.3, 2.0]], rtol=1e-6)
    with pytest.warns(UserWarning, match="negative_slope"):
        assert OURS.LeakyReLU(alpha=0.1).negative_slope == 0.1


def test_prelu_learns_its_slope():
    layer = OURS.PReLU(alpha_initializer=cr.initializers.Constant(0.25))
    x = cr.tensor([[-2.0, 3.0]])
    y = layer(x)
    np.testing.assert_allclose(y.numpy(), [[-0.5, 3.0]])
    y.sum().backward()
    np.testing.assert_allclose(layer.alpha.grad, [-2.0, 0.0])  # dy/dalpha = min(x, 0)


def test_softmax_mask_equals_keras(keras, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]], bool)
    np.testing.assert_allclose(OURS.Softmax()(x, mask=mask).numpy(),
                               _numpy(keras.layers.Softmax()(x, mask=mask)), rtol=1e-6, atol=1e-7)


def test_embedding_accepts_pretrained_weights():
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = OURS.Embedding(4, 3, weights=[matrix])
    np.testing.assert_array_equal(layer(np.array([[3, 0]])).numpy(), matrix[[3, 0]][None])
