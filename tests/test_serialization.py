"""Model configs as data (chainrule.models.serialization): every built-in layer survives a trip
through its config (and through Keras 3's), models and their compile settings round-trip, and
loading refuses code (Lambda bytecode) and unknown classes by name."""
import base64
import json
import marshal
import os

import numpy as np
import pytest

from chainrule import layers, losses, metrics, models, optimizers
from chainrule.layers import base as layer_base
from chainrule.models import serialization
from chainrule.models.serialization import (DeserializationError, deserialize_object, model_from_config,
                                            model_to_config, register_serializable, serialize_object)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning",
                                        "ignore:Do not pass an `input_shape`:UserWarning")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def json_trip(config):
    """What a config becomes after being written to a file and read back."""
    return json.loads(json.dumps(config))


# ============================================================================ every registered layer
# constructor arguments and an input shape (batch axis excluded; a list for merge layers); layers
# not listed are built with no arguments on a (batch, 4) input.
SPECS = {
    "Activation": ({"activation": "relu"}, (4,)), "ActivityRegularization": ({"l1": 0.01}, (4,)),
    "Add": ({}, [(4,), (4,)]), "Average": ({}, [(4,), (4,)]), "Maximum": ({}, [(4,), (4,)]),
    "Minimum": ({}, [(4,), (4,)]), "Multiply": ({}, [(4,), (4,)]), "Subtract": ({}, [(4,), (4,)]),
    "Concatenate": ({"axis": -1}, [(4,), (3,)]),
    "AveragePooling1D": ({"pool_size": 2}, (6, 3)), "MaxPooling1D": ({"pool_size": 2, "strides": 1}, (6, 3)),
    "AveragePooling2D": ({"pool_size": 2, "padding": "same"}, (5, 5, 3)), "MaxPooling2D": ({"pool_size": 3}, (6, 6, 3)),
    "GlobalAveragePooling1D": ({}, (6, 3)), "GlobalMaxPooling1D": ({"keepdims": True}, (6, 3)),
    "GlobalAveragePooling2D": ({}, (6, 6, 3)), "GlobalMaxPooling2D": ({}, (6, 6, 3)),
    "BatchNormalization": ({"momentum": 0.9, "epsilon": 1e-2}, (6, 6, 3)),
    "LayerNormalization": ({"epsilon": 1e-4}, (6, 3)),
    "Conv1D": ({"filters": 4, "kernel_size": 3, "padding": "causal", "activation": "relu"}, (8, 3)),
    "Conv2D": ({"filters": 4, "kernel_size": 3, "strides": 2, "kernel_regularizer": "l2",
                "kernel_initializer": "he_normal"}, (8, 8, 3)),
    "Conv2DTranspose": ({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 4, 3)),
    "Cropping1D": ({"cropping": (1, 2)}, (6, 3)), "Cropping2D": ({"cropping": ((1, 0), (0, 1))}, (6, 6, 3)),
    "Dense": ({"units": 3, "activation": "softmax", "use_bias": False}, (4,)), "Dropout": ({"rate": 0.5}, (4,)),
    "ELU": ({"alpha": 0.5}, (4,)), "Embedding": ({"input_dim": 10, "output_dim": 3}, (5,)),
    "Flatten": ({}, (3, 2)), "GaussianDropout": ({"rate": 0.2}, (4,)), "GaussianNoise": ({"stddev": 0.1}, (4,)),
    "LeakyReLU": ({"negative_slope": 0.1}, (4,)), "PReLU": ({}, (4,)), "ReLU": ({"max_value": 6.0}, (4,)),
    "Softmax": ({"axis": -1}, (4,)), "Permute": ({"dims": (2, 1)}, (3, 2)), "RepeatVector": ({"n": 3}, (4,)),
    "Reshape": ({"target_shape": (2, 3)}, (6,)),
    "SpatialDropout1D": ({"rate": 0.2}, (6, 3)), "SpatialDropout2D": ({"rate": 0.2}, (6, 6, 3)),
    "UpSampling1D": ({"size": 2}, (6, 3)), "UpSampling2D": ({"size": (2, 3)}, (4, 4, 3)),
    "ZeroPadding1D": ({"padding": 1}, (6, 3)), "ZeroPadding2D": ({"padding": (1, 2)}, (4, 4, 3)),
    "SimpleRNN": ({"units": 3, "return_sequences": True}, (5, 2)), "LSTM": ({"units": 3}, (5, 2)),
    "GRU": ({"units": 3}, (5, 2)), "Bidirectional": ({"layer": ("LSTM", {"units": 2})}, (5, 2)),
    "Rescaling": ({"scale": 0.5, "offset": 1.0}, (4,)), "Normalization": ({"mean": 0.5, "variance": 2.0}, (4,)),
    "RandomFlip": ({}, (6, 6, 3)), "RandomRotation": ({"factor": 0.1}, (6, 6, 3)),
    "RandomTranslation": ({"height_factor": 0.1, "width_factor": 0.1}, (6, 6, 3)),
    "RandomZoom": ({"height_factor": 0.1}, (6, 6, 3)), "RandomContrast": ({"factor": 0.1}, (6, 6, 3)),
    "RandomBrightness": ({"factor": 0.1}, (6, 6, 3)), "RandomShear": ({"x_factor": 0.1}, (6, 6, 3)),
}
NOT_PLAIN_LAYERS = {"Model", "Sequential", "InputLayer", "Lambda"}  # covered by the model tests below
# Known differences between a layer made in Keras and the same layer made here (reported to the
# layers' owners). Each is checked to still differ, so the test says when one gets fixed.
KNOWN_KERAS_MISMATCHES = {
    "RandomShear": "refused: Keras's config stores x_factor as a range (-0.1, 0.1), our constructor wants [0, 1]",
    "RandomContrast": "Keras 3.15 turns factor=0.1 into (0, 0.1) (it samples U(1, 1.1)); ours keeps 0.1 = U(0.9, 1.1)",
}

serialization._import_layer_families()
REGISTERED = sorted(name for name in layer_base._registry if name not in NOT_PLAIN_LAYERS)


def make_layer(name, registry_lookup=layer_base.registered, keras_module=None):
    """Layer `name` from SPECS (ours, or Keras's with keras_module), and its batch input shape."""
    kwargs, shape = SPECS.get(name, ({}, (4,)))
    kwargs = dict(kwargs)
    if "layer" in kwargs:  # a wrapper: build the wrapped layer first
        inner_name, inner_kwargs = kwargs["layer"]
        inner = getattr(keras_module, inner_name) if keras_module else registry_lookup(inner_name)
        kwargs["layer"] = inner(**inner_kwargs)
    cls = getattr(keras_module, name) if keras_module else registry_lookup(name)
    batch_shape = [(2,) + s for s in shape] if isinstance(shape, list) else (2,) + shape
    return cls(**kwargs), batch_shape


def sample(batch_shape, name, seed=0):
    rng = np.random.default_rng(seed)
    if name == "Embedding":
        return rng.integers(0, 10, batch_shape)
    if isinstance(batch_shape, list):
        return [rng.standard_normal(s).astype(np.float32) for s in batch_shape]
    return rng.standard_normal(batch_shape).astype(np.float32)


def _numpy(out):
    return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()


@pytest.mark.parametrize("name", REGISTERED)
def test_every_layer_round_trips_through_its_config(name):
    layer, batch_shape = make_layer(name)
    x = sample(batch_shape, name)
    expected = layer(x, training=False)
    config = json_trip(serialize_object(layer))
    assert config["module"] == "keras.layers" and config["class_name"] == name
    again = deserialize_object(config)
    assert type(again) is type(layer)
    assert json_trip(serialize_object(again)) == config  # the same config, build shape included
    assert again.built and [w.shape for w in again.weights] == [w.shape for w in layer.weights]
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(_numpy(again(x, training=False))), np.asarray(_numpy(expected)),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", REGISTERED)
def test_every_layer_config_is_understood_by_keras_both_ways(keras, name):
    """Our config builds the same layer in Keras (and back), and Keras's config of the layer made
    with the same arguments builds the layer made here."""
    if not hasattr(keras.layers, name):
        pytest.skip(f"Keras has no layer {name}")
    known = KNOWN_KERAS_MISMATCHES.get(name, "")
    ours, _ = make_layer(name)
    theirs = keras.saving.deserialize_keras_object(json_trip(serialize_object(ours)))
    assert type(theirs).__name__ == name
    kl, _ = make_layer(name, keras_module=keras.layers)
    if known.startswith("refused"):
        for keras_layer in (theirs, kl):
            with pytest.raises(DeserializationError):
                deserialize_object(json_trip(keras.saving.serialize_keras_object(keras_layer)))
        pytest.xfail(known)
    back = deserialize_object(json_trip(keras.saving.serialize_keras_object(theirs)))
    same_back = json_trip(serialize_object(back))["config"] == json_trip(serialize_object(ours))["config"]
    assert same_back or known

    from_keras = deserialize_object(json_trip(keras.saving.serialize_keras_object(kl)))
    mine = json_trip(serialize_object(ours))["config"]
    theirs_read = json_trip(serialize_object(from_keras))["config"]
    for cfg in (mine, theirs_read):  # names are automatic, sublayers' too
        cfg.pop("name")
        for key in ("layer", "backward_layer"):
            if isinstance(cfg.get(key), dict):
                cfg[key]["config"].pop("name")
    if known:
        assert theirs_read != mine or not same_back
        pytest.xfail(known)
    assert theirs_read == mine


# ============================================================================ models
def functional_model(L=layers, M=models):
    """Two named inputs, a nested Sequential, a layer called twice, two outputs (same code for Keras)."""
    if L is layers:
        layers.clear_session()
    a = L.Input((6,), name="a")
    b = L.Input((3,), name="b")
    block = M.Sequential([L.Input((6,)), L.Dense(4, activation="relu"), L.Dropout(0.1)], name="block")
    shared = L.Dense(4, name="shared")
    h = L.Concatenate(name="join")([shared(block(a)), L.Dense(2, name="b_branch")(b)])
    h2 = shared(L.Dense(4, name="before_shared")(h))  # a layer called twice: two inbound nodes
    out1 = L.Dense(3, activation="softmax", name="out1")(h)
    out2 = L.Dense(1, name="out2")(L.Add(name="sum")([h2, L.Dense(4, name="side")(h)]))
    return M.Model({"a": a, "b": b}, [out1, out2], name="two_heads")


def test_functional_model_round_trip_with_shared_and_nested_layers():
    model = functional_model()
    config = json_trip(model_to_config(model))
    assert config["class_name"] == "Functional" and config["config"]["input_layers"] == {"a": ["a", 0, 0],
                                                                                           "b": ["b", 0, 0]}
    shared = next(layer for layer in config["config"]["layers"] if layer["name"] == "shared")
    assert len(shared["inbound_nodes"]) == 2
    again = model_from_config(config)
    assert sorted(layer.name for layer in again.layers) == sorted(layer.name for layer in model.layers)
    again.set_weights(model.get_weights())
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((4, 6)).astype(np.float32), "b": rng.standard_normal((4, 3)).astype(np.float32)}
    for p, q in zip(again.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-6)
    assert json_trip(model_to_config(again)) == config


def test_functional_layer_order_is_keras_order(keras):
    ours, theirs = functional_model(), functional_model(keras.layers, keras)
    assert [layer.name for layer in serialization.keras_layer_order(ours._graph)] == \
        [layer.name for layer in theirs.layers]
    # and Keras reads our config into the same graph
    rebuilt = keras.saving.deserialize_keras_object(json_trip(model_to_config(ours)))
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in theirs.layers]


def test_sequential_configs():
    layers.clear_session()
    built = models.Sequential([layers.Input((5,)), layers.Dense(3), layers.Dense(2)], name="built")
    config = json_trip(model_to_config(built))
    assert config["config"]["layers"][0]["class_name"] == "InputLayer"
    assert config["config"]["build_input_shape"] == [None, 5]
    again = model_from_config(config)
    assert again.built and [w.shape for w in again.weights] == [w.shape for w in built.weights]

    lazy = models.Sequential([layers.Dense(3), layers.Dense(2)], name="lazy")  # no input shape yet
    config = json_trip(model_to_config(lazy))
    assert [layer["class_name"] for layer in config["config"]["layers"]] == ["Dense", "Dense"]
    again = model_from_config(config)
    assert not again.built
    assert again(np.ones((2, 7), np.float32)).shape == (2, 2)

    shortcut = models.Sequential([layers.Dense(3, input_shape=(4,))])  # Keras 2's input_shape= shortcut
    config = json_trip(model_to_config(shortcut))
    assert config["config"]["layers"][0]["config"]["batch_shape"] == [None, 4]
    assert "batch_input_shape" not in config["config"]["layers"][1]["config"]  # Keras 3 refuses that key


def test_compile_config_round_trip():
    model = functional_model()
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3, beta_1=0.8, clipnorm=1.0),
                  loss=["sparse_categorical_crossentropy", losses.Huber(delta=2.0)], loss_weights=[1.0, 0.25],
                  metrics=[["accuracy"], [metrics.MeanAbsoluteError()]])
    config = json_trip(model_to_config(model))
    compiled = config["compile_config"]
    assert compiled["loss"][0] == "sparse_categorical_crossentropy"
    assert compiled["loss"][1]["class_name"] == "Huber" and compiled["loss"][1]["config"]["delta"] == 2.0
    assert compiled["loss_weights"] == [1.0, 0.25]
    again = model_from_config(config)
    assert again.compiled and isinstance(again.optimizer, optimizers.Adam)
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert json_trip(model_to_config(again))["compile_config"] == compiled
    assert not model_from_config(dict(config, compile_config=None)).compiled

    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((8, 6)).astype(np.float32), "b": rng.standard_normal((8, 3)).astype(np.float32)}
    y = [rng.integers(0, 3, 8), rng.standard_normal((8, 1)).astype(np.float32)]
    again.set_weights(model.get_weights())
    assert again.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(x, y, verbose=0, return_dict=True))


def test_compile_config_matches_keras(keras):
    model = functional_model()
    model.compile(optimizer="sgd", loss=["categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    theirs = keras.saving.deserialize_keras_object(json_trip(model_to_config(model)))
    assert theirs.compiled and type(theirs.optimizer).__name__ == "SGD"
    assert theirs.loss == ["categorical_crossentropy", "mse"]
    back = model_from_config(json_trip(keras.saving.serialize_keras_object(theirs)))
    assert back.compiled and isinstance(back.optimizer, optimizers.SGD)
    assert back.compiled_loss.specs == ["categorical_crossentropy", "mse"]


def test_optimizer_with_schedule_round_trips(keras):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    config = json_trip(keras.saving.serialize_keras_object(keras.optimizers.Adam(schedule)))
    ours = deserialize_object(config)
    assert isinstance(ours, optimizers.Adam)
    assert ours.learning_rate == pytest.approx(0.1)
    ours.iterations = 10
    assert ours.learning_rate == pytest.approx(0.05)
    assert keras.saving.deserialize_keras_object(json_trip(serialize_object(ours))).get_config()["learning_rate"] \
        ["config"]["decay_steps"] == 10


# ============================================================================ refusals and custom objects
def _lambda_config(fn):
    """A Lambda layer config as Keras 3 writes one for a Python lambda (its bytecode, base64)."""
    code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": "lambda", "trainable": True, "dtype": "float32", "arguments": {},
                       "function": {"class_name": "__lambda__",
                                    "config": {"code": code, "defaults": None, "closure": None}}}}


def test_lambda_bytecode_is_refused_in_safe_mode():
    config = _lambda_config(lambda x: x * 3.0)
    with pytest.raises(DeserializationError, match=r"Lambda 'lambda(_[0-9]+)?'.*bytecode.*safe_mode=False"):
        deserialize_object(config)
    with pytest.warns(UserWarning, match=r"safe_mode=False.*runs each time this layer is called"):
        layer = deserialize_object(config, safe_mode=False)
    np.testing.assert_allclose(layer(np.ones((1, 2), np.float32)).numpy(), [[3.0, 3.0]])


def test_lambda_of_a_named_function_needs_the_function():
    def double(x):
        return x * 2.0
    layers.clear_session()
    model = models.Sequential([layers.Input((2,)), layers.Lambda(double)])
    config = json_trip(model_to_config(model))
    assert config["config"]["layers"][1]["config"]["function"] == {
        "module": "builtins", "class_name": "function", "config": "double", "registered_name": "function"}
    with pytest.raises(DeserializationError, match=r"unknown function 'double'.*custom_objects"):
        model_from_config(config)
    again = model_from_config(config, custom_objects={"double": double})
    np.testing.assert_allclose(again.predict(np.ones((1, 2), np.float32), verbose=0), [[2.0, 2.0]])


def test_unknown_class_is_refused_by_name():
    config = {"module": "my_project.layers", "class_name": "FancyLayer", "registered_name": "my_project>FancyLayer",
              "config": {"name": "fancy"}}
    with pytest.raises(DeserializationError) as info:
        deserialize_object(config)
    message = str(info.value)
    for part in ("FancyLayer", "custom_objects", "register_serializable", "never runs code"):
        assert part in message
    layers.clear_session()
    model_config = json_trip(model_to_config(models.Sequential([layers.Input((2,)), layers.Dense(1)])))
    model_config["config"]["layers"][1] = dict(config, build_config={"input_shape": [None, 2]})
    with pytest.raises(DeserializationError, match=r"layers\[1\].*FancyLayer"):
        model_from_config(model_config)


def test_unsupported_keras_option_is_refused_by_name():
    layers.clear_session()
    config = json_trip(serialize_object(layers.Dense(2)))
    config["config"]["lora_rank"] = None  # Keras-only options that are off are dropped
    assert isinstance(deserialize_object(config), layers.Dense)
    config["config"]["lora_rank"] = 4
    with pytest.raises(DeserializationError, match="lora_rank=4 is not supported"):
        deserialize_object(config)
    config["config"].pop("lora_rank")
    config["config"]["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
    with pytest.raises(DeserializationError, match="mixed_float16"):
        deserialize_object(config)


class Scale(layers.Layer):
    """y = factor * x: a custom layer with its own config."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _model_with_custom_layer(cls):
    layers.clear_session()
    return models.Sequential([layers.Input((2,)), cls(factor=4.0), layers.Dense(1)])


def test_custom_objects():
    config = json_trip(model_to_config(_model_with_custom_layer(Scale)))
    entry = config["config"]["layers"][1]
    assert entry["class_name"] == "Scale" and entry["module"] == __name__ and entry["config"]["factor"] == 4.0
    with pytest.raises(DeserializationError, match="unknown class 'Scale'"):
        model_from_config(config)
    again = model_from_config(config, custom_objects={"Scale": Scale})
    assert isinstance(again.layers[0], Scale) and again.layers[0].factor == 4.0


def test_register_serializable():
    @register_serializable(package="test_pkg")
    class Shift(Scale):
        pass

    config = json_trip(model_to_config(_model_with_custom_layer(Shift)))
    assert config["config"]["layers"][1]["registered_name"] == "test_pkg>Shift"
    again = model_from_config(config)  # found through the registry, no custom_objects
    assert type(again.layers[0]) is Shift and again.layers[0].factor == 4.0
    assert serialization.get_registered_object("test_pkg>Shift") is Shift
    assert serialization.get_registered_name(Shift) == "test_pkg>Shift"

    @register_serializable(package="test_pkg")
    def cube(y_true, y_pred):
        return ((y_pred - y_true) ** 3).mean()

    model = _model_with_custom_layer(Shift)
    model.compile(optimizer="sgd", loss=cube)
    config = json_trip(model_to_config(model))
    assert config["compile_config"]["loss"]["registered_name"] == "test_pkg>cube"
    assert model_from_config(config).compiled_loss.specs is cube

    with pytest.raises(ValueError, match="get_config"):
        register_serializable()(type("NoConfig", (), {}))


def test_malformed_configs_are_refused():
    with pytest.raises(DeserializationError, match="class_name"):
        model_from_config({"layers": []})
    layers.clear_session()
    with pytest.raises(DeserializationError, match="not a model"):
        model_from_config(json_trip(serialize_object(layers.Dense(2))))
    config = json_trip(model_to_config(functional_model()))
    config["config"]["output_layers"] = [["out1", 5, 0]]
    with pytest.raises(DeserializationError, match="output_layers.*out1"):
        model_from_config(config)
    config = json_trip(model_to_config(functional_model()))
    config["config"]["layers"][-1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["nowhere", 0, 0]
    with pytest.raises(DeserializationError, match="unknown layer 'nowhere'"):
        model_from_config(config)


def test_duplicate_layer_names_are_refused_at_save():
    layers.clear_session()
    x = layers.Input((3,))
    y = layers.Dense(2, name="twin")(layers.Dense(3, name="twin")(x))
    with pytest.raises(ValueError, match=r"several layers named \['twin'\]"):
        model_to_config(models.Model(x, y))


def test_arrays_in_configs_must_be_numeric():
    good = {"class_name": "__numpy__", "config": {"value": [1, 2], "dtype": "float32"}}
    np.testing.assert_array_equal(deserialize_object(good), np.array([1, 2], np.float32))
    for dtype in ("object", "O", "U3"):
        with pytest.raises(DeserializationError, match="bad array"):
            deserialize_object({"class_name": "__numpy__", "config": {"value": ["a"], "dtype": dtype}})
