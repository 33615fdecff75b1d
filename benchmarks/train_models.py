"""Full Fashion-MNIST training, chainrule and PyTorch side by side, same recipe, same machine.

    MLP  784-256-128-10 ReLU, Adam(1e-3), batch 128, 5 epochs
    CNN  the TensorFlow tutorial: conv5x5x32 same + pool, conv5x5x64 same + pool, dense 1024,
         dropout 0.5, dense 10; Adam(1e-3), batch 50, 3 epochs

Prints test accuracy and training samples/s for each framework and the throughput ratio
chainrule / PyTorch (> 1 means chainrule is faster). Needs the data: `apt-get install
dataset-fashion-mnist` (or CHAINRULE_DATA pointing at the IDX files).

    python benchmarks/train_models.py            # the full recipes (several minutes on 2 cores)
    python benchmarks/train_models.py --quick    # 6000 training images, 1 epoch each
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import layers, models, optimizers
from chainrule.datasets import fashion_mnist


def chainrule_model(kind):
    if kind == "mlp":
        return models.Sequential([layers.Input((28, 28, 1)), layers.Flatten(),
                                  layers.Dense(256, activation="relu"), layers.Dense(128, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
    return models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(1024, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")])


def run_chainrule(kind, data, epochs, batch_size):
    (x, y), (xt, yt) = data
    cr.random.seed(0)
    model = chainrule_model(kind)
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(xt, yt, batch_size=1000, verbose=0)
    return acc, len(x) * epochs / seconds


def run_torch(kind, data, epochs, batch_size):
    import torch
    from torch import nn
    (x, y), (xt, yt) = data
    torch.manual_seed(0)
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xs = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    ys = torch.from_numpy(y.astype(np.int64))
    start = time.perf_counter()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        for i in range(0, len(xs), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(np.ascontiguousarray(xt.transpose(0, 3, 1, 2))))
    acc = float((logits.argmax(1).numpy() == yt).mean())
    return acc, len(x) * epochs / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6000 training images, 1 epoch per model")
    args = parser.parse_args()
    (x, y), (xt, yt) = fashion_mnist.load_data()
    x = (x[..., None] / 255.0).astype(np.float32)
    xt = (xt[..., None] / 255.0).astype(np.float32)
    if args.quick:
        x, y = x[:6000], y[:6000]
    data = ((x, y), (xt, yt))
    try:
        import torch
        torch.set_num_threads(os.cpu_count())
    except ImportError:
        torch = None
    recipes = [("mlp", 1 if args.quick else 5, 128), ("cnn", 1 if args.quick else 3, 50)]
    print(f"chainrule {cr.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"{os.cpu_count()} threads, {len(x)} training images")
    print(f"{'model':5s} {'epochs':>6s} {'cr acc':>8s} {'torch acc':>9s} {'cr samples/s':>13s} "
          f"{'torch samples/s':>16s} {'ratio':>6s}")
    for kind, epochs, batch in recipes:
        cr_acc, cr_speed = run_chainrule(kind, data, epochs, batch)
        t_acc, t_speed = run_torch(kind, data, epochs, batch) if torch else (float("nan"), float("nan"))
        print(f"{kind:5s} {epochs:6d} {cr_acc:8.4f} {t_acc:9.4f} {cr_speed:13.0f} {t_speed:16.0f} "
              f"{cr_speed / t_speed:6.2f}", flush=True)


if __name__ == "__main__":
    main()
