"""Multi-task learning: one network, two heads, per-output losses and `loss_weights`.

    python examples/07_multitask.py            # full mode (10 s to 2 min on 2 shared cores, see results)
    python examples/07_multitask.py --quick    # tiny data, one epoch (CI)

On the Fashion-MNIST subset shipped with chainrule (6000 training, 1000 test images), one
functional Model answers two questions about each image:

    label        which of the 10 classes?      Dense(10, softmax), sparse categorical cross-entropy
    brightness   how much ink is in it?        Dense(1), mean squared error

The target of the second head is the image's mean pixel value, standardized with the training
set's mean and standard deviation so that the two losses start at similar sizes; its error is
reported back in pixel units (0-1). Both heads read the same shared trunk, which ends in a
deliberately narrow layer (8 units): the two tasks must share those 8 numbers, so they compete.

`compile(loss={...}, loss_weights={...})` trains on

    loss = w_label * crossentropy(label) + w_brightness * mse(brightness)

and the weights decide which task gets the trunk's capacity. The same network is trained from the
same initial weights under several weight settings; the per-output test metrics show one task
traded for the other.

Pictures in `--out` (default examples/output/07_multitask/): the trade-off (accuracy against
brightness error per setting), the curves of the balanced run (brightness MAE there in standardized
units), and test images with both answers.
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers, teach

CLASS_NAMES = datasets.embedded.CLASS_NAMES
SHARED_UNITS = 8


def build_model():
    """Input -> shared trunk (Dense 64, Dense 8) -> two heads, one per task."""
    inputs = layers.Input((28, 28), name="image")
    hidden = layers.Flatten()(inputs)
    hidden = layers.Dense(64, activation="relu", name="trunk")(hidden)
    shared = layers.Dense(SHARED_UNITS, activation="relu", name="shared")(hidden)
    label = layers.Dense(10, activation="softmax", name="label")(shared)
    brightness = layers.Dense(1, name="brightness")(shared)
    return models.Model(inputs, [label, brightness], name="two_heads")


def train(weights, data, epochs, seed):
    """Train from the same initial weights (same seed) with loss_weights `weights`."""
    (x, y, z), (xt, yt, zt) = data
    cr.random.seed(seed)
    model = build_model()
    model.compile(optimizer=optimizers.Adam(1e-3),
                  loss={"label": "sparse_categorical_crossentropy", "brightness": "mse"},
                  loss_weights=weights,
                  metrics={"label": ["accuracy"], "brightness": ["mae"]})
    start = time.perf_counter()
    history = model.fit(x, {"label": y, "brightness": z}, epochs=epochs, batch_size=64, verbose=0,
                        validation_data=(xt, {"label": yt, "brightness": zt}))
    return model, history, time.perf_counter() - start


def load(quick):
    """Images scaled to [0, 1]; labels; standardized mean brightness; and the scale to undo it."""
    (x, y), (xt, yt) = datasets.embedded.load_data()
    if quick:
        x, y, xt, yt = x[:500], y[:500], xt[:200], yt[:200]
    x, xt = x.astype(np.float32) / 255, xt.astype(np.float32) / 255
    b, bt = x.mean(axis=(1, 2)), xt.mean(axis=(1, 2))
    mean, std = float(b.mean()), float(b.std())
    return ((x, y, (b - mean) / std), (xt, yt, (bt - mean) / std)), (mean, std)


def describe(weights):
    return f"label {weights['label']:g} : brightness {weights['brightness']:g}"


# ---------------------------------------------------------------------- pictures
def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_tradeoff(rows, to_file):
    """Each weight setting as a point: test accuracy (up is better) against brightness MAE (left is better)."""
    fig = new_figure((6.5, 4.5))
    ax = fig.subplots()
    maes, accs = [r["brightness_mae"] for r in rows], [r["label_accuracy"] for r in rows]
    ax.plot(maes, accs, "-o", color="tab:blue")
    for i, (r, mae, acc) in enumerate(zip(rows, maes, accs)):
        ax.annotate(describe(r["weights"]), (mae, acc), textcoords="offset points", fontsize=8,
                    xytext=(-40, 8 if i % 2 == 0 else -14))
    ax.set(xlabel="brightness head: test mean absolute error (pixel units)",
           ylabel="label head: test accuracy", xscale="log",
           title=f"trading one task for the other ({SHARED_UNITS} shared units)")
    ax.margins(x=0.15, y=0.12)
    from matplotlib import ticker
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def plot_predictions(model, test, scale, to_file, count=12):
    """Test images with the true and predicted class and brightness."""
    x, y, z = test
    probs, brightness = model.predict(x[:count], verbose=0)
    mean, std = scale
    fig = new_figure((12, 3.2))
    axes = fig.subplots(2, count // 2)
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(x[i], cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
        guess = int(probs[i].argmax())
        ax.set_title(f"{CLASS_NAMES[guess]}\n{'ok' if guess == y[i] else 'was ' + CLASS_NAMES[y[i]]}\n"
                     f"ink {brightness[i, 0] * std + mean:.2f} (true {z[i] * std + mean:.2f})",
                     fontsize=7, color="black" if guess == y[i] else "tab:red")
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


# ---------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "07_multitask"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()

    data, scale = load(args.quick)
    (x, _, _), test = data
    epochs = 1 if args.quick else 10
    pairs = [(1.0, 0.01), (1.0, 1.0), (0.01, 1.0)] if args.quick else \
        [(1.0, 0.01), (1.0, 0.1), (1.0, 1.0), (0.1, 1.0), (0.01, 1.0)]
    settings = [{"label": a, "brightness": b} for a, b in pairs]
    print(f"{len(x)} training and {len(test[0])} test images; brightness = mean pixel value, "
          f"mean {scale[0]:.3f}, std {scale[1]:.3f} on the training set")

    rows, balanced = [], None
    for weights in settings:
        model, history, seconds = train(weights, data, epochs, args.seed)
        xt, yt, zt = test
        result = model.evaluate(xt, {"label": yt, "brightness": zt}, batch_size=500, verbose=0, return_dict=True)
        rows.append({"weights": weights, "seconds": seconds,
                     "label_accuracy": result["label_accuracy"], "label_loss": result["label_loss"],
                     "brightness_loss": result["brightness_loss"],
                     "brightness_mae": result["brightness_mae"] * scale[1],  # back to pixel units
                     "loss": result["loss"]})
        if weights["label"] == weights["brightness"]:
            balanced = (model, history, result)
        print(f"  loss_weights {describe(weights):<28} trained {epochs} epochs in {seconds:.1f} s")

    model, history, result = balanced
    print("\nthe balanced model:")
    model.summary()
    print(f"evaluate(return_dict=True) gives every output's loss and metrics: "
          f"{ {k: round(v, 4) for k, v in result.items()} }")
    print(f"the total is the weighted sum: 1 * {result['label_loss']:.4f} + 1 * {result['brightness_loss']:.4f} "
          f"= {result['label_loss'] + result['brightness_loss']:.4f} (loss = {result['loss']:.4f})")

    print(f"\nper-output test metrics ({SHARED_UNITS} shared units, same initial weights, {epochs} epochs):")
    print(f"  {'loss_weights':<30} {'label acc':>9} {'label CE':>9} {'brightness MAE':>15} {'brightness MSE (z)':>19}")
    for r in rows:
        print(f"  {describe(r['weights']):<30} {r['label_accuracy']:>9.3f} {r['label_loss']:>9.3f} "
              f"{r['brightness_mae']:>15.4f} {r['brightness_loss']:>19.4f}")
    first, last = rows[0], rows[-1]
    print(f"moving the weight from the label to the brightness: accuracy {first['label_accuracy']:.3f} -> "
          f"{last['label_accuracy']:.3f}, brightness error {first['brightness_mae']:.4f} -> "
          f"{last['brightness_mae']:.4f}")
    print("RESULT " + " | ".join(f"{describe(r['weights'])}: accuracy={r['label_accuracy']:.3f} "
                                 f"brightness_mae={r['brightness_mae']:.4f}" for r in rows))

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        plot_tradeoff(rows, os.path.join(args.out, "tradeoff.png"))
        teach.plot_history(history, os.path.join(args.out, "balanced_curves.png"),
                           metrics=["loss", "label_accuracy", "brightness_mae"])
        plot_predictions(model, test, scale, os.path.join(args.out, "predictions.png"))
        print(f"pictures written to {args.out}/")
    print(f"total time {time.perf_counter() - start_time:.1f} s")


if __name__ == "__main__":
    main()
