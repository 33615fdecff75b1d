"""teach inside: layer outputs, filters, feature maps, activation maximization, saliency."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import activations, layers, models
from chainrule import teach


def cnn():
    cr.random.seed(1)
    return models.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu", name="c1"),
                              layers.MaxPooling2D(2), layers.Conv2D(6, 3, activation="relu", name="c2"),
                              layers.Flatten(), layers.Dense(3, activation="softmax", name="out")])


def test_layer_outputs_match_the_layers_and_leave_no_trace():
    cr.random.seed(0)
    model = models.Sequential([layers.Input((3,)), layers.Dense(4, activation="relu", name="h"),
                               layers.Dense(2, name="o")])
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    outs = teach.layer_outputs(model, x)
    h = model.layers[0]
    np.testing.assert_allclose(outs["h"], np.maximum(x @ h.kernel.numpy() + h.bias.numpy(), 0), rtol=1e-6)
    np.testing.assert_allclose(outs["o"], model.predict_on_batch(x), rtol=1e-6)
    assert all("call" not in layer.__dict__ for layer in model.layers)
    with pytest.raises(RuntimeError):
        with teach.capture_outputs(model.layers):
            raise RuntimeError("boom")
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_saliency_of_a_linear_classifier_is_its_weight_column():
    """score_c = x . W[:, c] + b_c before the softmax, so |d score_c / dx| = |W[:, c]|."""
    model = models.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    w = np.arange(12, dtype=np.float32).reshape(4, 3) - 6
    model.layers[0].kernel.assign(w)
    sal, c = teach.saliency_map(model, np.ones(4, np.float32), class_index=1)
    assert c == 1
    np.testing.assert_allclose(sal, np.abs(w[:, 1]))
    assert model.layers[0].activation is activations.softmax  # restored
    _, predicted = teach.saliency_map(model, np.ones(4, np.float32))
    assert predicted == int(np.argmax(np.ones(4) @ w))


def test_activation_maximization_raises_the_activation():
    model = cnn()
    start = np.random.default_rng(0).normal(0, 0.1, (10, 10, 1))

    def activation(img):
        return teach.layer_outputs(model, img[None].astype(np.float32), ["c2"])["c2"][..., 2].mean()
    found = teach.maximize_activation(model, "c2", 2, steps=24, start=start)
    assert found.shape == (10, 10, 1)
    assert activation(found) > activation(start) + 0.1
    with pytest.raises(ValueError, match="units/channels"):
        teach.maximize_activation(model, "c2", 6, steps=1)


def png_size_ok(path, fig):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    w, h = fig.get_size_inches() * fig.dpi
    assert img.shape[:2] == (int(round(h)), int(round(w)))
    assert img[..., :3].std() > 0.01


def test_pictures_of_a_cnn(tmp_path):
    pytest.importorskip("matplotlib")
    model = cnn()
    x = np.random.default_rng(2).random((10, 10, 1)).astype(np.float32)
    fig = teach.plot_filters(model, to_file=str(tmp_path / "f.png"), dpi=40)
    png_size_ok(tmp_path / "f.png", fig)
    assert len(fig.axes) == 4 and "c1" in fig.texts[0].get_text()
    fig = teach.plot_feature_maps(model, x, to_file=str(tmp_path / "m.png"), max_channels=6, dpi=40)
    png_size_ok(tmp_path / "m.png", fig)
    assert len(fig.axes) == 1 + 4 + 6  # the input, then c1's 4 maps and c2's 6
    fig = teach.plot_activation_maximization(model, "c1", range(4), to_file=str(tmp_path / "a.png"), steps=4,
                                             dpi=40)
    png_size_ok(tmp_path / "a.png", fig)
    fig = teach.plot_saliency(model, x, to_file=str(tmp_path / "s.png"), dpi=40)
    png_size_ok(tmp_path / "s.png", fig)
    with pytest.raises(ValueError, match="Conv2D"):
        teach.plot_filters(models.Sequential([layers.Input((3,)), layers.Dense(2)]))
