"""Autoencoders: dense, convolutional and denoising, with the 2-D latent space coloured by class.

    python examples/08_autoencoders.py            # full mode (about 95 s on one core)
    python examples/08_autoencoders.py --quick    # tiny data, one epoch (CI)

An autoencoder is trained to give back its input, x_hat = decoder(encoder(x)), minimizing the
mean squared error 1/N sum (x - x_hat)^2, through a bottleneck (the code) narrower than the input,
so it must find a compact description of the data. On the embedded Fashion-MNIST subset
(6000 training, 1000 test images, pixels in [0, 1]):

    dense AE          784 -> 128 -> 32 -> 128 -> 784 (sigmoid out); compared with PCA on 32 components,
                      the best *linear* code of that size
    2-D dense AE      784 -> 256 -> 64 -> 2 -> 64 -> 256 -> 784: a code we can draw; the test images'
                      codes scattered and coloured by class, and the decoder run over a grid of codes
    convolutional AE  Conv2D + MaxPooling2D down to a 7x7x4 code (196 numbers: more than the dense AE's
                      32, a quarter of the 784 pixels), Conv2DTranspose (stride 2) back up
    denoising AE      input x + Gaussian noise (std 0.3, clipped to [0, 1]), target the clean x;
                      decoder with UpSampling2D + Conv2D (the other common way up)

Prints the test reconstruction MSE of each and writes the pictures to `--out`
(default examples/output/08_autoencoders/).
"""
import argparse
import os
import time

import numpy as np

import chainrule as cr
from chainrule import datasets, layers, models, teach

CLASS_NAMES = datasets.embedded.CLASS_NAMES
NOISE_STD = 0.3
CODE_CHANNELS = 4   # the conv code: 7x7x4 = 196 numbers, a quarter of the 784 pixels


def dense_autoencoder(widths, code, name):
    """Encoder 784 -> widths... -> code (linear) and the mirror-image decoder, as two Sequential models."""
    encoder = models.Sequential([layers.Input((28, 28, 1)), layers.Flatten()]
                                + [layers.Dense(w, activation="relu") for w in widths]
                                + [layers.Dense(code, name=f"{name}_code")], name=f"{name}_encoder")
    decoder = models.Sequential([layers.Input((code,))]
                                + [layers.Dense(w, activation="relu") for w in reversed(widths)]
                                + [layers.Dense(28 * 28, activation="sigmoid"), layers.Reshape((28, 28, 1))],
                                name=f"{name}_decoder")
    return encoder, decoder, models.Sequential([encoder, decoder], name=name)


def conv_autoencoder(filters, code_channels, up, name):
    """28x28x1 -> 14x14xF -> 7x7x2F -> code 7x7xK, and back; `up` is "transpose" (Conv2DTranspose, stride 2:
    a learned upsampling) or "upsampling" (UpSampling2D, nearest neighbour, then a Conv2D)."""
    def up_block(f):
        if up == "transpose":
            return [layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")]
        return [layers.UpSampling2D(2), layers.Conv2D(f, 3, padding="same", activation="relu")]

    return models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(filters, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(2 * filters, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(code_channels, 3, padding="same", activation="relu", name=f"{name}_code"),
        *up_block(2 * filters), *up_block(filters),
        layers.Conv2D(1, 3, padding="same", activation="sigmoid")], name=name)


def train(model, x_in, x_out, epochs, batch_size, label):
    model.compile(optimizer="adam", loss="mse")
    t = time.perf_counter()
    history = model.fit(x_in, x_out, epochs=epochs, batch_size=batch_size, verbose=0)
    print(f"  {label}: {model.count_params()} weights, {epochs} epochs in {time.perf_counter() - t:.0f} s, "
          f"final training loss {history.history['loss'][-1]:.4f}")
    return history


def mse(a, b):
    return float(np.mean((np.asarray(a, dtype=np.float32) - b) ** 2))


def pca_reconstruction(x_train, x_test, components):
    """Project on the top principal components of the training images and back: the best linear code."""
    flat = x_train.reshape(len(x_train), -1)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:components]                                    # (components, 784), orthonormal rows
    centred = x_test.reshape(len(x_test), -1) - mean
    return ((centred @ basis.T) @ basis + mean).reshape(x_test.shape)


# ---------------------------------------------------------------------------- pictures
def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_rows(rows, to_file, title, columns=10):
    """One row of images per (label, images) pair, the same test images in every column."""
    fig = _figure((columns * 0.9, len(rows) * 1.0 + 0.4))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for (label, images), ax_row in zip(rows, axes):
        for ax, image in zip(ax_row, images[:columns]):
            ax.imshow(np.clip(image[..., 0], 0, 1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.9, bottom=0.02, wspace=0.05, hspace=0.1)
    fig.savefig(to_file, dpi=100)


def plot_latent(codes, labels, decoder, to_file):
    """Left: the 2-D codes of the test images by class. Right: the decoder over a grid of codes."""
    import matplotlib
    fig = _figure((13, 6))
    ax_scatter, ax_grid = fig.subplots(1, 2)
    cmap = matplotlib.colormaps["tab10"]
    for c in range(10):
        pts = codes[labels == c]
        ax_scatter.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(c), label=CLASS_NAMES[c], alpha=0.7)
    ax_scatter.legend(markerscale=3, fontsize=8, loc="best")
    ax_scatter.set(title="2-D codes of the test images", xlabel="code 1", ylabel="code 2")
    n = 12
    lo, hi = np.percentile(codes, [5, 95], axis=0)
    g0, g1 = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)
    grid = np.array([[a, b] for b in g1 for a in g0], dtype=np.float32)
    images = decoder.predict(grid, verbose=0)[..., 0].reshape(n, n, 28, 28)
    ax_grid.imshow(images.transpose(0, 2, 1, 3).reshape(n * 28, n * 28), cmap="gray_r",
                   extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto")
    ax_grid.set(title="decoder(code) over the grid", xlabel="code 1", ylabel="code 2")
    fig.tight_layout()
    fig.savefig(to_file, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (for CI)")
    parser.add_argument("--out", default=os.path.join("examples", "output", "08_autoencoders"),
                        help="folder for the pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_time = time.perf_counter()
    cr.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    (x, _), (xt, yt) = datasets.embedded.load_data()
    x, xt = x[..., None].astype(np.float32) / 255, xt[..., None].astype(np.float32) / 255
    if args.quick:
        x, xt, yt = x[:256], xt[:100], yt[:100]
    noisy = lambda a: np.clip(a + rng.normal(0, NOISE_STD, a.shape).astype(np.float32), 0, 1)
    x_noisy, xt_noisy = noisy(x), noisy(xt)
    dense_epochs, latent_epochs, conv_epochs = (1, 1, 1) if args.quick else (30, 60, 20)
    filters = 4 if args.quick else 8
    print(f"{len(x)} training and {len(xt)} test images of Fashion-MNIST (embedded subset)")

    print("\ntraining:")
    _, _, dense = dense_autoencoder((128,), 32, "dense_ae")
    train(dense, x, x, dense_epochs, 64, "dense AE, 32-d code")
    encoder2, decoder2, dense2 = dense_autoencoder((256, 64), 2, "latent2_ae")
    train(dense2, x, x, latent_epochs, 64, "dense AE, 2-d code")
    conv = conv_autoencoder(filters, CODE_CHANNELS, "transpose", "conv_ae")
    conv_history = train(conv, x, x, conv_epochs, 32, f"conv AE, 7x7x{CODE_CHANNELS} code")
    denoiser = conv_autoencoder(filters, CODE_CHANNELS, "upsampling", "denoising_ae")
    denoise_history = train(denoiser, x_noisy, x, conv_epochs, 32, "denoising conv AE (noisy in, clean out)")

    pred = {"PCA, 32 components": pca_reconstruction(x, xt, 32),
            "dense AE, 32-d": dense.predict(xt, verbose=0),
            "dense AE, 2-d": dense2.predict(xt, verbose=0),
            f"conv AE, 7x7x{CODE_CHANNELS}": conv.predict(xt, verbose=0)}
    conv_on_noisy = conv.predict(xt_noisy, verbose=0)
    denoised = denoiser.predict(xt_noisy, verbose=0)

    print("\ntest reconstruction MSE (pixels in [0, 1]):")
    for label, images in pred.items():
        print(f"  {label:<26} {mse(images, xt):.4f}")
    print(f"noisy test images (std {NOISE_STD}), MSE against the clean images:")
    print(f"  {'noisy input itself':<26} {mse(xt_noisy, xt):.4f}")
    print(f"  {'conv AE (trained clean)':<26} {mse(conv_on_noisy, xt):.4f}")
    print(f"  {'denoising AE':<26} {mse(denoised, xt):.4f}")
    print(f"RESULT dense={mse(pred['dense AE, 32-d'], xt):.4f} latent2={mse(pred['dense AE, 2-d'], xt):.4f} "
          f"conv={mse(pred[f'conv AE, 7x7x{CODE_CHANNELS}'], xt):.4f} denoising={mse(denoised, xt):.4f} "
          f"noisy={mse(xt_noisy, xt):.4f}")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install chainrule[viz])")
    else:
        os.makedirs(args.out, exist_ok=True)
        # one test image of each class, in class order
        show = np.array([np.flatnonzero(yt == c)[0] for c in range(10) if np.any(yt == c)])
        plot_rows([("original", xt[show])] + [(k, v[show]) for k, v in pred.items()],
                  os.path.join(args.out, "reconstructions.png"), "test images and their reconstructions")
        plot_rows([("noisy input", xt_noisy[show]), ("conv AE", conv_on_noisy[show]),
                   ("denoising AE", denoised[show]), ("clean", xt[show])],
                  os.path.join(args.out, "denoising.png"), f"denoising (Gaussian noise, std {NOISE_STD})")
        codes = encoder2.predict(xt, verbose=0)
        plot_latent(codes, yt, decoder2, os.path.join(args.out, "latent_space.png"))
        teach.plot_history(conv_history, os.path.join(args.out, "conv_ae_history.png"))
        teach.plot_history(denoise_history, os.path.join(args.out, "denoising_ae_history.png"))
        print(f"pictures in {args.out}: {', '.join(sorted(os.listdir(args.out)))}")
    print(f"done in {time.perf_counter() - start_time:.0f} s")


if __name__ == "__main__":
    main()
