"""Neural style transfer: optimize the input image so its features match one image and its textures another.

    python examples/10_style_transfer.py                       # a CNN trained here on Fashion-MNIST
    python examples/10_style_transfer.py --weights vgg16.weights.h5   # Keras's VGG16 weights, if you have them
    python examples/10_style_transfer.py --quick               # tiny and fast (CI)

Gatys, Ecker and Bethge (2015). A trained CNN is held fixed; the *image* x is the variable. With
F_l(x) the feature maps of layer l reshaped to (H*W, C) and the Gram matrix G_l(x) = F_l^T F_l / (H*W)
(which channels fire together, wherever in the image: texture, not layout),

    content loss   L_c = mean((F_c(x) - F_c(content))^2) / mean(F_c(content)^2)          one deep layer c
    style loss     L_s = 1/|S| sum over l in S of mean((G_l(x) - G_l(style))^2) / mean(G_l(style)^2)
    smoothness     L_tv = mean(|x[i+1, j] - x[i, j]|) + mean(|x[i, j+1] - x[i, j]|)
    total          L = L_c + style_weight * L_s + tv_weight * L_tv

and x (starting from the content image) follows Adam on dL/dx, clipped to [0, 1] after each step. It
uses the low-level face of chainrule: x is a Tensor with requires_grad=True, the trained model's layers
are called on it one by one, `cr.grad(L, x)` gives the gradient and `optimizers.Adam.apply` the step.
Two changes to the paper, both said where they apply:
- each term is divided by the size of its target (a relative error), so one style_weight means the same
  for a small network and for VGG16, whose activations are orders of magnitude larger;
- with the small network, the Gram matrix is taken of the centred features, F - mean(F) (the channels'
  covariance), and the channel means are matched as a separate relative error (`--gram centred`, the
  default without --weights). The plain Gram matrix is covariance + mean * mean^T, and for this small,
  briefly trained network mean * mean^T is 40-80% of its squared size on our patterns: matching the
  plain Gram spends the steps on the average activations, and the texture comes out fainter, with
  saturated black and white patches (compare `--gram plain`). VGG16 keeps the plain Gram.

The trade-off, honestly. Style transfer works because a network trained on a large, varied set of
natural photos (ImageNet) has features for colours, edges, textures and object parts at many scales.
Those weights cannot be downloaded on the machines this runs on, so by default the script trains a
small CNN (five 3x3 conv layers of 16 to 64 channels, average pooling) on the embedded Fashion-MNIST
subset (6000 grey 28x28 images, five epochs, about 20 s on one core), and calls its conv layers on the
larger image, 84x84 by default (convolutions work at any size). Its features know grey clothing
silhouettes only: the result is grey, the style transferred is the pattern's local texture (stripe
direction and period, checker corners) within a receptive field of 24 pixels, not the painterly, multi-scale colour
style of the paper's VGG results; the content is held by a shallow layer, so the object keeps its
outline and brightness. With `--weights PATH` the script builds VGG16's conv base (13 layers named
block1_conv1 ... block5_conv3, in Keras's order) and loads a Keras `.weights.h5` into it with
`model.load_weights`: e.g. made once, where there is a network, by
`keras.applications.VGG16(include_top=False).save_weights("vgg16.weights.h5")`. Then the image is RGB,
preprocessed as Keras's vgg16.preprocess_input does, the style layers are block1_conv1 ... block5_conv1
and the content layer block4_conv2, as in the paper; a step at 128x128 (about 30 GFLOP) took 0.4 s on
one core here. That path is tested with Keras's VGG16 architecture and random weights (the file loads into
the right layers and the features equal Keras's), not with the ImageNet weights, which we cannot get
here: tune --style-weight and --steps on your own images.

Content: a Fashion-MNIST test image (`fashion:INDEX`) or an image file; style: generated patterns
(`stripes`, `checkerboard`, `waves`) or an image file. The result pictures go to `--out` (default
examples/output/10_style_transfer/).
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, optimizers

SMALL_STYLE_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")
SMALL_CONTENT_LAYER = "conv2_2"
VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
VGG_CONTENT_LAYER = "block4_conv2"
VGG_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)  # Keras's "caffe" preprocessing


# ---------------------------------------------------------------------------- the feature networks
def small_cnn():
    """The network trained here: five 3x3 conv layers (the features), then a classifier head for training.
    The conv layers work on any image size; only the head needs 28x28, and style transfer never calls it."""
    conv = lambda f, name: layers.Conv2D(f, 3, padding="same", activation="relu", name=name)
    return models.Sequential([
        layers.Input((28, 28, 1)),
        conv(16, "conv1_1"), conv(16, "conv1_2"), layers.AveragePooling2D(2, name="pool1"),
        conv(32, "conv2_1"), conv(32, "conv2_2"), layers.AveragePooling2D(2, name="pool2"),
        conv(64, "conv3_1"),
        layers.Flatten(), layers.Dense(10, activation="softmax")], name="fashion_features")


def train_small_cnn(quick, seed, epochs):
    """Train the small CNN to classify Fashion-MNIST: its conv layers learn features we can reuse."""
    (x, y), (xt, yt) = datasets.embedded.load_data()
    n_train, n_test, epochs = (300, 100, 1) if quick else (6000, 1000, epochs)
    x, xt = x[:n_train, ..., None].astype(np.float32) / 255, xt[:n_test, ..., None].astype(np.float32) / 255
    cr.random.seed(seed)
    model = small_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(x, y[:n_train], epochs=epochs, batch_size=64, verbose=0)
    accuracy = model.evaluate(xt, yt[:n_test], verbose=0)[1]
    print(f"feature network: small CNN trained on {n_train} Fashion-MNIST images, {epochs} epoch(s) in "
          f"{time.perf_counter() - t:.0f} s, test accuracy {accuracy:.3f}")
    return model


def vgg16_conv_base():
    """VGG16 without its dense top, layer for layer as keras.applications.VGG16(include_top=False) builds it,
    so `load_weights` finds the same groups (conv2d, conv2d_1, ... in order) in Keras's .weights.h5."""
    stack = [layers.Input((None, None, 3))]
    for block, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        stack += [layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")
                  for i in range(1, convs + 1)]
        stack.append(layers.MaxPooling2D(2, name=f"block{block}_pool"))
    return models.Sequential(stack, name="vgg16")


class FeatureNet:
    """A trained network's layers, called one by one on an image Tensor, keeping the named outputs."""

    def __init__(self, model, style_layers, content_layer, rgb, preprocess):
        model.trainable = False   # the network stays fixed: only the image is optimized
        self.model, self.rgb, self.preprocess = model, rgb, preprocess
        self.style_layers, self.content_layer = style_layers, content_layer
        wanted = set(style_layers) | {content_layer}
        names = [layer.name for layer in model.layers]
        self.layers = model.layers[:max(names.index(n) for n in wanted) + 1]   # nothing past the last one needed

    def __call__(self, image):
        """{layer name: feature maps (1, H, W, C)} for an image Tensor (1, H, W, channels) in [0, 1]."""
        h = self.preprocess(image)
        out = {}
        for layer in self.layers:
            h = layer(h, training=False)
            if layer.name in self.style_layers or layer.name == self.content_layer:
                out[layer.name] = h
        return out


def small_feature_net(model):
    return FeatureNet(model, SMALL_STYLE_LAYERS, SMALL_CONTENT_LAYER, rgb=False, preprocess=lambda x: x)


def vgg_feature_net(path):
    model = vgg16_conv_base()
    model.load_weights(path)
    # RGB in [0, 1] -> BGR in [0, 255] minus ImageNet's mean, as keras.applications.vgg16.preprocess_input;
    # the channel swap is a matmul with a permutation matrix, so it is differentiable like the rest.
    to_bgr = cr.tensor(255.0 * np.eye(3, dtype=np.float32)[::-1].copy())
    mean = cr.tensor(VGG_BGR_MEAN)
    print(f"feature network: VGG16 conv base, weights from {path} ({model.count_params()} numbers)")
    return FeatureNet(model, VGG_STYLE_LAYERS, VGG_CONTENT_LAYER, rgb=True, preprocess=lambda x: x @ to_bgr - mean)


# ---------------------------------------------------------------------------- the losses
def gram_matrix(features, centred=False):
    """G = F^T F / (H W), with F the feature maps (1, H, W, C) reshaped to (H W, C): a (C, C) matrix.
    centred=True subtracts each channel's mean first: G is then the channels' covariance."""
    _, h, w, c = features.shape
    flat = features.reshape(h * w, c)
    if centred:
        flat = flat - flat.mean(axis=0, keepdims=True)
    return (flat.T @ flat) / float(h * w)


def relative_error(value, target):
    """mean((value - target)^2) / mean(target^2): each loss term as a fraction of its target's size."""
    return ((value - target) ** 2).mean() / (float(np.mean(target.numpy() ** 2)) + 1e-8)


class StyleTarget:
    """What the style loss matches at one layer: the Gram matrix, or the covariance and the channel means."""

    def __init__(self, features, centred):
        self.centred = centred
        self.gram = gram_matrix(features, centred)
        self.means = features.mean(axis=(0, 1, 2)) if centred else None

    def loss(self, features):
        loss = relative_error(gram_matrix(features, self.centred), self.gram)
        if self.centred:
            loss = loss + relative_error(features.mean(axis=(0, 1, 2)), self.means)
        return loss


def total_variation(image):
    """Mean absolute difference between neighbouring pixels, down and across: penalizes speckle."""
    return ((image[:, 1:, :, :] - image[:, :-1, :, :]).abs().mean()
            + (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean())


def style_transfer(net, content, style, steps, style_weight, tv_weight, learning_rate, centred, log_every=0):
    """Optimize the image, starting from `content`; returns (image array, history of the three losses)."""
    with cr.no_grad():
        content_target = net(cr.tensor(content[None]))[net.content_layer]
        style_maps = net(cr.tensor(style[None]))
        style_targets = {name: StyleTarget(style_maps[name], centred) for name in net.style_layers}
    image = cr.tensor(content[None].copy(), requires_grad=True)   # the variable: the pixels themselves
    optimizer = optimizers.Adam(learning_rate)
    history = {"content": [], "style": [], "total": []}
    for step in range(steps + 1):
        maps = net(image)
        content_loss = relative_error(maps[net.content_layer], content_target)
        style_loss = sum(style_targets[name].loss(maps[name]) for name in net.style_layers) / len(net.style_layers)
        loss = content_loss + style_weight * style_loss + tv_weight * total_variation(image)
        for key, value in (("content", content_loss), ("style", style_loss), ("total", loss)):
            history[key].append(value.item())
        if log_every and (step % log_every == 0 or step == steps):
            print(f"    step {step:4d}: content {content_loss.item():.4f}  style {style_loss.item():.4f}  "
                  f"total {loss.item():.4f}")
        if step == steps:
            break                                    # the last pass only measures the final image
        gradient = cr.grad(loss, image)              # dL/dx, same shape as the image
        optimizer.apply([gradient], [image])         # Adam's step on the pixels, in place
        with cr.no_grad():
            image.data[...] = np.clip(image.data, 0.0, 1.0)   # keep a valid image
    return image.numpy()[0], history


# ---------------------------------------------------------------------------- images
def resize(image, size):
    """Bilinear resize of an (H, W, C) array to (size, size, C)."""
    h, w = image.shape[:2]
    ys, xs = np.linspace(0, h - 1, size), np.linspace(0, w - 1, size)
    rows = np.stack([np.stack([np.interp(xs, np.arange(w), image[i, :, c]) for c in range(image.shape[2])], -1)
                     for i in range(h)])                                      # (h, size, C)
    out = np.stack([np.stack([np.interp(ys, np.arange(h), rows[:, j, c]) for c in range(image.shape[2])], -1)
                    for j in range(size)], axis=1)                            # (size, size, C)
    return out.astype(np.float32)


def pattern(name, size):
    """Generated style images, RGB in [0, 1]: two colours of different brightness in a regular pattern."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(size / 10, 4.0)
    if name == "stripes":                       # diagonal stripes
        mask = np.sin(2 * np.pi * (xx + yy) / (period * np.sqrt(2))) > 0
    elif name == "checkerboard":
        mask = ((xx // period) + (yy // period)) % 2 == 0
    elif name == "waves":                       # horizontal sine waves
        mask = np.sin(2 * np.pi * (yy + 0.15 * size * np.sin(2 * np.pi * xx / size)) / period) > 0
    else:
        raise ValueError(f"unknown pattern '{name}': use stripes, checkerboard, waves or an image file path")
    dark, light = np.array([0.10, 0.15, 0.45], np.float32), np.array([0.95, 0.85, 0.30], np.float32)
    return np.where(mask[..., None], light, dark).astype(np.float32)


def load_image(spec, size, fashion_test):
    """`fashion:INDEX` (a Fashion-MNIST test image), a pattern name, or a path to an image file."""
    if spec.startswith("fashion:"):
        image = fashion_test[int(spec.split(":", 1)[1])][..., None].astype(np.float32) / 255
        return resize(np.repeat(image, 3, axis=-1), size)
    if os.path.isfile(spec):
        import matplotlib.image
        image = matplotlib.image.imread(spec).astype(np.float32)
        image = image / 255 if image.max() > 1 else image
        image = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
        return resize(image, size)
    return pattern(spec, size)


def to_channels(image, rgb):
    """RGB as is for VGG16, or its grey mean (one channel) for the small CNN."""
    return image if rgb else image.mean(axis=-1, keepdims=True)


def save_pictures(runs, content, rgb, out):
    """style_transfer.png (content, style, result per style), losses.png, and each result on its own."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import matplotlib.image

    def show(ax, image, title):
        ax.imshow(np.clip(image if rgb else image[..., 0], 0, 1), cmap=None if rgb else "gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()

    fig = Figure(figsize=(7.5, 2.6 * len(runs)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 3, squeeze=False)
    for row, (name, (style, result, _)) in zip(axes, runs.items()):
        show(row[0], content, "content")
        show(row[1], style, f"style: {os.path.basename(name)}")
        show(row[2], result, "result")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "style_transfer.png"), dpi=100)

    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    ax_c, ax_s = fig.subplots(1, 2)
    for name, (_, _, history) in runs.items():
        ax_c.plot(history["content"], label=os.path.basename(name))
        ax_s.plot(history["style"], label=os.path.basename(name))
    ax_c.set(title="content loss (relative)", xlabel="step")
    ax_s.set(title="style loss (relative)", xlabel="step", yscale="log")
    for ax in (ax_c, ax_s):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)

    for name, (_, result, _) in runs.items():
        stem = os.path.splitext(os.path.basename(name))[0]
        picture = np.clip(result if rgb else np.repeat(result, 3, axis=-1), 0, 1)
        matplotlib.image.imsave(os.path.join(out, f"result_{stem}.png"), picture)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny network, image and step count (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "10_style_transfer"),
                        help="folder for the pictures")
    parser.add_argument("--weights", help="a Keras VGG16 (include_top=False) .weights.h5 file to use instead "
                                          "of the small CNN trained here")
    parser.add_argument("--train-epochs", type=int, default=5, help="epochs to train the small CNN")
    parser.add_argument("--content", default="fashion:0", help="fashion:INDEX or an image file")
    parser.add_argument("--style", default="stripes,checkerboard,waves",
                        help="comma-separated: stripes, checkerboard, waves or image files")
    parser.add_argument("--size", type=int, help="image side in pixels (default 84; 128 with --weights)")
    parser.add_argument("--steps", type=int, help="optimization steps (default 300; 150 with --weights)")
    parser.add_argument("--gram", choices=("auto", "plain", "centred"), default="auto",
                        help="style statistics: Gatys's plain Gram matrix, or covariance + channel means; "
                             "auto: centred for the small CNN, plain for VGG16")
    parser.add_argument("--style-weight", type=float, default=10.0)
    parser.add_argument("--tv-weight", type=float, default=0.02)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()
    size = args.size or (32 if args.quick else 128 if args.weights else 84)
    steps = args.steps or (3 if args.quick else 150 if args.weights else 300)

    if args.weights:
        net = vgg_feature_net(args.weights)
    else:
        net = small_feature_net(train_small_cnn(args.quick, args.seed, args.train_epochs))
    (_, _), (fashion_test, _) = datasets.embedded.load_data()
    content = to_channels(load_image(args.content, size, fashion_test), net.rgb)
    centred = args.gram == "centred" or (args.gram == "auto" and not args.weights)
    runs = {}
    for name in args.style.split(","):
        style = to_channels(load_image(name, size, fashion_test), net.rgb)
        print(f"\nstyle '{name}' on content '{args.content}', {size}x{size}, {steps} steps of Adam:")
        t = time.perf_counter()
        result, history = style_transfer(net, content, style, steps, args.style_weight, args.tv_weight,
                                         args.learning_rate, centred, log_every=max(steps // 5, 1))
        print(f"  {time.perf_counter() - t:.0f} s; style loss {history['style'][0]:.4f} -> {history['style'][-1]:.4f}, "
              f"content loss {history['content'][-1]:.4f}")
        print(f"RESULT style={os.path.basename(name)} style_loss_start={history['style'][0]:.4f} "
              f"style_loss_end={history['style'][-1]:.4f} content_loss_end={history['content'][-1]:.4f}")
        runs[name] = (style, result, history)

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        save_pictures(runs, content, net.rgb, args.out)
        print(f"pictures in {args.out}: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start_time:.0f} s")


if __name__ == "__main__":
    main()
