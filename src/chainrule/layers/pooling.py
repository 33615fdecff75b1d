"""Pooling layers over channels-last data, Keras 3's names and defaults.

    MaxPooling1D/2D, AveragePooling1D/2D        a window slides over the spatial axes
    GlobalMaxPooling1D/2D, GlobalAveragePooling1D/2D   one window covering all of them

`strides` defaults to `pool_size` (non-overlapping windows). Output length per spatial axis:
'valid' floor((n - k) / s) + 1, 'same' ceil(n / s). The work is done by `chainrule.ops.pool`.
"""
from ..ops import pool as pool_ops
from .base import Layer, serializable, standardize_tuple
from .convolutional import check_spatial_input, standardize_data_format


__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D",
           "AvgPool1D", "AvgPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D"]


class BasePooling(Layer):
    """Shared by the windowed pooling layers; subclasses set `rank` and `op`."""

    rank = None
    op = None

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.input_ndim = self.rank + 2
        self.pool_size = standardize_tuple(pool_size, self.rank, f"{kind}: pool_size")
        self.strides = standardize_tuple(self.pool_size if strides is None else strides, self.rank,
                                         f"{kind}: strides")
        if min(self.pool_size) < 1 or min(self.strides) < 1:
            raise ValueError(f"{kind}: pool_size and strides must be positive, got pool_size={self.pool_size} "
                             f"and strides={self.strides}")
        if str(padding).lower() not in ("valid", "same"):
            raise ValueError(f"{kind}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding  # kept as given, as Keras does ('SAME' stays 'SAME' in the config)
        self.data_format = standardize_data_format(data_format, kind)

    def _check_rank(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)

    def compute_output_shape(self, input_shape):
        """(batch, *spatial_out, channels); an unknown (None) spatial size stays None."""
        input_shape = tuple(input_shape)
        check_spatial_input(self, input_shape, self.rank)
        same = self.padding.lower() == "same"
        spatial = []
        for n, k, s in zip(input_shape[1:-1], self.pool_size, self.strides):
            if n is None:
                spatial.append(None)
            elif same:
                spatial.append(-(-n // s))
            elif n < k:
                raise ValueError(f"{type(self).__name__} '{self.name}': input of shape {input_shape} is smaller "
                                 f"than pool_size={self.pool_size} with padding='valid'; use a smaller "
                                 f"pool_size or padding='same'")
            else:
                spatial.append((n - k) // s + 1)
        return (input_shape[0],) + tuple(spatial) + (input_shape[-1],)

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, self.rank)
        return self.op(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                       "data_format": self.data_format})
        return config


@serializable
class MaxPooling1D(BasePooling):
    """y[n, t, c] = max of x[n, t*s : t*s + k, c] over each window of (batch, steps, channels)."""

    rank = 1
    op = staticmethod(pool_ops.max_pool1d)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


@serializable
class MaxPooling2D(BasePooling):
    """y[n, i, j, c] = max of the (kh, kw) window at (i*sh, j*sw) of x (batch, height, width, channels).

    The gradient goes to the window's (first) maximal element only: 2x2 pooling passes back one
    gradient in four, which is why max pooling "routes" rather than averages.
    """

    rank = 2
    op = staticmethod(pool_ops.max_pool2d)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


@serializable
class AveragePooling1D(BasePooling):
    """y[n, t, c] = mean of x[n, t*s : t*s + k, c]; with 'same' only the real (unpadded) elements count."""

    rank = 1
    op = staticmethod(pool_ops.avg_pool1d)

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


@serializable
class AveragePooling2D(BasePooling):
    """y[n, i, j, c] = mean of the (kh, kw) window at (i*sh, j*sw); with 'same' only real elements count."""

    rank = 2
    op = staticmethod(pool_ops.avg_pool2d)

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


# ----------------------------------------------------------------------------- global pooling
class BaseGlobalPooling(Layer):
    """Shared by the global pooling layers: (batch, *spatial, channels) -> (batch, channels)."""

    rank = None
    op = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.input_ndim = self.rank + 2
        self.data_format = standardize_data_format(data_format, type(self).__name__)
        self.keepdims = keepdims

    def _check_rank(self, input_shape):
        check_spatial_input(self, input_shape, self.rank)

    def compute_output_shape(self, input_shape):
        """(batch, channels), or (batch, 1, ..., 1, channels) with keepdims=True."""
        input_shape = tuple(input_shape)
        check_spatial_input(self, input_shape, self.rank)
        middle = (1,) * self.rank if self.keepdims else ()
        return (input_shape[0],) + middle + (input_shape[-1],)

    def call(self, inputs):
        check_spatial_input(self, inputs.shape, self.rank)
        return self.op(inputs, keepdims=self.keepdims)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


@serializable
class GlobalAveragePooling1D(BaseGlobalPooling):
    """y[n, c] = mean over t of x[n, t, c]."""

    rank = 1
    op = staticmethod(pool_ops.global_avg_pool1d)


@serializable
class GlobalAveragePooling2D(BaseGlobalPooling):
    """y[n, c] = mean over (i, j) of x[n, i, j, c]: one number per feature map, often before the classifier."""

    rank = 2
    op = staticmethod(pool_ops.global_avg_pool2d)


@serializable
class GlobalMaxPooling1D(BaseGlobalPooling):
    """y[n, c] = max over t of x[n, t, c]."""

    rank = 1
    op = staticmethod(pool_ops.global_max_pool1d)


@serializable
class GlobalMaxPooling2D(BaseGlobalPooling):
    """y[n, c] = max over (i, j) of x[n, i, j, c]."""

    rank = 2
    op = staticmethod(pool_ops.global_max_pool2d)


# Keras's aliases
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
