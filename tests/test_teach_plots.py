"""teach plots: loss curves, decision boundaries (still and GIF); PNGs read back at the right size."""
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, models, optimizers
from chainrule import teach


def rings(n=80, seed=0):
    rng = np.random.default_rng(seed)
    r = np.r_[rng.uniform(0, 1, n // 2), rng.uniform(1.5, 2.5, n // 2)]
    theta = rng.uniform(0, 2 * np.pi, n)
    x = np.c_[r * np.cos(theta), r * np.sin(theta)].astype(np.float32)
    return x, np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(np.int64)


def classifier(hidden=(8, 2)):
    cr.random.seed(0)
    model = models.Sequential([layers.Input((2,))] + [layers.Dense(h, activation="tanh") for h in hidden]
                              + [layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def read_png(path, fig):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    w, h = fig.get_size_inches() * fig.dpi
    assert img.shape[:2] == (int(round(h)), int(round(w)))
    assert img[..., :3].std() > 0.01
    return img


def test_viz_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[viz\]"):
        teach.plot_history({"loss": [1.0, 0.5]})


def test_plot_history_from_fit(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = rings()
    model = classifier()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    fig = teach.plot_history(history, to_file=str(tmp_path / "curves.png"), dpi=50)
    read_png(tmp_path / "curves.png", fig)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    train, val = fig.axes[0].lines
    np.testing.assert_allclose(train.get_ydata(), history.history["loss"])
    np.testing.assert_allclose(val.get_ydata(), history.history["val_loss"])
    assert teach.plot_history(model).axes[0].get_title() == "loss"   # a model: its latest History


def test_live_plot_writes_the_png_at_the_end(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = rings()
    live = teach.LivePlot(str(tmp_path / "live.png"), dpi=40)
    classifier().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[live])
    read_png(tmp_path / "live.png", live.figure)
    assert len(live.logs["loss"]) == 2


def test_decision_boundary_regions_follow_the_model(tmp_path):
    """A hand-set classifier: class 1 where x0 > 0. The left of the picture must be class 0's colour."""
    pytest.importorskip("matplotlib")
    model = models.Sequential([layers.Input((2,)), layers.Dense(2, activation="softmax")])
    model.layers[0].kernel.assign([[-5.0, 5.0], [0.0, 0.0]])
    x = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]], np.float32)
    y = np.array([0, 1, 0, 1])
    fig = teach.plot_decision_boundary(model, x, y, to_file=str(tmp_path / "b.png"), resolution=40, dpi=50)
    read_png(tmp_path / "b.png", fig)
    assert len(fig.axes) == 1  # no hidden layer to show
    regions = fig.axes[0].images[0].get_array()
    left, right = regions[:, :5].reshape(-1, 3).mean(0), regions[:, -5:].reshape(-1, 3).mean(0)
    assert left[2] > left[0] and right[0] > right[2]  # blue (class 0) left, orange (class 1) right


def test_decision_boundary_shows_the_hidden_layer(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = rings()
    model = classifier(hidden=(8, 2))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    fig = teach.plot_decision_boundary(model, x, y, to_file=str(tmp_path / "h.png"), resolution=30, dpi=50)
    read_png(tmp_path / "h.png", fig)
    assert len(fig.axes) == 2 and f"'{model.layers[1].name}'" in fig.axes[1].get_title()   # the 2-unit layer
    pca = teach.plot_decision_boundary(classifier(hidden=(6,)), x, y, resolution=20, dpi=40)
    assert "PCA" in pca.axes[1].get_title()
    with pytest.raises(ValueError, match=r"\(samples, 2\)"):
        teach.plot_decision_boundary(model, np.zeros((4, 3)), y[:4])


def test_animation_writes_a_gif(tmp_path):
    pytest.importorskip("matplotlib")
    PIL = pytest.importorskip("PIL.Image")
    x, y = rings()
    anim = teach.DecisionBoundaryAnimation(x, y, to_file=str(tmp_path / "anim.gif"), every=2, resolution=20,
                                           dpi=30, verbose=0)
    classifier().fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[anim])
    assert len(anim.frames) == 3  # epochs 1, 3, 5
    with PIL.open(tmp_path / "anim.gif") as gif:
        assert gif.n_frames == 3
        assert gif.size == anim.frames[0].shape[1::-1]


def test_animation_without_pillow_writes_png_frames(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from chainrule.teach import _viz
    monkeypatch.setattr(_viz, "_pillow", lambda: None)  # as if Pillow were missing
    x, y = rings()
    anim = teach.DecisionBoundaryAnimation(x, y, to_file=str(tmp_path / "anim.gif"), resolution=16, dpi=30,
                                           verbose=0)
    classifier().fit(x, y, epochs=2, batch_size=40, verbose=0, callbacks=[anim])
    assert "Pillow is not installed" in anim.message
    assert sorted(p.name for p in (tmp_path / "anim_frames").iterdir()) == ["frame_0000.png", "frame_0001.png"]
