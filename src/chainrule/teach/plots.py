"""Pictures of training: loss/metric curves (saved or live in a notebook) and decision boundaries
of 2-D classifiers, with how a hidden layer bends the plane, as a still or a GIF over the epochs
(after Karpathy's ConvNetJS classify2d demo).
"""
import numpy as np

from ..autograd import no_grad
from ..callbacks import Callback
from . import _viz
from ._common import flat_layers, find_layer
from .inside import layer_outputs

__all__ = ["plot_history", "LivePlot", "plot_decision_boundary", "DecisionBoundaryAnimation"]

_PALETTE = np.array([[0.12, 0.47, 0.71], [1.00, 0.50, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16],
                     [0.58, 0.40, 0.74], [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.50, 0.50, 0.50]])


# ------------------------------------------------------------------ curves
def _history_dict(history):
    if isinstance(history, dict):
        return history
    if hasattr(history, "history") and isinstance(history.history, dict):
        return history.history
    inner = getattr(history, "history", None)  # a model: its latest History
    if inner is not None and isinstance(getattr(inner, "history", None), dict):
        return inner.history
    raise TypeError(f"plot_history expects fit's History, its .history dict or a trained model, "
                    f"got {type(history).__name__}")


def _metric_names(logs, metrics):
    """The metrics to draw: those asked for, else every training metric, the loss first."""
    if metrics:
        return list(metrics)
    return sorted((k for k in logs if not k.startswith("val_")), key=lambda k: (k != "loss", k))


def _draw_curves(fig, logs, metrics=None):
    fig.clear()
    names = _metric_names(logs, metrics)
    if not names:
        return
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for key, style, label in ((name, "-o", "train"), (f"val_{name}", "--s", "validation")):
            if key in logs and len(logs[key]):
                epochs = np.arange(1, len(logs[key]) + 1)
                ax.plot(epochs, logs[key], style, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()


def plot_history(history, to_file=None, metrics=None, figsize=None, dpi=100):
    """Loss and metric curves per epoch, train and validation side by side (one panel per metric).

    history: what `fit` returns, its `.history` dict, or the trained model. Returns the Figure,
    written to `to_file` when given."""
    logs = _history_dict(history)
    names = _metric_names(logs, metrics)
    fig = _viz.figure("plot_history", figsize or (4.0 * max(len(names), 1), 3.2), dpi)
    _draw_curves(fig, logs, metrics)
    _viz.save(fig, to_file)
    return fig


def _in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LivePlot(Callback):
    """Loss/metric curves redrawn after every epoch in a notebook, and written to `to_file` (PNG)
    at the end of training: ``model.fit(..., callbacks=[teach.LivePlot("curves.png")])``."""

    def __init__(self, to_file=None, metrics=None, dpi=100):
        super().__init__()
        self.to_file, self.metrics, self.dpi = to_file, metrics, dpi
        self.logs = {}
        self.figure = None
        self._handle = None
        _viz.require_matplotlib("LivePlot")

    def on_train_begin(self, logs=None):
        self.logs = {}
        self._handle = None

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(float(value))
        if _in_notebook():
            import io

            from IPython.display import Image, display
            self._render()
            png = io.BytesIO()
            self.figure.savefig(png, format="png")
            # PNG bytes show in any notebook, whether or not pyplot's inline backend is active
            if self._handle is None:
                self._handle = display(Image(data=png.getvalue()), display_id=True)
            else:
                self._handle.update(Image(data=png.getvalue()))

    def on_train_end(self, logs=None):
        if self.logs:
            self._render()
            _viz.save(self.figure, self.to_file)

    def _render(self):
        names = _metric_names(self.logs, self.metrics)
        if self.figure is None:
            self.figure = _viz.figure("LivePlot", (4.0 * max(len(names), 1), 3.2), self.dpi)
        _draw_curves(self.figure, self.logs, self.metrics)


# ------------------------------------------------------------------ decision boundaries
def _labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return np.rint(y.reshape(-1)).astype(np.int64)


def _classes(probs):
    """(predicted class, confidence in [0, 1]) per row of the model's output."""
    if probs.shape[-1] == 1:  # one sigmoid unit: class 1 when p > 0.5
        p = probs[:, 0]
        return (p > 0.5).astype(np.int64), np.abs(p - 0.5) * 2
    return probs.argmax(axis=1), probs.max(axis=1)


def _tint(classes, confidence):
    """Class colours faded towards white where the model is unsure."""
    alpha = (0.15 + 0.5 * np.clip(confidence, 0, 1))[..., None]
    return np.clip(1 - alpha + alpha * _PALETTE[classes % len(_PALETTE)], 0.0, 1.0)


def _hidden_layer(model, hidden_layer):
    if hidden_layer is None:
        return None
    layers = flat_layers(model)
    if hidden_layer != "auto":
        return find_layer(model, hidden_layer)
    hidden = [l for l in layers[:-1] if getattr(l, "units", None)]
    two = [l for l in hidden if l.units == 2]
    return (two or hidden or [None])[-1]


def _project(h, basis):
    """Hidden vectors as 2-D points: as they are for 2 units, on the data's two principal axes
    (PCA of the training points' hidden vectors) for more, with a zero y for one unit."""
    if h.shape[-1] == 2:
        return h
    if h.shape[-1] == 1:
        return np.concatenate([h, np.zeros_like(h)], axis=-1)
    mean, axes = basis
    return (h - mean) @ axes


def _draw_boundary(fig, model, x, y, hidden_layer="auto", resolution=150, title=None):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary draws 2-D inputs: x must have shape (samples, 2), got {x.shape}")
    labels = _labels(y)
    lo, hi = x.min(axis=0), x.max(axis=0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    probs = model.predict_on_batch(grid.astype(model.weights[0].dtype))
    cls, conf = _classes(probs)
    layer = _hidden_layer(model, hidden_layer)
    panels = 2 if layer is not None else 1
    fig.clear()
    ax = fig.add_subplot(1, panels, 1)
    ax.imshow(_tint(cls, conf).reshape(resolution, resolution, 3), origin="lower",
              extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto", interpolation="bilinear")
    ax.scatter(x[:, 0], x[:, 1], c=_PALETTE[labels % len(_PALETTE)], s=14, edgecolors="black", linewidths=0.5)
    ax.set_title(title or "input space: the decision regions", fontsize=9)
    if layer is not None:
        _draw_hidden(fig.add_subplot(1, 2, 2), model, layer, x, labels, lo, hi)
    fig.tight_layout()


def _draw_hidden(ax, model, layer, x, labels, lo, hi, lines=13, points=120):
    """The plane as the hidden layer sees it: the data and a warped grid of the input plane."""
    dtype = model.weights[0].dtype
    t = np.linspace(0, 1, points)
    grid_lines = []
    for v in np.linspace(0, 1, lines):
        grid_lines.append(np.stack([lo[0] + t * (hi[0] - lo[0]), np.full(points, lo[1] + v * (hi[1] - lo[1]))], 1))
        grid_lines.append(np.stack([np.full(points, lo[0] + v * (hi[0] - lo[0])), lo[1] + t * (hi[1] - lo[1])], 1))
    stacked = np.concatenate([x] + grid_lines).astype(dtype)
    h = layer_outputs(model, stacked, [layer])[layer.name].reshape(len(stacked), -1).astype(np.float64)
    hx, hl = h[:len(x)], h[len(x):]
    basis = None
    if h.shape[1] > 2:
        mean = hx.mean(axis=0)
        _, _, vt = np.linalg.svd(hx - mean, full_matrices=False)
        basis = (mean, vt[:2].T)
    px, pl = _project(hx, basis), _project(hl, basis).reshape(len(grid_lines), points, 2)
    if h.shape[1] == 2:
        _hidden_background(ax, model, layer, px, pl)
    for line in pl:
        ax.plot(line[:, 0], line[:, 1], color="0.55", linewidth=0.5)
    ax.scatter(px[:, 0], px[:, 1], c=_PALETTE[labels % len(_PALETTE)], s=14, edgecolors="black", linewidths=0.5)
    how = "" if h.shape[1] == 2 else (" (one unit)" if h.shape[1] == 1 else f" ({h.shape[1]} units, first 2 PCA axes)")
    ax.set_title(f"hidden layer '{layer.name}'{how}:\nthe input grid, bent", fontsize=9)


def _hidden_background(ax, model, layer, px, pl, resolution=80):
    """With 2 hidden units and a plain stack after them, colour the hidden plane by the classifier
    that the remaining layers compute there."""
    layers = flat_layers(model)
    if type(model).__name__ != "Sequential" or layer not in layers:
        return
    rest = layers[layers.index(layer) + 1:]
    both = np.concatenate([px, pl.reshape(-1, 2)])
    lo, hi = both.min(axis=0), both.max(axis=0)
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    out = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(model.weights[0].dtype)
    with no_grad():
        for later in rest:
            out = later(out, training=False)
    cls, conf = _classes(np.asarray(out.numpy() if hasattr(out, "numpy") else out))
    ax.imshow(_tint(cls, conf).reshape(resolution, resolution, 3), origin="lower",
              extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto", interpolation="bilinear")


def plot_decision_boundary(model, x, y, to_file=None, hidden_layer="auto", resolution=150, figsize=None, dpi=100,
                           title=None):
    """The class regions of a classifier with 2-D inputs, with the data on top; beside them, the
    data and a grid of the input plane as a hidden layer maps them (hidden_layer: 'auto' = the last
    hidden Dense layer, preferring one of 2 units; a name/index; None for no second panel).

    With 2 hidden units the hidden plane is coloured by what the later layers decide there: the
    network has bent the data until a straight line separates it. Returns the Figure.
    """
    panels = 1 if _hidden_layer(model, hidden_layer) is None else 2
    fig = _viz.figure("plot_decision_boundary", figsize or (4.6 * panels, 4.2), dpi)
    _draw_boundary(fig, model, x, y, hidden_layer, resolution, title)
    _viz.save(fig, to_file)
    return fig


class DecisionBoundaryAnimation(Callback):
    """A frame of `plot_decision_boundary` every `every` epochs, written as a GIF at the end of
    training (Pillow needed; without it, PNG frames in a folder). `frames` keeps the RGB arrays."""

    def __init__(self, x, y, to_file="decision_boundary.gif", every=1, hidden_layer="auto", resolution=60,
                 fps=4, figsize=None, dpi=60, verbose=1):
        super().__init__()
        _viz.require_matplotlib("DecisionBoundaryAnimation")
        self.x, self.y, self.to_file, self.every = x, y, to_file, every
        self.hidden_layer, self.resolution, self.fps = hidden_layer, resolution, fps
        self.figsize, self.dpi, self.verbose = figsize, dpi, verbose
        self.frames = []
        self.written = None
        self.message = None
        self._fig = None

    def on_train_begin(self, logs=None):
        self.frames = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every:
            return
        if self._fig is None:
            panels = 1 if _hidden_layer(self.model, self.hidden_layer) is None else 2
            self._fig = _viz.figure("DecisionBoundaryAnimation", self.figsize or (4.6 * panels, 4.2), self.dpi)
        loss = (logs or {}).get("loss")
        title = f"epoch {epoch + 1}" + ("" if loss is None else f", loss {loss:.3f}")
        _draw_boundary(self._fig, self.model, self.x, self.y, self.hidden_layer, self.resolution, title)
        self.frames.append(_viz.to_rgb(self._fig))

    def on_train_end(self, logs=None):
        if self.frames and self.to_file:
            self.written, self.message = _viz.write_gif(self.frames, self.to_file, self.fps)
            if self.verbose:
                print(f"DecisionBoundaryAnimation: {self.message}")
