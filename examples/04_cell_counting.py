"""Cell counting by density-map regression on synthetic microscopy images (issue 9, example 4).

    python examples/04_cell_counting.py                      # full run, a few minutes on 2 cores
    python examples/04_cell_counting.py --quick --out /tmp/count     # tiny data, one epoch (CI)

Instead of finding each cell, the network predicts a density map: the target puts one Gaussian of
total mass 1 on every cell centre, so the map sums to the number of cells, and the predicted count
is the sum of the predicted map. Touching cells need not be separated; the network only has to put
the right mass on each blob. The network is fully convolutional (a small U-Net: convolutions and
pooling down, upsampling and a skip connection up, a linear 1x1 convolution out), so it counts
images of any size.

Choices, for a few minutes of training on two CPU cores:
- images 64x64 with 20 to 60 cells of radius 2 to 4 px (the default 128x128 scene, halved);
- the density is predicted on a 32x32 grid, each value the cells' mass in a 2x2 pixel block
  (the target is summed over those blocks, so it still sums to the count): the full-resolution
  layers cost most, and a count does not need them (CSRNet predicts at 1/8 resolution);
- the density is multiplied by 100: a cell's mass spread over ~25 pixels gives values near 0.04,
  whose squares would make a vanishingly small mean squared error and gradient.
Result: the mean absolute count error on held-out images, absolute and relative to the true count,
next to a baseline that counts bright pixels and divides by the pixels per cell (fit on the
training images). Pictures: image, true and predicted density with the counts, a scatter of
predicted against true counts, loss curves.
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

IMAGE_SIZE = (64, 64)
DATA = dict(image_size=IMAGE_SIZE, cell_count=(20, 60), cell_radius=(2.0, 4.0))
SCALE = 100.0   # density x SCALE is what the network learns to output


def block_sum(density, block=2):
    """(n, h, w, 1) density -> (n, h/block, w/block, 1), each value the sum of a block: the count is kept."""
    n, h, w, c = density.shape
    return density.reshape(n, h // block, block, w // block, block, c).sum(axis=(2, 4))


def build_counter(input_shape=IMAGE_SIZE + (1,), widths=(8, 16, 32)):
    """A fully convolutional regression network, 64x64 image -> 32x32 density map (times SCALE).

    One 3x3 convolution at full resolution finds edges and blobs; then a U-Net from 32x32 down to
    16x16 and back, whose skip connection keeps the positions precise; a 1x1 convolution without
    activation gives the density (a linear output: the loss is a plain regression)."""
    def conv(x, filters, name):
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)

    inputs = layers.Input(input_shape, name="image")
    x = conv(inputs, widths[0], "full_conv")
    x = layers.MaxPooling2D(2, name="full_pool")(x)
    skip = conv(conv(x, widths[1], "half_conv1"), widths[1], "half_conv2")
    x = layers.MaxPooling2D(2, name="half_pool")(skip)
    x = conv(conv(x, widths[2], "quarter_conv1"), widths[2], "quarter_conv2")
    x = layers.UpSampling2D(2, name="up_upsample")(x)
    x = layers.Concatenate(name="up_concat")([x, skip])
    x = conv(conv(x, widths[1], "up_conv1"), widths[1], "up_conv2")
    outputs = layers.Conv2D(1, 1, name="density")(x)
    return models.Model(inputs, outputs, name="density_counter")


def count_error(y_true, y_pred):
    """Per image |sum of the predicted density - true count|, in cells (the maps are scaled by SCALE)."""
    axes = tuple(range(1, np.ndim(y_pred)))
    return np.abs(np.asarray(y_pred).sum(axis=axes) - np.asarray(y_true).sum(axis=axes)) / SCALE


def area_baseline(train_images, train_counts, test_images):
    """Count = bright pixels / pixels per cell, the threshold and the ratio fit on the training images
    (least squares through the origin). Touching cells and varying sizes are what it gets wrong."""
    best = None
    for threshold in np.linspace(0.15, 0.5, 15):
        area = (train_images > threshold).sum(axis=(1, 2, 3)).astype(np.float64)
        per_pixel = area @ train_counts / (area @ area)
        error = np.abs(per_pixel * area - train_counts).mean()
        if best is None or error < best[0]:
            best = (error, threshold, per_pixel)
    _, threshold, per_pixel = best
    return per_pixel * (test_images > threshold).sum(axis=(1, 2, 3))


def plot_examples(images, true_density, predicted_density, to_file):
    """One row per image: the image, the true density, the predicted density, counts in the titles."""
    from matplotlib.figure import Figure
    rows = len(images)
    fig = Figure(figsize=(9, 2.9 * rows), dpi=100)
    for r in range(rows):
        true_count, predicted_count = true_density[r].sum(), predicted_density[r].sum()
        top = max(true_density[r].max(), predicted_density[r].max())
        panels = [(images[r, ..., 0], "image", "gray", 1.0),
                  (true_density[r, ..., 0], f"true density: {true_count:.0f} cells", "magma", top),
                  (predicted_density[r, ..., 0], f"predicted: {predicted_count:.1f} cells", "magma", top)]
        for c, (picture, title, cmap, vmax) in enumerate(panels):
            ax = fig.add_subplot(rows, 3, 3 * r + c + 1)
            ax.imshow(picture, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(to_file)


def plot_scatter(true_counts, predicted, baseline, to_file):
    """Predicted against true count for every held-out image, with y = x and the +-10% band."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    line = np.array([true_counts.min() - 2, true_counts.max() + 2], dtype=float)
    ax.fill_between(line, 0.9 * line, 1.1 * line, color="0.9", label="within 10%")
    ax.plot(line, line, color="0.4", lw=1, label="predicted = true")
    ax.scatter(true_counts, baseline, s=12, marker="x", color="tab:orange", alpha=0.7,
               label=f"bright-pixel baseline (MAE {np.abs(baseline - true_counts).mean():.1f})")
    ax.scatter(true_counts, predicted, s=14, color="tab:blue",
               label=f"density network (MAE {np.abs(predicted - true_counts).mean():.1f})")
    ax.set_xlabel("true count")
    ax.set_ylabel("predicted count")
    ax.set_title("held-out images")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(to_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "04_cell_counting"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    cr.random.seed(args.seed)

    n_train, n_val, n_test, epochs = (16, 8, 8, 1) if args.quick else (400, 32, 100, 10)
    train = datasets.microscopy(n_train, seed=args.seed, **DATA)
    val = datasets.microscopy(n_val, seed=args.seed + 1, **DATA)
    test = datasets.microscopy(n_test, seed=args.seed + 2, **DATA)
    y_train, y_val = block_sum(train.density) * SCALE, block_sum(val.density) * SCALE
    print(f"data: {n_train} training, {n_val} validation, {n_test} test images of {IMAGE_SIZE}, "
          f"{test.counts.min()} to {test.counts.max()} cells each (test)")

    model = build_counter()
    batch_size = 8
    steps = epochs * -(-n_train // batch_size)
    model.compile(optimizer=optimizers.Adam(optimizers.schedules.CosineDecay(4e-3, steps)),
                  loss="mse", metrics=[count_error])
    print(f"density network: {model.count_params()} weights; training {epochs} epoch(s) of {n_train} images")
    history = model.fit(train.images, y_train, epochs=epochs, batch_size=batch_size,
                        validation_data=(val.images, y_val),
                        verbose=2)

    density = model.predict(test.images, batch_size=16, verbose=0) / SCALE
    predicted = density.sum(axis=(1, 2, 3))
    errors = np.abs(predicted - test.counts)
    baseline = area_baseline(train.images, train.counts.astype(np.float64), test.images)
    base_errors = np.abs(baseline - test.counts)
    print(f"baseline, bright pixels / pixels per cell: MAE {base_errors.mean():.2f} cells "
          f"= {base_errors.mean() / test.counts.mean():.1%} of the mean true count")
    relative = errors.mean() / test.counts.mean()
    verdict = "met" if relative <= 0.10 else "not met"
    print(f"held-out count error ({n_test} images, {test.counts.min()}-{test.counts.max()} cells): "
          f"MAE {errors.mean():.2f} cells = {relative:.1%} of the mean true count "
          f"(mean relative error {np.mean(errors / test.counts):.1%}, bias {np.mean(predicted - test.counts):+.2f}; "
          f"target <= 10%: {verdict})")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        from chainrule import teach
        os.makedirs(args.out, exist_ok=True)
        shown = slice(0, 4)
        plot_examples(test.images[shown], block_sum(test.density[shown]), density[shown],
                      os.path.join(args.out, "counting_examples.png"))
        plot_scatter(test.counts, predicted, baseline, os.path.join(args.out, "count_scatter.png"))
        teach.plot_history(history, os.path.join(args.out, "training_curves.png"))
        print(f"pictures in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
