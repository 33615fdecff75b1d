"""Image preprocessing and augmentation layers, with Keras 3's names, arguments and defaults.

    RandomFlip  RandomRotation  RandomTranslation  RandomZoom  RandomShear    geometric
    RandomContrast  RandomBrightness                                        photometric
    Rescaling  Normalization                                                always applied

The random layers change their input only in training (``layer(x, training=True)``, or inside
``model.fit``); at inference they return it unchanged (cast to float32, as Keras does). Each
draws its random numbers from its own NumPy Generator when built with ``seed=``, else from
chainrule's shared one (``chainrule.random.seed(n)`` repeats a run). Inputs are NHWC batches
(a single HWC image works too), as Tensors or arrays.

Every geometric layer is one inverse-affine resampling per image (``affine_transform``): for
each output pixel the transform gives the input coordinate to read, interpolated bilinearly
or by nearest pixel, with coordinates outside the image filled as Keras's ``fill_mode`` says.

Segmentation masks: pass ``[images, masks]`` (or Keras 3's ``{"images": ..., "segmentation_masks":
...}``) and the SAME random transform is applied to both, the masks with nearest interpolation
so their values stay labels; photometric layers leave masks unchanged::

    images, masks = layers.RandomRotation(0.1, seed=0)([images, masks], training=True)

These layers need no gradient (their inputs are data) and their outputs are not connected to
the graph; put them first in a model. Rescaling and Normalization are ordinary differentiable
ops and work anywhere.
"""
import math

import numpy as np

from .. import backend, random
from ..autograd import Tensor
from .base import Layer, serializable

__all__ = ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear", "RandomContrast",
           "RandomBrightness", "Rescaling", "Normalization", "affine_transform"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest", "mirror")
INTERPOLATIONS = ("bilinear", "nearest")
EPSILON = 1e-7  # keras.config.epsilon()


# ============================================================================= resampling
def _fold_index(index, size, fill_mode, xp):
    """Integer coordinates outside 0..size-1 mapped back inside, as `fill_mode` extends the image:
    reflect (d c b a | a b c d | d c b a), mirror (d c b | a b c d | c b a), wrap (a b c d | a b c d),
    nearest and constant (a a | a b c d | d d; constant then masks these pixels out)."""
    if fill_mode in ("nearest", "constant"):
        return xp.clip(index, 0, size - 1)
    low, high = int(index.min()), int(index.max())
    if low >= 0 and high < size:
        return index  # the common case: nothing falls outside
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "mirror" and size == 1:
        return xp.zeros_like(index)
    period = 2 * size if fill_mode == "reflect" else 2 * size - 2
    # within one reflection either side two selects suffice; farther out, fold by the period first
    folded = index if low >= -(period // 2) and high < period else index % period
    if fill_mode == "reflect":  # -1 -> 0, size -> size - 1
        folded = xp.where(folded < 0, -1 - folded, folded)
        return xp.where(folded >= size, period - 1 - folded, folded)
    folded = xp.where(folded < 0, -folded, folded)  # mirror: -1 -> 1, size -> size - 2
    return xp.where(folded >= size, period - folded, folded)


def affine_transform(images, transforms, interpolation="bilinear", fill_mode="constant", fill_value=0.0):
    """Resample NHWC `images` through one projective transform per image (Keras's convention).

    A row [a0, a1, a2, b0, b1, b2, c0, c1] maps each OUTPUT pixel (x, y) to the INPUT point
        x' = (a0 x + a1 y + a2) / k,   y' = (b0 x + b1 y + b2) / k,   k = c0 x + c1 y + 1,
    whose value is interpolated from its 4 neighbours (bilinear) or its nearest pixel.
    Everything is computed for all pixels of all images at once: one gather per neighbour.
    (The projective terms c0, c1 follow TensorFlow's ImageProjectiveTransform; every layer here
    uses c0 = c1 = 0, where the result equals keras.ops.image.affine_transform's exactly.)
    """
    xp = backend.array_module(images)
    n, h, w, c = images.shape
    t = xp.asarray(np.broadcast_to(np.asarray(transforms, dtype=np.float32).reshape(-1, 8), (n, 8)))
    a0, a1, a2, b0, b1, b2, c0, c1 = (t[:, i, None, None] for i in range(8))
    ys = xp.arange(h, dtype=np.float32)[None, :, None]
    xs = xp.arange(w, dtype=np.float32)[None, None, :]
    k = c0 * xs + c1 * ys + 1
    src_x = (a0 * xs + a1 * ys + a2) / k        # (n, h, w) input coordinates of every output pixel
    src_y = (b0 * xs + b1 * ys + b2) / k
    # only absurd transforms reach 2^30 pixels away; the clip keeps int32 indices from overflowing
    src_x, src_y = xp.clip(src_x, -2.0 ** 30, 2.0 ** 30), xp.clip(src_y, -2.0 ** 30, 2.0 ** 30)
    index_type = np.int32 if n * h * w < 2 ** 31 - 1 else np.int64  # int32 halves the index traffic
    if interpolation == "nearest":
        rows = [(xp.round(src_y).astype(index_type), None)]
        cols = [(xp.round(src_x).astype(index_type), None)]
    else:
        y0, x0 = xp.floor(src_y), xp.floor(src_x)
        fy, fx = (src_y - y0)[..., None], (src_x - x0)[..., None]
        y0, x0 = y0.astype(index_type), x0.astype(index_type)
        rows = [(y0, 1 - fy), (y0 + 1, fy)]
        cols = [(x0, 1 - fx), (x0 + 1, fx)]
    # each neighbour row/column is folded back into the image once, then combined
    rows = [(yi, _fold_index(yi, h, fill_mode, xp) * w, wy) for yi, wy in rows]
    cols = [(xi, _fold_index(xi, w, fill_mode, xp), wx) for xi, wx in cols]
    flat = images.reshape(n * h * w, c)
    base = xp.arange(n, dtype=index_type).reshape(n, 1, 1) * (h * w)
    out = None
    for yi, row_start, wy in rows:
        for xi, col, wx in cols:
            value = flat[base + row_start + col]
            if fill_mode == "constant":
                inside = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
                value = xp.where(inside, value, xp.asarray(fill_value, dtype=value.dtype))
            if wy is not None:
                value = value * (wy * wx)
            out = value if out is None else out + value
    return out.astype(images.dtype)


# ============================================================================= factors
def _factor_range(factor, name, low, high, layer):
    """Keras's factor argument: a number f gives (-|f|, |f|), a pair gives (min, max); each in [low, high]."""
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2:
            raise ValueError(f"{layer}: {name} must be a number or a pair (lower, upper), got {factor}")
        lower, upper = sorted(float(f) for f in factor)
    elif isinstance(factor, (int, float, np.number)):
        lower, upper = -abs(float(factor)), abs(float(factor))
    else:
        raise ValueError(f"{layer}: {name} must be a number or a pair (lower, upper), got {factor!r}")
    if any(not low <= f <= high for f in (factor if isinstance(factor, (list, tuple)) else (factor,))):
        raise ValueError(f"{layer}: {name} values must lie in [{low}, {high}], got {name}={factor}")
    return lower, upper


def _check_choice(value, allowed, what, layer):
    if value not in allowed:
        raise ValueError(f"{layer}: unknown {what} {value!r}; expected one of {allowed}")


# ============================================================================= the base layer
class BaseRandomLayer(Layer):
    """A random layer: draws its parameters per image, changes images only in training.

    Subclasses implement ``draw(n, height, width, rng)`` (the random parameters of a batch of n)
    and ``apply(images, params, interpolation)`` on NHWC NumPy arrays; geometric layers are
    also applied to segmentation masks with nearest interpolation.
    """
    geometric = True
    interpolation = "bilinear"

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.data_format = data_format or "channels_last"
        _check_choice(self.data_format, ("channels_last", "channels_first"), "data_format", self._label)
        self._rng = np.random.default_rng(seed) if seed is not None else None

    @property
    def _label(self):
        return f"{type(self).__name__} '{self.name}'"

    @property
    def generator(self):
        """This layer's Generator (its own with seed=, else chainrule's shared one)."""
        return self._rng if self._rng is not None else random.generator()

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, inputs, training=False):
        images, masks, pack = _split_inputs(inputs, self._label)
        images = images.astype(self.dtype)  # Keras casts images to the compute dtype, even at inference
        if not training:
            return pack(images, masks)
        x, unbatched = _as_nhwc(images.data, self.data_format, self._label)
        params = self.draw(x.shape[0], x.shape[1], x.shape[2], self.generator)
        out = _from_nhwc(self.apply(x, params, self.interpolation), self.data_format, unbatched)
        if masks is not None and self.geometric:
            m, m_unbatched = _as_nhwc(masks.data, self.data_format, self._label)
            if m.shape[:3] != x.shape[:3]:
                raise ValueError(f"{self._label}: masks of shape {masks.shape} do not match images of shape "
                                 f"{images.shape} (same batch, height and width needed)")
            masks = Tensor(_from_nhwc(self.apply(m, params, "nearest"), self.data_format, m_unbatched))
        return pack(Tensor(out), masks)

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed, "data_format": self.data_format})
        return config


def _split_inputs(inputs, label):
    """(images, masks or None, pack) for a Tensor, a [images, masks] pair, or Keras 3's dict."""
    if isinstance(inputs, dict):
        if "images" not in inputs:
            raise ValueError(f"{label}: a dict input needs an 'images' entry (and optionally "
                             f"'segmentation_masks'), got keys {sorted(inputs)}")

        def pack_dict(images, masks):
            out = dict(inputs, images=images)
            if masks is not None:
                out["segmentation_masks"] = masks
            return out
        return inputs["images"], inputs.get("segmentation_masks"), pack_dict
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != 2:
            raise ValueError(f"{label}: a list input must be [images, masks], got {len(inputs)} items")
        kind = type(inputs)
        return inputs[0], inputs[1], lambda images, masks: kind([images, masks])
    return inputs, None, lambda images, masks: images


def _as_nhwc(x, data_format, label):
    if x.ndim not in (3, 4):
        raise ValueError(f"{label} expects images of rank 4 (batch, height, width, channels) or 3 (one image), "
                         f"got shape {tuple(x.shape)}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if data_format == "channels_first":
        x = x.transpose(0, 2, 3, 1)
    return x, unbatched


def _from_nhwc(x, data_format, unbatched):
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    return x[0] if unbatched else x


class BaseAffineLayer(BaseRandomLayer):
    """A geometric layer: `draw` returns one transform row per image (see affine_transform)."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        _check_choice(fill_mode, FILL_MODES, "fill_mode", self._label)
        _check_choice(interpolation, INTERPOLATIONS, "interpolation", self._label)
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = fill_value

    def apply(self, images, transforms, interpolation):
        return affine_transform(images, transforms, interpolation, self.fill_mode, self.fill_value)

    def get_config(self):
        config = super().get_config()
        config.update({"fill_mode": self.fill_mode, "interpolation": self.interpolation,
                       "fill_value": self.fill_value})
        return config


def _affine_rows(height, width, angle=0.0, scale_x=1.0, scale_y=1.0, shift_x=0.0, shift_y=0.0):
    """Transform rows (n, 8) that rotate by `angle` (radians) and scale about the image centre
    ((width - 1) / 2, (height - 1) / 2), then shift; output pixel p reads input c + M (p - c) - t."""
    angle, scale_x, scale_y, shift_x, shift_y = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (angle, scale_x, scale_y, shift_x, shift_y)))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = np.cos(angle), np.sin(angle)
    a0, a1 = scale_x * cos, -scale_x * sin
    b0, b1 = scale_y * sin, scale_y * cos
    a2 = cx - a0 * cx - a1 * cy - shift_x
    b2 = cy - b0 * cx - b1 * cy - shift_y
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=-1).astype(np.float32)


# ============================================================================= geometric layers
@serializable
class RandomFlip(BaseRandomLayer):
    """Flip images left-right ('horizontal'), top-bottom ('vertical') or both, each image with
    probability 1/2. As in Keras 3, 'horizontal_and_vertical' tosses ONE coin per image: an image
    is left alone or flipped both ways (turned 180 degrees)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        _check_choice(mode, ("horizontal", "vertical", "horizontal_and_vertical"), "mode", self._label)
        self.mode = mode

    def draw(self, n, height, width, rng):
        return rng.uniform(size=n) <= 0.5

    def apply(self, images, flips, interpolation):
        xp = backend.array_module(images)
        flips = xp.asarray(flips)[:, None, None, None]
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = xp.where(flips, images[:, :, ::-1], images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = xp.where(flips, images[:, ::-1], images)
        return images

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


@serializable
class RandomRotation(BaseAffineLayer):
    """Rotate each image about its centre by an angle drawn uniformly from
    [lower, upper] * 360 degrees, where `factor` = f gives (lower, upper) = (-f, f) (fractions of a turn)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor_range(factor, "factor", -1.0, 1.0, self._label)

    def draw(self, n, height, width, rng):
        angle = rng.uniform(self.factor[0] * 2 * math.pi, self.factor[1] * 2 * math.pi, size=n)
        return _affine_rows(height, width, angle=angle)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@serializable
class RandomTranslation(BaseAffineLayer):
    """Shift each image by dy = U(height_factor) * height and dx = U(width_factor) * width pixels
    (a factor f means U(-f, f); a pair (a, b) means U(a, b); positive moves content down / right)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._height_range = _factor_range(height_factor, "height_factor", -1.0, 1.0, self._label)
        self._width_range = _factor_range(width_factor, "width_factor", -1.0, 1.0, self._label)

    def draw(self, n, height, width, rng):
        dy = rng.uniform(*self._height_range, size=n) * height
        dx = rng.uniform(*self._width_range, size=n) * width
        return _affine_rows(height, width, shift_x=dx, shift_y=dy)

    def get_config(self):
        config = super().get_config()
        config.update({"height_factor": self.height_factor, "width_factor": self.width_factor})
        return config


@serializable
class RandomZoom(BaseAffineLayer):
    """Zoom each image about its centre: the input region read is 1 + U(height_factor) times the
    image height (and likewise for the width; with width_factor=None the aspect ratio is kept).
    As in Keras, a POSITIVE factor zooms OUT (the content shrinks), a negative one zooms in."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._height_range = _zoom_range(height_factor, "height_factor", self._label)
        self._width_range = None if width_factor is None else _zoom_range(width_factor, "width_factor", self._label)

    def draw(self, n, height, width, rng):
        zoom_y = 1.0 + rng.uniform(*self._height_range, size=n)
        zoom_x = zoom_y if self._width_range is None else 1.0 + rng.uniform(*self._width_range, size=n)
        return _affine_rows(height, width, scale_x=zoom_x, scale_y=zoom_y)

    def get_config(self):
        config = super().get_config()
        config.update({"height_factor": self.height_factor, "width_factor": self.width_factor})
        return config


def _zoom_range(factor, name, label):
    lower, upper = _factor_range(factor, name, -1.0, 1.0, label)
    if lower <= -1.0:
        raise ValueError(f"{label}: {name} must be > -1 (a zoom of 1 + {lower} would read an empty region), "
                         f"got {factor}")
    return lower, upper


@serializable
class RandomShear(BaseAffineLayer):
    """Shear each image: output pixel (x, y) reads input (x + s_x y, y + s_y x), with s_x drawn from
    U(x_factor) and s_y from U(y_factor) (a factor f in [0, 1] means U(-f, f)) and both negated
    for half of the images. As in Keras 3 the shear is about the top-left corner."""

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 data_format=None, seed=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.x_factor = x_factor
        self.y_factor = y_factor
        self._x_range = _factor_range(x_factor, "x_factor", 0.0, 1.0, self._label)
        self._y_range = _factor_range(y_factor, "y_factor", 0.0, 1.0, self._label)

    def draw(self, n, height, width, rng):
        sign = np.where(rng.uniform(size=n) > 0.5, -1.0, 1.0)
        shear_y = rng.uniform(*self._y_range, size=n) * sign
        shear_x = rng.uniform(*self._x_range, size=n) * sign
        ones, zeros = np.ones(n), np.zeros(n)
        return np.stack([ones, shear_x, zeros, shear_y, ones, zeros, zeros, zeros], axis=1).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"x_factor": self.x_factor, "y_factor": self.y_factor})
        return config


# ============================================================================= photometric layers
def _value_range(value_range, label):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise ValueError(f"{label}: value_range must be a pair (low, high), e.g. (0, 255) or (0, 1); "
                         f"got {value_range!r}")
    return tuple(sorted(float(v) for v in value_range))


@serializable
class RandomContrast(BaseRandomLayer):
    """Scale each image's deviation from its mean: y = (x - mean) * c + mean, clipped to value_range,
    with mean taken per image and channel over height and width, and c drawn from
    U(1 - lower, 1 + upper): factor f gives U(1 - f, 1 + f) and (a, b) gives U(1 - a, 1 + b).

    (Keras 3's docstring promises U(1 - f, 1 + f); its code, as of 3.15, draws from U(1, 1 + f)
    for a single number. We do what the documentation says.)"""
    geometric = False

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        if isinstance(factor, (list, tuple)):
            self._range = _factor_range(factor, "factor", 0.0, 1.0, self._label)
        else:
            f = _factor_range(factor, "factor", 0.0, 1.0, self._label)[1]
            self._range = (f, f)
        self.value_range = _value_range(value_range, self._label)

    def draw(self, n, height, width, rng):
        return rng.uniform(1.0 - self._range[0], 1.0 + self._range[1], size=n).astype(np.float32)

    def apply(self, images, factors, interpolation):
        xp = backend.array_module(images)
        mean = images.mean(axis=(1, 2), keepdims=True)
        out = (images - mean) * xp.asarray(factors)[:, None, None, None] + mean
        return xp.clip(out, *self.value_range).astype(images.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor, "value_range": self.value_range})
        return config


@serializable
class RandomBrightness(BaseRandomLayer):
    """Add a random delta to every pixel of an image: y = clip(x + d (high - low), low, high), with
    d drawn from U(-f, f) for factor f (or U(a, b) for a pair), f in [-1, 1], (low, high) = value_range."""
    geometric = False

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_range(factor, "factor", -1.0, 1.0, self._label)
        self.value_range = _value_range(value_range, self._label)

    def draw(self, n, height, width, rng):
        low, high = self.value_range
        return (rng.uniform(*self.factor, size=n) * (high - low)).astype(np.float32)

    def apply(self, images, deltas, interpolation):
        xp = backend.array_module(images)
        return xp.clip(images + xp.asarray(deltas)[:, None, None, None], *self.value_range).astype(images.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor, "value_range": self.value_range})
        return config


# ============================================================================= always-on layers
@serializable
class Rescaling(Layer):
    """y = x * scale + offset (e.g. scale=1/255 maps pixels to [0, 1]; scale=1/127.5, offset=-1 to
    [-1, 1]). Applied in training and inference; a differentiable op."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, inputs):
        x = inputs.astype(self.dtype)
        scale = np.asarray(self.scale, dtype=self.dtype)
        offset = np.asarray(self.offset, dtype=self.dtype)
        return x * Tensor(scale) + Tensor(offset)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"scale": _plain(self.scale), "offset": _plain(self.offset)})
        return config


def _plain(value):
    return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value


@serializable
class Normalization(Layer):
    """y = (x - mean) / max(sqrt(variance), 1e-7), mean and variance per position along `axis`
    (axis=None: one scalar of each). Give `mean` and `variance`, or call ``adapt(data)`` to
    compute them from data (population variance, as Keras). ``invert=True`` maps back:
    y = mean + x * max(sqrt(variance), 1e-7)."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization '{self.name}': give both mean and variance, or neither "
                             f"(and call adapt); got mean={mean}, variance={variance}")
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(f"Normalization '{self.name}': mean has shape {np.shape(mean)} but variance has "
                             f"shape {np.shape(variance)}; they must match")
        self.input_mean = mean
        self.input_variance = variance
        self.invert = invert
        self.mean = None
        self.variance = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"Normalization '{self.name}': axis={self.axis} is out of range for inputs of shape "
                             f"{tuple(input_shape)}")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for a in self._keep_axis:
            if input_shape[a] is None:
                raise ValueError(f"Normalization '{self.name}': axis {a} of the input shape {tuple(input_shape)} "
                                 f"must be known to keep a statistic per position along it")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        stat_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(stat_shape, "zeros", trainable=False, name="mean")
            self.adapt_variance = self.add_weight(stat_shape, "ones", trainable=False, name="variance")
            self.count = self.add_weight((), "zeros", dtype="int64", trainable=False, name="count")
        else:
            self.mean, self.variance = (self._broadcast(v) for v in (self.input_mean, self.input_variance))
        self.built = True

    def _broadcast(self, value):
        """A given mean/variance (scalar, or one value per kept position) in broadcastable shape."""
        value = np.asarray(value, dtype=self.dtype)
        if value.ndim:
            shape = [1] * len(self._broadcast_shape)
            for i, size in zip(self._keep_axis[len(self._keep_axis) - value.ndim:], value.shape):
                shape[i] = size
            value = value.reshape(shape)
        return np.broadcast_to(value, self._broadcast_shape)

    def adapt(self, data):
        """Compute mean and variance over every axis but `axis`, from an array or an iterable of
        batches (x, or (x, y) tuples); batches are merged with the pooled-variance formula."""
        if isinstance(data, Tensor):
            data = data.data
        if hasattr(data, "shape") and hasattr(data, "dtype"):
            batches, shape = [backend.to_numpy(data)], tuple(data.shape)
        else:
            batches = (_first(b) for b in data)
            first = next(batches, None)
            if first is None:
                raise ValueError(f"Normalization '{self.name}'.adapt got an empty iterable; pass an array or "
                                 f"batches of arrays")
            batches, shape = _chain(first, batches), tuple(np.shape(first))
        self._maybe_build(shape)
        if self.input_mean is not None:
            raise ValueError(f"Normalization '{self.name}' was given mean and variance; it cannot also adapt")
        if len(shape) != len(self._broadcast_shape) or any(shape[d] != self._broadcast_shape[d]
                                                           for d in self._keep_axis):
            raise ValueError(f"Normalization '{self.name}' was built for inputs like {self._build_shape} but adapt "
                             f"got data of shape {shape}; the kept axes {self._keep_axis} must match")
        total_mean = total_var = None
        total = 0
        for batch in batches:
            batch = np.asarray(backend.to_numpy(batch), dtype=np.float64)
            mean, var = batch.mean(axis=self._reduce_axis), batch.var(axis=self._reduce_axis)
            count = math.prod(batch.shape[d] for d in self._reduce_axis)
            if total_mean is None:
                total_mean, total_var, total = mean, var, count
                continue
            # merge two groups: pooled variance = weighted variances + weighted squared mean shifts
            total += count
            w_new = count / total
            merged = total_mean * (1 - w_new) + mean * w_new
            total_var = ((total_var + (total_mean - merged) ** 2) * (1 - w_new)
                         + (var + (mean - merged) ** 2) * w_new)
            total_mean = merged
        self.adapt_mean.assign(total_mean.astype(self.dtype))
        self.adapt_variance.assign(total_var.astype(self.dtype))

    def call(self, inputs):
        x = inputs.astype(self.dtype)
        if self.input_mean is None:
            mean = self.adapt_mean.data.reshape(self._broadcast_shape)
            variance = self.adapt_variance.data.reshape(self._broadcast_shape)
        else:
            mean, variance = self.mean, self.variance
        xp = backend.array_module(x.data)
        std = xp.maximum(xp.sqrt(xp.asarray(variance)), self.dtype.type(EPSILON))
        mean = Tensor(xp.asarray(mean))
        if self.invert:
            return mean + x * Tensor(std)
        return (x - mean) / Tensor(std)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "invert": self.invert,
                       "mean": None if self.input_mean is None else np.asarray(self.input_mean).tolist(),
                       "variance": None if self.input_variance is None else np.asarray(self.input_variance).tolist()})
        return config


def _first(batch):
    """The inputs of a batch given as x, (x, y) or (x, y, sample_weight)."""
    return batch[0] if isinstance(batch, tuple) else batch


def _chain(first, rest):
    yield first
    yield from rest
