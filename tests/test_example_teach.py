"""The teaching walk-through example runs end to end in its quick mode (so it never rots)."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "teach_walkthrough.py"


def test_teach_walkthrough_quick(tmp_path):
    pytest.importorskip("matplotlib")
    run = subprocess.run([sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "0.000438568" in run.stdout  # the lecture's dE/dw1, printed by trace()
    pngs = sorted(tmp_path.rglob("*.png"))
    assert len(pngs) >= 5 and all(p.stat().st_size > 1000 for p in pngs)
