"""From backpropagation by hand to a trained network under the microscope, with chainrule.teach.

    python examples/teach_walkthrough.py                 # the full walk, images in ./teach_output
    python examples/teach_walkthrough.py --quick --out /tmp/teach   # small and fast (CI)

1. The lecture's 2-2-2 network, backpropagated by hand in plain Python.
2. The same network as tensors: `teach.trace` prints every step of the chain rule.
3. The same network as a Keras model: `teach.delta_rule`, the matrix form, equal to autodiff.
4. Finite differences against backpropagation, timed: why we differentiate analytically.
5. A classifier on the spirals, trained with the `TrainingMonitor` on, its decision boundary
   (still and animated), loss curves, a random search over learning rates.
6. A small CNN on the Fashion-MNIST subset shipped with chainrule: filters, feature maps,
   activation maximization, saliency.
The pictures need matplotlib (pip install chainrule[viz]).
"""
import argparse
import math
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers, teach


def section(title):
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


# ---------------------------------------------------------------------- 1. by hand
def by_hand():
    section("1. The 2-2-2 network by hand (plain Python floats)")
    sigmoid = lambda z: 1 / (1 + math.exp(-z))
    i1, i2, t1, t2 = 0.05, 0.10, 0.01, 0.99
    w1, w2, w3, w4, w5, w6, w7, w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55
    b1, b2 = 0.35, 0.60
    net_h1 = w1 * i1 + w2 * i2 + b1
    out_h1 = sigmoid(net_h1)
    out_h2 = sigmoid(w3 * i1 + w4 * i2 + b1)
    out_o1 = sigmoid(w5 * out_h1 + w6 * out_h2 + b2)
    out_o2 = sigmoid(w7 * out_h1 + w8 * out_h2 + b2)
    e_total = 0.5 * (t1 - out_o1) ** 2 + 0.5 * (t2 - out_o2) ** 2
    print(f"forward: net_h1 = {net_h1:.9f}, out_h1 = {out_h1:.9f}, out_o1 = {out_o1:.9f}, "
          f"E = {e_total:.9f}")
    delta_o1 = (out_o1 - t1) * out_o1 * (1 - out_o1)    # dE/dnet_o1
    delta_o2 = (out_o2 - t2) * out_o2 * (1 - out_o2)    # dE/dnet_o2
    de_dout_h1 = delta_o1 * w5 + delta_o2 * w7          # out_h1 feeds both outputs: the two paths add
    dout_dnet = out_h1 * (1 - out_h1)
    print(f"dE/dw1 = dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1 = {de_dout_h1:.9f} * {dout_dnet:.9f} * {i1} "
          f"= {de_dout_h1 * dout_dnet * i1:.9f}")


# ---------------------------------------------------------------------- 2. trace
def with_trace(out):
    section("2. The same network as tensors: teach.trace shows each step of the chain rule")
    v, named = teach.variable, teach.named
    w1, w2, w3, w4, w5, w6, w7, w8 = (v(x, f"w{k + 1}") for k, x in
                                      enumerate([.15, .20, .25, .30, .40, .45, .50, .55]))
    b1, b2 = v(.35, "b1", requires_grad=False), v(.60, "b2", requires_grad=False)
    i1, i2 = v(.05, "i1", requires_grad=False), v(.10, "i2", requires_grad=False)
    t1, t2 = v(.01, "t1", requires_grad=False), v(.99, "t2", requires_grad=False)
    out_h1 = named(named(w1 * i1 + w2 * i2 + b1, "net_h1").sigmoid(), "out_h1")
    out_h2 = named(named(w3 * i1 + w4 * i2 + b1, "net_h2").sigmoid(), "out_h2")
    out_o1 = named(named(w5 * out_h1 + w6 * out_h2 + b2, "net_o1").sigmoid(), "out_o1")
    out_o2 = named(named(w7 * out_h1 + w8 * out_h2 + b2, "net_o2").sigmoid(), "out_o2")
    e_total = named(0.5 * (t1 - out_o1) ** 2 + 0.5 * (t2 - out_o2) ** 2, "E")
    result = teach.trace(e_total)          # before backward(), which would free the graph
    assert abs(result.grads["w1"] - 0.000438568) < 1e-9
    print("\nthe graph as Graphviz DOT text (first lines):")
    print("\n".join(teach.to_dot(e_total).splitlines()[:6]) + "\n  ...")
    if out:
        teach.plot_graph(e_total, os.path.join(out, "lecture_graph.png"))


# ---------------------------------------------------------------------- 3. delta rule
def with_delta_rule():
    section("3. As a Keras model: the delta rule in matrix form, checked against autodiff")
    f64 = "float64"
    model = models.Sequential([layers.Input((2,), dtype=f64), layers.Dense(2, activation="sigmoid", dtype=f64),
                               layers.Dense(2, activation="sigmoid", dtype=f64)])
    hidden, output = model.layers
    hidden.kernel.assign([[.15, .25], [.20, .30]])   # column j: the weights into unit j
    hidden.bias.assign([.35, .35])
    output.kernel.assign([[.40, .50], [.45, .55]])
    output.bias.assign([.60, .60])
    result = teach.delta_rule(model, [[.05, .10]], [[.01, .99]], loss="half_squared_error")
    print(result)
    print(f"dE/dW for the output layer (w5 w7 / w6 w8):\n{result[1]['grad_kernel']}")


# ---------------------------------------------------------------------- 4. numeric vs analytic
def numeric_versus_analytic(quick):
    section("4. Finite differences against backpropagation")
    f64 = "float64"
    cr.random.seed(0)
    units = 8 if quick else 32
    model = models.Sequential([layers.Input((10,), dtype=f64), layers.Dense(units, activation="tanh", dtype=f64),
                               layers.Dense(3, activation="softmax", dtype=f64)])
    rng = np.random.default_rng(0)
    teach.numeric_vs_analytic(model, rng.standard_normal((32, 10)), rng.integers(0, 3, 32),
                              max_params=200 if quick else 2000)


# ---------------------------------------------------------------------- 5. a trained MLP
def build_mlp(learning_rate=0.01, units=32):
    model = models.Sequential([layers.Input((2,)), layers.Dense(units, activation="relu"),
                               layers.Dense(units, activation="relu"), layers.Dense(2, activation="tanh"),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def trained_mlp(out, quick, viz):
    section("5. An MLP on three spirals, with the TrainingMonitor on")
    cr.random.seed(1)
    x, y = datasets.spirals(n_samples=300 if quick else 600, classes=3, noise=0.15, seed=0)
    n_val = len(x) // 5
    (xv, yv), (x, y) = (x[:n_val], y[:n_val]), (x[n_val:], y[n_val:])
    epochs = 8 if quick else 60
    model = build_mlp()
    monitor = teach.TrainingMonitor(verbose=0)  # verbose=1 prints this table after every epoch
    callbacks = [monitor]
    if viz:
        callbacks.append(teach.LivePlot(os.path.join(out, "mlp_curves.png")))
        callbacks.append(teach.DecisionBoundaryAnimation(x, y, os.path.join(out, "mlp_boundary.gif"),
                                                         every=1 if quick else 3, resolution=50))
    start = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_data=(xv, yv), verbose=0,
                        callbacks=callbacks)
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f} s: accuracy "
          f"{history.history['accuracy'][-1]:.3f}, validation {history.history['val_accuracy'][-1]:.3f}")
    print(monitor.summary())
    print(f"warnings: {len(monitor.warnings)}" + "".join(f"\n  epoch {e + 1}: {m}" for e, _, m in monitor.warnings))
    if viz:
        teach.plot_history(history, os.path.join(out, "mlp_history.png"))
        teach.plot_decision_boundary(model, x, y, os.path.join(out, "mlp_boundary.png"))
        monitor.plot(os.path.join(out, "mlp_monitor.png"))
        teach.plot_model(model, os.path.join(out, "mlp_model.png"), show_shapes=True, show_layer_names=True,
                         show_layer_activations=True, dpi=100)

    section("5b. Random search over the learning rate (log-uniform) and the width")
    results = teach.random_search(build_mlp, {"learning_rate": teach.loguniform(1e-4, 1e-1), "units": [8, 32]},
                                  trials=3 if quick else 8, x=x, y=y, validation_data=(xv, yv),
                                  epochs=3 if quick else 20, seed=0, batch_size=32)
    print(results)


# ---------------------------------------------------------------------- 6. a CNN under the microscope
def cnn_inside(out, quick, viz):
    section("6. A small CNN on the embedded Fashion-MNIST subset: filters, feature maps, saliency")
    (x, y), (xt, yt) = datasets.embedded.load_data()
    n = 600 if quick else 6000
    x, y = x[:n, ..., None].astype(np.float32) / 255, y[:n]
    xt, yt = xt[..., None].astype(np.float32) / 255, yt
    cr.random.seed(2)
    model = models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu", name="conv1"),
                               layers.MaxPooling2D(2), layers.Conv2D(16, 3, activation="relu", name="conv2"),
                               layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1 if quick else 5, batch_size=64, verbose=0,
              callbacks=[teach.TrainingMonitor(verbose=0)])
    print(f"test accuracy: {model.evaluate(xt, yt, verbose=0)[1]:.3f}")
    if viz:
        teach.plot_filters(model, to_file=os.path.join(out, "cnn_filters.png"))
        teach.plot_feature_maps(model, xt[0], to_file=os.path.join(out, "cnn_feature_maps.png"))
        teach.plot_activation_maximization(model, "conv2", range(8), to_file=os.path.join(out, "cnn_maximize.png"),
                                           steps=16 if quick else 64)
        teach.plot_saliency(model, xt[0], to_file=os.path.join(out, "cnn_saliency.png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and few epochs (for CI)")
    parser.add_argument("--out", default="teach_output", help="folder for the images")
    args = parser.parse_args()
    try:
        import matplotlib  # noqa: F401
        viz = True
        os.makedirs(args.out, exist_ok=True)
    except ImportError:
        viz = False
        print("matplotlib is not installed: text only (pip install chainrule[viz] for the pictures)")
    start = time.perf_counter()
    by_hand()
    with_trace(args.out if viz else None)
    with_delta_rule()
    numeric_versus_analytic(args.quick)
    trained_mlp(args.out, args.quick, viz)
    cnn_inside(args.out, args.quick, viz)
    if viz:
        print(f"\nimages in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
