"""The transfer-learning, autoencoder and style-transfer examples run end to end in their quick modes.

Each script runs as a user would run it (a subprocess with --quick), must exit 0, print its RESULT
line and write non-empty PNGs. The style-transfer script's `--weights` path is checked against
Keras's own VGG16 (random weights, saved by Keras 3) when Keras is installed.
"""
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def run_example(name, out, *extra):
    # one BLAS thread unless the caller chose: on a shared, loaded machine OpenBLAS's threads spin on these
    # small matrices and make the run many times slower, with the same results
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    run = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out), *extra],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, f"{name} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def results(stdout):
    """Every `RESULT key=value ...` line as a dict (numbers as floats)."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            pairs = dict(item.split("=", 1) for item in line.split()[1:])
            rows.append({k: float(v) if re.fullmatch(r"[-+0-9.e]+", v) else v for k, v in pairs.items()})
    assert rows, f"no RESULT line in the output:\n{stdout[-2000:]}"
    return rows


def assert_pictures(out, names):
    if not _has_matplotlib():
        return  # the scripts print a note and write no pictures without matplotlib
    for name in names:
        path = Path(out) / name
        assert path.is_file(), f"{name} was not written; found {sorted(os.listdir(out))}"
        assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transfer_learning_quick(tmp_path):
    stdout = run_example("06_transfer_learning.py", tmp_path)
    (row,) = results(stdout)
    for key in ("scratch", "transfer", "finetuned"):
        assert 0.0 <= row[key] <= 1.0
    assert "frozen base unchanged by the head's training: True" in stdout
    assert_pictures(tmp_path, ["accuracy_curves.png", "accuracy_vs_labels.png", "few_labels.png"])


def test_autoencoders_quick(tmp_path):
    stdout = run_example("08_autoencoders.py", tmp_path)
    (row,) = results(stdout)
    for key in ("dense", "latent2", "conv", "denoising", "noisy"):
        assert 0.0 < row[key] < 0.5 and math.isfinite(row[key])
    # the noise is N(0, 0.3^2) clipped to [0, 1]: its MSE is below 0.09 and well above zero
    assert 0.02 < row["noisy"] < 0.09
    assert_pictures(tmp_path, ["reconstructions.png", "denoising.png", "latent_space.png",
                               "conv_ae_history.png", "denoising_ae_history.png"])


def test_style_transfer_quick(tmp_path):
    stdout = run_example("10_style_transfer.py", tmp_path)
    rows = results(stdout)
    assert [r["style"] for r in rows] == ["stripes", "checkerboard", "waves"]
    for row in rows:
        assert row["style_loss_end"] < row["style_loss_start"]   # the image moved toward the style
        assert row["content_loss_end"] > 0.0                    # ... and away from the content image
    assert_pictures(tmp_path, ["style_transfer.png", "losses.png", "result_stripes.png",
                               "result_checkerboard.png", "result_waves.png"])


# ---------------------------------------------------------------------------- --weights with Keras's VGG16
@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _load_style_module():
    spec = importlib.util.spec_from_file_location("style_transfer_example", EXAMPLES / "10_style_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # raised inside Keras's torch backend
def test_style_transfer_reads_keras_vgg16_weights(keras, tmp_path, monkeypatch, capsys):
    pytest.importorskip("h5py")
    keras.utils.set_random_seed(0)
    theirs = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16.weights.h5"
    theirs.save_weights(str(path))
    example = _load_style_module()

    net = example.vgg_feature_net(str(path))
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        for ours, keras_array in zip(net.model.get_layer(name).get_weights(), theirs.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, keras_array)
    # same features as Keras on the same image, with Keras's own VGG16 preprocessing (RGB -> BGR, minus mean)
    image = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    probe = keras.Model(theirs.input, theirs.get_layer("block2_conv1").output)
    expected = keras.ops.convert_to_numpy(probe(keras.applications.vgg16.preprocess_input(image * 255.0)))
    ours = net(example.cr.tensor(image))["block2_conv1"].numpy()     # a style layer, so the net keeps it
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3 * float(np.abs(expected).max()))

    # and the command line: --weights runs the whole transfer on the VGG features
    monkeypatch.setattr(sys, "argv", ["10_style_transfer.py", "--quick", "--weights", str(path), "--style",
                                      "stripes", "--steps", "2", "--out", str(tmp_path / "out")])
    example.main()
    stdout = capsys.readouterr().out
    assert "VGG16 conv base" in stdout
    (row,) = results(stdout)
    assert row["style_loss_end"] < row["style_loss_start"]
    assert_pictures(tmp_path / "out", ["style_transfer.png", "result_stripes.png"])
