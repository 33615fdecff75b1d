"""PyTorch `state_dict` interop: the same weights, in PyTorch's names and layouts, as NumPy arrays.

For a Sequential model of Dense, Conv1D, Conv2D, Conv2DTranspose and BatchNormalization layers,
with any weightless layers between them (Flatten, pooling, activations, Dropout), the matching
PyTorch model is the `nn.Sequential` with one module per Keras layer, plus one activation module
right after each layer that has a fused activation:

    Keras                                       nn.Sequential                 state_dict keys
    Conv2D(8, 3, activation="relu")             0 Conv2d(C, 8, 3), 1 ReLU()   0.weight 0.bias
    BatchNormalization()                        2 BatchNorm2d(8, eps=1e-3)    2.weight 2.bias 2.running_mean
                                                                              2.running_var 2.num_batches_tracked
    MaxPooling2D()                              3 MaxPool2d(2)
    Flatten()                                   4 Flatten()
    Dense(10)                                   5 Linear(F, 10)               5.weight 5.bias

Layouts (Keras -> PyTorch):
    Dense            kernel (in, out)               -> Linear.weight (out, in)          (transposed)
    Conv1D           kernel (k, in, out)            -> Conv1d.weight (out, in, k)
    Conv2D           kernel (kh, kw, in, out)       -> Conv2d.weight (out, in, kh, kw)
    Conv2DTranspose  kernel (kh, kw, out, in)       -> ConvTranspose2d.weight (in, out, kh, kw)
    BatchNormalization gamma, beta, moving_mean, moving_variance
                     -> weight, bias, running_mean, running_var (+ num_batches_tracked, saved as 0)

Flatten order. Keras data is channels-last, PyTorch's channels-first, so the same feature map
flattens in two orders: Keras's Flatten of (H, W, C) puts feature (h, w, c) at (h*W + w)*C + c,
PyTorch's Flatten of (C, H, W) puts it at c*H*W + h*W + w. A Dense (or BatchNormalization) right
after a Flatten of spatial data therefore has its input rows permuted on the way: the kernel is
read as (H, W, C, out), its C axis moved first, and flattened again; importing undoes it. With
that, both models compute the same function on the same image (NHWC for Keras, NCHW for PyTorch).

Things the weights do not carry: set PyTorch's BatchNorm `eps` to Keras's epsilon (Keras's default
1e-3, PyTorch's 1e-5) and remember the momentum conventions differ (Keras 0.99 = PyTorch 0.01).
Padding 'same' maps onto PyTorch's padding='same' (or padding=k//2) for odd kernels at stride 1;
Keras's asymmetric cases (even kernels, strides > 1, Conv2DTranspose 'same', which crops the extra
row at the end) have no symmetric PyTorch padding: the weights still carry over, the layer options
must then be matched by hand (e.g. an nn.ZeroPad2d before the convolution).
"""
import numpy as np

from .. import activations, backend

__all__ = ["export_state_dict", "import_state_dict"]

_SPATIAL_LAYOUTS = {"Conv1D": (2, 1, 0), "Conv2D": (3, 2, 0, 1), "Conv2DTranspose": (3, 2, 0, 1)}
_BN_NAMES = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
             ("running_var", "moving_variance"))
# layers that keep each feature where it is, so a Flatten's order survives them until the next Dense
_ELEMENTWISE = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Identity", "ActivityRegularization"}
_ACTIVATION_LAYERS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU"}  # one module, not two


def _kind(layer):
    return type(layer).__name__


def _plan(model):
    """[(torch index, layer, flatten shape or None)] for the layers with weights, checking the rest."""
    from ..models import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"state_dict interop needs a Sequential model (its layers map to an nn.Sequential); "
                        f"got {type(model).__name__} '{model.name}'")
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: give it an Input or call it on data first")
    plan, index, flattened = [], 0, None
    for layer in model.layers:
        kind = _kind(layer)
        if kind in ("Dense", "BatchNormalization") or kind in _SPATIAL_LAYOUTS:
            if kind == "BatchNormalization" and layer.axis not in (-1, len(layer.input_shape) - 1):
                raise ValueError(f"BatchNormalization '{layer.name}' normalizes axis {layer.axis}; only the "
                                 "channel axis (-1) maps onto PyTorch's BatchNorm")
            plan.append((index, layer, flattened))
            if kind != "BatchNormalization":
                flattened = None
        elif layer.weights:
            raise ValueError(f"{kind} '{layer.name}' has weights but no PyTorch counterpart here; supported "
                             "layers with weights: Dense, Conv1D, Conv2D, Conv2DTranspose, BatchNormalization")
        elif kind == "Flatten":
            shape = tuple(layer.input_shape)[1:]
            flattened = shape if len(shape) > 1 else None
        elif flattened is not None and kind not in _ELEMENTWISE:
            raise ValueError(f"{kind} '{layer.name}' between a Flatten and the next Dense would change the "
                             "order of the flattened features in a way this mapping does not follow")
        index += 1
        if activations.serialize(getattr(layer, "activation", None)) != "linear" and kind not in _ACTIVATION_LAYERS:
            index += 1  # the fused activation is a module of its own in PyTorch
    return plan


# ----------------------------------------------------------------------------- layout changes
def _keras_to_torch_features(v, shape):
    """A per-feature vector or a kernel (features, out) from Keras's flatten order to PyTorch's."""
    tail = v.shape[1:]
    a = v.reshape(shape + tail)
    a = np.moveaxis(a, len(shape) - 1, 0)  # channels first
    return np.ascontiguousarray(a).reshape(v.shape)


def _torch_to_keras_features(v, shape):
    tail = v.shape[1:]
    channels_first = (shape[-1],) + tuple(shape[:-1])
    a = v.reshape(channels_first + tail)
    a = np.moveaxis(a, 0, len(shape) - 1)
    return np.ascontiguousarray(a).reshape(v.shape)


def _to_torch(kind, name, value, flattened):
    if kind == "Dense" and name == "kernel":
        if flattened is not None:
            value = _keras_to_torch_features(value, flattened)
        return np.ascontiguousarray(value.T)
    if kind in _SPATIAL_LAYOUTS and name == "kernel":
        return np.ascontiguousarray(value.transpose(_SPATIAL_LAYOUTS[kind]))
    if kind == "BatchNormalization" and flattened is not None:
        return _keras_to_torch_features(value, flattened)
    return value.copy()


def _from_torch(kind, name, value, flattened):
    if kind == "Dense" and name == "kernel":
        value = value.T
        return _torch_to_keras_features(value, flattened) if flattened is not None else np.ascontiguousarray(value)
    if kind in _SPATIAL_LAYOUTS and name == "kernel":
        return np.ascontiguousarray(value.transpose(np.argsort(_SPATIAL_LAYOUTS[kind])))
    if kind == "BatchNormalization" and flattened is not None:
        return _torch_to_keras_features(value, flattened)
    return value


def _pairs(layer):
    """[(torch name, Keras weight name, variable or None)] of one layer."""
    kind = _kind(layer)
    if kind == "BatchNormalization":
        return [(t, k, getattr(layer, k)) for t, k in _BN_NAMES]
    return [("weight", "kernel", layer.kernel), ("bias", "bias", getattr(layer, "bias", None))]


# ----------------------------------------------------------------------------- the public functions
def export_state_dict(model):
    """The model's weights as a PyTorch-style state_dict: {'0.weight': array, ...} of NumPy arrays
    in PyTorch's names and layouts (see the module docstring for the mapping).

    Load it into the matching nn.Sequential with
    `net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})`.
    """
    state = {}
    for index, layer, flattened in _plan(model):
        kind = _kind(layer)
        for torch_name, keras_name, variable in _pairs(layer):
            if variable is None:
                if kind == "BatchNormalization":  # scale=False / center=False: PyTorch's affine wants both
                    channels = layer.moving_mean.shape[0]
                    value = np.ones(channels, np.float32) if keras_name == "gamma" else np.zeros(channels, np.float32)
                    state[f"{index}.{torch_name}"] = value
                continue
            value = backend.to_numpy(variable.data)
            state[f"{index}.{torch_name}"] = _to_torch(kind, keras_name, value, flattened)
        if kind == "BatchNormalization":
            state[f"{index}.num_batches_tracked"] = np.asarray(0, dtype=np.int64)
    return state


def _as_array(value, key):
    if hasattr(value, "detach"):  # a torch.Tensor: no torch import needed to read one
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if value.dtype == object:
        raise TypeError(f"import_state_dict: '{key}' is not an array ({type(value).__name__})")
    return value


def import_state_dict(model, state_dict, strict=True):
    """Load a PyTorch-style state_dict (NumPy arrays or torch tensors) into `model`, converting
    names and layouts back (see the module docstring). Every key and shape is checked before any
    weight changes. With strict=False, keys the model has no place for are ignored.
    """
    updates, used = [], set()
    for index, layer, flattened in _plan(model):
        kind = _kind(layer)
        for torch_name, keras_name, variable in _pairs(layer):
            key = f"{index}.{torch_name}"
            if variable is None:
                used.add(key)
                continue
            if key not in state_dict:
                raise KeyError(f"import_state_dict: '{key}' is missing; it should hold {kind} '{layer.name}' "
                               f"{keras_name} (expected keys like {sorted(export_state_dict(model))[:4]}...)")
            value = _as_array(state_dict[key], key)
            expected = _to_torch(kind, keras_name, np.zeros(variable.shape, np.float32), flattened).shape
            if tuple(value.shape) != tuple(expected):
                raise ValueError(f"import_state_dict: '{key}' has shape {tuple(value.shape)}, but {kind} "
                                 f"'{layer.name}' {keras_name} of shape {tuple(variable.shape)} needs "
                                 f"{tuple(expected)} in PyTorch's layout")
            value = _from_torch(kind, keras_name, value, flattened)
            updates.append((variable, value))
            used.add(key)
        if kind == "BatchNormalization":
            used.add(f"{index}.num_batches_tracked")
    extra = sorted(set(state_dict) - used)
    if extra and strict:
        raise KeyError(f"import_state_dict: keys {extra} match no weight of model '{model.name}' (pass strict=False "
                       "to ignore them)")
    for variable, value in updates:
        variable.assign(value)
