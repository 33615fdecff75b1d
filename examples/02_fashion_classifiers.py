"""Fashion-MNIST: a dense network with backpropagation written by hand, the same network through
the Keras API, and the TensorFlow tutorial's CNN.

    python examples/02_fashion_classifiers.py                 # embedded 6000 + 1000 subset (a few minutes)
    python examples/02_fashion_classifiers.py --quick --out /tmp/ex02   # tiny data, one epoch (CI)
    python examples/02_fashion_classifiers.py --full-data     # all 60000 + 10000 images (slow on a CPU)

1. The practical: "implement backpropagation yourself and train a dense net". A 784-H-10 network
   (sigmoid hidden layer, softmax output, cross-entropy) in plain NumPy, batch in rows:

       forward    z1 = x W1 + b1,  a1 = sigmoid(z1),  z2 = a1 W2 + b2,  p = softmax(z2)
       output     delta2 = (p - onehot(y)) / N                     softmax + cross-entropy, mean over N
       hidden     delta1 = (delta2 W2^T) * a1 (1 - a1)             the delta rule
       gradients  dL/dW2 = a1^T delta2,  dL/db2 = sum_n delta2,  dL/dW1 = x^T delta1,  dL/db1 = sum_n delta1
       step       W <- W - lr dL/dW                                 mini-batch SGD

   Before training, the hand-written gradients are checked on one batch against chainrule's
   autodiff (the same network built from `cr.ops.linear`, `sigmoid`, `sparse_softmax_cross_entropy`).
2. The same network through the Keras API (Dense, SGD with the same learning rate and batches).
3. The CNN of the TensorFlow tutorial: conv 5x5x32 same, max pool 2, conv 5x5x64 same, max pool 2,
   dense 1024 ReLU, dropout 0.4, dense 10 softmax; Adam.

Prints the test accuracies; writes the confusion matrices, a grid of the CNN's misclassified test
images with true and predicted labels, and the CNN's training curves.

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

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def load(full_data, quick):
    """Images as float32 in [0, 1] of shape (n, 28, 28, 1), labels int (n,)."""
    if full_data:
        (x, y), (x_test, y_test) = datasets.fashion_mnist.load_data()
    else:
        (x, y), (x_test, y_test) = datasets.embedded.load_data()
    if quick:
        x, y, x_test, y_test = x[:200], y[:200], x_test[:100], y_test[:100]
    scale = np.float32(1 / 255)
    return (x[..., None] * scale, y.astype(np.int64)), (x_test[..., None] * scale, y_test.astype(np.int64))


# ------------------------------------------------------------------ 1. backpropagation by hand
def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5  # = 1 / (1 + exp(-z)), with no exp to overflow


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))  # shifting by the row's max changes nothing but overflow
    return e / e.sum(axis=1, keepdims=True)


def init_params(n_in, n_hidden, n_out, rng):
    """Glorot-uniform kernels (Keras's default: U(-l, l), l = sqrt(6 / (fan_in + fan_out))), zero biases."""
    def glorot(fan_in, fan_out):
        limit = np.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
    return {"W1": glorot(n_in, n_hidden), "b1": np.zeros(n_hidden, np.float32),
            "W2": glorot(n_hidden, n_out), "b2": np.zeros(n_out, np.float32)}


def forward(params, x):
    """The forward pass, keeping what the backward pass needs."""
    a1 = sigmoid(x @ params["W1"] + params["b1"])
    p = softmax(a1 @ params["W2"] + params["b2"])
    return a1, p


def backward(params, x, y, a1, p):
    """The delta rule: dL/dparam for the mean cross-entropy L = -1/N sum_n log p[n, y_n]."""
    n = len(x)
    delta2 = p.copy()
    delta2[np.arange(n), y] -= 1          # p - onehot(y), without building the one-hot matrix
    delta2 /= n
    delta1 = (delta2 @ params["W2"].T) * a1 * (1 - a1)
    return {"W2": a1.T @ delta2, "b2": delta2.sum(axis=0), "W1": x.T @ delta1, "b1": delta1.sum(axis=0)}


def cross_entropy(p, y):
    """-1/N sum_n log p[n, y_n] (a probability of exactly 0 counts as the smallest positive number)."""
    picked = p[np.arange(len(y)), y]
    return float(-np.log(np.maximum(picked, np.finfo(p.dtype).tiny)).mean())


def check_against_autodiff(params, x, y):
    """The hand-written gradients against chainrule's autodiff on one batch, in float64 (so the
    two agree to rounding, ~1e-16, and any larger difference would be a mistake in the formulas)."""
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    x64 = x.astype(np.float64)
    a1, p = forward(p64, x64)
    by_hand = backward(p64, x64, y, a1, p)

    weights = {k: cr.tensor(v, requires_grad=True) for k, v in p64.items()}
    hidden = cr.ops.sigmoid(cr.ops.linear(cr.tensor(x64), weights["W1"], weights["b1"]))
    logits = cr.ops.linear(hidden, weights["W2"], weights["b2"])
    loss = cr.ops.sparse_softmax_cross_entropy(logits, y)  # softmax + cross-entropy, mean over the batch
    loss.backward()
    print(f"gradient check on one batch of {len(x)} (float64): loss by hand {cross_entropy(p, y):.12f}, "
          f"autodiff {float(loss.numpy()):.12f}")
    worst = 0.0
    for name in ("W1", "b1", "W2", "b2"):
        error = float(np.abs(by_hand[name] - weights[name].grad).max())
        scale = float(np.abs(weights[name].grad).max())
        worst = max(worst, error / scale)
        print(f"  dL/d{name:2s} {str(by_hand[name].shape):11s} max |by hand - autodiff| = {error:.2e}"
              f"   (largest entry {scale:.2e})")
    if worst > 1e-10:
        raise AssertionError(f"the hand-written backward pass disagrees with autodiff (relative error {worst:.1e})")
    return worst


def train_by_hand(x, y, hidden, epochs, learning_rate, batch_size, seed):
    """Mini-batch SGD on the hand-written network; returns the parameters and the loss per epoch."""
    rng = np.random.default_rng(seed)
    params = init_params(x.shape[1], hidden, 10, rng)
    check_against_autodiff(params, x[:batch_size], y[:batch_size])
    lr = np.float32(learning_rate)
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            xb, yb = x[batch], y[batch]
            a1, p = forward(params, xb)
            grads = backward(params, xb, yb, a1, p)
            for name, g in grads.items():
                params[name] -= lr * g
            total += cross_entropy(p, yb) * len(batch)
        losses.append(total / len(x))
    return params, losses


# ------------------------------------------------------------------ 2. and 3. through the Keras API
def dense_model(hidden, learning_rate):
    """The same 784-H-10 network as Keras layers."""
    model = models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Flatten(),
        layers.Dense(hidden, activation="sigmoid"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=optimizers.SGD(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def tutorial_cnn():
    """The CNN of TensorFlow's MNIST tutorial (tf.layers 'cnn_mnist'), written with Keras layers."""
    model = models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),   # 28x28x32
        layers.MaxPooling2D(2),                                    # 14x14x32
        layers.Conv2D(64, 5, padding="same", activation="relu"),   # 14x14x64
        layers.MaxPooling2D(2),                                    # 7x7x64
        layers.Flatten(),                                          # 3136
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# ------------------------------------------------------------------ pictures
def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def confusion_matrix(y_true, y_pred, classes=10):
    """counts[i, j] = how many test images of class i were predicted as class j."""
    return np.bincount(y_true * classes + y_pred, minlength=classes * classes).reshape(classes, classes)


def plot_confusion(matrices, to_file):
    """One confusion matrix per model, side by side, with the counts written in the cells."""
    fig = new_figure((5.2 * len(matrices), 5.4))
    for k, (title, counts) in enumerate(matrices, 1):
        ax = fig.add_subplot(1, len(matrices), k)
        ax.imshow(counts, cmap="Blues")
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if counts[i, j]:
                    light = counts[i, j] > counts.max() / 2
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if light else "black")
        ax.set_xticks(range(10), CLASS_NAMES, rotation=90, fontsize=7)
        ax.set_yticks(range(10), CLASS_NAMES, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(to_file)


def plot_misclassified(x, y_true, y_pred, to_file, rows=4, cols=6):
    """The first rows * cols misclassified test images, each titled with its true and predicted label."""
    wrong = np.flatnonzero(y_true != y_pred)[:rows * cols]
    fig = new_figure((1.6 * cols, 1.9 * rows))
    for k, i in enumerate(wrong, 1):
        ax = fig.add_subplot(rows, cols, k)
        ax.imshow(x[i, ..., 0], cmap="gray_r")
        ax.set_title(f"true: {CLASS_NAMES[y_true[i]]}\npred: {CLASS_NAMES[y_pred[i]]}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"CNN: {len(wrong)} of the {int((y_true != y_pred).sum())} misclassified test images", fontsize=9)
    fig.tight_layout()
    fig.savefig(to_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "02_fashion_classifiers"),
                        help="folder for the pictures")
    parser.add_argument("--full-data", action="store_true",
                        help="the full Fashion-MNIST (60000 + 10000) instead of the embedded 6000 + 1000 subset")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units H of the 784-H-10 network")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the dense networks (default 20)")
    parser.add_argument("--cnn-epochs", type=int, default=None, help="epochs of the CNN (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dense_epochs = args.epochs or (1 if args.quick else 20)
    cnn_epochs = args.cnn_epochs or (1 if args.quick else 8)
    learning_rate, batch_size = 0.5, 32
    try:
        import matplotlib  # noqa: F401
        from chainrule import teach
        viz = True
        os.makedirs(args.out, exist_ok=True)
    except ImportError:
        viz = False
        print("matplotlib is not installed: text only (pip install chainrule[viz] for the pictures)")

    start = time.perf_counter()
    (x, y), (x_test, y_test) = load(args.full_data, args.quick)
    print(f"data: {'full Fashion-MNIST' if args.full_data else 'embedded Fashion-MNIST subset'}, "
          f"{len(x)} training and {len(x_test)} test images")
    flat, flat_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    results, matrices = [], []

    print(f"\n1. 784-{args.hidden}-10, backpropagation by hand (NumPy), SGD lr {learning_rate}, batch {batch_size}, "
          f"{dense_epochs} epochs")
    tick = time.perf_counter()
    params, losses = train_by_hand(flat, y, args.hidden, dense_epochs, learning_rate, batch_size, args.seed)
    pred = forward(params, flat_test)[1].argmax(axis=1)
    accuracy = float((pred == y_test).mean())
    print(f"   training loss per epoch: {' '.join(f'{v:.3f}' for v in losses)}")
    print(f"   test accuracy {accuracy:.4f} ({time.perf_counter() - tick:.1f} s)")
    results.append(("dense by hand", accuracy))
    matrices.append((f"784-{args.hidden}-10 by hand: {accuracy:.3f}", confusion_matrix(y_test, pred)))

    print(f"\n2. the same network through the Keras API (Dense + SGD lr {learning_rate})")
    cr.random.seed(args.seed)
    model = dense_model(args.hidden, learning_rate)
    tick = time.perf_counter()
    history = model.fit(x, y, epochs=dense_epochs, batch_size=batch_size, verbose=0)
    pred = model.predict(x_test, verbose=0).argmax(axis=1)
    accuracy = float((pred == y_test).mean())
    print(f"   training loss per epoch: {' '.join(f'{v:.3f}' for v in history.history['loss'])}")
    print(f"   test accuracy {accuracy:.4f} ({time.perf_counter() - tick:.1f} s)")
    hidden_layer, output_layer = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    difference = max(float(np.abs(params[name] - layer_weight.numpy()).max()) for name, layer_weight in
                     (("W1", hidden_layer.kernel), ("b1", hidden_layer.bias),
                      ("W2", output_layer.kernel), ("b2", output_layer.bias)))
    if difference < 1e-3:
        # Both drew their initial weights (Glorot uniform) and each epoch's batch order from a NumPy
        # Generator seeded alike, in the same order, so they made the very same SGD steps.
        print(f"   the same run as the hand-written one: the final weights differ by at most {difference:.1e} "
              "(float32 rounding)")
    else:
        print("   a different run from the hand-written one (other initial weights or batch order): "
              "compare the accuracies, not the weights")
    results.append(("dense (Keras API)", accuracy))
    matrices.append((f"784-{args.hidden}-10, Keras API: {accuracy:.3f}", confusion_matrix(y_test, pred)))

    print(f"\n3. the TensorFlow tutorial's CNN, Adam, batch 50, {cnn_epochs} epochs, 10% of the training "
          f"images held out for validation")
    cr.random.seed(args.seed)
    cnn = tutorial_cnn()
    tick = time.perf_counter()
    history = cnn.fit(x, y, epochs=cnn_epochs, batch_size=50, validation_split=0.1, verbose=2)
    pred = cnn.predict(x_test, verbose=0).argmax(axis=1)
    accuracy = float((pred == y_test).mean())
    print(f"   test accuracy {accuracy:.4f} ({time.perf_counter() - tick:.1f} s)")
    results.append(("CNN", accuracy))
    matrices.append((f"tutorial CNN: {accuracy:.3f}", confusion_matrix(y_test, pred)))

    counts = matrices[-1][1]
    off_diagonal = counts - np.diag(np.diag(counts))
    i, j = np.unravel_index(off_diagonal.argmax(), counts.shape)
    print(f"   the CNN's most frequent confusion: {CLASS_NAMES[i]} taken for {CLASS_NAMES[j]} "
          f"({counts[i, j]} of {counts[i].sum()})")
    if viz:
        plot_confusion(matrices, os.path.join(args.out, "confusion_matrix.png"))
        plot_misclassified(x_test, y_test, pred, os.path.join(args.out, "misclassified.png"))
        teach.plot_history(history, os.path.join(args.out, "cnn_history.png"))
        print(f"\npictures in {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    print("result: test accuracy " + ", ".join(f"{name} {value:.4f}" for name, value in results))
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
