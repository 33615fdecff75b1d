"""The microscopy examples of issue 9 (U-Net segmentation, density-map cell counting) run end to end
in --quick mode: exit code 0, their result line printed, their pictures written."""
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from chainrule import datasets

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run_quick(script, out):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_pictures(out, names):
    if not HAS_MATPLOTLIB:
        pytest.skip("matplotlib is not installed: the pictures are not drawn")
    for name in names:
        path = os.path.join(out, name)
        assert os.path.isfile(path), f"{name} not written; {out} holds {os.listdir(out)}"
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        assert os.path.getsize(path) > 1000


def test_unet_segmentation_quick(tmp_path):
    stdout = run_quick("03_unet_segmentation.py", tmp_path)
    match = re.search(r"held-out Dice \(8 images\): mean ([0-9.]+), worst ([0-9.]+)", stdout)
    assert match, stdout
    mean, worst = float(match.group(1)), float(match.group(2))
    assert 0.0 <= worst <= mean <= 1.0
    assert re.search(r"baseline, one global threshold .*: Dice 0\.[0-9]{3}", stdout), stdout
    assert_pictures(tmp_path, ["segmentation_examples.png", "training_curves.png"])


def test_cell_counting_quick(tmp_path):
    stdout = run_quick("04_cell_counting.py", tmp_path)
    match = re.search(r"held-out count error \(8 images, (\d+)-(\d+) cells\): MAE ([0-9.]+) cells = ([0-9.]+)%",
                      stdout)
    assert match, stdout
    low, high = int(match.group(1)), int(match.group(2))
    assert 20 <= low <= high <= 60          # the held-out images hold 20 to 60 cells
    assert float(match.group(3)) >= 0.0
    assert re.search(r"baseline, bright pixels / pixels per cell: MAE [0-9.]+ cells", stdout), stdout
    assert_pictures(tmp_path, ["counting_examples.png", "count_scatter.png", "training_curves.png"])


def load_example(script):
    spec = importlib.util.spec_from_file_location(script[:-3].lstrip("0123456789_"), os.path.join(EXAMPLES, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dice_coefficient_counts_overlap():
    """2 |P and T| / (|P| + |T|), per image: 4 true pixels, 4 predicted, 2 shared -> 2*2 / 8 = 0.5."""
    dice = load_example("03_unet_segmentation.py").dice_coefficient
    truth = np.zeros((3, 4, 4, 1), dtype=np.float32)
    truth[:, :2, :2] = 1.0
    predicted = np.zeros_like(truth)
    predicted[0] = truth[0] * 0.9                     # the same cells, probability 0.9
    predicted[1, :2, 1:3] = 0.8                       # shifted by one column: half overlaps
    predicted[2, 2:, 2:] = 0.7                        # disjoint
    assert np.allclose(dice(truth, predicted), [1.0, 0.5, 0.0])
    assert dice(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1)))[0] == 1.0   # nothing to find, nothing found


def test_density_targets_keep_the_count():
    """The counting example's 2x2 block sums of the density still sum to the number of cells."""
    module = load_example("04_cell_counting.py")
    data = datasets.microscopy(3, seed=5, **module.DATA)
    blocks = module.block_sum(data.density)
    assert blocks.shape == (3, 32, 32, 1)
    assert abs(blocks.sum(axis=(1, 2, 3)) - data.counts).max() < 1e-3
    # the count_error metric reads the scaled maps back in cells
    errors = module.count_error(blocks * module.SCALE, blocks * module.SCALE * 1.1)
    assert abs(errors - 0.1 * data.counts).max() < 1e-2
