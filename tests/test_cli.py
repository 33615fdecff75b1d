"""The `chainrule` command through its real entry point: `python -m chainrule ...` in a subprocess
(and the installed `chainrule` script when there is one), offline, on the embedded Fashion-MNIST.

Every run is small (--limit, one or two epochs, one BLAS thread) so the file stays fast; the full
demo's accuracy is measured by hand (see demo.py), not here.
"""
import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule import demo
from chainrule.datasets import embedded

SRC = str(Path(chainrule.__file__).resolve().parents[1])
# Offline, one BLAS thread (these models are tiny, and the machine may be shared), UTF-8 output,
# and this source tree importable even without `pip install -e`.
ENV = dict(os.environ, CHAINRULE_OFFLINE="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
           PYTHONIOENCODING="utf-8", PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
LIMIT = "600"


def run_cli(*args, env=None, cwd=None, timeout=180):
    """`python -m chainrule *args`; returns the CompletedProcess (text stdout and stderr)."""
    return subprocess.run([sys.executable, "-m", "chainrule", *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=timeout)


def assert_ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr


def assert_usage_error(result, *words):
    """Exit status 2, one line on stderr naming the problem (and its fix), no traceback."""
    assert result.returncode == 2, f"exit {result.returncode}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chainrule ") and ": error: " in lines[0]
    for word in words:
        assert word in lines[0]


def read_history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run shared by the evaluate and predict tests: an MLP, 1 epoch on 600 images."""
    out = tmp_path_factory.mktemp("run") / "mlp"
    result = run_cli("train", "--model", "mlp", "--data", "embedded", "--epochs", 1, "--limit", LIMIT, "--out", out)
    assert_ok(result)
    return out, result


# ----------------------------------------------------------------------------- version and help
def test_version_through_module_and_installed_script():
    result = run_cli("--version")
    assert_ok(result)
    assert result.stdout.strip() == f"chainrule {chainrule.__version__}"
    script = shutil.which("chainrule")
    if script is not None:
        installed = subprocess.run([script, "--version"], capture_output=True, text=True, env=ENV, timeout=60)
        assert installed.returncode == 0, installed.stderr
        assert installed.stdout.startswith("chainrule ")


@pytest.mark.parametrize("command, must_mention", [
    ("demo", ["--epochs", "--out", "--seed", "--backprop"]),
    ("backprop", ["2-2-2"]),
    ("train", ["--model", "--data", "--epochs", "--batch-size", "--optimizer", "--learning-rate",
               "--validation-split", "--out", "--seed", "--resume", "cnn", "unet", "lecture_cnn"]),
    ("evaluate", ["model", "data"]),
    ("predict", ["images", "--top"]),
    ("info", ["BLAS"]),
])
def test_help_of_each_subcommand(command, must_mention):
    result = run_cli(command, "--help")
    assert_ok(result)
    assert result.stdout.startswith(f"usage: chainrule {command}")
    for text in must_mention:
        assert text in result.stdout


def test_no_command_prints_help_and_exits_2():
    result = run_cli()
    assert result.returncode == 2
    assert "demo" in result.stdout and "train" in result.stdout


# ----------------------------------------------------------------------------- demo and backprop
def test_demo_quick_run_prints_accuracy_and_writes_model_and_png(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", "--epochs", 1, "--limit", LIMIT, "--out", out, "--seed", 3)
    assert_ok(result)
    line = next(li for li in result.stdout.splitlines() if li.startswith("Test accuracy: "))
    accuracy = float(line.split()[2])
    assert 0.0 <= accuracy <= 1.0
    assert str(out) in result.stdout  # it names the folder
    model_files = [p for p in ("model.chainrule", "model.weights.npz") if (out / p).is_file()]
    assert model_files, sorted(os.listdir(out))
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = read_history(out / "history.csv")
    assert len(history) == 1 and float(history[0]["val_accuracy"]) == pytest.approx(accuracy, abs=5e-4)
    record = json.loads((out / "run.json").read_text())
    assert record["class_names"] == list(embedded.CLASS_NAMES) and record["input_shape"] == [28, 28, 1]


def test_backprop_prints_the_lectures_numbers():
    # E_total = 0.298371109 and dE/dw1 = 0.000438568 (see test_backprop_lecture.py for the derivation)
    for args in (["backprop"], ["demo", "--backprop"]):
        result = run_cli(*args)
        assert_ok(result)
        assert "E_total = 0.298371109" in result.stdout
        assert "dE/dw1 =  0.000438568" in result.stdout
        assert "dE/dw5 =  0.082167041" in result.stdout


def _decode_png(data):
    """(h, w, 3) uint8 from a PNG written by demo.write_png (8-bit RGB, filter 0 on every row)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + 3 * w)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(h, w, 3)


def test_curves_png_without_matplotlib(tmp_path):
    history = {"loss": [2.0, 1.0, 0.5], "accuracy": [0.3, 0.6, 0.8], "val_loss": [1.8, 1.1, 0.7],
               "val_accuracy": [0.4, 0.6, 0.75]}
    path, note = demo.save_curves(history, tmp_path / "c.png", use_matplotlib=False)
    assert "pip install chainrule[viz]" in note
    image = _decode_png(path.read_bytes())
    assert image.shape == (240, 640, 3)  # two panels: loss | accuracy
    for colour in ((31, 119, 180), (255, 127, 14)):  # train and validation curves, in both panels
        hits = np.all(image == colour, axis=-1)
        assert hits[:, :320].any() and hits[:, 320:].any()
    # the loss falls: its train curve starts high (small row index) on the left and ends low on the right
    blue = np.argwhere(np.all(image[:, :320] == (31, 119, 180), axis=-1))
    left, right = blue[blue[:, 1] < 40], blue[blue[:, 1] > 280]
    assert left[:, 0].mean() < right[:, 0].mean()


def test_write_png_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    demo.write_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(_decode_png((tmp_path / "a.png").read_bytes()), rgb)


# ----------------------------------------------------------------------------- train, evaluate, predict
def test_train_writes_model_history_curves_and_record(trained):
    out, result = trained
    assert "Test (600 samples" in result.stdout
    for name in ("model.chainrule", "checkpoint.chainrule", "history.csv", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["model"] == "mlp" and record["epochs_done"] == 1 and record["num_classes"] == 10
    assert record["loss"] == "sparse_categorical_crossentropy"
    assert len(read_history(out / "history.csv")) == 1


def test_evaluate_scores_the_saved_model_as_train_did(trained):
    out, _ = trained
    result = run_cli("evaluate", out / "model.chainrule", "embedded", "--limit", LIMIT)
    assert_ok(result)
    values = dict(zip(result.stdout.split()[-4::2], map(float, result.stdout.split()[-3::2])))
    record = json.loads((out / "run.json").read_text())
    assert values["accuracy"] == pytest.approx(record["test"]["accuracy"], abs=1e-4)
    assert values["loss"] == pytest.approx(record["test"]["loss"], rel=1e-4)
    assert_ok(run_cli("evaluate", out, "embedded", "--limit", 50))  # the run folder works too


def test_predict_prints_the_models_top_class_per_image(trained, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from chainrule.io.keras_dispatch import load_model
    out, _ = trained
    (_, _), (x_test, _) = embedded.load_data()
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"item{i}.png")
        Image.fromarray(x_test[i]).save(paths[-1])
    result = run_cli("predict", out / "model.chainrule", *paths, "--top", 2)
    assert_ok(result)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    expected = load_model(str(out / "model.chainrule")).predict(x_test[:4, :, :, None] / np.float32(255), verbose=0)
    for line, path, probs in zip(lines, paths, expected):
        assert line.startswith(f"{path}: ")
        top = int(np.argmax(probs))
        assert f"{embedded.CLASS_NAMES[top]} (class {top}) {probs[top]:.3f}" in line.split(", ")[0]


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    common = ["--model", "mlp", "--data", "embedded", "--limit", LIMIT, "--seed", 5]
    assert_ok(run_cli("train", *common, "--epochs", 2, "--out", tmp_path / "straight"))
    assert_ok(run_cli("train", *common, "--epochs", 1, "--out", tmp_path / "split"))
    result = run_cli("train", "--resume", tmp_path / "split", "--epochs", 2)
    assert_ok(result)
    assert "epochs 2 to 2" in result.stdout
    # same shuffles, same dropout masks, same optimizer state: the logged numbers agree exactly
    assert read_history(tmp_path / "split" / "history.csv") == read_history(tmp_path / "straight" / "history.csv")
    assert json.loads((tmp_path / "split" / "run.json").read_text())["epochs_done"] == 2
    assert_usage_error(run_cli("train", "--resume", tmp_path / "split", "--epochs", 2), "--epochs")


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="needs POSIX signals")
def test_ctrl_c_stops_training_with_130_and_a_resume_hint(tmp_path):
    out = tmp_path / "long"
    process = subprocess.Popen([sys.executable, "-m", "chainrule", "train", "--model", "mlp", "--limit", "2000",
                                "--epochs", "2000", "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for line in process.stdout:  # wait until an epoch has finished (and its checkpoint is written)
            if line.startswith("Epoch 2/"):
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and f"chainrule train --resume {out}" in err
    assert json.loads((out / "run.json").read_text())["epochs_done"] >= 1
    assert (out / "checkpoint.chainrule").is_file()


def test_train_a_build_model_file(tmp_path):
    source = tmp_path / "my_model.py"
    source.write_text("from chainrule import layers, models\n\n"
                      "def build_model(input_shape, num_classes):\n"
                      "    return models.Sequential([layers.Input(input_shape), layers.Flatten(),\n"
                      "                              layers.Dense(num_classes, activation='softmax')])\n")
    result = run_cli("train", "--model", source, "--epochs", 1, "--limit", 300, "--out", tmp_path / "out")
    assert_ok(result)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["model"] == str(source.resolve())
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert_usage_error(run_cli("train", "--model", tmp_path / "empty.py", "--limit", 300), "build_model")


def test_train_on_an_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "light")):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 100, (12, 12)) + 150 * c
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "images" / name / f"{i}.png")
    result = run_cli("train", "--model", "mlp", "--data", tmp_path / "images", "--epochs", 1, "--out",
                     tmp_path / "out")
    assert_ok(result)
    assert "Test (4 samples, a random 20% held out)" in result.stdout
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["class_names"] == ["dark", "light"] and record["input_shape"] == [12, 12, 1]


def test_train_on_an_hdf5_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    (x, y), (x_test, y_test) = embedded.load_data()
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x_train"], f["y_train"], f["x_test"], f["y_test"] = x[:200], y[:200], x_test[:50], y_test[:50]
    result = run_cli("train", "--model", "mlp", "--data", tmp_path / "data.h5", "--epochs", 1, "--out",
                     tmp_path / "out")
    assert_ok(result)
    assert "Test (50 samples, x_test)" in result.stdout


def test_without_safetensors_weights_files_rebuild_and_resume(tmp_path, monkeypatch, capsys):
    """No safetensors (a NumPy-only install): the run keeps .weights.npz files and its run.json
    rebuilds the model for evaluate, predict and --resume (in-process, with the package hidden)."""
    from chainrule import cli
    real = demo.installed
    monkeypatch.setattr(demo, "installed", lambda module: module != "safetensors" and real(module))
    out = tmp_path / "run"
    common = ["--model", "mlp", "--limit", "300", "--seed", "1"]
    assert cli.main(["train", *common, "--epochs", "1", "--out", str(out)]) == 0
    assert "only the weights were saved" in capsys.readouterr().out
    assert (out / "model.weights.npz").is_file() and (out / "checkpoint.weights.npz").is_file()
    assert not (out / "model.chainrule").exists()

    model, record = cli.load_saved_model(out)  # rebuilt from run.json, weights loaded
    (_, _), (x_test, _) = embedded.load_data()
    x = x_test[:300, :, :, None] / np.float32(255)
    saved = np.load(out / "model.weights.npz")
    assert [saved[k].shape for k in sorted(saved.files)] == [w.shape for w in model.weights]
    probs = model.predict(x, verbose=0)
    assert np.mean(probs.argmax(1) == embedded.load_data()[1][1][:300]) == pytest.approx(
        record["test"]["accuracy"], abs=1e-6)

    assert cli.main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert "optimizer starts afresh" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["epochs_done"] == 2
    assert len(read_history(out / "history.csv")) == 2


# ----------------------------------------------------------------------------- info
def test_info_lists_versions_backend_blas_and_datasets():
    result = run_cli("info")
    assert_ok(result)
    out = result.stdout
    assert f"chainrule {chainrule.__version__}" in out and f"numpy {np.__version__}" in out
    assert "backend: numpy" in out
    assert "datasets:" in out
    embedded_line = next(li for li in out.splitlines() if li.strip().startswith("embedded"))
    assert "found in" in embedded_line and "fashion-mnist-subset" in embedded_line
    assert any(li.strip().startswith("fashion_mnist") for li in out.splitlines())
    assert any(li.strip().startswith("mnist") for li in out.splitlines())


# ----------------------------------------------------------------------------- user errors
@pytest.mark.parametrize("args, words", [
    (["train", "--model", "nope"], ["unknown model recipe 'nope'", "mlp", "cnn"]),
    (["train", "--model", "mlp", "--data", "nope"], ["no dataset named 'nope'", "embedded"]),
    (["train", "--model", "mlp", "--data", "no/such/file.h5"], ["no such file or folder"]),
    (["train", "--model", "no_such_model.py"], ["no such file", "build_model"]),
    (["train"], ["--model"]),
    (["train", "--resume", "no/such/run"], ["run.json"]),
    (["train", "--model", "cnn", "--data", "microscopy", "--limit", "8"], ["--model unet"]),
    (["evaluate", "no/such/model.chainrule", "embedded"], ["no such model file"]),
    (["evaluate", __file__, "embedded"], [".chainrule"]),
], ids=["recipe", "dataset", "data-file", "model-file", "no-model", "resume-dir", "masks-vs-classifier",
        "model-missing", "not-a-model"])
def test_user_errors_are_one_line_with_exit_2(args, words):
    assert_usage_error(run_cli(*args), *words)


def test_missing_dataset_offline_is_one_line_with_the_fix(tmp_path):
    env = dict(ENV, XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path), CHAINRULE_DATA=str(tmp_path / "d"),
               KERAS_HOME=str(tmp_path / "keras"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    assert_usage_error(run_cli("train", "--model", "mlp", "--data", "mnist", env=env), "MNIST", "--data embedded")


def test_predict_errors(trained, tmp_path):
    out, _ = trained
    assert_usage_error(run_cli("predict", out, tmp_path / "missing.png"), "no such image")
    (tmp_path / "notes.txt").write_text("not an image")
    pytest.importorskip("PIL")
    assert_usage_error(run_cli("predict", out, tmp_path / "notes.txt"), ".png")


@pytest.mark.parametrize("args", [["train", "--epochs", "0"], ["train", "--learning-rate", "-1"],
                                  ["train", "--validation-split", "1"], ["demo", "--epochs", "many"],
                                  ["train", "--optimizer", "magic"], ["frobnicate"]])
def test_bad_flag_values_exit_2_without_traceback(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("chainrule")


@pytest.mark.parametrize("option,value,message", [
    ("--epochs", "0", "expected a whole number >= 1, got 0"),
    ("--epochs", "two", "expected a whole number >= 1, got 'two'"),
    ("--learning-rate", "-1", "expected a number > 0, got -1"),
    ("--validation-split", "1.5", "expected a fraction in [0, 1), e.g. 0.1, got 1.5"),
])
def test_numeric_options_are_checked(option, value, message, capsys):
    from chainrule.cli import main
    with pytest.raises(SystemExit):
        main(["train", option, value])
    assert message in capsys.readouterr().err
