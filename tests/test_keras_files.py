"""Keras 3's own files, both ways: `.keras` and `.weights.h5` written by chainrule load in Keras
and vice versa, with the same predictions; optimizer state resumes training as Keras would;
hostile and corrupted files are refused with the file and member named, the model untouched."""
import io
import os
import sys
import types
import warnings
import zipfile

import numpy as np
import pytest

from chainrule import layers, models, optimizers
from chainrule.io import keras_dispatch, keras_format
from chainrule.io.keras_format import KerasFileError, load_keras, load_weights_h5, save_keras, save_weights_h5

# Keras 3.15's torch backend calls np.array on tensors whose __array__ lacks `copy` (NumPy 2 warns)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning",
                                        "ignore:Do not pass an `input_shape`:UserWarning")

ATOL = 1e-5


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def h5py():
    return pytest.importorskip("h5py")


# ============================================================================ the model table
# Each builder takes a layers module and a models namespace, so the same code builds the model in
# chainrule and in Keras (the APIs match). Every model is small, so the whole file runs quickly.
def lecture_cnn(L, M):
    return M.Sequential([
        L.Input((12, 12, 1)),
        L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.Activation("relu"), L.MaxPooling2D(),
        L.Dropout(0.25),
        L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.Activation("relu"), L.MaxPooling2D(),
        L.Dropout(0.25),
        L.GlobalAveragePooling2D(), L.Dense(16, activation="relu"), L.Dropout(0.5),
        L.Dense(5, activation="softmax")])


def unet(L, M):
    x = L.Input((16, 16, 1), name="image")
    c1 = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    p1 = L.MaxPooling2D()(c1)
    c2 = L.Conv2D(8, 3, padding="same", activation="relu")(p1)
    up_learned = L.Conv2DTranspose(4, 2, strides=2, padding="same")(c2)
    up_fixed = L.UpSampling2D()(c2)
    merged = L.Concatenate()([up_learned, c1, up_fixed])
    c3 = L.Conv2D(4, 3, padding="same", activation="relu")(merged)
    mask = L.Conv2D(1, 1, activation="sigmoid", name="mask")(c3)
    return M.Model(x, mask)


def multi_io(L, M):
    image = L.Input((8, 8, 2), name="image")
    meta = L.Input((5,), name="meta")
    h = L.Flatten()(L.Conv2D(3, 3, activation="relu")(image))
    joined = L.Concatenate()([h, L.Dense(4, activation="tanh")(meta)])
    shared = L.Dense(6, activation="relu", name="shared")
    z = shared(joined)
    label = L.Dense(3, activation="softmax", name="label")(z)
    score = L.Dense(1, name="score")(L.Add()([z, shared(joined)]))
    return M.Model([image, meta], [label, score])


def nested(L, M):
    block = M.Sequential([L.Input((6,)), L.Dense(5, activation="relu"), L.BatchNormalization(), L.Dense(4)],
                         name="block")
    inner_in = L.Input((4,))
    head = M.Model(inner_in, L.Dense(2, name="head_out")(L.Dense(3, activation="relu")(inner_in)), name="head")
    x = L.Input((6,), name="x")
    y = head(L.Activation("relu")(block(x)))
    return M.Model(x, L.Softmax()(y))


def bn_dropout(L, M):
    return M.Sequential([L.Input((7,)), L.Dense(12), L.BatchNormalization(), L.Activation("relu"),
                         L.Dropout(0.3), L.Dense(8), L.BatchNormalization(momentum=0.9, epsilon=1e-2),
                         L.Activation("relu"), L.Dropout(0.2), L.Dense(1, activation="sigmoid")])


def recurrent(L, M):
    # Keras keeps recurrent weights in a `cell` sublayer, wrappers' under their attribute names
    return M.Sequential([L.Input((5, 3)), L.LSTM(4, return_sequences=True),
                         L.Bidirectional(L.GRU(3, return_sequences=True)), L.SimpleRNN(2), L.Dense(2)])


MODELS = {"lecture_cnn": (lecture_cnn, [(12, 12, 1)]), "unet": (unet, [(16, 16, 1)]),
          "multi_io": (multi_io, [(8, 8, 2), (5,)]), "nested": (nested, [(6,)]),
          "bn_dropout": (bn_dropout, [(7,)]), "lstm": (recurrent, [(5, 3)])}


def _build(name, framework):
    if name == "lstm" and framework == "chainrule" and not all(
            hasattr(layers, n) for n in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")):
        pytest.skip("chainrule.layers has no recurrent layers yet")
    builder, _ = MODELS[name]
    if framework == "chainrule":
        layers.clear_session()
        return builder(layers, models)
    keras = sys.modules["keras"]
    return builder(keras.layers, keras)


def _inputs(name, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((3,) + shape).astype(np.float32) for shape in MODELS[name][1]]
    return xs if len(xs) > 1 else xs[0]


def _random_value(path, shape, rng):
    if path.endswith("moving_variance"):
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)  # variances must be positive
    return (0.4 * rng.standard_normal(shape)).astype(np.float32)


def _randomize_ours(model, seed=1):
    rng = np.random.default_rng(seed)
    for w in model.weights:  # moving statistics too, so inference differs from training
        w.assign(_random_value(w.path, w.shape, rng))


def _randomize_keras(model, seed=1):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(_random_value(v.path, tuple(v.shape), rng))


def _assert_same_predictions(a, b):
    a = a if isinstance(a, list) else [a]
    b = b if isinstance(b, list) else [b]
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_saved_by_chainrule_loads_in_keras(keras, h5py, name, tmp_path):
    ours = _build(name, "chainrule")
    _randomize_ours(ours)
    path = tmp_path / f"{name}.keras"
    save_keras(ours, path)
    theirs = keras.saving.load_model(path)
    x = _inputs(name)
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


@pytest.mark.parametrize("name", list(MODELS))
def test_saved_by_keras_loads_in_chainrule(keras, h5py, name, tmp_path):
    if name == "lstm" and not hasattr(layers, "LSTM"):
        pytest.skip("chainrule.layers has no recurrent layers yet")
    theirs = _build(name, "keras")
    _randomize_keras(theirs)
    path = tmp_path / f"{name}.keras"
    theirs.save(path)
    ours = load_keras(path)
    assert sorted(layer.name for layer in ours.layers) == sorted(layer.name for layer in theirs.layers)
    x = _inputs(name)
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


@pytest.mark.parametrize("name", list(MODELS))
def test_weights_h5_both_ways(keras, h5py, name, tmp_path):
    """Keras's model.weights.h5 loads into the same architecture built in chainrule, and back."""
    theirs = _build(name, "keras")
    ours = _build(name, "chainrule")
    _randomize_keras(theirs)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    load_weights_h5(ours, tmp_path / "keras.weights.h5")
    x = _inputs(name)
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))

    _randomize_ours(ours, seed=5)
    save_weights_h5(ours, tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_file_layout_matches_keras(keras, h5py, tmp_path):
    """Same zip members and the same HDF5 groups, datasets, shapes and name attributes as Keras's file."""
    theirs = _build("multi_io", "keras")
    theirs.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
    x, y = _inputs("multi_io"), [np.array([0, 1, 2]), np.zeros((3, 1), np.float32)]
    theirs.fit(x, y, epochs=1, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_keras(tmp_path / "keras.keras")
    save_keras(ours, tmp_path / "ours.keras")

    def listing(path):
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
            assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
            data = zf.read("model.weights.h5")
        items = []
        with h5py.File(io.BytesIO(data), "r") as f:
            f.visititems(lambda n, o: items.append(
                (n, tuple(o.shape) if isinstance(o, h5py.Dataset) else None, dict(o.attrs))))
        return sorted(members), sorted(items, key=lambda item: item[0])

    assert listing(tmp_path / "ours.keras") == listing(tmp_path / "keras.keras")


def _subclassed(L, base):
    """The same subclassed model in both frameworks: Keras names its weight groups by attribute."""
    class Net(base):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.b_out = L.Dense(2)
            self.a_in = L.Dense(3, activation="relu")
            self.zz = [L.Dense(4), L.Dense(2)]  # a list: Keras saves these under "layers/dense_2", ...

        def call(self, x, training=False):
            return self.b_out(self.a_in(x)) + self.zz[1](self.zz[0](x))

    return Net


def test_subclassed_model_weights_both_ways(keras, h5py, tmp_path):
    theirs = _subclassed(keras.layers, keras.Model)()
    ours = _subclassed(layers, models.Model)()
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    theirs(x), ours(x)
    _randomize_keras(theirs)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    load_weights_h5(ours, tmp_path / "keras.weights.h5")
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    _randomize_ours(ours, seed=3)
    save_weights_h5(ours, tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_subclassed_model_round_trips_through_a_keras_file(h5py, tmp_path):
    Net = _subclassed(layers, models.Model)
    ours = Net(name="net")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    ours(x)
    ours.compile(optimizer="adam", loss="mse")
    ours.fit(x, np.zeros((3, 2), np.float32), epochs=2, verbose=0)
    save_keras(ours, tmp_path / "net.keras")
    with pytest.raises(KerasFileError, match="unknown class 'Net'.*custom_objects"):
        load_keras(tmp_path / "net.keras")
    again = load_keras(tmp_path / "net.keras", custom_objects={"Net": Net})
    _assert_same_predictions(again.predict(x, verbose=0), ours.predict(x, verbose=0))
    assert again.optimizer.iterations == ours.optimizer.iterations == 2
    ours.fit(x, np.zeros((3, 2), np.float32), epochs=1, verbose=0)
    again.fit(x, np.zeros((3, 2), np.float32), epochs=1, verbose=0)
    for a, b in zip(ours.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ============================================================================ optimizer state resumes training
def _resume_problem():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((48, 6)).astype(np.float32)
    y = rng.integers(0, 3, 48)
    return x, y


def _classifier(L, M):
    return M.Sequential([L.Input((6,)), L.Dense(8, activation="relu"), L.BatchNormalization(),
                         L.Dense(3, activation="softmax")])


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_training_resumed_from_a_keras_file_continues_as_in_keras(keras, h5py, optimizer, tmp_path):
    x, y = _resume_problem()
    keras.utils.set_random_seed(0)
    theirs = _classifier(keras.layers, keras)
    opt = keras.optimizers.Adam(0.01) if optimizer == "adam" else keras.optimizers.SGD(0.05, momentum=0.9)
    theirs.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    theirs.save(tmp_path / "two_epochs.keras")

    ours = load_keras(tmp_path / "two_epochs.keras")
    assert ours.compiled and ours.optimizer.iterations == 6
    restarted = load_keras(tmp_path / "two_epochs.keras")
    restarted.compile(optimizer=type(restarted.optimizer).from_config(restarted.optimizer.get_config()),
                      loss="sparse_categorical_crossentropy")  # same weights, fresh optimizer state

    theirs.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    restarted.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
    # the optimizer state is what made the difference
    gap = max(np.abs(a - b).max() for a, b in zip(theirs.get_weights(), restarted.get_weights()))
    assert gap > 1e-4


def test_training_resumed_in_keras_from_a_chainrule_file(keras, h5py, tmp_path):
    x, y = _resume_problem()
    ours = _classifier(layers, models)
    ours.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    save_keras(ours, tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert int(theirs.optimizer.iterations) == 6
    ours.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)


def test_optimizer_state_order_matches_keras(keras, h5py, tmp_path):
    """Each optimizer's arrays land on the right variables (functional order differs from ours)."""
    x = _inputs("multi_io")
    y = [np.array([0, 1, 2]), np.ones((3, 1), np.float32)]
    for make in (lambda: keras.optimizers.RMSprop(centered=True, momentum=0.5), keras.optimizers.Adadelta,
                 keras.optimizers.Nadam, lambda: keras.optimizers.Adam(amsgrad=True), keras.optimizers.Adagrad):
        theirs = _build("multi_io", "keras")
        theirs.compile(optimizer=make(), loss=["sparse_categorical_crossentropy", "mse"])
        theirs.fit(x, y, epochs=2, verbose=0)
        theirs.save(tmp_path / "m.keras")
        ours = load_keras(tmp_path / "m.keras")
        save_keras(ours, tmp_path / "back.keras")
        back = keras.saving.load_model(tmp_path / "back.keras")
        for a, b in zip(theirs.optimizer.variables, back.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{a.path}")


# ============================================================================ refusals
def _small_model():
    layers.clear_session()
    model = models.Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2)])
    return model


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture
def good_file(h5py, tmp_path):
    model = _small_model()
    path = tmp_path / "good.keras"
    save_keras(model, path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return path, members


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil", "assets/../../evil", "C:/evil"])
def test_hostile_member_names_are_refused(good_file, tmp_path, evil):
    _, members = good_file
    path = tmp_path / "evil.keras"
    _write_zip(path, {**members, evil: b"x"})
    with pytest.raises(KerasFileError, match="unsafe member name") as info:
        load_keras(path)
    assert info.value.member == evil and str(path) in str(info.value)


def test_missing_config_is_refused(good_file, tmp_path):
    _, members = good_file
    path = tmp_path / "no_config.keras"
    _write_zip(path, {k: v for k, v in members.items() if k != "config.json"})
    with pytest.raises(KerasFileError, match="config.json.*missing"):
        load_keras(path)


def test_truncated_zip_is_refused(good_file, tmp_path):
    path, _ = good_file
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        (tmp_path / "cut.keras").write_bytes(data[:cut])
        with pytest.raises(KerasFileError, match="cut.keras"):
            load_keras(tmp_path / "cut.keras")


def test_corrupted_members_are_refused(good_file, tmp_path):
    _, members = good_file
    path = tmp_path / "bad.keras"
    _write_zip(path, {**members, "config.json": b"{not json"})
    with pytest.raises(KerasFileError, match="config.json.*not valid JSON"):
        load_keras(path)
    _write_zip(path, {**members, "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 200})
    with pytest.raises(KerasFileError, match="model.weights.h5.*HDF5"):
        load_keras(path)
    # a flipped byte inside a member fails the zip's CRC check
    raw = bytearray((tmp_path / "good.keras").read_bytes())
    start = raw.find(b'"class_name"')
    raw[start + 2] ^= 0xFF
    (tmp_path / "flipped.keras").write_bytes(bytes(raw))
    with pytest.raises(KerasFileError, match="config.json"):
        load_keras(tmp_path / "flipped.keras")


def test_oversized_members_are_refused(good_file, monkeypatch):
    path, _ = good_file
    monkeypatch.setattr(keras_format, "MAX_JSON_BYTES", 64)
    with pytest.raises(KerasFileError, match="config.json.*over the limit"):
        load_keras(path)
    monkeypatch.setattr(keras_format, "MAX_JSON_BYTES", 2 ** 20)
    monkeypatch.setattr(keras_format, "MAX_WEIGHTS_BYTES", 100)
    with pytest.raises(KerasFileError, match="model.weights.h5.*over the limit"):
        load_keras(path)


def test_decompression_bomb_is_refused(good_file, tmp_path):
    _, members = good_file
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", members["metadata.json"])
        zf.writestr("config.json", members["config.json"] + b" " * (8 * 2 ** 20))  # valid JSON, compresses ~1000x
        zf.writestr("model.weights.h5", members["model.weights.h5"])
    with pytest.raises(KerasFileError, match="config.json.*decompression bomb"):
        load_keras(path)


def test_shape_mismatch_leaves_the_model_untouched(h5py, tmp_path):
    source = models.Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(5)])  # 2nd layer differs
    save_weights_h5(source, tmp_path / "other.weights.h5")
    target = _small_model()
    before = target.get_weights()
    with pytest.raises(KerasFileError, match=r"layers/dense_1/vars/0' has shape \(3, 5\).*\(3, 2\)"):
        load_weights_h5(target, tmp_path / "other.weights.h5")
    for a, b in zip(before, target.get_weights()):  # the first layer matched, yet was not assigned
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="skip_mismatch"):
        load_weights_h5(target, tmp_path / "other.weights.h5", skip_mismatch=True)
    np.testing.assert_array_equal(target.get_weights()[0], source.get_weights()[0])
    np.testing.assert_array_equal(target.get_weights()[2], before[2])


def test_wrong_architecture_is_refused(h5py, tmp_path):
    source = models.Sequential([layers.Input((4,)), layers.Dense(3)])
    save_weights_h5(source, tmp_path / "one.weights.h5")
    target = _small_model()
    with pytest.raises(KerasFileError, match="no group 'layers/dense_1/vars'"):
        load_weights_h5(target, tmp_path / "one.weights.h5")


def test_hdf5_links_and_odd_datasets_are_refused(h5py, tmp_path):
    model = _small_model()
    save_weights_h5(model, tmp_path / "w.weights.h5")
    before = model.get_weights()
    variants = {
        r"'layers/dense/vars/0' is an HDF5 link \(SoftLink\)": lambda f: (
            f.__delitem__("layers/dense/vars/0"), f.__setitem__("layers/dense/vars/0", h5py.SoftLink("/layers/dense_1/vars/0"))),
        r"'layers/dense/vars/1' is an HDF5 link \(ExternalLink\)": lambda f: (
            f.__delitem__("layers/dense/vars/1"), f.__setitem__("layers/dense/vars/1", h5py.ExternalLink("/etc/passwd", "/x"))),
        r"'layers/dense/vars' goes through an HDF5 link": lambda f: (
            f.__delitem__("layers/dense"), f.__setitem__("layers/dense", h5py.SoftLink("/layers/dense_1"))),
        r"'layers/dense/vars/1' has dtype \|S1, not a number": lambda f: (
            f.__delitem__("layers/dense/vars/1"), f.create_dataset("layers/dense/vars/1", data=np.array([b"a", b"b", b"c"]))),
        r"should hold datasets named 0..2, found \['0', '1', '7'\]": lambda f: f.create_dataset(
            "layers/dense/vars/7", data=np.zeros(3)),
    }
    for i, (message, corrupt) in enumerate(variants.items()):
        path = tmp_path / f"variant{i}.weights.h5"
        path.write_bytes((tmp_path / "w.weights.h5").read_bytes())
        with h5py.File(path, "a") as f:
            corrupt(f)
        with pytest.raises(KerasFileError, match=f"variant{i}.weights.h5'.*{message}"):
            load_weights_h5(model, path)
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_unknown_keras_layer_is_refused_by_name(keras, h5py, tmp_path):
    theirs = keras.Sequential([keras.Input((4, 4, 4, 1)), keras.layers.Conv3D(2, 2), keras.layers.Flatten()])
    theirs.save(tmp_path / "conv3d.keras")
    with pytest.raises(KerasFileError, match="config.json.*unknown class 'Conv3D'.*custom_objects"):
        load_keras(tmp_path / "conv3d.keras")


def test_keras_lambda_is_refused_unless_safe_mode_is_off(keras, h5py, tmp_path):
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2.0 + 1.0),
                               keras.layers.Dense(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save(tmp_path / "lambda.keras")
    with pytest.raises(KerasFileError, match="Lambda 'lambda(_[0-9]+)?'.*bytecode.*safe_mode=False"):
        load_keras(tmp_path / "lambda.keras")
    with pytest.warns(UserWarning, match="runs each time this layer is called"):
        ours = load_keras(tmp_path / "lambda.keras", safe_mode=False)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    _assert_same_predictions(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_h5py_missing_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="pip install h5py"):
        save_weights_h5(_small_model(), tmp_path / "w.weights.h5")


def test_failed_save_keeps_the_previous_file(h5py, tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    save_keras(_small_model(), path)
    before = path.read_bytes()

    def boom(model):
        raise RuntimeError("disk full")
    monkeypatch.setattr(keras_format, "_h5_bytes", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_keras(_small_model(), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


# ============================================================================ the dispatcher
def test_dispatch_by_suffix(h5py, tmp_path, monkeypatch):
    model = _small_model()
    x = np.ones((2, 4), np.float32)
    keras_dispatch.save_model(model, tmp_path / "m.keras")
    np.testing.assert_allclose(keras_dispatch.load_model(tmp_path / "m.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0))
    other = _small_model()
    keras_dispatch.load_weights(other, tmp_path / "m.keras")  # as Keras: a .keras file's weights
    np.testing.assert_array_equal(other.get_weights()[0], model.get_weights()[0])
    other.set_weights([np.zeros_like(w) for w in other.get_weights()])
    for name in ("w.weights.h5", "w.npz"):
        keras_dispatch.save_weights(model, tmp_path / name)
        keras_dispatch.load_weights(other, tmp_path / name)
        np.testing.assert_array_equal(other.get_weights()[0], model.get_weights()[0])
        other.set_weights([np.zeros_like(w) for w in other.get_weights()])

    calls = []
    native = types.ModuleType("chainrule.io.native")
    native.save_native = lambda m, p: calls.append(("save_native", os.path.basename(p)))
    native.load_native = lambda p, **kw: calls.append(("load_native", os.path.basename(p), kw))
    native.save_weights_safetensors = lambda m, p: calls.append(("save_st", os.path.basename(p)))
    native.load_weights_safetensors = lambda m, p: calls.append(("load_st", os.path.basename(p)))
    monkeypatch.setitem(sys.modules, "chainrule.io.native", native)
    keras_dispatch.save_model(model, tmp_path / "m.chainrule")
    keras_dispatch.load_model(tmp_path / "m.chainrule", compile=False)
    keras_dispatch.save_weights(model, tmp_path / "m.safetensors")
    keras_dispatch.load_weights(model, tmp_path / "m.safetensors")
    assert calls == [("save_native", "m.chainrule"),
                     ("load_native", "m.chainrule", {"custom_objects": None, "compile": False, "safe_mode": True}),
                     ("save_st", "m.safetensors"), ("load_st", "m.safetensors")]


@pytest.mark.parametrize("name, hint", [("m.h5", "legacy Keras 2"), ("m.pt", ".keras, .chainrule"),
                                        ("m.weights.h5", "weights-only")])
def test_unknown_suffix_lists_the_supported_ones(name, hint, tmp_path):
    with pytest.raises(ValueError, match=hint) as info:
        keras_dispatch.save_model(_small_model(), tmp_path / name)
    assert ".keras" in str(info.value) and ".chainrule" in str(info.value)
    with pytest.raises(ValueError, match=r"\.weights\.h5, \.safetensors, \.npz"):
        keras_dispatch.load_weights(_small_model(), tmp_path / "m.pt")
