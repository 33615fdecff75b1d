"""`chainrule demo`: a CNN learns Fashion-MNIST on a fresh machine, offline, in about a minute.

The main job trains TensorFlow's tutorial CNN (``recipes.cnn``) on the 6000 + 1000 image subset of
Fashion-MNIST shipped inside chainrule, shows Keras's progress bar each epoch, prints the test
accuracy, and leaves the trained model, its history and a picture of the curves in a folder.
Measured on the embedded test split (1000 images), 5 epochs: 83.0 to 84.2% over seeds 0-4
(Adam with cosine decay; plain Adam at 1e-3 gave 81.3 to 83.9%), about 16 s of CPU time.

`chainrule backprop` (or ``demo --backprop``) prints the backpropagation lecture's 2-2-2 worked
example instead. The helpers that save a run's files (`save_model_file`, `save_curves`, `write_png`)
serve `chainrule train` too.
"""
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from . import ops
from .creation import tensor

DEFAULT_EPOCHS = 5
DEFAULT_OUT = "chainrule-demo"
RUN_FILE = "run.json"  # what a run trained on what: model, input shape, class names (read by predict)
VIZ_HINT = "pip install chainrule[viz]"


def two_two_two(out=print):
    """The worked example: returns (E_total, gradients dict, updated weights dict)."""
    f64 = np.float64
    w = {f"w{i}": tensor(v, dtype=f64, requires_grad=True)
         for i, v in enumerate([.15, .20, .25, .30, .40, .45, .50, .55], start=1)}
    b1, b2 = tensor(.35, dtype=f64), tensor(.60, dtype=f64)
    i1, i2 = tensor(.05, dtype=f64), tensor(.10, dtype=f64)
    t1, t2 = .01, .99
    h1 = ops.sigmoid(w["w1"] * i1 + w["w2"] * i2 + b1)
    h2 = ops.sigmoid(w["w3"] * i1 + w["w4"] * i2 + b1)
    o1 = ops.sigmoid(w["w5"] * h1 + w["w6"] * h2 + b2)
    o2 = ops.sigmoid(w["w7"] * h1 + w["w8"] * h2 + b2)
    e_total = 0.5 * (t1 - o1) ** 2 + 0.5 * (t2 - o2) ** 2
    e_total.backward()
    out("The 2-2-2 sigmoid network of the backpropagation lecture")
    out(f"  out_h1 = {h1.item():.9f}  out_h2 = {h2.item():.9f}")
    out(f"  out_o1 = {o1.item():.9f}  out_o2 = {o2.item():.9f}  E_total = {e_total.item():.9f}")
    grads = {k: float(v.grad) for k, v in w.items()}
    updated = {k: w[k].item() - 0.5 * grads[k] for k in w}
    for k in w:
        out(f"  dE/d{k} = {grads[k]: .9f}   {k} <- {w[k].item():.2f} - 0.5 * dE/d{k} = {updated[k]:.9f}")
    return e_total.item(), grads, updated


# ----------------------------------------------------------------------------- the main job
def scale_images(x):
    """uint8 pixels as float32 in [0, 1], with a channel axis added to (n, h, w) grayscale images."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    return (x / np.float32(255.0)).astype(np.float32) if x.dtype == np.uint8 else x.astype(np.float32)


def run(epochs=DEFAULT_EPOCHS, out=DEFAULT_OUT, seed=0, limit=None, print_fn=print):
    """Train `recipes.cnn` on the embedded Fashion-MNIST; returns a dict with the test accuracy and
    the files written into the folder `out`. `limit` caps both splits (a quick check)."""
    import time

    from . import optimizers, random, recipes, schedules
    from .callbacks import CSVLogger
    from .datasets import embedded

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = embedded.load_data()
    x_train, y_train, x_test, y_test = (a[:limit] for a in (x_train, y_train, x_test, y_test))
    x_train, x_test = scale_images(x_train), scale_images(x_test)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    random.seed(seed)  # the initial weights and each epoch's shuffle order
    model = recipes.cnn(x_train.shape[1:], 10)
    # Adam with the rate going from 2e-3 to 0 along a half cosine: large steps first, then settling,
    # so the last epoch does not end on a noisy step (plain Adam, 1e-3: 81-84% over seeds 0-4)
    steps = epochs * -(-len(x_train) // 32)
    model.compile(optimizer=optimizers.Adam(schedules.CosineDecay(2e-3, decay_steps=steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print_fn(f"TensorFlow's tutorial CNN learns Fashion-MNIST: {len(x_train)} training images, {len(x_test)} test "
             f"images (the subset shipped inside chainrule), {epochs} epoch{'s' if epochs > 1 else ''} of Adam "
             f"with cosine decay.")
    model.summary(print_fn=print_fn)
    print_fn("(val_ = the test images, scored after each epoch as in TensorFlow's tutorial)")
    history = model.fit(x_train, y_train, epochs=epochs, validation_data=(x_test, y_test),
                        callbacks=[CSVLogger(folder / "history.csv")])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print_fn(f"\nTest accuracy: {accuracy:.4f} ({accuracy * 100:.1f}% of {len(x_test)} test images; "
             f"loss {loss:.4f})")

    model_path, note = save_model_file(model, folder)
    if note:
        print_fn(f"note: {note}")
    curves_path, note = save_curves(history.history, folder / "curves.png")
    if note:
        print_fn(f"note: {note}")
    record = {"model": "cnn", "data": "embedded", "input_shape": list(x_train.shape[1:]), "num_classes": 10,
              "loss": "sparse_categorical_crossentropy", "class_names": list(embedded.CLASS_NAMES),
              "epochs_done": epochs, "test": {"loss": float(loss), "accuracy": float(accuracy)}}
    (folder / RUN_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")  # for `chainrule predict`
    files = [model_path.name, "history.csv", curves_path.name, RUN_FILE]
    print_fn(f"Saved in {folder}/: {', '.join(files)} "
             f"({time.perf_counter() - start:.0f} s in all)")
    return {"test_accuracy": accuracy, "test_loss": loss, "folder": folder, "model": model_path,
            "curves": curves_path}


# ----------------------------------------------------------------------------- a run's files
def installed(module):
    """True when `module` can be imported (found without importing it)."""
    import importlib.util
    return importlib.util.find_spec(module) is not None


def save_model_file(model, folder, stem="model"):
    """Save `model` in `folder` as `stem.chainrule` (architecture, weights, optimizer state).

    Returns (path, note): without the safetensors package, or for a model that cannot be written as
    data (a custom layer class), only the weights are saved, as `stem.weights.npz`, and the note says so.
    """
    folder = Path(folder)
    if not installed("safetensors"):  # the .chainrule file stores its arrays as safetensors
        reason = "safetensors is not installed (pip install chainrule[save])"
    else:
        path = folder / f"{stem}.chainrule"
        try:
            model.save(str(path))
            return path, None
        except (TypeError, ValueError, NotImplementedError) as e:
            reason = f"the model cannot be written as a .chainrule file ({str(e).splitlines()[0]})"
    path = folder / f"{stem}.weights.npz"
    model.save_weights(str(path))
    return path, f"{reason}, so only the weights were saved, in {path.name}"


def save_curves(history, path, use_matplotlib=True):
    """Draw the loss and accuracy per epoch (train and validation) into the PNG file `path`.

    With matplotlib: `teach.plots.plot_history`, labelled. Without it: a plain chart drawn with
    NumPy (`curves_image`), no text. Returns (path, note) where the note says what was drawn.
    """
    path = Path(path)
    if use_matplotlib and installed("matplotlib"):
        from .teach.plots import plot_history
        plot_history(dict(history), to_file=str(path))
        return path, None
    write_png(path, curves_image(history))
    panels = " | ".join(_panel_names(history))
    return path, (f"{path.name} was drawn without matplotlib, so it has no labels: panels {panels}, blue = "
                  f"train, orange = validation, x = epochs; for a labelled plot: {VIZ_HINT}")


def _panel_names(history):
    names = [k for k in history if not k.startswith("val_") and k != "epoch"]
    return sorted(names, key=lambda k: (k != "loss", k))[:3]


_BLUE, _ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours, as in plot_history


def curves_image(history, height=240, width=320, margin=16):
    """An RGB uint8 image: one panel per metric (loss first), the train curve in blue and the
    `val_` curve in orange, each panel scaled to its own value range, with a frame and a light grid."""
    panels = _panel_names(history)
    image = np.full((height, width * max(len(panels), 1), 3), 255, np.uint8)
    for i, name in enumerate(panels):
        panel = image[:, i * width:(i + 1) * width]  # a view: drawing on it draws on the image
        top, bottom, left, right = margin, height - margin, margin, width - margin
        for q in range(5):  # grid lines at quarters, then the frame
            y = top + (bottom - top) * q // 4
            panel[y, left:right + 1] = 225
        panel[top:bottom + 1, [left, right]] = 120
        panel[[top, bottom], left:right + 1] = 120
        series = [(np.asarray(history[k], np.float64), colour)
                  for k, colour in ((name, _BLUE), (f"val_{name}", _ORANGE)) if len(history.get(k, []))]
        values = np.concatenate([s for s, _ in series]) if series else np.zeros(1)
        lo, hi = float(values.min()), float(values.max())
        lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1e-12 else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        for s, colour in series:
            xs = left + 6 + (right - left - 12) * (np.arange(len(s)) / max(len(s) - 1, 1))
            ys = bottom - (bottom - top) * (s - lo) / (hi - lo)
            _polyline(panel, xs, ys, colour)
    return image


def _polyline(image, xs, ys, colour):
    """Draw the line through the points (xs, ys) 2 pixels thick, and a 5x5 dot on each point."""
    h, w, _ = image.shape
    if len(xs) > 1:
        n = int(max(np.abs(np.diff(xs)).max(), np.abs(np.diff(ys)).max()) * 2) * (len(xs) - 1) + 2
        t = np.linspace(0, len(xs) - 1, n)  # sample the segments densely enough to leave no gaps
        px, py = np.interp(t, np.arange(len(xs)), xs), np.interp(t, np.arange(len(ys)), ys)
        for dx in (0, 1):
            for dy in (0, 1):
                image[np.clip(py.astype(int) + dy, 0, h - 1), np.clip(px.astype(int) + dx, 0, w - 1)] = colour
    for x, y in zip(xs.astype(int), ys.astype(int)):
        image[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = colour


def write_png(path, rgb):
    """Write an (h, w, 3) uint8 array as a PNG file: the signature, then the IHDR (size, 8-bit RGB),
    IDAT (the zlib-compressed rows, each led by filter byte 0 = none) and IEND chunks."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(kind, data):  # length, type, data, CRC-32 of type + data
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits per sample, colour type 2 = RGB
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) \
        + chunk(b"IEND", b"")
    Path(path).write_bytes(data)
    return path
