"""teach graph drawing: DOT text of computation and layer graphs, PNGs drawn with matplotlib."""
import re

import numpy as np
import pytest

from chainrule import layers, models
from chainrule import teach


def edges(dot):
    return set(re.findall(r"n(\d+) -> n(\d+);", dot))


def labels(dot):
    return dict(re.findall(r'n(\d+) \[label="([^"]*)"', dot))


def test_computation_graph_as_dot():
    w = teach.variable(0.5, "w")
    x = teach.variable(2.0, "x", requires_grad=False)
    y = teach.named(w * x + w, "y")   # mul(w, x), then add(mul, w)
    dot = teach.to_dot(y)
    assert dot.startswith("digraph G {") and dot.rstrip().endswith("}")
    names = labels(dot)
    assert len(names) == 4
    by_text = {v.split("\\n")[0]: k for k, v in names.items()}
    w_id, x_id, mul_id, y_id = by_text["w = 0.5"], by_text["x = 2"], by_text["mul = 1"], by_text["y"]
    assert edges(dot) == {(w_id, mul_id), (x_id, mul_id), (mul_id, y_id), (w_id, y_id)}
    assert 'style="rounded,dashed"' in dot  # the constant x


def test_model_to_dot_sequential():
    model = models.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu", name="hidden"),
                               layers.Dense(3, activation="softmax", name="out")])
    dot = teach.model_to_dot(model, show_shapes=True, show_layer_activations=True)
    names = labels(dot)
    assert len(names) == 3
    assert names["1"] == "hidden (Dense)\\nActivation: relu\\nInput shape: (None, 4)\\nOutput shape: (None, 8)"
    assert "Output shape: (None, 3)" in names["2"]
    assert edges(dot) == {("0", "1"), ("1", "2")}


def test_model_to_dot_functional_branches():
    inp = layers.Input((8,), name="x")
    a, b = layers.Dense(4, name="a")(inp), layers.Dense(4, name="b")(inp)
    out = layers.Dense(2, name="out")(layers.Concatenate(name="cat")([a, b]))
    dot = teach.model_to_dot(models.Model(inp, out))
    ids = {v.split(" ")[0]: k for k, v in labels(dot).items()}
    want = {("x", "a"), ("x", "b"), ("a", "cat"), ("b", "cat"), ("cat", "out")}
    assert edges(dot) == {(ids[s], ids[t]) for s, t in want}


def _png_matches(path, fig):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    w, h = fig.get_size_inches() * fig.dpi
    assert img.shape[:2] == (int(round(h)), int(round(w)))
    assert img[..., :3].std() > 0.01  # something was drawn
    return img


def test_plot_model_and_plot_graph_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    model = models.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(3)])
    path = tmp_path / "model.png"
    fig = teach.plot_model(model, to_file=str(path), show_shapes=True, dpi=50)
    img = _png_matches(path, fig)
    assert img.shape[0] > img.shape[1]  # top to bottom
    fig = teach.plot_model(model, to_file=str(tmp_path / "model_lr.png"), rankdir="LR", dpi=50)
    img = _png_matches(tmp_path / "model_lr.png", fig)
    assert img.shape[1] > img.shape[0]  # left to right
    w = teach.variable(np.ones((2, 2)), "W")
    loss = (w @ w).relu().sum()
    fig = teach.plot_graph(loss, to_file=str(tmp_path / "graph.png"), dpi=50)
    _png_matches(tmp_path / "graph.png", fig)


@pytest.fixture
def keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def test_plot_model_takes_keras_arguments_and_defaults(keras):
    import inspect
    for ours, theirs in ((teach.plot_model, keras.utils.plot_model), (teach.model_to_dot, keras.utils.model_to_dot)):
        mine = inspect.signature(ours).parameters
        for name, p in inspect.signature(theirs).parameters.items():
            if p.kind is p.VAR_KEYWORD or name == "splines":   # splines is a Graphviz-only option
                continue
            assert name in mine, f"{ours.__name__} lacks Keras's argument {name}"
            assert mine[name].default == p.default, f"{ours.__name__}({name}=...) default differs from Keras"
