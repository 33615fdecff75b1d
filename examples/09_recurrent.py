"""Recurrent nets on sequences: SimpleRNN, LSTM and GRU compared on two tasks.

    python examples/09_recurrent.py            # full mode (45 s to 5 min on 2 shared cores, see results)
    python examples/09_recurrent.py --quick    # tiny data, one epoch (CI)

A recurrent layer reads a sequence one step at a time, carrying a state h_t (and, in the LSTM, a
cell c_t) from step to step; the same weights serve every step:

    SimpleRNN   h_t = tanh(x_t W + h_{t-1} U + b)
    LSTM        input, forget and output gates and a candidate; c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t)
    GRU         update and reset gates; h_t = z*h_{t-1} + (1 - z)*candidate

The gates let gradients pass through many steps (the forget gate near 1 is an almost unchanged
path), where the SimpleRNN's repeated multiplication by U and tanh' makes them vanish or explode.

1. Detection: does a 64-step heartbeat signal (`datasets.heartbeat`, p_beat=0.5, small beats)
   contain a beat? The last state h_T goes to Dense(1, sigmoid). The beat can be anywhere, so the
   state must remember it for up to 64 steps. Baseline: a threshold on the signal's peak height.
2. Forecasting: from 48 steps of a noisy sine (random period 10-40 steps, amplitude, phase),
   predict the next 12 values: h_T goes to Dense(12). Scored against the noise-free continuation.
   Baselines: repeat the last value; the best linear map from the 48 inputs to the 12 outputs.

Each cell is trained with the same optimizer (Adam, learning rate 0.005, clipnorm=1: gradient
clipping is the usual guard against exploding gradients in recurrent nets) from the same seed; the
test score, parameter count and training time are printed for each.

Pictures in `--out` (default examples/output/09_recurrent/): the validation curves, a comparison of
the three cells, test signals with each cell's answer, and forecasts against the truth.
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

CELLS = {"SimpleRNN": layers.SimpleRNN, "LSTM": layers.LSTM, "GRU": layers.GRU}
HEARTBEAT = dict(length=64, beat_width=16, p_beat=0.5, amplitude=(0.3, 1.0), noise=0.1)
WINDOW, HORIZON = 48, 12


# ---------------------------------------------------------------------- data
def noisy_sines(n, seed, noise=0.1):
    """(inputs (n, WINDOW, 1), noisy next values (n, HORIZON), clean next values (n, HORIZON))."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW + HORIZON)
    period = rng.uniform(10, 40, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    amplitude = rng.uniform(0.5, 1.5, (n, 1))
    clean = (amplitude * np.sin(2 * np.pi * t / period + phase)).astype(np.float32)
    noisy = clean + rng.normal(0, noise, clean.shape).astype(np.float32)
    return noisy[:, :WINDOW, None], noisy[:, WINDOW:], clean[:, WINDOW:]


def peak_height(x):
    """The baseline detector's score: highest value above the signal's median."""
    return x[..., 0].max(axis=1) - np.median(x[..., 0], axis=1)


# ---------------------------------------------------------------------- models
def recurrent_model(cell, units, steps, outputs, activation=None):
    """Input (steps, 1) -> one recurrent layer (its last state) -> Dense(outputs)."""
    return models.Sequential([layers.Input((steps, 1)), CELLS[cell](units),
                              layers.Dense(outputs, activation=activation)], name=cell.lower())


def fit(model, loss, metrics, x, y, validation_data, epochs, batch_size=32):
    model.compile(optimizer=optimizers.Adam(0.005, clipnorm=1.0), loss=loss, metrics=metrics)
    start = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, validation_data=validation_data)
    return history.history, time.perf_counter() - start


# ---------------------------------------------------------------------- pictures
def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(detect, forecast, to_file):
    fig = new_figure((11, 3.8))
    ax_acc, ax_mse = fig.subplots(1, 2)
    for name in CELLS:
        history = detect[name]["history"]
        ax_acc.plot(np.arange(1, len(history["val_accuracy"]) + 1), history["val_accuracy"], marker=".", label=name)
        history = forecast[name]["history"]
        ax_mse.plot(np.arange(1, len(history["val_loss"]) + 1), history["val_loss"], marker=".", label=name)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="1. heartbeat detection")
    ax_mse.set(xlabel="epoch", ylabel="test MSE (noisy targets)", title="2. sine forecast", yscale="log")
    for ax in (ax_acc, ax_mse):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def plot_comparison(detect, forecast, baselines, to_file):
    """Bars per cell: detection accuracy, forecast MSE, parameters, training seconds."""
    names = list(CELLS)
    colors = ["tab:gray", "tab:blue", "tab:orange"]
    panels = [("detection accuracy", [detect[n]["accuracy"] for n in names], f"peak threshold "
               f"{baselines['threshold']:.3f}", baselines["threshold"]),
              ("forecast MSE (vs clean)", [forecast[n]["mse"] for n in names], f"linear {baselines['linear']:.3f}",
               baselines["linear"]),
              ("parameters (both models)", [detect[n]["params"] + forecast[n]["params"] for n in names], None, None),
              ("training seconds (both)", [detect[n]["seconds"] + forecast[n]["seconds"] for n in names], None, None)]
    fig = new_figure((13, 3.4))
    for ax, (title, values, label, line) in zip(fig.subplots(1, 4), panels):
        ax.bar(names, values, color=colors)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:,.0f}" if v >= 100 else f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        if line is not None:
            ax.axhline(line, color="tab:red", ls="--", lw=1, label=label)
            ax.legend(fontsize=8, loc="lower right" if title.startswith("detection") else "center right")
        ax.margins(y=0.12)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def plot_detection(data, probs, to_file, count=6):
    fig = new_figure((11, 1.6 * count))
    axes = fig.subplots(count, 1, sharex=True)
    steps = np.arange(data.x.shape[1])
    for i, ax in enumerate(axes):
        ax.fill_between(steps, -1, 2, where=data.mask[i] > 0.5, color="tab:green", alpha=0.15)
        ax.plot(steps, data.x[i, :, 0], color="0.3", lw=1)
        answers = ", ".join(f"{n} {p[i, 0]:.2f}" for n, p in probs.items())
        ax.set_title(f"{'beat' if data.present[i] else 'no beat'}: P(beat) from {answers}", fontsize=9,
                     loc="left")
        ax.set_ylim(-0.7, 1.4)
        ax.set_yticks([])
    axes[-1].set_xlabel("time step (true beat shaded)")
    fig.tight_layout()
    fig.savefig(to_file, dpi=90)


def plot_forecasts(x, y_noisy, y_clean, predictions, to_file, count=4):
    fig = new_figure((12, 2.4 * count // 2))
    past, future = np.arange(WINDOW), np.arange(WINDOW, WINDOW + HORIZON)
    for i, ax in enumerate(fig.subplots(count // 2, 2).ravel()):
        ax.plot(past, x[i, :, 0], color="0.5", lw=1, label="input (noisy)")
        ax.plot(future, y_noisy[i], ".", color="0.5")
        ax.plot(future, y_clean[i], "k--", lw=1.5, label="true continuation")
        for name, p in predictions.items():
            ax.plot(future, p[i], lw=1.5, label=name)
        ax.axvline(WINDOW - 0.5, color="0.8")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


# ---------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "09_recurrent"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()
    n_train, n_test, epochs = (100, 50, 1) if args.quick else (1500, 500, 20)

    # 1. heartbeat detection
    train = datasets.heartbeat(n_train, seed=args.seed, **HEARTBEAT)
    test = datasets.heartbeat(n_test, seed=args.seed + 1, **HEARTBEAT)
    # the baseline's threshold is chosen on the training set, then scored on the test set
    thresholds = np.linspace(0, 1.5, 151)
    best = thresholds[np.argmax([((peak_height(train.x) > t) == train.present).mean() for t in thresholds])]
    threshold_accuracy = float(((peak_height(test.x) > best) == test.present).mean())
    print(f"1. heartbeat detection: {n_train} training / {n_test} test signals of {HEARTBEAT['length']} steps, "
          f"{test.present.mean():.0%} of the test signals hold a beat")
    detect = {}
    for name in CELLS:
        cr.random.seed(args.seed)
        model = recurrent_model(name, 16, HEARTBEAT["length"], 1, activation="sigmoid")
        history, seconds = fit(model, "binary_crossentropy", ["accuracy"], train.x, train.present,
                               (test.x, test.present), epochs)
        probs = model.predict(test.x, batch_size=250, verbose=0)
        detect[name] = {"history": history, "seconds": seconds, "params": model.count_params(), "probs": probs,
                        "accuracy": float(((probs[:, 0] > 0.5) == test.present).mean())}
        print(f"   {name:<9} trained {epochs} epochs in {seconds:.1f} s")
    print(f"   {'cell':<10} {'parameters':>10} {'test accuracy':>14} {'seconds':>8}")
    for name, r in detect.items():
        print(f"   {name:<10} {r['params']:>10} {r['accuracy']:>14.3f} {r['seconds']:>8.1f}")
    print(f"   {'baseline: threshold on peak height':<21} {threshold_accuracy:>14.3f}")

    # 2. forecasting a noisy sine
    x, y, _ = noisy_sines(n_train, args.seed + 2)
    xt, yt, ct = noisy_sines(n_test, args.seed + 3)
    last_value_mse = float(((xt[:, -1, :] - ct) ** 2).mean())
    design = np.concatenate([x[..., 0], np.ones((len(x), 1), np.float32)], axis=1)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    linear_mse = float(((np.concatenate([xt[..., 0], np.ones((len(xt), 1), np.float32)], axis=1) @ coef - ct) ** 2)
                       .mean())
    print(f"\n2. sine forecast: {WINDOW} noisy steps in, the next {HORIZON} out; {n_train} training / "
          f"{n_test} test sequences")
    forecast = {}
    for name in CELLS:
        cr.random.seed(args.seed)
        model = recurrent_model(name, 32, WINDOW, HORIZON)
        history, seconds = fit(model, "mse", None, x, y, (xt, yt), epochs)
        prediction = model.predict(xt, batch_size=250, verbose=0)
        forecast[name] = {"history": history, "seconds": seconds, "params": model.count_params(),
                          "prediction": prediction, "mse": float(((prediction - ct) ** 2).mean())}
        print(f"   {name:<9} trained {epochs} epochs in {seconds:.1f} s")
    print(f"   {'cell':<10} {'parameters':>10} {'MSE vs clean':>14} {'seconds':>8}")
    for name, r in forecast.items():
        print(f"   {name:<10} {r['params']:>10} {r['mse']:>14.4f} {r['seconds']:>8.1f}")
    print(f"   {'baseline: last value':<21} {last_value_mse:>14.4f}")
    print(f"   {'baseline: linear map':<21} {linear_mse:>14.4f}")

    print("RESULT heartbeat_accuracy " + " ".join(f"{n}={r['accuracy']:.3f}" for n, r in detect.items())
          + f" threshold={threshold_accuracy:.3f} | sine_mse "
          + " ".join(f"{n}={r['mse']:.4f}" for n, r in forecast.items()) + f" linear={linear_mse:.4f}")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        plot_curves(detect, forecast, os.path.join(args.out, "curves.png"))
        plot_comparison(detect, forecast, {"threshold": threshold_accuracy, "linear": linear_mse},
                        os.path.join(args.out, "comparison.png"))
        plot_detection(test, {n: r["probs"] for n, r in detect.items()}, os.path.join(args.out, "detection.png"))
        plot_forecasts(xt, yt, ct, {n: r["prediction"] for n, r in forecast.items()},
                       os.path.join(args.out, "forecasts.png"))
        print(f"pictures written to {args.out}/")
    print(f"total time {time.perf_counter() - start_time:.1f} s")


if __name__ == "__main__":
    main()
