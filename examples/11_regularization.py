"""Dropout and data augmentation as regularizers: a small CNN on 500 Fashion-MNIST images, trained
four ways, and the gap between training and validation accuracy each time.

    python examples/11_regularization.py                       # full run (a few minutes)
    python examples/11_regularization.py --quick --out /tmp/ex11    # tiny data, one epoch (CI)

With 500 training images (50 per class, from the embedded Fashion-MNIST subset) a CNN of some
122 000 weights learns the training set by heart: training accuracy goes to 1 while validation
accuracy stalls, and the difference, the generalization gap, is overfitting made visible.
The same network is trained, from the same initial weights and for the same epochs:

    none           no regularization
    dropout        Dropout(0.25) after each conv block, Dropout(0.5) before and after the dense layer
    augmentation   RandomFlip("horizontal"), RandomTranslation(0.1, 0.1), RandomZoom(0.1) in front,
                   filling with black (the background)
    both           the two together

Dropout zeroes each unit with probability `rate` in training (scaling the rest by 1 / (1 - rate)) so
no unit can rely on another; augmentation shows the network a new variant of each image every
epoch, so memorizing pixels stops paying. Both act only in training (`model.fit`); `evaluate` and
`predict` see the network as it is. That is why the training accuracy that `fit` reports (measured
on dropped-out, augmented batches) understates what the network does on its training images: the
example measures the training accuracy again without them after every epoch, and reports the
gap = training accuracy - validation accuracy from those clean numbers. Validation is the 1000
held-out images of the subset.

On a machine whose cores are busy with other work, OpenBLAS's worker threads can slow NumPy's
matrix products down many times over; run with `OPENBLAS_NUM_THREADS=1` there (the results in
examples/results/ were measured that way, on a shared 2-core machine).
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import callbacks, datasets, layers, models, optimizers

CONFIGS = [("none", False, False), ("dropout", True, False), ("augmentation", False, True), ("both", True, True)]


def load(n_train, n_val):
    """n_train training images (the same number of every class) and n_val validation images,
    float32 in [0, 1] of shape (n, 28, 28, 1)."""
    (x, y), (x_val, y_val) = datasets.embedded.load_data()
    per_class = n_train // 10
    pick = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
    scale = np.float32(1 / 255)
    return ((x[pick, ..., None] * scale, y[pick].astype(np.int64)),
            (x_val[:n_val, ..., None] * scale, y_val[:n_val].astype(np.int64)))


def augmentation():
    """The augmentation layers: random left-right flips, shifts of up to 10% and zooms of up to 10%."""
    return [layers.RandomFlip("horizontal"),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),  # the background is black: pad with 0
            layers.RandomZoom(0.1, fill_mode="constant")]


def build(dropout, augment):
    """A small CNN; with `dropout` and/or `augment` the regularizing layers go in, nothing else changes."""
    stack = [layers.Input((28, 28, 1))]
    if augment:
        stack += augmentation()
    stack += [layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2)]
    stack += [layers.Dropout(0.25)] if dropout else []
    stack += [layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2)]
    stack += [layers.Dropout(0.25)] if dropout else []
    stack += [layers.Flatten()]
    stack += [layers.Dropout(0.5)] if dropout else []
    stack += [layers.Dense(64, activation="relu")]
    stack += [layers.Dropout(0.5)] if dropout else []
    stack += [layers.Dense(10, activation="softmax")]
    model = models.Sequential(stack)
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class CleanTrainingAccuracy(callbacks.Callback):
    """After every epoch, the accuracy on the training images with dropout and augmentation off
    (inference mode), i.e. what the network has actually learned about its training set."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.values = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        pred = self.model.predict(self.x, batch_size=250, verbose=0).argmax(axis=1)
        self.values.append(float((pred == self.y).mean()))


# ------------------------------------------------------------------ pictures
def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(runs, to_file):
    """One panel per configuration: training accuracy (clean, and as fit reports it) and validation."""
    fig = new_figure((4.0 * len(runs), 3.6))
    axes = [fig.add_subplot(1, len(runs), k + 1) for k in range(len(runs))]
    for ax, run in zip(axes, runs):
        epochs = np.arange(1, len(run["clean"]) + 1)
        ax.plot(epochs, run["clean"], color="C0", label="training (clean)")
        ax.plot(epochs, run["history"]["accuracy"], color="C0", linestyle=":",
                label="training (as fit reports it)")
        ax.plot(epochs, run["history"]["val_accuracy"], color="C1", label="validation")
        ax.set_title(f"{run['name']}: gap {run['gap']:.3f}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(to_file)


def plot_augmented(x, to_file, copies=6):
    """A few training images and random augmented versions of them, as the network sees them in fit."""
    stack = models.Sequential([layers.Input((28, 28, 1))] + augmentation())
    images = x[:4]
    fig = new_figure((1.3 * (copies + 1), 1.4 * len(images)))
    variants = [np.asarray(stack(images, training=True)) for _ in range(copies)]
    for row, image in enumerate(images):
        for col, picture in enumerate([image] + [v[row] for v in variants]):
            ax = fig.add_subplot(len(images), copies + 1, row * (copies + 1) + col + 1)
            ax.imshow(picture[..., 0], cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
            if row == 0:
                ax.set_title("original" if col == 0 else f"augmented {col}", fontsize=8)
    fig.tight_layout()
    fig.savefig(to_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "11_regularization"),
                        help="folder for the pictures")
    parser.add_argument("--train-size", type=int, default=500, help="training images (default 500)")
    parser.add_argument("--epochs", type=int, default=None, help="default 40 (1 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 40)
    n_train, n_val = (50, 50) if args.quick else (args.train_size, 1000)
    try:
        import matplotlib  # noqa: F401
        viz = True
        os.makedirs(args.out, exist_ok=True)
    except ImportError:
        viz = False
        print("matplotlib is not installed: text only (pip install chainrule[viz] for the pictures)")

    start = time.perf_counter()
    (x, y), (x_val, y_val) = load(n_train, n_val)
    print(f"data: {len(x)} training images ({len(x) // 10} per class), {len(x_val)} validation images; "
          f"{epochs} epochs, batch 32, Adam")
    runs = []
    for name, dropout, augment in CONFIGS:
        cr.random.seed(args.seed)  # the same initial weights for every configuration
        model = build(dropout, augment)
        clean = CleanTrainingAccuracy(x, y)
        tick = time.perf_counter()
        history = model.fit(x, y, epochs=epochs, batch_size=32, validation_data=(x_val, y_val), verbose=0,
                            callbacks=[clean])
        logs = history.history
        run = {"name": name, "history": logs, "clean": clean.values, "train": clean.values[-1],
               "val": logs["val_accuracy"][-1], "best_val": max(logs["val_accuracy"]),
               "seconds": time.perf_counter() - tick}
        run["gap"] = run["train"] - run["val"]
        runs.append(run)
        print(f"  {name:13s} training {run['train']:.3f} (fit reports {logs['accuracy'][-1]:.3f}), "
              f"validation {run['val']:.3f}, gap {run['gap']:+.3f}  ({run['seconds']:.0f} s)")

    print(f"\n{'regularization':15s} {'train acc':>9s} {'val acc':>8s} {'gap':>7s} {'best val':>8s} "
          f"{'val loss':>8s}")
    for run in runs:
        print(f"{run['name']:15s} {run['train']:9.3f} {run['val']:8.3f} {run['gap']:+7.3f} {run['best_val']:8.3f} "
              f"{run['history']['val_loss'][-1]:8.3f}")
    if viz:
        plot_curves(runs, os.path.join(args.out, "accuracy_curves.png"))
        plot_augmented(x, os.path.join(args.out, "augmented_images.png"))
        print(f"\npictures in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print("result: gap (train - val accuracy) " + ", ".join(f"{run['name']} {run['gap']:+.3f}" for run in runs)
          + "; val accuracy " + ", ".join(f"{run['name']} {run['val']:.3f}" for run in runs))
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
