"""1-D convolution on the heartbeat signal: where is the beat? A Conv1D net against a dense net.

    python examples/05_heartbeat_conv1d.py            # full mode (40 s to 6 min on 2 shared cores, see results)
    python examples/05_heartbeat_conv1d.py --quick    # tiny data, one epoch (CI)

Each signal (`datasets.heartbeat`, 128 steps) is noise on a wandering baseline with one heartbeat
(P wave, the sharp Q-R-S spike, T wave) of random height at a random place. The task is
segmentation: for every time step, is it part of the beat? The label is the 0/1 mask.

- The conv net is fully convolutional: three Conv1D layers (kernel 9, 'same' padding) and a 1x1
  Conv1D with a sigmoid give one probability per step. Each filter is ONE set of 9 weights slid
  along the signal: a beat at step 20 and a beat at step 90 are seen by the same weights.
- The dense net flattens the 128 steps and maps them to the 128 outputs with one hidden layer. It
  has a separate weight for every (input step, unit) pair: what it learns about a beat at step 20
  says nothing about a beat at step 90, so it needs examples of beats at every place.

The beat's position (its R peak) is read from a predicted mask: the 24-step window with the most
predicted probability, plus the R peak's offset inside a beat.

Two comparisons, with the parameter counts:
1. Same data: both nets trained on beats anywhere, tested on beats anywhere.
2. Weight sharing made visible: both nets trained only on signals whose beat lies in the LEFT half,
   tested on signals whose beat lies in the RIGHT half. The conv net finds them; the dense net,
   which never had a reason to give its right-half weights any meaning, does not.

Pictures in `--out` (default examples/output/05_heartbeat_conv1d/): test signals with the true
beat and both nets' predictions, the same for the right-half test, and the training curves.
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

LENGTH = 128
BEAT_WIDTH = 24  # datasets.heartbeat's default: a beat covers 24 steps


# ---------------------------------------------------------------------- the two networks
def conv_net():
    """Fully convolutional: (128, 1) -> (128,) probabilities; receptive field 1 + 3 * 8 = 25 steps."""
    return models.Sequential([
        layers.Input((LENGTH, 1)),
        layers.Conv1D(8, 9, padding="same", activation="relu"),
        layers.Conv1D(16, 9, padding="same", activation="relu"),
        layers.Conv1D(16, 9, padding="same", activation="relu"),
        layers.Conv1D(1, 1, activation="sigmoid"),   # one probability per step
        layers.Reshape((LENGTH,)),
    ], name="conv_net")


def dense_net():
    """Flattened input, one hidden layer, one output per step: no weight is shared between steps."""
    return models.Sequential([
        layers.Input((LENGTH, 1)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(LENGTH, activation="sigmoid"),
    ], name="dense_net")


def train(build, x, mask, epochs, seed, validation_data=None):
    cr.random.seed(seed)
    model = build()
    model.compile(optimizer=optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["binary_accuracy"])
    start = time.perf_counter()
    history = model.fit(x, mask, epochs=epochs, batch_size=32, verbose=0, validation_data=validation_data)
    return model, history, time.perf_counter() - start


# ---------------------------------------------------------------------- reading the predictions
def beat_positions(prob, offset):
    """R-peak index from per-step probabilities: the start of the BEAT_WIDTH-step window holding the
    most probability (a moving sum by cumulative sums), plus the R peak's offset in a beat."""
    csum = np.concatenate([np.zeros((len(prob), 1), prob.dtype), np.cumsum(prob, axis=1)], axis=1)
    window_sums = csum[:, BEAT_WIDTH:] - csum[:, :-BEAT_WIDTH]
    return window_sums.argmax(axis=1) + offset


def scores(prob, data, offset):
    """Per-step accuracy, intersection over union of the masks, and the position error in steps."""
    predicted, true = prob > 0.5, data.mask > 0.5
    union = np.maximum((predicted | true).sum(axis=1), 1)
    error = np.abs(beat_positions(prob, offset) - data.position)
    return {"step_accuracy": float((predicted == true).mean()),
            "iou": float(((predicted & true).sum(axis=1) / union).mean()),
            "position_error": float(error.mean()),
            "within_2_steps": float((error <= 2).mean())}


def subset(data, keep):
    return type(data)(*(a[keep] for a in data))


def report(title, results, params):
    print(f"\n{title}")
    print(f"  {'net':<6} {'parameters':>10} {'step acc':>9} {'IoU':>6} {'|position error|':>17} {'within 2':>9}")
    for name, r in results.items():
        print(f"  {name:<6} {params[name]:>10} {r['step_accuracy']:>9.3f} {r['iou']:>6.3f} "
              f"{r['position_error']:>11.2f} steps {r['within_2_steps']:>9.3f}")


# ---------------------------------------------------------------------- pictures
def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_signals(data, probs, offset, title, to_file, count=6):
    """Each signal, its true beat (shaded), the conv net's probability per step, and the R-peak
    positions: true, conv net, dense net."""
    fig = new_figure((11, 1.9 * count))
    axes = fig.subplots(count, 1, sharex=True)
    steps = np.arange(LENGTH)
    positions = {name: beat_positions(p[:count], offset) for name, p in probs.items()}
    for i, ax in enumerate(axes):
        ax.fill_between(steps, -1, 2, where=data.mask[i] > 0.5, color="tab:green", alpha=0.15, label="true beat")
        ax.plot(steps, data.x[i, :, 0], color="0.3", lw=1, label="signal")
        ax.plot(steps, probs["conv"][i], color="tab:blue", lw=1.2, alpha=0.8, label="conv P(beat)")
        ax.plot(steps, probs["dense"][i], color="tab:red", lw=1, alpha=0.5, label="dense P(beat)")
        ax.axvline(data.position[i], color="tab:green", ls="--", lw=1.5, label="true R peak")
        ax.axvline(positions["conv"][i], color="tab:blue", lw=1.2, label="conv net")
        ax.axvline(positions["dense"][i], color="tab:red", lw=1.2, ls=":", label="dense net")
        ax.set_ylim(min(-0.6, data.x[i].min() - 0.1), max(1.6, data.x[i].max() + 0.1))
        ax.set_yticks([])
    axes[0].legend(loc="upper center", ncol=7, fontsize=8, bbox_to_anchor=(0.5, 1.32))
    axes[-1].set_xlabel("time step")
    fig.suptitle(title, y=0.995)
    fig.tight_layout()
    fig.savefig(to_file, dpi=90)


def plot_curves(histories, to_file):
    """Validation loss and per-step accuracy per epoch, for both nets."""
    fig = new_figure((10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for name, history in histories.items():
        epochs = np.arange(1, len(history["val_loss"]) + 1)
        ax_loss.plot(epochs, history["val_loss"], marker=".", label=f"{name} net")
        ax_acc.plot(epochs, history["val_binary_accuracy"], marker=".", label=f"{name} net")
    ax_loss.set(xlabel="epoch", ylabel="binary cross-entropy", title="validation loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="fraction of steps right", title="validation per-step accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


# ---------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "05_heartbeat_conv1d"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()

    n_train, n_test, epochs = (200, 100, 1) if args.quick else (1000, 500, 15)
    train_data = datasets.heartbeat(n_train, length=LENGTH, beat_width=BEAT_WIDTH, seed=args.seed)
    test_data = datasets.heartbeat(n_test, length=LENGTH, beat_width=BEAT_WIDTH, seed=args.seed + 1)
    # where the R peak sits inside a beat: its distance from the beat's first step
    offset = int(np.median(train_data.position - train_data.mask.argmax(axis=1)))
    print(f"heartbeat: {n_train} training and {n_test} test signals of {LENGTH} steps, "
          f"one beat of {BEAT_WIDTH} steps each (R peak {offset} steps into it)")

    # 1. same data for both
    results, params, histories = {}, {}, {}
    for name, build in (("conv", conv_net), ("dense", dense_net)):
        model, history, seconds = train(build, train_data.x, train_data.mask, epochs, args.seed,
                                        validation_data=(test_data.x, test_data.mask))
        probs = model.predict(test_data.x, batch_size=250, verbose=0)
        results[name], params[name], histories[name] = scores(probs, test_data, offset), model.count_params(), \
            history.history
        results[name]["probs"] = probs
        print(f"  trained the {name} net: {model.count_params()} parameters, {epochs} epochs, {seconds:.1f} s")
    report("1. beats anywhere, tested on beats anywhere", results, params)

    # 2. trained on beats in the left half only, tested on beats in the right half only
    half = LENGTH // 2
    pool = datasets.heartbeat(3 * n_train, length=LENGTH, beat_width=BEAT_WIDTH, seed=args.seed + 2)
    test_pool = datasets.heartbeat(3 * n_test, length=LENGTH, beat_width=BEAT_WIDTH, seed=args.seed + 3)
    left = subset(pool, np.flatnonzero(pool.mask[:, half:].sum(axis=1) == 0)[:n_train])
    right = subset(test_pool, test_pool.mask[:, :half].sum(axis=1) == 0)
    shifted = {}
    for name, build in (("conv", conv_net), ("dense", dense_net)):
        model, _, seconds = train(build, left.x, left.mask, epochs, args.seed)
        probs = model.predict(right.x, batch_size=250, verbose=0)
        shifted[name] = scores(probs, right, offset)
        shifted[name]["probs"] = probs
        print(f"  trained the {name} net on {len(left.x)} left-half beats: {seconds:.1f} s")
    report(f"2. trained on {len(left.x)} beats in steps 0-{half - 1}, tested on {len(right.x)} beats in "
           f"steps {half}-{LENGTH - 1}", shifted, params)

    ratio = params["dense"] / params["conv"]
    better = shifted["conv"]["iou"] > shifted["dense"]["iou"]
    print(f"\nweight sharing: the conv net has {ratio:.1f}x fewer parameters; on beats in the half it never saw "
          f"it {'does' if better else 'does NOT'} beat the dense net (IoU {shifted['conv']['iou']:.3f} "
          f"against {shifted['dense']['iou']:.3f})")
    print(f"RESULT conv_iou={results['conv']['iou']:.3f} dense_iou={results['dense']['iou']:.3f} "
          f"conv_position_error={results['conv']['position_error']:.2f} "
          f"dense_position_error={results['dense']['position_error']:.2f} "
          f"conv_params={params['conv']} dense_params={params['dense']} "
          f"shifted_conv_iou={shifted['conv']['iou']:.3f} shifted_dense_iou={shifted['dense']['iou']:.3f}")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        plot_signals(test_data, {k: r["probs"] for k, r in results.items()}, offset,
                     "test signals: true beat (green), conv net (blue), dense net (red)",
                     os.path.join(args.out, "signals.png"))
        plot_signals(right, {k: r["probs"] for k, r in shifted.items()}, offset,
                     "trained on left-half beats only, tested on right-half beats",
                     os.path.join(args.out, "right_half_test.png"))
        plot_curves(histories, os.path.join(args.out, "curves.png"))
        print(f"pictures written to {args.out}/")
    print(f"total time {time.perf_counter() - start_time:.1f} s")


if __name__ == "__main__":
    main()
