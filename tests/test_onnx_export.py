"""ONNX export: each model is written with export_onnx, run in onnxruntime, and compared with
model.predict on the same channels-last data (max abs difference <= 1e-4)."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import activations, layers, models
from chainrule.io.onnx_export import export_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _randomize_statistics(model, rng):
    """BatchNormalization with moving statistics and affine weights far from their defaults."""
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape).astype(np.float32))
        elif any(k in w.path for k in ("moving_mean", "gamma", "beta")):
            w.assign(rng.normal(0.0, 0.5, w.shape).astype(np.float32))


def _run(model, x, tmp_path, name="model"):
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = x if isinstance(x, list) else [x]
    feeds = {i.name: v for i, v in zip(session.get_inputs(), xs)}
    return session.run(None, feeds)


def _check(model, x, tmp_path, name="model"):
    got = _run(model, x, tmp_path, name)
    expected = model.predict(x, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4, f"max abs difference {np.abs(a - b).max()}"


# ----------------------------------------------------------------------------- the model table
def mlp():
    return models.Sequential([layers.Input((20,)), layers.Dense(32, activation="relu"), layers.BatchNormalization(),
                              layers.Dropout(0.3), layers.Dense(16, activation="gelu"),
                              layers.Dense(5, activation="softmax")]), (4, 20)


def lecture_cnn():
    """The course's CNN (tests/test_lecture_cnn.py), layer for layer."""
    model = models.Sequential()
    model.add(layers.Conv2D(32, kernel_size=(3, 3), input_shape=(28, 28, 1)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation("relu"))
    model.add(layers.Conv2D(64, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Conv2D(128, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Conv2D(256, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(10, activation="softmax"))
    return model, (3, 28, 28, 1)


def small_unet():
    inputs = layers.Input((16, 16, 3))
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    c1 = layers.BatchNormalization()(c1)
    down = layers.MaxPooling2D()(c1)
    c2 = layers.Conv2D(16, 3, padding="same", activation="relu")(down)
    up_learned = layers.Conv2DTranspose(8, 2, strides=2)(c2)
    up_bilinear = layers.UpSampling2D(interpolation="bilinear")(layers.Conv2D(8, 1)(c2))
    up_nearest = layers.UpSampling2D()(c2)
    merged = layers.Concatenate()([c1, layers.Add()([up_learned, up_bilinear]), up_nearest])
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(merged)
    return models.Model(inputs, outputs), (2, 16, 16, 3)


def conv1d_net():
    return models.Sequential([
        layers.Input((32, 3)),
        layers.Conv1D(8, 5, padding="causal", dilation_rate=2, activation="elu"),
        layers.MaxPooling1D(),
        layers.AveragePooling1D(3, strides=2, padding="same"),
        layers.Conv1D(4, 3, padding="same", strides=2),
        layers.UpSampling1D(2),
        layers.ZeroPadding1D((1, 2)),
        layers.Cropping1D((2, 0)),
        layers.GlobalMaxPooling1D(),
        layers.Dense(2)]), (3, 32, 3)


def padding_and_strides():
    """Asymmetric 'same' padding (even sizes, stride 2), dilation, transposed convs of every sizing rule."""
    return models.Sequential([
        layers.Input((12, 10, 2)),
        layers.ZeroPadding2D(((1, 0), (2, 1))),
        layers.Conv2D(4, 3, strides=2, padding="same"),
        layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="tanh"),
        layers.AveragePooling2D(3, strides=2, padding="same"),
        layers.MaxPooling2D(2, strides=1, padding="same"),
        layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
        layers.Conv2DTranspose(3, 2, strides=3),                           # span < stride
        layers.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=0),
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=1, dilation_rate=1),
        layers.Cropping2D(((1, 2), (0, 3))),
        layers.GlobalAveragePooling2D(keepdims=True),
        layers.Flatten()]), (2, 12, 10, 2)


def activation_layers():
    inputs = layers.Input((6, 4, 3))
    x = layers.Conv2D(5, 1)(inputs)
    branches = [layers.ReLU()(x), layers.ReLU(max_value=0.5)(x),
                layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)(x),
                layers.LeakyReLU()(x), layers.ELU(alpha=0.7)(x), layers.PReLU(shared_axes=[1, 2])(x),
                layers.PReLU()(x), layers.Softmax(axis=1)(x), layers.Activation("hard_sigmoid")(x)]
    merged = layers.Concatenate(axis=-1)(branches)
    y = layers.Multiply()([layers.Subtract()([merged, layers.Activation("tanh")(merged)]), merged])
    y = layers.Maximum()([y, layers.Minimum()([merged, y]), layers.Average()([merged, y])])
    y = layers.LayerNormalization()(y)
    y = layers.Reshape((6, -1))(y)
    y = layers.Permute((2, 1))(y)
    return models.Model(inputs, layers.Flatten()(y)), (2, 6, 4, 3)


MODELS = {f.__name__: f for f in (mlp, lecture_cnn, small_unet, conv1d_net, padding_and_strides,
                                   activation_layers)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_predict(name, tmp_path, rng):
    cr.random.seed(0)
    model, shape = MODELS[name]()
    _randomize_statistics(model, rng)
    for w in model.weights:  # PReLU's alpha starts at 0: give it a slope worth checking
        if "alpha" in w.path:
            w.assign(rng.uniform(0.1, 0.5, w.shape).astype(np.float32))
    _check(model, rng.normal(size=shape).astype(np.float32), tmp_path, name)


@pytest.mark.parametrize("activation", sorted({n for n in activations.ALL_OBJECTS}))
def test_every_activation_function(activation, tmp_path, rng):
    cr.random.seed(0)
    model = models.Sequential([layers.Input((7,)), layers.Dense(6, activation=activation)])
    _check(model, rng.normal(scale=2.0, size=(5, 7)).astype(np.float32), tmp_path)


def test_nested_models_several_inputs_and_outputs(tmp_path, rng):
    cr.random.seed(0)
    encoder = models.Sequential([layers.Input((8,)), layers.Dense(6, activation="relu"), layers.Dense(4)])
    a, b = layers.Input((8,), name="a"), layers.Input((3,), name="b")
    joined = layers.Concatenate()([encoder(a), b])
    inner_in = layers.Input((7,))
    head = models.Model(inner_in, layers.Dense(2, activation="softmax")(inner_in))
    model = models.Model([a, b], [head(joined), layers.Dense(1)(joined)])
    xa, xb = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    proto = export_onnx(model, tmp_path / "nested.onnx")
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    _check(model, [xa, xb], tmp_path, "nested")


def test_unknown_spatial_sizes_use_same_upper_padding(tmp_path, rng):
    cr.random.seed(0)
    model = models.Sequential([layers.Input((None, None, 3)), layers.Conv2D(4, 3, strides=2, padding="same"),
                               layers.MaxPooling2D(3, strides=2, padding="same"), layers.GlobalAveragePooling2D()])
    path = tmp_path / "any_size.onnx"
    export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in ((9, 12), (16, 7)):
        x = rng.normal(size=(2,) + size + (3,)).astype(np.float32)
        got = session.run(None, {"input": x})[0]
        assert np.abs(got - model.predict(x, verbose=0)).max() <= 1e-4


def test_dropout_is_removed_from_the_graph(tmp_path):
    cr.random.seed(0)
    model = models.Sequential([layers.Input((4,)), layers.Dropout(0.5), layers.Dense(2), layers.GaussianNoise(1.0)])
    proto = export_onnx(model, tmp_path / "m.onnx")
    assert sorted(node.op_type for node in proto.graph.node) == ["Add", "Identity", "MatMul"]


def test_unsupported_layers_and_activations_are_named(tmp_path):
    cr.random.seed(0)
    model = models.Sequential([layers.Input((4,)), layers.Lambda(lambda t: t * 2, name="double"), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"layer 'double' \(Lambda\) has no ONNX conversion"):
        export_onnx(model, tmp_path / "m.onnx")

    def my_activation(t):
        return t * 3
    model = models.Sequential([layers.Input((4,)), layers.Dense(2, activation=my_activation, name="scaled")])
    with pytest.raises(ValueError, match="Dense 'scaled' uses the activation 'my_activation'"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()  # nothing half-written


def test_unbuilt_and_subclassed_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no input shape"):
        export_onnx(models.Sequential([layers.Dense(2)]), tmp_path / "m.onnx")

    class Custom(models.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)
    model = Custom()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="subclassed"):
        export_onnx(model, tmp_path / "m.onnx")
