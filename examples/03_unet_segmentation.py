"""U-Net segmentation of cells in synthetic fluorescence microscopy images (issue 9, example 3).

    python examples/03_unet_segmentation.py                  # full run, a few minutes on 2 cores
    python examples/03_unet_segmentation.py --quick --out /tmp/unet   # tiny data, one epoch (CI)

The lecture's U-Net: on the way down, two 3x3 convolutions per level then 2x2 max pooling; on the
way up, 2x upsampling, concatenation with the feature maps of the same level on the way down (the
skip connection that brings back the fine detail pooling threw away), two 3x3 convolutions; a 1x1
convolution with a sigmoid gives each pixel's probability of being a cell.

The images are 64x64 with 10 to 25 cells, from `datasets.microscopy` with a noisier camera than
its default (noise std 0.05 to 0.15), so that one global brightness threshold is not enough: the
script prints the Dice of the best such threshold (chosen on the training images) next to the
U-Net's. Loss: binary cross-entropy + Dice loss, per image. Result: the mean Dice over held-out
images, 2 |P and T| / (|P| + |T|) with P the predicted cell pixels (probability > 0.5) and T the
true ones. Pictures: input, truth, prediction and errors for a few held-out images, loss curves.
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, losses, models, optimizers

IMAGE_SIZE = (64, 64)
# Cells 2.5-5 px in radius, 10-25 of them: the scale of the default 128x128 images, halved.
DATA = dict(image_size=IMAGE_SIZE, cell_count=(10, 25), cell_radius=(2.5, 5.0), noise=(0.05, 0.15))


def build_unet(input_shape=IMAGE_SIZE + (1,), widths=(8, 16, 32)):
    """The lecture's U-Net; `widths` are the filters per level, the last one the bottleneck.

    Three levels (64x64, 32x32, 16x16 here) are enough: after two poolings each bottleneck unit
    sees 32x32 input pixels, several cells across (the largest is about 12 px)."""
    def two_convs(x, filters, name):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)

    inputs = layers.Input(input_shape, name="image")
    x, skips = inputs, []
    for level, filters in enumerate(widths[:-1], start=1):
        x = two_convs(x, filters, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = two_convs(x, widths[-1], "bottleneck")
    for level, filters, skip in zip(range(len(skips), 0, -1), widths[-2::-1], skips[::-1]):
        x = layers.UpSampling2D(2, name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skip])
        x = two_convs(x, filters, f"up{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="cell_probability")(x)
    return models.Model(inputs, outputs, name="unet")


def bce_dice_loss(y_true, y_pred):
    """Per image: mean binary cross-entropy over the pixels + Dice loss 1 - 2 sum(t p) / (sum t + sum p).

    Cross-entropy alone is dominated by the background (about 80% of the pixels); the Dice term
    weighs the cells' overlap directly, and is the quantity we report."""
    bce = losses.binary_crossentropy(y_true, y_pred).mean(axis=(1, 2))
    return bce + losses.dice(y_true, y_pred, axis=(1, 2, 3))


def dice_coefficient(y_true, y_pred, threshold=0.5):
    """Dice of the thresholded prediction, per image: 2 |P and T| / (|P| + |T|) (1 when both are empty)."""
    predicted = np.asarray(y_pred) > threshold
    truth = np.asarray(y_true) > 0.5
    axes = tuple(range(1, predicted.ndim))
    both = 2.0 * (predicted & truth).sum(axis=axes)
    total = predicted.sum(axis=axes) + truth.sum(axis=axes)
    return np.where(total > 0, both / np.maximum(total, 1), 1.0).astype(np.float32)


def best_threshold(images, masks):
    """The global brightness threshold with the best mean Dice on these images: the baseline."""
    candidates = np.linspace(0.1, 0.6, 51)
    scores = [dice_coefficient(masks, images, t).mean() for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def plot_examples(images, masks, probabilities, to_file):
    """One row per image: input, true mask, predicted mask (Dice in the title), errors."""
    from matplotlib.figure import Figure
    rows = len(images)
    fig = Figure(figsize=(10, 2.6 * rows), dpi=100)
    scores = dice_coefficient(masks, probabilities)
    for r in range(rows):
        truth, predicted = masks[r, ..., 0] > 0.5, probabilities[r, ..., 0] > 0.5
        errors = np.zeros(truth.shape + (3,))
        errors[truth & predicted] = (1, 1, 1)          # white: found
        errors[~truth & predicted] = (1, 0.2, 0.2)     # red: false cell pixel
        errors[truth & ~predicted] = (0.2, 0.5, 1)     # blue: missed cell pixel
        panels = [(images[r, ..., 0], "input"), (truth, "truth"),
                  (predicted, f"prediction (Dice {scores[r]:.3f})"), (errors, "errors: red extra, blue missed")]
        for c, (picture, title) in enumerate(panels):
            ax = fig.add_subplot(rows, 4, 4 * r + c + 1)
            ax.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(to_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "03_unet_segmentation"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    cr.random.seed(args.seed)

    n_train, n_val, n_test, epochs = (16, 8, 8, 1) if args.quick else (240, 32, 64, 8)
    # Three independent draws: training, validation (the curves), and held-out test images.
    train = datasets.microscopy(n_train, seed=args.seed, **DATA)
    val = datasets.microscopy(n_val, seed=args.seed + 1, **DATA)
    test = datasets.microscopy(n_test, seed=args.seed + 2, **DATA)
    print(f"data: {n_train} training, {n_val} validation, {n_test} test images of {IMAGE_SIZE}, "
          f"{train.masks.mean():.0%} of the pixels are cells")

    model = build_unet()
    batch_size = 8
    steps = epochs * -(-n_train // batch_size)
    model.compile(optimizer=optimizers.Adam(optimizers.schedules.CosineDecay(3e-3, steps)),
                  loss=bce_dice_loss, metrics=[dice_coefficient])
    print(f"U-Net: {model.count_params()} weights; training {epochs} epoch(s) of {n_train} images")
    history = model.fit(train.images, train.masks, epochs=epochs, batch_size=batch_size,
                        validation_data=(val.images, val.masks), verbose=2)

    probabilities = model.predict(test.images, batch_size=16, verbose=0)
    scores = dice_coefficient(test.masks, probabilities)
    threshold = best_threshold(train.images, train.masks)
    baseline = dice_coefficient(test.masks, test.images, threshold)
    print(f"baseline, one global threshold ({threshold:.2f}, best on the training images): "
          f"Dice {baseline.mean():.3f}")
    verdict = "met" if scores.mean() >= 0.9 else "not met"
    print(f"held-out Dice ({n_test} images): mean {scores.mean():.3f}, worst {scores.min():.3f} "
          f"(target >= 0.9: {verdict})")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        from chainrule import teach
        os.makedirs(args.out, exist_ok=True)
        shown = slice(0, 4)
        plot_examples(test.images[shown], test.masks[shown], probabilities[shown],
                      os.path.join(args.out, "segmentation_examples.png"))
        teach.plot_history(history, os.path.join(args.out, "training_curves.png"))
        print(f"pictures in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
