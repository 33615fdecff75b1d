"""Layers that resize the spatial axes of channels-last data without weights:

    UpSampling1D/2D     repeat each step/pixel (or interpolate bilinearly): sizes times `size`
    ZeroPadding1D/2D    add rows/columns of zeros around the border
    Cropping1D/2D       drop rows/columns from the border

An unknown (None) spatial size stays None in `compute_output_shape`, so fully convolutional
models can be built on Input(shape=(None, None, 3)).
"""
import numbers

from ..ops import pool as pool_ops
from ..ops import shape as shape_ops
from .base import Layer, serializable, standardize_tuple
from .convolutional import check_spatial_input, standardize_data_format


__all__ = ["UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D"]


def _pairs(value, what, layer_class, default_name):
    """Keras's 2-D padding/cropping argument: int, (symmetric_h, symmetric_w) or ((top, bottom), (left, right))."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pairs = ((int(value),) * 2,) * 2
    elif hasattr(value, "__len__") and len(value) == 2:
        pairs = tuple(standardize_tuple(v, 2, f"{layer_class}: {what} entry") for v in value)
    else:
        raise ValueError(f"{layer_class}: {what} must be an int, a tuple of 2 ints (symmetric_height, "
                         f"symmetric_width) or a tuple of 2 tuples of 2 ints ((top, bottom), (left, right)), "
                         f"got {value!r}; e.g. {default_name}")
    if min(min(p) for p in pairs) < 0:
        raise ValueError(f"{layer_class}: {what} cannot be negative, got {pairs}")
    return pairs


def _grow(n, delta):
    return None if n is None else n + delta


class _Spatial(Layer):
    """Rank checks shared by the layers here; subclasses set `rank`."""

    rank = None

    def _check_rank(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)


# ----------------------------------------------------------------------------- upsampling
@serializable
class UpSampling1D(_Spatial):
    """y[n, t, c] = x[n, t // size, c]: each step repeated `size` times, (batch, size * steps, channels)."""

    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, numbers.Integral) or isinstance(size, bool):
            raise TypeError(f"UpSampling1D: size must be an int, got {type(size).__name__} {size!r}")
        if size <= 0:
            raise ValueError(f"UpSampling1D: size must be positive, got {size}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 1)
        n = input_shape[1]
        return (input_shape[0], None if n is None else n * self.size, input_shape[2])

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, 1)
        return pool_ops.upsample1d(inputs, self.size)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size
        return config


@serializable
class UpSampling2D(_Spatial):
    """Enlarge (batch, height, width, channels) by integer factors `size` = (fh, fw).

    'nearest': y[n, i, j, c] = x[n, i // fh, j // fw, c] (each pixel becomes an fh x fw block);
    'bilinear': linear interpolation with half-pixel centres, as Keras 3 (and PyTorch's
    align_corners=False) do.
    """

    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, "UpSampling2D")
        self.size = standardize_tuple(size, 2, "UpSampling2D: size")
        if min(self.size) < 1:
            raise ValueError(f"UpSampling2D: size must be positive, got {self.size}")
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"UpSampling2D: interpolation {interpolation!r} is not supported; use 'nearest' "
                             f"or 'bilinear'")

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 2)
        b, h, w, c = input_shape
        return (b, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, 2)
        return pool_ops.upsample2d(inputs, self.size, interpolation=self.interpolation)

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "data_format": self.data_format, "interpolation": self.interpolation})
        return config


# ----------------------------------------------------------------------------- zero padding
@serializable
class ZeroPadding1D(_Spatial):
    """Zeros before and after the steps axis: padding = p (both sides) or (before, after)."""

    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, "ZeroPadding1D")
        self.padding = standardize_tuple(padding, 2, "ZeroPadding1D: padding")
        if min(self.padding) < 0:
            raise ValueError(f"ZeroPadding1D: padding cannot be negative, got {self.padding}")

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 1)
        return (input_shape[0], _grow(input_shape[1], sum(self.padding)), input_shape[2])

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, 1)
        return shape_ops.pad(inputs, ((0, 0), self.padding, (0, 0)))

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "data_format": self.data_format})
        return config


@serializable
class ZeroPadding2D(_Spatial):
    """Rows of zeros above and below, columns left and right, of (batch, height, width, channels).

    padding = p (all four sides), (ph, pw) (symmetric), or ((top, bottom), (left, right)).
    ZeroPadding2D(1) before a 3x3 'valid' convolution keeps the image size, as padding='same' would.
    """

    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, "ZeroPadding2D")
        self.padding = _pairs(padding, "padding", "ZeroPadding2D", "ZeroPadding2D(((1, 1), (2, 2)))")

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 2)
        (t, b), (l, r) = self.padding
        return (input_shape[0], _grow(input_shape[1], t + b), _grow(input_shape[2], l + r), input_shape[3])

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, 2)
        return shape_ops.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "data_format": self.data_format})
        return config


# ----------------------------------------------------------------------------- cropping
def _crop_error(layer, shape, cropping):
    return ValueError(f"{type(layer).__name__} '{layer.name}': cropping {cropping} removes the whole of input "
                      f"shape {tuple(shape)}; each axis must keep at least one element, so crop less")


@serializable
class Cropping1D(_Spatial):
    """Drop `cropping` = (before, after) steps (or the same number on both sides) of (batch, steps, channels)."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = standardize_tuple(cropping, 2, "Cropping1D: cropping")
        if min(self.cropping) < 0:
            raise ValueError(f"Cropping1D: cropping cannot be negative, got {self.cropping}")

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 1)
        n = input_shape[1]
        if n is not None and sum(self.cropping) >= n:
            raise _crop_error(self, input_shape, self.cropping)
        return (input_shape[0], _grow(n, -sum(self.cropping)), input_shape[2])

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)
        a, b = self.cropping
        return shape_ops.getitem(inputs, (slice(None), slice(a, inputs.shape[1] - b)))

    def get_config(self):
        config = super().get_config()
        config["cropping"] = self.cropping
        return config


@serializable
class Cropping2D(_Spatial):
    """Drop rows from the top and bottom and columns from the left and right of (batch, height, width, channels).

    cropping = c (all four sides), (ch, cw) (symmetric), or ((top, bottom), (left, right)).
    """

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, "Cropping2D")
        self.cropping = _pairs(cropping, "cropping", "Cropping2D", "Cropping2D(((2, 2), (4, 4)))")

    def compute_output_shape(self, input_shape):
        check_spatial_input(self, input_shape, 2)
        (t, b), (l, r) = self.cropping
        h, w = input_shape[1:3]
        if (h is not None and t + b >= h) or (w is not None and l + r >= w):
            raise _crop_error(self, input_shape, self.cropping)
        return (input_shape[0], _grow(h, -(t + b)), _grow(w, -(l + r)), input_shape[3])

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)
        (t, b), (l, r) = self.cropping
        _, h, w, _ = inputs.shape
        return shape_ops.getitem(inputs, (slice(None), slice(t, h - b), slice(l, w - r)))

    def get_config(self):
        config = super().get_config()
        config.update({"cropping": self.cropping, "data_format": self.data_format})
        return config
