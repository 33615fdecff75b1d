"""2-D toy problems for classifiers and decision-boundary plots: xor, moons, circles, spirals, blobs.

Each returns ``(x, y)``: x float32 of shape (n_samples, 2), y int64 class labels of shape
(n_samples,), shuffled unless ``shuffle=False``. ``seed=`` makes the draw repeatable; without
it the draw comes from chainrule's shared generator, so ``chainrule.random.seed(n)`` repeats it.
"""
import numpy as np

from .. import random


def rng_for(seed):
    """A Generator of its own for an explicit seed, else chainrule's shared one."""
    return np.random.default_rng(seed) if seed is not None else random.generator()


def _finish(x, y, noise, shuffle, rng):
    if noise:
        x = x + rng.normal(0.0, noise, size=x.shape)
    if shuffle:
        order = rng.permutation(len(x))
        x, y = x[order], y[order]
    return x.astype(np.float32), y.astype(np.int64)


def xor(n_samples=200, noise=0.0, shuffle=True, seed=None):
    """Points in [-1, 1]^2, labelled 1 where exactly one coordinate is positive:
    y = [x_0 > 0] XOR [x_1 > 0] (the classic problem no linear model solves); half of each class."""
    rng = rng_for(seed)
    y = np.arange(n_samples) % 2
    sign = rng.choice([-1.0, 1.0], size=n_samples)
    # class 0 in the quadrants where the signs agree, class 1 where they differ
    x = rng.uniform(0.0, 1.0, size=(n_samples, 2)) * np.stack([sign, np.where(y == 1, -sign, sign)], 1)
    return _finish(x, y, noise, shuffle, rng)


def moons(n_samples=200, noise=0.1, shuffle=True, seed=None):
    """Two interleaving half circles (scikit-learn's make_moons): class 0 is
    (cos t, sin t), class 1 is (1 - cos t, 1/2 - sin t), t in [0, pi]."""
    rng = rng_for(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, shuffle, rng)


def circles(n_samples=200, noise=0.05, factor=0.5, shuffle=True, seed=None):
    """A circle of radius 1 (class 0) around one of radius `factor` (class 1)."""
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor is the inner radius and must lie in (0, 1), got {factor}")
    rng = rng_for(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, shuffle, rng)


def spirals(n_samples=300, classes=3, noise=0.2, shuffle=True, seed=None):
    """`classes` interleaved spiral arms (CS231n's example): arm c has radius r in [0, 1] and
    angle theta = 4 (c + r) + noise, i.e. the point (r sin theta, r cos theta)."""
    rng = rng_for(seed)
    sizes = [n_samples // classes + (c < n_samples % classes) for c in range(classes)]
    xs, ys = [], []
    for c, n in enumerate(sizes):
        r = np.linspace(0.0, 1.0, n)
        theta = np.linspace(4.0 * c, 4.0 * (c + 1), n) + rng.normal(0.0, noise, n)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], 1))
        ys.append(np.full(n, c))
    return _finish(np.concatenate(xs), np.concatenate(ys), 0.0, shuffle, rng)


def blobs(n_samples=200, centers=3, cluster_std=1.0, center_box=(-10.0, 10.0), shuffle=True, seed=None):
    """Isotropic Gaussian clusters (scikit-learn's make_blobs). `centers` is a number of
    clusters (centres drawn uniformly in `center_box`) or an array of shape (k, 2)."""
    rng = rng_for(seed)
    if np.ndim(centers) == 0:
        centers = rng.uniform(center_box[0], center_box[1], size=(int(centers), 2))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise ValueError(f"blobs: centers must be a count or an array of shape (k, 2), got shape {centers.shape}")
    k = len(centers)
    sizes = [n_samples // k + (c < n_samples % k) for c in range(k)]
    std = np.broadcast_to(np.asarray(cluster_std, dtype=np.float64), (k,))  # one spread, or one per cluster
    y = np.repeat(np.arange(k), sizes)
    x = centers[y] + rng.normal(0.0, 1.0, size=(n_samples, 2)) * std[y, None]
    return _finish(x, y, 0.0, shuffle, rng)
