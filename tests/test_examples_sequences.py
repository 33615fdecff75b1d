"""The sequence examples of issue 9 (05 heartbeat Conv1D, 07 multi-task, 09 recurrent) run end to end
in their quick mode, print their RESULT line and write their pictures, so they never rot."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# script, a pattern its RESULT line must match, the pictures it writes. 05's parameter counts, by hand:
# conv 1*9*8+8 + 8*9*16+16 + 16*9*16+16 + 16*1+1 = 3585; dense 128*128+128 + 128*128+128 = 33024
CASES = [
    ("05_heartbeat_conv1d.py",
     r"RESULT conv_iou=[\d.]+ dense_iou=[\d.]+ conv_position_error=[\d.]+ dense_position_error=[\d.]+ "
     r"conv_params=3585 dense_params=33024 shifted_conv_iou=[\d.]+ shifted_dense_iou=[\d.]+",
     ["signals.png", "right_half_test.png", "curves.png"]),
    ("07_multitask.py",
     r"RESULT label 1 : brightness 0.01: accuracy=[\d.]+ brightness_mae=[\d.]+ \| .*"
     r"label 0.01 : brightness 1: accuracy=[\d.]+ brightness_mae=[\d.]+",
     ["tradeoff.png", "balanced_curves.png", "predictions.png"]),
    ("09_recurrent.py",
     r"RESULT heartbeat_accuracy SimpleRNN=[\d.]+ LSTM=[\d.]+ GRU=[\d.]+ threshold=[\d.]+ \| "
     r"sine_mse SimpleRNN=[\d.]+ LSTM=[\d.]+ GRU=[\d.]+ linear=[\d.]+",
     ["curves.png", "comparison.png", "detection.png", "forecasts.png"]),
]


@pytest.mark.parametrize("script, result, pictures", CASES, ids=[c[0] for c in CASES])
def test_example_quick(script, result, pictures, tmp_path):
    run = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(result, run.stdout), run.stdout[-3000:]
    if not HAS_MATPLOTLIB:
        assert "matplotlib is not installed" in run.stdout
        return
    for name in pictures:
        png = tmp_path / name
        assert png.is_file(), f"{script} did not write {name}: {sorted(p.name for p in tmp_path.iterdir())}"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000

