"""From logistic regression to a deep network, on 2-D data that no straight line separates.

    python examples/01_logistic_to_deep.py                      # full run (about a minute)
    python examples/01_logistic_to_deep.py --quick --out /tmp/ex01   # tiny data, one epoch (CI)
    python examples/01_logistic_to_deep.py --data moons         # or circles

The same binary problem, four models, the same optimizer (Adam, learning rate 0.01), loss
(binary cross-entropy) and number of epochs:

1. logistic regression: ONE neuron, p = sigmoid(w . x + b). Its decision boundary p = 1/2 is the
   straight line w . x + b = 0, whatever it learns.
2. a 2-layer network (one hidden layer of 8 tanh units, as in the lecture's planar-data example):
   the hidden layer bends the plane so that the output neuron's straight line separates the data.
3. the same 2-layer shape made wide enough to have as many weights as the deep network: is it
   depth or just more weights that helps?
4. an L-layer network (hidden layers 32-32-16, ReLU).

The default data are interleaved spirals: four arms from `datasets.spirals(classes=4)`, every other
arm one class (label = arm % 2), so each class winds through the other twice. Accuracies are on
held-out points, averaged over 3 runs from different initial weights (one run of a small network
can land in a poor minimum). The pictures (chainrule.teach.plot_decision_boundary, first run) show
each model's class regions and, beside them, the input plane as its last hidden layer sees it.

On a machine whose cores are busy with other work, OpenBLAS's worker threads can slow NumPy's
matrix products down many times over; run with `OPENBLAS_NUM_THREADS=1` there (the results in
examples/results/ were measured that way, on a shared 2-core machine).
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

MODELS = [  # (key, title, hidden layer sizes, hidden activation)
    ("logistic", "logistic regression (1 neuron)", [], None),
    ("two_layer", "2-layer, 8 tanh units", [8], "tanh"),
    ("two_layer_wide", "2-layer, as many weights as the deep one", [424], "relu"),
    ("deep", "L-layer (4 layers: 32-32-16 ReLU)", [32, 32, 16], "relu"),
]


def load(name, n_samples, seed=0):
    """A binary 2-D problem as (x, y), y in {0, 1} float32 of shape (n, 1)."""
    if name == "spirals":
        x, arm = datasets.spirals(n_samples, classes=4, noise=0.1, seed=seed)
        y = arm % 2  # two classes, each two spiral arms: the classes wind through each other
    elif name == "moons":
        x, y = datasets.moons(n_samples, noise=0.2, seed=seed)
    else:
        x, y = datasets.circles(n_samples, noise=0.1, factor=0.5, seed=seed)
    return x, y.astype(np.float32).reshape(-1, 1)


def build(hidden, activation, learning_rate=0.01):
    """Dense(h) for each hidden size, then one sigmoid output: p(y = 1 | x)."""
    stack = [layers.Input((2,))]
    stack += [layers.Dense(units, activation=activation) for units in hidden]
    stack.append(layers.Dense(1, activation="sigmoid"))
    model = models.Sequential(stack)
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def plot_losses(histories, to_file):
    """Training loss per epoch of every model on one axis (log scale)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for title, history in histories:
        losses = history.history["loss"]
        ax.plot(range(1, len(losses) + 1), losses, label=title)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (binary cross-entropy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(to_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "01_logistic_to_deep"),
                        help="folder for the pictures")
    parser.add_argument("--data", choices=["spirals", "moons", "circles"], default="spirals")
    parser.add_argument("--epochs", type=int, default=None, help="default 300 (1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per model from different initial weights, averaged (default 3, 1 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 300)
    repeats = args.repeats or (1 if args.quick else 3)
    try:
        from chainrule import teach
        import matplotlib  # noqa: F401
        viz = True
        os.makedirs(args.out, exist_ok=True)
    except ImportError:
        viz = False
        print("matplotlib is not installed: text only (pip install chainrule[viz] for the pictures)")

    start = time.perf_counter()
    x, y = load(args.data, 200 if args.quick else 1200, seed=args.seed)
    n_test = len(x) // 3
    (x_test, y_test), (x, y) = (x[:n_test], y[:n_test]), (x[n_test:], y[n_test:])
    print(f"data: {args.data}, {len(x)} training and {len(x_test)} test points, {epochs} epochs each")

    rows, histories = [], []
    for number, (key, title, hidden, activation) in enumerate(MODELS, 1):
        train_accs, test_accs, seconds = [], [], 0.0
        for repeat in range(repeats):  # other initial weights and batch orders, the same data
            cr.random.seed(args.seed + repeat)  # every model starts from the same seed
            model = build(hidden, activation)
            tick = time.perf_counter()
            history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
            seconds += time.perf_counter() - tick
            train_accs.append(model.evaluate(x, y, verbose=0)[1])
            test_accs.append(model.evaluate(x_test, y_test, verbose=0)[1])
            if repeat:
                continue
            histories.append((title, history))  # the curves and pictures show the first run
            if key == "logistic":
                (w0, w1), b = model.layers[-1].kernel.numpy()[:, 0], model.layers[-1].bias.numpy()[0]
                line = f"{w0:.3f} x0 {w1:+.3f} x1 {b:+.3f}"
                print(f"the single neuron learned p = sigmoid({line}); its boundary is the line {line} = 0")
            if viz:
                teach.plot_decision_boundary(model, x, y, os.path.join(args.out, f"boundary_{number}_{key}.png"),
                                             title=f"{title}: test accuracy {test_accs[0]:.3f}")
        rows.append((title, len(hidden) + 1, model.count_params(), float(np.mean(train_accs)),
                     float(np.mean(test_accs)), min(test_accs), max(test_accs), seconds))

    runs = "" if repeats == 1 else f", mean of {repeats} runs from different initial weights"
    print(f"\n{'model':44s} {'layers':>6s} {'weights':>7s} {'train acc':>9s} {'test acc':>8s} "
          f"{'(min - max)':>15s} {'time':>6s}" + (f"   ({runs[2:]})" if runs else ""))
    for title, depth, params, train_acc, test_acc, low, high, seconds in rows:
        print(f"{title:44s} {depth:6d} {params:7d} {train_acc:9.3f} {test_acc:8.3f} ({low:.3f} - {high:.3f}) "
              f"{seconds:5.1f}s")
    if viz:
        plot_losses(histories, os.path.join(args.out, "training_loss.png"))
        print(f"\npictures in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print("result: test accuracy " + ", ".join(f"{key} {row[4]:.3f}" for (key, *_), row in zip(MODELS, rows))
          + (f" ({runs[2:]})" if runs else ""))
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
