"""The `.chainrule` model file and `.safetensors` weights: round trips, refusals, atomic writes.

A model file is a zip of config.json, model.safetensors, optimizer.safetensors and metadata.json;
each test below either reads one back and compares, or damages one and expects one clear
ModelFileError naming the file, with the model in memory left as it was.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, models, optimizers
from chainrule.io import atomic
from chainrule.io.native import (ModelFileError, load_native, load_weights_safetensors, save_native,
                                 save_weights_safetensors)
from chainrule.io.native.tensors import weight_keys

pytest.importorskip("safetensors")


def _mlp(dropout=True, units=16):
    cr.random.seed(3)
    stack = [layers.Input((6,)), layers.Dense(units, activation="relu"), layers.BatchNormalization()]
    if dropout:
        stack.append(layers.Dropout(0.2, seed=1))
    stack.append(layers.Dense(3, activation="softmax"))
    return models.Sequential(stack)


def _data(rng, n=48):
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)


def _trained(rng, optimizer=None, dropout=True):
    model = _mlp(dropout)
    model.compile(optimizer=optimizer or optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = _data(rng)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, x, y


def _same_weights(a, b):
    return len(a.weights) == len(b.weights) and all(
        np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a.weights, b.weights))


# ----------------------------------------------------------------------------- round trips
def test_round_trip_keeps_architecture_weights_optimizer_and_compile(tmp_path, rng):
    model, x, _ = _trained(rng)
    path = tmp_path / "net.chainrule"
    save_native(model, path)
    assert sorted(zipfile.ZipFile(path).namelist()) == ["config.json", "metadata.json", "model.safetensors",
                                                        "optimizer.safetensors"]
    meta = json.loads(zipfile.ZipFile(path).read("metadata.json"))
    assert meta["format"] == "chainrule" and meta["format_version"] == 1 and meta["chainrule_version"]

    loaded = load_native(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert _same_weights(model, loaded)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.compiled and type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    assert loaded.optimizer.learning_rate == 0.01  # the exact float, not float32(0.01)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("make_optimizer", [lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                            lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                                            lambda: optimizers.Nadam(0.01), lambda: optimizers.AdamW(0.01)],
                         ids=["sgd", "rmsprop", "nadam", "adamw"])
def test_loaded_model_trains_on_exactly_as_the_original(tmp_path, rng, make_optimizer):
    """The optimizer state is all there: one more step on each gives bit-identical weights."""
    model, x, y = _trained(rng, make_optimizer(), dropout=False)
    save_native(model, tmp_path / "m.chainrule")
    loaded = load_native(tmp_path / "m.chainrule")
    for _ in range(2):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    assert _same_weights(model, loaded)


def test_functional_model_round_trip(tmp_path, rng):
    cr.random.seed(0)
    a, b = layers.Input((4,), name="a"), layers.Input((3,), name="b")
    h = layers.Concatenate()([layers.Dense(5, activation="tanh")(a), b])
    out = layers.Add()([layers.Dense(2)(h), layers.Dense(2)(h)])
    model = models.Model([a, b], out)
    xa, xb = rng.normal(size=(7, 4)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    save_native(model, tmp_path / "f.chainrule")
    loaded = load_native(tmp_path / "f.chainrule")
    assert not loaded.compiled  # saved uncompiled, so no optimizer member either
    assert "optimizer.safetensors" not in zipfile.ZipFile(tmp_path / "f.chainrule").namelist()
    np.testing.assert_array_equal(loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0))


def test_compile_false_gives_the_weights_without_optimizer(tmp_path, rng):
    model, x, _ = _trained(rng)
    save_native(model, tmp_path / "m.chainrule")
    loaded = load_native(tmp_path / "m.chainrule", compile=False)
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_compiled_but_untrained_model_has_no_optimizer_state(tmp_path):
    model = _mlp()
    model.compile(optimizer="sgd", loss="mse")
    save_native(model, tmp_path / "m.chainrule")
    assert "optimizer.safetensors" not in zipfile.ZipFile(tmp_path / "m.chainrule").namelist()
    loaded = load_native(tmp_path / "m.chainrule")
    assert loaded.compiled and loaded.optimizer.iterations == 0


def test_unbuilt_model_is_refused_with_the_fix():
    model = models.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        save_native(model, "never-written.chainrule")


def test_safetensors_weights_round_trip_keyed_by_path(tmp_path, rng):
    import safetensors.numpy
    model, x, _ = _trained(rng)
    path = tmp_path / "w.safetensors"
    save_weights_safetensors(model, path)
    with open(path, "rb") as f:
        stored = safetensors.numpy.load(f.read())
    # keyed by class and position, whatever the layers' automatic names in this session ('dense_12')
    assert sorted(stored) == ["batch_normalization/beta", "batch_normalization/gamma",
                              "batch_normalization/moving_mean", "batch_normalization/moving_variance",
                              "dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
    np.testing.assert_array_equal(stored["dense_1/kernel"], model.layers[-1].kernel.numpy())
    fresh = _mlp()
    assert fresh.layers[0].name != "dense"  # so the keys cannot come from the names
    load_weights_safetensors(fresh, path)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def _nested():
    inner = models.Sequential([layers.Input((4,)), layers.Dense(5), layers.Dense(4)])
    inputs = layers.Input((4,))
    return models.Model(inputs, layers.Dense(2)(inner(inputs)))


def test_nested_models_key_weights_by_structure(tmp_path, rng):
    model = _nested()
    keys = [key for key, _ in weight_keys(model)]
    assert keys == ["sequential/dense/kernel", "sequential/dense/bias", "sequential/dense_1/kernel",
                    "sequential/dense_1/bias", "dense/kernel", "dense/bias"]
    save_weights_safetensors(model, tmp_path / "w.safetensors")
    copy = _nested()  # every layer has another automatic name now
    load_weights_safetensors(copy, tmp_path / "w.safetensors")
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))


def test_float64_weights_load_cast_to_the_models_dtype(tmp_path):
    import safetensors.numpy
    model = _mlp()
    arrays = {key: np.full(w.shape, 0.5, dtype=np.float64) for key, w in weight_keys(model)}
    (tmp_path / "w.safetensors").write_bytes(safetensors.numpy.save(arrays))
    load_weights_safetensors(model, tmp_path / "w.safetensors")
    assert all(w.dtype == np.float32 and np.all(w.numpy() == 0.5) for w in model.weights)


# ----------------------------------------------------------------------------- refusals
def _refused(fn, path, *fragments):
    with pytest.raises(ModelFileError) as info:
        fn(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def test_truncated_model_file_is_refused(tmp_path, rng):
    model, _, _ = _trained(rng)
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _refused(load_native, path, "truncated")


def test_corrupted_member_is_refused(tmp_path, rng):
    model, _, _ = _trained(rng)
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    info = zipfile.ZipFile(path).getinfo("model.safetensors")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # where the stored bytes begin
    data[start + info.file_size // 2] ^= 0xFF  # one flipped byte in the weights: the CRC catches it
    path.write_bytes(bytes(data))
    _refused(load_native, path, "corrupted")


def test_absurd_safetensors_header_length_is_refused(tmp_path):
    model = _mlp()
    path = tmp_path / "w.safetensors"
    save_weights_safetensors(model, path)
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    before = model.get_weights()
    _refused(lambda p: load_weights_safetensors(model, p), path, "header claims")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_inconsistent_header_entry_is_refused(tmp_path):
    model = _mlp()
    path = tmp_path / "w.safetensors"
    save_weights_safetensors(model, path)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [s + 1 for s in header[key]["shape"]]  # the bytes no longer fit the shape
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    _refused(lambda p: load_weights_safetensors(model, p), path, key)


def test_bad_safetensors_inside_the_zip_names_the_member(tmp_path, rng):
    model, _, _ = _trained(rng)
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    members = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
    members["model.safetensors"] = struct.pack("<Q", 10**12) + members["model.safetensors"][8:]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    _refused(load_native, path, "model.safetensors", "header claims")


def test_wrong_shaped_weights_are_refused_and_nothing_changes(tmp_path):
    save_weights_safetensors(_mlp(units=17), tmp_path / "w.safetensors")
    model = _mlp(units=16)
    before = model.get_weights()
    _refused(lambda p: load_weights_safetensors(model, p), tmp_path / "w.safetensors",
             "'dense/kernel' has shape (6, 17) in the file but (6, 16)")
    # the first weights in the file fit; none of them may have been assigned before the misfit was found
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_weights_of_another_architecture_are_refused(tmp_path):
    save_weights_safetensors(_mlp(dropout=False), tmp_path / "w.safetensors")
    cr.random.seed(0)
    other = models.Sequential([layers.Input((6,)), layers.Dense(3), layers.LayerNormalization()])
    _refused(lambda p: load_weights_safetensors(other, p), tmp_path / "w.safetensors",
             "'layer_normalization/gamma'", "not in the file", "'dense_1/kernel'", "that the model lacks")


def test_integer_array_for_a_float_weight_is_refused(tmp_path):
    import safetensors.numpy
    model = _mlp()
    arrays = {key: np.zeros(w.shape, dtype=np.int32) for key, w in weight_keys(model)}
    (tmp_path / "w.safetensors").write_bytes(safetensors.numpy.save(arrays))
    _refused(lambda p: load_weights_safetensors(model, p), tmp_path / "w.safetensors", "int32")


def test_not_a_zip_and_foreign_zips_are_refused(tmp_path):
    (tmp_path / "text.chainrule").write_text("hello")
    _refused(load_native, tmp_path / "text.chainrule", "not a complete zip")
    with zipfile.ZipFile(tmp_path / "other.chainrule", "w") as z:
        z.writestr("readme.txt", "not a model")
    _refused(load_native, tmp_path / "other.chainrule", "no metadata.json")


def test_member_inflating_absurdly_is_refused_before_decompression(tmp_path, monkeypatch):
    from chainrule.io.native import model_file
    monkeypatch.setattr(model_file, "MAX_JSON_BYTES", 2**20)  # so that a small test file counts as large
    path = tmp_path / "bomb.chainrule"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.safetensors", bytes(4 * 2**20))  # 4 MiB of zeros deflate about 1000-fold
    _refused(load_native, path, "inflate")


def test_file_from_a_newer_format_is_refused_with_the_fix(tmp_path):
    model = _mlp()
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    members = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
    meta = json.loads(members["metadata.json"])
    meta["format_version"] = 99
    members["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    _refused(load_native, path, "upgrade chainrule")


def test_a_config_naming_an_unknown_class_is_refused_without_running_anything(tmp_path):
    model = _mlp()
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    members = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["class_name"] = "Popen"
    config["config"]["layers"][1]["module"] = "subprocess"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="Popen"):
        load_native(path)


# ----------------------------------------------------------------------------- atomic writes
def _hidden_leftovers(directory):
    return [name for name in os.listdir(directory) if name.startswith(".tmp-")]


def test_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, rng, monkeypatch):
    model, x, _ = _trained(rng)
    path = tmp_path / "m.chainrule"
    save_native(model, path)
    good = path.read_bytes()
    calls = []

    def failing_writestr(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")  # midway: config.json is written, the weights are not
        return original(self, name, data, *args, **kwargs)
    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    model.layers[0].kernel.assign(np.zeros(model.layers[0].kernel.shape))
    with pytest.raises(OSError, match="disk full"):
        save_native(model, path)
    assert path.read_bytes() == good and _hidden_leftovers(tmp_path) == []


def test_failed_weights_save_leaves_the_previous_file(tmp_path, monkeypatch):
    model = _mlp()
    path = tmp_path / "w.safetensors"
    save_weights_safetensors(model, path)
    good = path.read_bytes()

    def no_space(fd):
        raise OSError("no space left on device")
    monkeypatch.setattr(os, "fsync", no_space)
    model.layers[0].kernel.assign(np.ones(model.layers[0].kernel.shape))
    with pytest.raises(OSError, match="no space"):
        save_weights_safetensors(model, path)
    assert path.read_bytes() == good and _hidden_leftovers(tmp_path) == []


_KILLED_MID_SAVE = r"""
import os, signal, sys, zipfile
import numpy as np
import chainrule as cr
from chainrule import layers, models
from chainrule.io.native import save_native
path = sys.argv[1]
model = models.Sequential([layers.Input((4,)), layers.Dense(3)])
for w in model.weights:
    w.assign(np.ones(w.shape))
save_native(model, path)                    # the good file: every weight 1
for w in model.weights:
    w.assign(np.full(w.shape, 2.0))
original, written = zipfile.ZipFile.writestr, []
def writestr(self, name, data, *args, **kwargs):
    written.append(name)
    if len(written) == 2:                   # after config.json, before the weights: die at once
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, name, data, *args, **kwargs)
zipfile.ZipFile.writestr = writestr
save_native(model, path)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_process_killed_mid_save_leaves_the_previous_file(tmp_path):
    path = tmp_path / "m.chainrule"
    done = subprocess.run([sys.executable, "-c", _KILLED_MID_SAVE, str(path)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    loaded = load_native(path)
    assert all(np.all(w.numpy() == 1.0) for w in loaded.weights)
    # the half-written temporary is what a kill leaves behind: hidden, beside the file
    assert len(_hidden_leftovers(tmp_path)) == 1


def test_atomic_save_follows_a_saver_that_adds_its_extension(tmp_path):
    target = tmp_path / "array"
    written = atomic.atomic_save(lambda p: np.save(p, np.arange(3)), target)
    assert written == str(target) + ".npy"
    np.testing.assert_array_equal(np.load(written, allow_pickle=False), np.arange(3))
    assert _hidden_leftovers(tmp_path) == []


def test_atomic_open_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.bin"
    atomic.atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(path) as f:
            f.write(b"new but unfinished")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old" and _hidden_leftovers(tmp_path) == []
    with atomic.atomic_open(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
