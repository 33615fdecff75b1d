"""Synthetic fluorescence microscopy: images of cells with masks, density maps and counts.

Each image holds 20 to 60 cells (``cell_count``): bright ellipses of varying size, shape,
orientation and brightness, placed at random, some touching or slightly overlapping, on a
dim unevenly lit background, then blurred (the optics) and noised (the camera). Targets:

- ``masks`` (n, h, w, 1) float32, 1.0 on cell pixels: for segmentation (U-Net);
- ``density`` (n, h, w, 1) float32, one Gaussian of width ``density_sigma`` per cell centre,
  each normalised to sum to 1 inside the image, so ``density.sum((1, 2, 3)) == counts``:
  for counting by density regression;
- ``counts`` (n,) int64, the number of cells.

    images, masks, density, counts = microscopy(16, image_size=(128, 128), seed=0)

NumPy only: the blur is a separable Gaussian applied as two small matrix products.
"""
from typing import NamedTuple

import numpy as np

from .toys import rng_for


class MicroscopyData(NamedTuple):
    images: np.ndarray   # float32 (n, h, w, 1), values in [0, 1]
    masks: np.ndarray    # float32 (n, h, w, 1), 0 or 1
    density: np.ndarray  # float32 (n, h, w, 1), sums to counts
    counts: np.ndarray   # int64 (n,)


def gaussian_matrix(size, sigma):
    """The (size, size) matrix G with (G @ v) = v blurred by a Gaussian of std `sigma`:
    G[i, j] = exp(-(i - j)^2 / (2 sigma^2)), each row normalised to sum 1 (so edges keep their level)."""
    i = np.arange(size)
    g = np.exp(-0.5 * ((i[:, None] - i[None, :]) / max(sigma, 1e-6)) ** 2)
    return g / g.sum(axis=1, keepdims=True)


def _place_cells(rng, count, h, w, radius, tries=50):
    """Centres and radii of up to `count` cells; a new cell may touch others but may overlap a
    neighbour by at most a fifth of their radii (distance >= 0.8 (r_i + r_j))."""
    centres, radii = [], []
    for _ in range(count * tries):
        if len(centres) == count:
            break
        c = rng.uniform([0, 0], [h - 1, w - 1])
        r = rng.uniform(radius[0], radius[1])
        if centres:
            d = np.hypot(*(np.asarray(centres) - c).T)
            if np.any(d < 0.8 * (np.asarray(radii) + r)):
                continue
        centres.append(c)
        radii.append(r)
    return np.asarray(centres).reshape(-1, 2), np.asarray(radii)


def _render_cells(rng, centres, radii, h, w):
    """Cell intensities (h, w) and the binary mask (h, w): each cell is an ellipse of semi-axes
    r * U(0.8, 1.2), turned by a random angle, brightest at its centre (1 - 0.4 d^2 inside, where
    d is the elliptical distance from the centre, 1 on the rim)."""
    canvas = np.zeros((h, w))
    mask = np.zeros((h, w), dtype=bool)
    for (cy, cx), r in zip(centres, radii):
        ry, rx = r * rng.uniform(0.8, 1.2, size=2)
        angle = rng.uniform(0, np.pi)
        brightness = rng.uniform(0.4, 1.0)
        half = int(np.ceil(max(rx, ry))) + 1          # only the cell's bounding box is computed
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 2, h)
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 2, w)
        dy = np.arange(y0, y1)[:, None] - cy
        dx = np.arange(x0, x1)[None, :] - cx
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        d2 = (u / rx) ** 2 + (v / ry) ** 2
        inside = d2 <= 1.0
        value = np.where(inside, brightness * (1.0 - 0.4 * d2), 0.0)
        canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], value)  # touching cells stay distinct blobs
        mask[y0:y1, x0:x1] |= inside
    return canvas, mask


def density_map(centres, h, w, sigma):
    """Sum over cells of a Gaussian at the centre, each normalised to 1 over the image:
    D = sum_k g_k^y (g_k^x)^T with g_k^y(i) = exp(-(i - cy_k)^2 / 2 sigma^2) / sum_i(...)."""
    gy = np.exp(-0.5 * ((np.arange(h)[None, :] - centres[:, :1]) / sigma) ** 2)
    gx = np.exp(-0.5 * ((np.arange(w)[None, :] - centres[:, 1:]) / sigma) ** 2)
    gy /= gy.sum(axis=1, keepdims=True)
    gx /= gx.sum(axis=1, keepdims=True)
    return gy.T @ gx  # (h, k) @ (k, w): every cell's separable Gaussian in one product


def microscopy(n_samples=16, image_size=(128, 128), cell_count=(20, 60), cell_radius=(3.0, 7.0),
               blur=(0.5, 1.5), noise=(0.01, 0.05), density_sigma=2.0, seed=None):
    """`n_samples` synthetic cell images with their masks, density maps and counts.

    image_size: (height, width); cell_count: (min, max) cells per image, inclusive;
    cell_radius: (min, max) radius in pixels; blur: (min, max) std of the optical blur;
    noise: (min, max) std of the camera noise; density_sigma: std of each density Gaussian.
    Returns MicroscopyData(images, masks, density, counts); see the module docstring.
    """
    h, w = image_size
    low, high = cell_count
    if not 0 <= low <= high:
        raise ValueError(f"microscopy: cell_count must be (min, max) with 0 <= min <= max, got {cell_count}")
    rng = rng_for(seed)
    images = np.empty((n_samples, h, w, 1), dtype=np.float32)
    masks = np.empty((n_samples, h, w, 1), dtype=np.float32)
    density = np.empty((n_samples, h, w, 1), dtype=np.float32)
    counts = np.empty(n_samples, dtype=np.int64)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    for i in range(n_samples):
        centres, radii = _place_cells(rng, int(rng.integers(low, high + 1)), h, w, cell_radius)
        cells, mask = _render_cells(rng, centres, radii, h, w)
        # uneven illumination: a dim background with a gentle linear gradient
        gy, gx = rng.uniform(-0.05, 0.05, size=2)
        image = rng.uniform(0.05, 0.15) + gy * yy + gx * xx + cells
        sigma = rng.uniform(*blur)
        image = gaussian_matrix(h, sigma) @ image @ gaussian_matrix(w, sigma).T
        image += rng.normal(0.0, rng.uniform(*noise), size=(h, w))
        images[i, ..., 0] = np.clip(image, 0.0, 1.0)
        masks[i, ..., 0] = mask
        density[i, ..., 0] = density_map(centres, h, w, density_sigma)
        counts[i] = len(centres)
    return MicroscopyData(images, masks, density, counts)
