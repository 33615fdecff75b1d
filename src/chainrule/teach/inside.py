"""Looking inside a trained network: layer outputs, conv filters, feature maps, the input that
excites a unit most (activation maximization) and saliency maps.

Layer outputs are caught by wrapping each layer's `call` on the instance for the length of one
forward pass, so any model (Sequential, functional, nested) can be looked into without a hook
in the library; the wrap is removed afterwards, also on error.
"""
import contextlib

import numpy as np

from .. import activations
from ..autograd import Tensor, grad, no_grad
from . import _viz
from ._common import activation_name, find_layer, flat_layers, input_shape, last_layer, to_numpy

__all__ = ["capture_outputs", "layer_outputs", "maximize_activation", "saliency_map", "plot_filters",
           "plot_feature_maps", "plot_activation_maximization", "plot_saliency"]


class _Stop(Exception):
    """Raised after the wanted layer ran, to skip the rest of the forward pass."""


@contextlib.contextmanager
def capture_outputs(layers, stop_at=None):
    """Within the block, every call of one of `layers` stores its output Tensor (graph and all) in
    the yielded dict, by layer name. `stop_at` (used by the functions here) ends the forward pass
    right after that layer by raising an internal exception that they catch."""
    store = {}
    patched = []
    try:
        for layer in layers:
            original = layer.call

            def wrapped(*args, _original=original, _layer=layer, **kwargs):
                out = _original(*args, **kwargs)
                store[_layer.name] = out
                if _layer is stop_at:
                    raise _Stop
                return out
            layer.__dict__["call"] = wrapped  # on the instance only; the class keeps its method
            patched.append(layer)
        yield store
    finally:
        for layer in patched:
            layer.__dict__.pop("call", None)


def _run(model, x, layers, stop_at=None):
    with capture_outputs(layers, stop_at) as store:
        try:
            model(x, training=False)
        except _Stop:
            pass
    return store


def layer_outputs(model, x, layers=None):
    """{layer name: output as a NumPy array} for `x` (training=False), in the order they ran.
    `layers`: names, indices or Layer objects (default every layer)."""
    chosen = flat_layers(model) if layers is None else [find_layer(model, l) for l in layers]
    with no_grad():
        store = _run(model, x, chosen)
    return {name: to_numpy(out) for name, out in store.items() if isinstance(out, Tensor)}


@contextlib.contextmanager
def _without_output_squashing(layer):
    """The layer's pre-activation (logits) instead of its softmax/sigmoid: class scores whose
    gradient does not vanish when the prediction is already confident."""
    name = activation_name(layer)
    if name not in ("softmax", "sigmoid"):
        yield
        return
    if type(layer).__name__ == "Softmax":
        layer.__dict__["call"] = lambda inputs, *args, **kwargs: inputs
        try:
            yield
        finally:
            layer.__dict__.pop("call", None)
        return
    saved = layer.activation
    layer.activation = activations.linear
    try:
        yield
    finally:
        layer.activation = saved


def _batched(model, x):
    x = np.asarray(to_numpy(x))
    shape = input_shape(model)
    if x.shape == shape:
        return x[None]
    if x.shape[1:] == shape and len(x) == 1:
        return x
    raise ValueError(f"expected one input of shape {shape} (or a batch of one), got shape {x.shape}")


def _dtype(model):
    weights = model.weights
    return weights[0].dtype if weights else np.dtype(np.float32)


# ------------------------------------------------------------------ activation maximization
def _blur(x, sigma):
    """Gaussian blur over the two spatial axes of (1, H, W, C), or the one axis of (1, L, C)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in range(1, x.ndim - 1 if x.ndim > 2 else 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="reflect")
        out = np.zeros_like(x)
        for i, w in enumerate(k):
            out += w * np.take(padded, np.arange(i, i + x.shape[axis]), axis=axis)
        x = out
    return x


def maximize_activation(model, layer, index, steps=64, learning_rate=0.05, l2=1e-3, blur_every=4,
                        blur_sigma=0.5, seed=0, start=None):
    """The input that most excites unit/channel `index` of `layer`, by gradient ascent on the input:

        x <- (1 - l2) * (x + learning_rate * g / rms(g)),   g = d mean(layer(x)[..., index]) / dx

    blurred every `blur_every` steps (Yosinski et al., 2015): the L2 decay and the blur keep the
    image from filling with high-frequency noise that excites the unit but shows nothing.
    A softmax/sigmoid layer is maximized before its squashing (its logit). Returns the input
    without the batch axis, as a NumPy array.
    """
    layer = find_layer(model, layer)
    shape = input_shape(model)
    dtype = _dtype(model)
    rng = np.random.default_rng(seed)
    x = (rng.normal(0.0, 0.1, (1,) + shape) if start is None else _batched(model, start)).astype(np.float64)
    with _without_output_squashing(layer):
        for step in range(steps):
            xt = Tensor(x.astype(dtype), requires_grad=True)
            out = _run(model, xt, [layer], stop_at=layer)[layer.name]
            units = out.shape[-1]
            if not 0 <= index < units:
                raise ValueError(f"maximize_activation: layer '{layer.name}' has {units} units/channels, "
                                 f"so index must be in [0, {units}), got {index}")
            g = grad(out[..., index].mean(), xt).numpy().astype(np.float64)
            x = (1 - l2) * (x + learning_rate * g / (np.sqrt((g * g).mean()) + 1e-12))
            if blur_every and (step + 1) % blur_every == 0 and x.ndim >= 3:
                x = _blur(x, blur_sigma)
    return x[0]


# ------------------------------------------------------------------ saliency
def saliency_map(model, x, class_index=None):
    """|d score_c / d x| for one input x (Simonyan et al., 2014): which pixels change the class
    score most. score_c is the pre-softmax score of class `class_index` (default: the predicted
    class); for images the map takes the largest value over the channels. Returns (map, class)."""
    xb = _batched(model, x)
    xt = Tensor(xb.astype(_dtype(model)), requires_grad=True)
    with _without_output_squashing(last_layer(model)):
        scores = model(xt, training=False)
    if class_index is None:
        class_index = int(np.argmax(scores.numpy()[0]))
    g = np.abs(grad(scores[0, class_index], xt).numpy()[0])
    return (g.max(axis=-1) if g.ndim == 3 else g), class_index


# ------------------------------------------------------------------ pictures
def _conv_layers(model):
    return [l for l in flat_layers(model) if getattr(l, "kernel", None) is not None and l.kernel.ndim == 4]


def _as_image(x):
    """A model input as something imshow draws: (H, W) gray, (H, W, 3) RGB, or a square reshape of
    a flat vector (a 784-pixel MNIST row becomes 28 x 28)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        return _viz.normalize(x[..., 0])
    if x.ndim == 3 and x.shape[-1] == 3:
        return _viz.normalize(x)
    if x.ndim == 3:
        return _viz.normalize(x.mean(axis=-1))
    if x.ndim == 1:
        side = int(round(np.sqrt(x.size)))
        return _viz.normalize(x.reshape(side, side) if side * side == x.size else x[None, :])
    return _viz.normalize(x)


def plot_filters(model, layer=None, to_file=None, max_filters=64, channel=None, dpi=100):
    """The kernels of a Conv2D layer (default the first) as an image grid, one image per filter:
    RGB when the layer reads 3 channels (the first layer of a colour network), else input
    channel `channel` (default 0) in gray. Returns the Figure (written to `to_file` if given)."""
    layer = find_layer(model, layer) if layer is not None else next(iter(_conv_layers(model)), None)
    if layer is None or getattr(layer, "kernel", None) is None or layer.kernel.ndim != 4:
        raise ValueError(f"plot_filters needs a Conv2D layer; model '{model.name}' has none" if layer is None
                         else f"plot_filters: layer '{layer.name}' has no 4-D kernel (it is not a Conv2D)")
    kernel = to_numpy(layer.kernel)  # (kh, kw, in, out)
    n = min(kernel.shape[-1], max_filters)
    rgb = kernel.shape[2] == 3 and channel is None
    images = [_viz.normalize(kernel[:, :, :, f] if rgb else kernel[:, :, channel or 0, f]) for f in range(n)]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = _viz.figure("plot_filters", (1.1 * cols, 1.1 * rows + 0.4), dpi)
    _viz.image_grid(fig, images, [f"{f}" for f in range(n)], columns=cols)
    fig.suptitle(f"filters of '{layer.name}' {kernel.shape[0]}x{kernel.shape[1]}"
                 + ("" if rgb or kernel.shape[2] == 1 else f", input channel {channel or 0}"), fontsize=9)
    _viz.save(fig, to_file)
    return fig


def plot_feature_maps(model, x, to_file=None, layers=None, max_channels=8, dpi=100):
    """One input and its feature maps after each conv layer (default: every layer with a 4-D kernel),
    the first `max_channels` channels per row. Returns the Figure."""
    chosen = _conv_layers(model) if layers is None else [find_layer(model, l) for l in layers]
    if not chosen:
        raise ValueError(f"plot_feature_maps: model '{model.name}' has no conv layers; pass layers=[...]")
    xb = _batched(model, x)
    outputs = layer_outputs(model, xb, chosen)
    fig = _viz.figure("plot_feature_maps", (1.2 * max_channels, 1.3 * (len(chosen) + 1)), dpi)
    grid = fig.add_gridspec(len(chosen) + 1, max_channels)
    ax = fig.add_subplot(grid[0, 0])
    img = _as_image(xb[0])
    ax.imshow(img, cmap=None if img.ndim == 3 else "gray")
    ax.set_title("input", fontsize=8)
    ax.axis("off")
    for r, layer in enumerate(chosen, start=1):
        maps = outputs[layer.name][0]
        for c in range(min(max_channels, maps.shape[-1])):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(maps[..., c], cmap="viridis")
            ax.axis("off")
            ax.set_title(f"{layer.name}:{c}" if c == 0 else f"{c}", fontsize=7)
    _viz.save(fig, to_file)
    return fig


def plot_activation_maximization(model, layer, indices=range(8), to_file=None, dpi=100, **kwargs):
    """The inputs found by `maximize_activation` for several units/channels of `layer`, in a grid."""
    layer = find_layer(model, layer)
    indices = list(indices)
    images = [_as_image(maximize_activation(model, layer, i, **kwargs)) for i in indices]
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    fig = _viz.figure("plot_activation_maximization", (1.3 * cols, 1.3 * rows + 0.4), dpi)
    _viz.image_grid(fig, images, [f"{layer.name}:{i}" for i in indices], cmap="gray", columns=cols)
    fig.suptitle(f"inputs that excite '{layer.name}' most", fontsize=9)
    _viz.save(fig, to_file)
    return fig


def plot_saliency(model, x, class_index=None, to_file=None, dpi=100):
    """The input, its saliency map |d score / d input| and the two overlaid. Returns the Figure."""
    sal, class_index = saliency_map(model, x, class_index)
    img = _as_image(_batched(model, x)[0])
    sal_img = _as_image(sal) if sal.ndim != 2 else _viz.normalize(sal)
    fig = _viz.figure("plot_saliency", (7.5, 2.8), dpi)
    for k, (title, picture, cmap) in enumerate((("input", img, "gray"), (f"saliency, class {class_index}",
                                                                           sal_img, "hot"))):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.imshow(picture, cmap=None if picture.ndim == 3 else cmap)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(1, 3, 3)
    ax.imshow(img, cmap=None if img.ndim == 3 else "gray")
    if sal_img.shape[:2] == img.shape[:2]:
        ax.imshow(sal_img, cmap="hot", alpha=0.5)
    ax.set_title("overlay", fontsize=9)
    ax.axis("off")
    _viz.save(fig, to_file)
    return fig
