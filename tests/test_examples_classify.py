"""The classification examples of issue 9 (examples/01, 02 and 11) run end to end in --quick mode.

Each script runs once per test run as a subprocess (`python examples/NN_name.py --quick --out DIR`),
exactly as a user or CI would run it; the tests then read its exit code, its printed result line
and the pictures it wrote. The picture checks skip when matplotlib is absent (the scripts then
print text only).
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"[-+]?\d+\.\d+"
# one BLAS thread: on a machine shared with other jobs, OpenBLAS's spinning worker threads make
# small matrix products many times slower (test_cli.py does the same)
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

SCRIPTS = {
    "01_logistic_to_deep.py": {
        "result": rf"result: test accuracy logistic ({NUMBER}), two_layer ({NUMBER}), "
                  rf"two_layer_wide ({NUMBER}), deep ({NUMBER})",
        "pictures": ["boundary_1_logistic.png", "boundary_2_two_layer.png", "boundary_3_two_layer_wide.png",
                     "boundary_4_deep.png", "training_loss.png"],
    },
    "02_fashion_classifiers.py": {
        "result": rf"result: test accuracy dense by hand ({NUMBER}), dense \(Keras API\) ({NUMBER}), CNN ({NUMBER})",
        "pictures": ["confusion_matrix.png", "misclassified.png", "cnn_history.png"],
    },
    "11_regularization.py": {
        "result": rf"result: gap \(train - val accuracy\) none ({NUMBER}), dropout ({NUMBER}), "
                  rf"augmentation ({NUMBER}), both ({NUMBER}); val accuracy none ({NUMBER}), "
                  rf"dropout ({NUMBER}), augmentation ({NUMBER}), both ({NUMBER})",
        "pictures": ["accuracy_curves.png", "augmented_images.png"],
    },
}


class Run:
    def __init__(self, script, out, completed):
        self.script, self.out = script, out
        self.returncode, self.stdout, self.stderr = completed.returncode, completed.stdout, completed.stderr

    def explain(self):
        return f"{self.script} exited with {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def result(self):
        """The numbers of the script's 'result:' line."""
        match = re.search(SCRIPTS[self.script]["result"], self.stdout)
        assert match, f"no result line matching {SCRIPTS[self.script]['result']!r}\n{self.explain()}"
        return [float(v) for v in match.groups()]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """quick_run(script): the script's one --quick run, made on first use and shared by the tests."""
    done = {}

    def get(script):
        if script not in done:
            out = tmp_path_factory.mktemp(script.split("_")[0]) / "pictures"
            completed = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", "--out", str(out)],
                                       capture_output=True, text=True, timeout=600, cwd=out.parent, env=ENV)
            done[script] = Run(script, out, completed)
        return done[script]
    return get


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_runs_and_prints_its_result(quick_run, script):
    run = quick_run(script)
    assert run.returncode == 0, run.explain()
    values = run.result()
    if script == "11_regularization.py":
        gaps, accuracies = values[:4], values[4:]
        assert all(-1 <= g <= 1 for g in gaps), run.explain()
    else:
        accuracies = values
    assert all(0 <= a <= 1 for a in accuracies), run.explain()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_pictures_are_written(quick_run, script):
    run = quick_run(script)
    assert run.returncode == 0, run.explain()
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed: the example writes no pictures")
    for name in SCRIPTS[script]["pictures"]:
        path = run.out / name
        assert path.is_file(), f"{script} did not write {name}; it wrote {sorted(p.name for p in run.out.iterdir())}"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, f"{path} is not a real PNG ({len(data)} bytes)"


def test_hand_written_backprop_matches_autodiff(quick_run):
    """02's gradient check: every hand-written gradient equals chainrule's autodiff to float64 rounding."""
    run = quick_run("02_fashion_classifiers.py")
    assert run.returncode == 0, run.explain()
    errors = re.findall(r"dL/d(W1|b1|W2|b2)\s.*max \|by hand - autodiff\| = (\S+)", run.stdout)
    assert [name for name, _ in errors] == ["W1", "b1", "W2", "b2"], run.explain()
    assert all(float(value) < 1e-12 for _, value in errors), run.explain()


def test_logistic_regression_draws_a_straight_line(quick_run):
    """01 prints the single neuron's boundary w0 x0 + w1 x1 + b = 0: a line, whatever the data."""
    run = quick_run("01_logistic_to_deep.py")
    assert run.returncode == 0, run.explain()
    assert re.search(rf"its boundary is the line {NUMBER} x0 {NUMBER} x1 {NUMBER} = 0", run.stdout), run.explain()
