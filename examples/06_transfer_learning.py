"""Transfer learning: reuse a convolutional base trained on other classes when labels are few.

    python examples/06_transfer_learning.py            # full mode (about 75 s on one core)
    python examples/06_transfer_learning.py --quick    # tiny data, one epoch (CI)

The embedded Fashion-MNIST subset (600 training / 100 test images per class) is split in two tasks:

    source task   classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat): all 3000 labelled images
    target task   classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot): only 50 labels per class

1. Pretrain a CNN (conv base + dense head) on the source task.
2. Transfer: freeze the base (`base.trainable = False`), put a new head on it, train the head alone on
   the 250 target labels. Only the head's weights move (checked: the base's are unchanged).
3. From scratch: the same architecture, freshly initialized, trained on the same labels for as many
   updates.
4. Fine-tune: unfreeze the base and train everything a little more at a low learning rate (1e-4),
   starting from the transferred model, so the base adapts without forgetting what it learned.

The three test accuracies on the target task's 500 test images are printed (the mean over five random
draws of the labelled images), then the same comparison with 5, 10 and 20 labels per class. What to
expect, honestly: the gains are real but small here, about one point of accuracy (measured numbers in
examples/results/06_transfer_learning.md). The base is pretrained on only 3000 images of *other*
classes (tops and trousers; the target is mostly shoes and bags), and a small CNN learns these five
well-separated classes from 50 images each almost as well on its own. The frozen base shines early in
training (see the curves: it is ahead in the first epochs) and with a larger, closer source task;
`--full-data` pretrains on the 30000 source images of the full Fashion-MNIST and tests on its 5000
target images. Pictures go to `--out` (default examples/output/06_transfer_learning/).
"""
import argparse
import functools
import math
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
CLASS_NAMES = datasets.embedded.CLASS_NAMES


@functools.lru_cache(maxsize=2)
def load_images(full_data):
    """Fashion-MNIST as float32 (N, 28, 28, 1) in [0, 1]: the embedded subset, or the full set (60000 + 10000)."""
    source = datasets.fashion_mnist if full_data else datasets.embedded
    (x, y), (xt, yt) = source.load_data()
    return (x[..., None].astype(np.float32) / 255, y), (xt[..., None].astype(np.float32) / 255, yt)


def load_tasks(labels_per_class, seed, full_data=False):
    """(source train, source test, target few-label train, target test), labels remapped to 0-4."""
    (x, y), (xt, yt) = load_images(full_data)

    def task(images, labels, classes):
        keep = np.isin(labels, classes)
        return images[keep], np.searchsorted(classes, labels[keep])  # 5..9 -> 0..4

    source, source_test = task(x, y, SOURCE_CLASSES), task(xt, yt, SOURCE_CLASSES)
    target_pool, target_test = task(x, y, TARGET_CLASSES), task(xt, yt, TARGET_CLASSES)
    rng = np.random.default_rng(seed)
    few = np.concatenate([rng.choice(np.flatnonzero(target_pool[1] == c), labels_per_class, replace=False)
                          for c in range(len(TARGET_CLASSES))])
    rng.shuffle(few)
    return source, source_test, (target_pool[0][few], target_pool[1][few]), target_test


def conv_base(filters):
    """The part we transfer: two conv/pool stages and Flatten, (28, 28, 1) -> features."""
    return models.Sequential([layers.Input((28, 28, 1)),
                              layers.Conv2D(filters, 3, activation="relu"), layers.MaxPooling2D(2),
                              layers.Conv2D(2 * filters, 3, activation="relu"), layers.MaxPooling2D(2),
                              layers.Flatten()], name="conv_base")


def with_head(base, classes, name):
    """A new dense head on `base`: a functional model, base called with training=False as Keras's guide does
    (it matters for BatchNormalization and Dropout inside a base; ours has neither)."""
    inputs = layers.Input((28, 28, 1))
    features = base(inputs, training=False)
    hidden = layers.Dense(64, activation="relu")(features)
    hidden = layers.Dropout(0.3)(hidden)
    outputs = layers.Dense(classes, activation="softmax")(hidden)
    return models.Model(inputs, outputs, name=name)


def compile_model(model, learning_rate):
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def accuracy_on(model, data):
    return model.evaluate(*data, batch_size=250, verbose=0)[1]


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(runs, to_file, labels_per_class):
    """Test accuracy and training loss per epoch for each run (fine-tuning continues the transfer run)."""
    fig = _figure((10, 3.8))
    ax_acc, ax_loss = fig.subplots(1, 2)
    for label, (start, history) in runs.items():
        epochs = np.arange(start + 1, start + 1 + len(history["loss"]))
        ax_acc.plot(epochs, history["val_accuracy"], marker=".", label=label)
        ax_loss.plot(epochs, history["loss"], marker=".", label=label)
    ax_acc.set(xlabel="epoch", ylabel="target test accuracy",
               title=f"held-out accuracy ({labels_per_class} labels per class)")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss", yscale="log")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def plot_label_counts(results, to_file):
    """Test accuracy against the number of labels per class, one line per way of training."""
    fig = _figure((6, 4))
    ax = fig.subplots()
    counts = sorted(results)
    for key, label in (("scratch", "from scratch"), ("transfer", "transfer (frozen base)"),
                       ("finetuned", "fine-tuned")):
        ax.plot(counts, [results[n][key] for n in counts], marker="o", label=label)
    ax.set(xscale="log", xlabel="labels per class (target task)", ylabel="test accuracy",
           title="test accuracy against the number of labels")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def plot_examples(x, y, to_file, labels_per_class):
    """The few labels the target models see: up to ten of each class."""
    fig = _figure((8, 4.5))
    axes = fig.subplots(len(TARGET_CLASSES), 10)
    for c, row in enumerate(axes):
        for ax, i in zip(row, np.flatnonzero(y == c)[:10]):
            ax.imshow(x[i, ..., 0], cmap="gray_r")
        for ax in row:
            ax.set_axis_off()
        row[0].set_title(CLASS_NAMES[TARGET_CLASSES[c]], fontsize=8, loc="left")
    fig.suptitle(f"target task: some of the {labels_per_class} labelled images per class")
    fig.savefig(to_file, dpi=100)


def epochs_for(n_images, steps, batch_size=32):
    """Epochs that make about `steps` updates: the same training length whatever the number of labels."""
    return max(1, math.ceil(steps / math.ceil(n_images / batch_size)))


def few_label_runs(base, pretrained, target, target_test, filters, steps, seed, curves=False):
    """Transfer, scratch and fine-tune on one draw of few labels: {run: test accuracy}, {run: history}."""
    histories, accuracy = {}, {}
    validation = target_test if curves else None    # the curves cost an evaluation per epoch
    head_epochs, finetune_epochs = epochs_for(len(target[0]), steps), epochs_for(len(target[0]), steps // 2)

    # transfer: the pretrained base frozen, a new head trained on the few labels
    base.set_weights(pretrained)
    base.trainable = False
    cr.random.seed(seed)
    transfer_model = with_head(base, len(TARGET_CLASSES), "transfer_model")
    compile_model(transfer_model, 1e-3)     # compile after changing `trainable`, as in Keras
    histories["transfer"] = transfer_model.fit(*target, epochs=head_epochs, batch_size=32, verbose=0,
                                               validation_data=validation).history
    accuracy["transfer"] = accuracy_on(transfer_model, target_test)
    unchanged = all(np.array_equal(a, b) for a, b in zip(pretrained, base.get_weights()))
    assert unchanged, "the frozen base changed during training"

    # the same architecture from scratch on the same labels, for as many updates
    cr.random.seed(seed + 1000)
    scratch_model = with_head(conv_base(filters), len(TARGET_CLASSES), "scratch_model")
    compile_model(scratch_model, 1e-3)
    histories["scratch"] = scratch_model.fit(*target, epochs=head_epochs, batch_size=32, verbose=0,
                                             validation_data=validation).history
    accuracy["scratch"] = accuracy_on(scratch_model, target_test)

    # fine-tune: unfreeze the base, continue the transfer model at a learning rate ten times lower
    base.trainable = True
    compile_model(transfer_model, 1e-4)
    histories["finetuned"] = transfer_model.fit(*target, epochs=finetune_epochs, batch_size=32, verbose=0,
                                                validation_data=validation).history
    accuracy["finetuned"] = accuracy_on(transfer_model, target_test)
    if curves:
        print(f"   (frozen base unchanged by the head's training: {unchanged}; {head_epochs} epochs for the head "
              f"and from scratch, {finetune_epochs} for fine-tuning, all with batches of 32)")
    return accuracy, histories


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "06_transfer_learning"),
                        help="folder for the pictures")
    parser.add_argument("--labels-per-class", type=int, default=50, help="target-task labels per class")
    parser.add_argument("--sweep", default="5,10,20", help="other label counts to compare (comma-separated)")
    parser.add_argument("--draws", type=int, default=5, help="random draws of the few labels per count")
    parser.add_argument("--full-data", action="store_true",
                        help="pretrain on all 30000 source images of the full Fashion-MNIST and test on its 5000 "
                             "target test images (the embedded subset otherwise)")
    parser.add_argument("--pretrain-epochs", type=int, help="epochs on the source task (default 10; 3 with --full-data)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()

    source, source_test, _, target_test = load_tasks(args.labels_per_class, args.seed, args.full_data)
    if args.quick:
        source, source_test = (source[0][:300], source[1][:300]), (source_test[0][:100], source_test[1][:100])
        target_test = (target_test[0][:100], target_test[1][:100])
    filters = 4 if args.quick else 32
    pretrain_epochs, steps = (1, 8) if args.quick else (10, 200)
    pretrain_epochs = args.pretrain_epochs or (3 if args.full_data and not args.quick else pretrain_epochs)
    sweep = [int(n) for n in args.sweep.split(",") if n and int(n) != args.labels_per_class]
    counts = [args.labels_per_class] + (sweep[:1] if args.quick else sweep)
    draws = 1 if args.quick else args.draws
    print(f"source task: {len(source[0])} images of {[CLASS_NAMES[c] for c in SOURCE_CLASSES]}")
    print(f"target task: {[CLASS_NAMES[c] for c in TARGET_CLASSES]}, {len(target_test[0])} test images")

    # 1. pretrain on the source task
    cr.random.seed(args.seed)
    base = conv_base(filters)
    source_model = with_head(base, len(SOURCE_CLASSES), "source_model")
    compile_model(source_model, 1e-3)
    t = time.perf_counter()
    source_model.fit(*source, epochs=pretrain_epochs, batch_size=64, verbose=0)
    pretrained = base.get_weights()
    print(f"\n1. pretrained on the source task ({pretrain_epochs} epochs, {time.perf_counter() - t:.0f} s): "
          f"source test accuracy {accuracy_on(source_model, source_test):.3f}; the conv base has "
          f"{base.count_params()} weights")

    # 2-4. few labels: transfer, scratch, fine-tune, for each label count and draw
    print(f"\n2-4. transfer (frozen base + new head), from scratch, fine-tuned (base unfrozen, Adam 1e-4); "
          f"about {steps} updates each ({steps // 2} for fine-tuning)")
    results, histories = {}, None
    for n in counts:
        t = time.perf_counter()
        runs = []
        for draw in range(draws):
            _, _, target, _ = load_tasks(n, args.seed + 1 + draw, args.full_data)
            accuracy, h = few_label_runs(base, pretrained, target, target_test, filters, steps,
                                         seed=args.seed + 1 + draw, curves=(n == counts[0] and draw == 0))
            histories = histories or h
            runs.append(accuracy)
        results[n] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        spread = {k: float(np.ptp([r[k] for r in runs])) for k in runs[0]}
        print(f"   {n:3d} labels per class, {draws} draw(s), {time.perf_counter() - t:.0f} s: scratch "
              f"{results[n]['scratch']:.3f}, transfer {results[n]['transfer']:.3f}, fine-tuned "
              f"{results[n]['finetuned']:.3f}" + (f"  (range over draws up to {max(spread.values()):.3f})"
                                                    if draws > 1 else ""))

    main_result = results[counts[0]]
    print(f"\ntarget-task test accuracy with {counts[0]} labels per class (mean of {draws} draw(s)):")
    print(f"  from scratch           {main_result['scratch']:.3f}")
    print(f"  transfer (frozen base) {main_result['transfer']:.3f}")
    print(f"  fine-tuned             {main_result['finetuned']:.3f}")
    print(f"RESULT scratch={main_result['scratch']:.3f} transfer={main_result['transfer']:.3f} "
          f"finetuned={main_result['finetuned']:.3f}")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        head_epochs = len(histories["transfer"]["loss"])
        plot_curves({"from scratch": (0, histories["scratch"]), "transfer (frozen base)": (0, histories["transfer"]),
                     "fine-tuned (base unfrozen)": (head_epochs, histories["finetuned"])},
                    os.path.join(args.out, "accuracy_curves.png"), counts[0])
        if len(results) > 1:
            plot_label_counts(results, os.path.join(args.out, "accuracy_vs_labels.png"))
        _, _, target, _ = load_tasks(counts[0], args.seed + 1, args.full_data)
        plot_examples(*target, os.path.join(args.out, "few_labels.png"), counts[0])
        print(f"pictures in {args.out}: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start_time:.0f} s")


if __name__ == "__main__":
    main()
