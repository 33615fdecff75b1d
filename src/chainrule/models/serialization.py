"""Model configs as data: the ONE serializer behind both `.chainrule` and `.keras` files.

`model_to_config(model)` returns the dict Keras 3 writes as `config.json` in a `.keras` file,
and `model_from_config(config)` builds a model back from such a dict, whether Keras or
chainrule wrote it. Both file formats call these functions: `chainrule.io.native` (our
`.chainrule` zip) and `chainrule.io.keras_format` (Keras's `.keras` zip), so a model has a
single description on disk, in Keras's layout:

    {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
     "config": {"name": "dense", "units": 10, ...},            # the layer's get_config()
     "build_config": {"input_shape": [None, 784]},             # how it was built
     "compile_config": {"optimizer": {...}, "loss": ..., ...}} # models only

A functional model's config lists its layers in Keras's order (by depth from the inputs),
each with its calls as "inbound_nodes" ({"args": [...], "kwargs": {...}}, where a tensor is
{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}),
then "input_layers" and "output_layers". A Sequential's config lists its layers, an
InputLayer first when the input shape is known. Nested models nest their configs.

Loading never runs code from the file. Every class is looked up BY NAME: in `custom_objects`,
then in the user registry (`@register_serializable`), then in chainrule's own registries
(layers, optimizers, losses, metrics, initializers, regularizers, schedules). An unknown
name is refused with a message saying how to provide it. A `Lambda` layer whose function
was stored as Python bytecode (Keras's `__lambda__`, a base64 `marshal` dump) is refused
unless the caller passes `safe_mode=False`, and even then a warning says what will run.
"""
import base64
import builtins
import inspect
import marshal
import types
import warnings

import numpy as np

from ..layers import base as layer_base
from ..layers.base import KerasTensor, Layer, flatten, map_structure

__all__ = ["model_to_config", "model_from_config", "serialize_object", "deserialize_object",
           "register_serializable", "get_registered_name", "get_registered_object", "DeserializationError",
           "keras_layer_order", "keras_trainable_variables"]


class DeserializationError(ValueError):
    """A config that chainrule refuses to turn into objects (unknown class, unsafe code, bad data)."""


# ============================================================================ the user registry
_USER_OBJECTS = {}   # "Package>Name" -> class or function
_USER_NAMES = {}     # id(class or function) -> "Package>Name"


def register_serializable(package="Custom", name=None):
    """Decorator registering a class or function under "package>name" (as
    `keras.saving.register_keras_serializable` does), so that saved configs can name it and
    `load_model` can find it without `custom_objects`.

        @register_serializable(package="my_project")
        class Scale(layers.Layer):
            ...
    """
    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"register_serializable: class {obj.__name__} must implement get_config() "
                             f"so that it can be saved as data")
        _USER_OBJECTS[registered] = obj
        _USER_NAMES[id(obj)] = registered
        return obj
    return decorator


def get_registered_name(obj):
    """The "package>name" an object was registered under, else its own name."""
    return _USER_NAMES.get(id(obj), getattr(obj, "__name__", type(obj).__name__))


def get_registered_object(name, custom_objects=None):
    """The class or function registered as `name` (custom_objects first), or None."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return _USER_OBJECTS.get(name)


def _is_builtin(cls):
    return cls.__module__.split(".")[0] == "chainrule"


# ============================================================================ serialize
_PLAIN = (str, int, float, bool, type(None))


def serialize_object(obj):
    """`obj` as JSON-ready data in Keras 3's layout ({'module', 'class_name', 'config',
    'registered_name'} for objects; lists, dicts and plain values as themselves)."""
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_object(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_object(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        if obj.ndim == 0:
            return obj.item()
        return {"class_name": "__numpy__", "config": {"value": obj.tolist(), "dtype": str(obj.dtype)}}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.dtype):
        return str(obj)
    if isinstance(obj, KerasTensor):
        return _tensor_config(obj, None)
    if isinstance(obj, Layer):
        return _serialize_layer(obj)
    if isinstance(obj, types.FunctionType) or (callable(obj) and not hasattr(obj, "get_config")
                                               and hasattr(obj, "__name__") and not inspect.isclass(obj)):
        return _serialize_function(obj)
    return _serialize_other(obj)


def _serialize_function(fn):
    name = getattr(fn, "__name__", None)
    if id(fn) in _USER_NAMES:
        registered = _USER_NAMES[id(fn)]
        return {"module": fn.__module__, "class_name": "function", "config": registered,
                "registered_name": registered}
    if name == "<lambda>":
        warnings.warn("serializing an anonymous `lambda`: chainrule saves functions by name only, never as "
                      "code, so it cannot be loaded back as is. Use a named function registered with "
                      "@register_serializable(), or pass it at load time in custom_objects={'<lambda>': fn}",
                      stacklevel=3)
    # Keras's form for a function known by name (a built-in activation, loss or metric, or a
    # function the loader will find in custom_objects)
    return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}


def _keras_module_of(obj):
    """The Keras module Keras writes for a built-in object of this kind (None for other objects)."""
    from .. import initializers, losses, metrics, optimizers, regularizers, schedules
    for module, kind in (("keras.optimizers", optimizers.Optimizer),
                         ("keras.optimizers.schedules", schedules.LearningRateSchedule),
                         ("keras.losses", losses.Loss), ("keras.metrics", metrics.Metric),
                         ("keras.initializers", initializers.Initializer),
                         ("keras.regularizers", regularizers.Regularizer)):
        if isinstance(obj, kind):
            return module
    return None


def _serialize_other(obj):
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r} of type {type(obj).__name__}: to be saved as data, an "
                        f"object needs get_config() (and from_config to load it back)")
    cls = type(obj)
    module = _keras_module_of(obj)
    config = {k: serialize_object(v) for k, v in obj.get_config().items()}
    schedule = getattr(obj, "_learning_rate", None)
    if module == "keras.optimizers" and callable(schedule) and hasattr(schedule, "get_config"):
        config["learning_rate"] = serialize_object(schedule)  # Keras's full form, with its module
    if module is not None and _is_builtin(cls):
        return {"module": module, "class_name": cls.__name__, "config": config, "registered_name": None}
    return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
            "registered_name": get_registered_name(cls)}


def _policy(dtype_name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype_name}, "registered_name": None}


def _serialize_layer(layer):
    """A layer (or model) in Keras's layout, with its build_config (and compile_config for models)."""
    from .model import Model
    from .sequential import Sequential
    cls = type(layer)
    builtin = _is_builtin(cls)
    if isinstance(layer, Sequential) and builtin:
        out = {"module": "keras", "class_name": "Sequential", "config": _sequential_config(layer),
               "registered_name": None}
    elif isinstance(layer, Model) and layer._graph is not None and builtin:
        out = {"module": "keras.src.models.functional", "class_name": "Functional",
               "config": _functional_config(layer), "registered_name": "Functional"}
    else:
        config = _layer_config_to_keras(layer, layer.get_config())
        if builtin:
            out = {"module": "keras.layers", "class_name": cls.__name__, "config": config, "registered_name": None}
        else:
            out = {"module": cls.__module__, "class_name": cls.__name__, "config": config,
                   "registered_name": get_registered_name(cls)}
    build_config = _build_config(layer)
    if build_config is not None:
        out["build_config"] = build_config
    if isinstance(layer, Model):
        out["compile_config"] = compile_config(layer)
    return out


def _build_config(layer):
    from .model import Model
    from .sequential import Sequential
    from ..layers.input_layer import InputLayer
    if isinstance(layer, InputLayer):
        return None
    if isinstance(layer, Model) and layer._graph is not None and not isinstance(layer, Sequential):
        return {"input_shape": None}  # as Keras: a functional model is built by its graph
    if not layer.built or layer._build_shape is None:
        return None
    return {"input_shape": _shape_to_json(layer._build_shape)}


def _shape_to_json(shape):
    if isinstance(shape, dict):
        return {k: _shape_to_json(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and all(isinstance(s, (list, tuple, dict)) for s in shape):
        return [_shape_to_json(s) for s in shape]
    return [None if s is None else int(s) for s in shape]


def _shape_from_json(shape):
    """JSON lists back to our shapes: a tuple per shape, a list of tuples for several inputs."""
    if shape is None:
        return None
    if isinstance(shape, dict):
        return {k: _shape_from_json(v) for k, v in shape.items()}
    if shape and all(isinstance(s, (list, tuple, dict)) for s in shape):
        return [_shape_from_json(s) for s in shape]
    return tuple(None if s is None else int(s) for s in shape)


def _layer_config_to_keras(layer, config):
    """Our get_config() in Keras's form: a DTypePolicy for dtype, functions as function configs,
    and no `batch_input_shape` (Keras 3 describes inputs with an InputLayer instead)."""
    from ..layers.input_layer import InputLayer
    config = dict(config)
    config.pop("batch_input_shape", None)
    if isinstance(layer, InputLayer):
        config["batch_shape"] = list(config["batch_shape"])
        config.setdefault("sparse", False)
        config.setdefault("ragged", False)
        config.setdefault("optional", False)
        return serialize_object(config)
    if isinstance(config.get("dtype"), str):
        config["dtype"] = _policy(config["dtype"])
    if _is_builtin(type(layer)):
        for key in _KERAS_OMITS.get(type(layer).__name__, ()):
            config.pop(key, None)
    for key, value in config.items():  # nested layer configs (Bidirectional's "layer", ...)
        if _is_layer_config(value):
            config[key] = _nested_layer_config_to_keras(value)
    if type(layer).__name__ == "Lambda" and _is_builtin(type(layer)):
        config["function"] = _serialize_function(layer.function)
        shape = getattr(layer, "_output_shape", None)
        if callable(shape):
            config["output_shape"] = _serialize_function(shape)
        if getattr(layer, "mask", None) is not None:
            config["mask"] = _serialize_function(layer.mask) if callable(layer.mask) else layer.mask
    return serialize_object(config)


# keys our get_config writes that Keras's constructor of the same layer does not take
_KERAS_OMITS = {"SpatialDropout1D": ("trainable",), "SpatialDropout2D": ("trainable",),
                "SpatialDropout3D": ("trainable",)}


def _is_layer_config(value):
    if not (isinstance(value, dict) and "class_name" in value and "config" in value):
        return False
    _import_layer_families()
    cls = layer_base.registered(value["class_name"])
    return cls is not None and isinstance(value["config"], dict)


def _nested_layer_config_to_keras(value):
    """A sublayer's {'class_name', 'config'} (as a wrapper's get_config writes it) in Keras's form."""
    cls = layer_base.registered(value["class_name"])
    inner = dict(value["config"])
    inner.pop("batch_input_shape", None)
    if isinstance(inner.get("dtype"), str):
        inner["dtype"] = _policy(inner["dtype"])
    for key in _KERAS_OMITS.get(cls.__name__, ()):
        inner.pop(key, None)
    for key, sub in inner.items():
        if _is_layer_config(sub):
            inner[key] = _nested_layer_config_to_keras(sub)
    return {"module": "keras.layers", "class_name": cls.__name__, "config": serialize_object(inner),
            "registered_name": None}


# ----------------------------------------------------------------------------- Sequential
def _sequential_config(model):
    layers = []
    input_shape = getattr(model, "_input_shape", None)
    if input_shape is not None:
        names = {layer.name for layer in model.layers}
        name, i = "input_layer", 0
        while name in names:
            i += 1
            name = f"input_layer_{i}"
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": {"batch_shape": _shape_to_json(input_shape), "dtype": str(model.dtype),
                                  "sparse": False, "ragged": False, "name": name, "optional": False},
                       "registered_name": None})
    layers += [serialize_object(layer) for layer in model.layers]
    config = {"name": model.name, "trainable": model.trainable, "dtype": _policy(str(model.dtype)), "layers": layers}
    if input_shape is not None:
        config["build_input_shape"] = _shape_to_json(input_shape)
    return config


# ----------------------------------------------------------------------------- functional
def keras_layer_order(graph):
    """The layers of a functional graph in Keras's order (keras/src/ops/function.py `map_graph`):
    by decreasing depth (distance to the outputs), ties broken by the order in which a
    depth-first walk back from the outputs first meets each layer. Keras names the weight
    groups of a `.keras` file by position in this order, so it must match exactly."""
    inputs = graph.input_tensors
    input_ids = {id(t) for t in inputs}
    finished, in_progress, ordered_nodes, layer_index = set(), set(), [], {}

    def visit(tensor):
        node = tensor.node
        if node is None or id(node) in finished:
            return
        is_input = not node.input_tensors
        if not is_input and id(tensor) in input_ids:
            finished.add(id(node))
            return
        if id(node) in in_progress:
            raise ValueError(f"layer '{node.layer.name}' is part of a cycle")
        layer_index.setdefault(id(node.layer), len(layer_index))
        in_progress.add(id(node))
        if not is_input:
            for t in node.input_tensors:
                visit(t)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered_nodes.append(node)

    for t in graph.output_tensors:
        visit(t)
    in_graph = {id(n) for n in ordered_nodes}
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(ordered_nodes):
        depth = node_depth.setdefault(id(node), 0)
        depth = max(depth, layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for t in node.input_tensors:
            parent = t.node
            if parent is not None and id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:  # inputs not connected to any output still belong to the model
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)] = 0
            layer_index[id(t.node.layer)] = -1
            layers[id(t.node.layer)] = t.node.layer
    return sorted(layers.values(), key=lambda layer: (-layer_depth[id(layer)], layer_index[id(layer)]))


def _is_functional(layer):
    from .model import Model
    from .sequential import Sequential
    return isinstance(layer, Model) and not isinstance(layer, Sequential) and layer._graph is not None


def _functional_config(model):
    graph = model._graph
    layers = keras_layer_order(graph)
    names = [layer.name for layer in layers]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # the config refers to layers by name, so names must be unique (Keras requires it too)
        raise ValueError(f"model '{model.name}' has several layers named {twice}: give them distinct "
                         f"names (name=...) before saving it")
    own = {id(node) for node in graph.nodes}
    reindex = {}
    for layer in layers:
        kept = 0
        for node in layer._inbound:
            if id(node) in own:
                reindex[id(node)] = kept
                kept += 1
    layer_configs = []
    for layer in layers:
        config = serialize_object(layer)
        config["name"] = layer.name
        config["inbound_nodes"] = [
            {"args": [map_structure(lambda t: _tensor_config(t, reindex), node.inputs)],
             "kwargs": serialize_object({k: v for k, v in node.kwargs.items()})}
            for node in layer._inbound if id(node) in own and node.input_tensors]
        layer_configs.append(config)

    def ref(t):
        # Keras counts a functional model's own graph as its node 0 here (and only here, not in
        # inbound_nodes): keras/src/models/functional.py get_config / functional_from_config
        offset = 1 if _is_functional(t.node.layer) else 0
        return [t.node.layer.name, reindex[id(t.node)] + offset, t.index]
    return {"name": model.name, "trainable": model.trainable, "layers": layer_configs,
            "input_layers": map_structure(ref, graph.inputs), "output_layers": map_structure(ref, graph.outputs)}


def _tensor_config(t, reindex):
    history = None
    if t.node is not None:
        index = reindex[id(t.node)] if reindex is not None else t.node.layer._inbound.index(t.node)
        history = [t.node.layer.name, index, t.index]
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": str(t.dtype), "keras_history": history}}


# ----------------------------------------------------------------------------- compile
def compile_config(model):
    """What `compile` was given, in Keras's compile_config layout ({} for an uncompiled model)."""
    if not getattr(model, "compiled", False):
        return {}
    saved = getattr(model, "_compile_config", None)
    if saved is not None:  # the arguments as the user gave them, when the trainer keeps them
        optimizer, loss, loss_weights = model.optimizer, saved.get("loss"), saved.get("loss_weights")
        metrics, weighted = saved.get("metrics"), saved.get("weighted_metrics")
    else:
        optimizer = model.optimizer
        closs, cmetrics = model.compiled_loss, model.compiled_metrics
        multi = len(closs.names) > 1
        loss = closs.specs
        loss_weights = None if all(w == 1.0 for w in closs.weights) else (closs.weights if multi else
                                                                          closs.weights[0])
        metrics = _per_output_back(cmetrics.config, multi)
        weighted = _per_output_back(cmetrics.weighted_config, multi)
    return {"optimizer": serialize_object(optimizer), "loss": serialize_object(loss),
            "loss_weights": serialize_object(loss_weights), "metrics": serialize_object(metrics),
            "weighted_metrics": serialize_object(weighted), "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}


def _per_output_back(per_output, multi):
    """compile_utils spreads metrics over outputs; fold them back into what compile accepts."""
    if not per_output or all(not m for m in per_output):
        return None
    if multi:
        return [list(m) if isinstance(m, (list, tuple)) else ([] if m is None else [m]) for m in per_output]
    return per_output[0]


def model_to_config(model):
    """The model as Keras 3's config dict (what a `.keras` file holds as config.json)."""
    from .model import Model
    if not isinstance(model, Model):
        raise TypeError(f"model_to_config expects a Model, got {type(model).__name__}")
    return serialize_object(model)


# ============================================================================ deserialize
def deserialize_object(config, custom_objects=None, safe_mode=True):
    """The object a Keras-layout config describes (layers, models, optimizers, losses, metrics,
    initializers, regularizers, schedules, registered custom objects), looked up by name."""
    return _Loader(custom_objects, safe_mode).load(config, "config")


def model_from_config(config, custom_objects=None, safe_mode=True):
    """A model (compiled when the config has a compile_config) from `model_to_config`'s output
    or from the config.json of a `.keras` file written by Keras 3."""
    from .model import Model
    if not isinstance(config, dict) or "class_name" not in config:
        raise DeserializationError(f"a model config must be a dict with 'class_name' and 'config', got "
                                   f"{type(config).__name__} with keys {sorted(config) if isinstance(config, dict) else '-'}")
    model = _Loader(custom_objects, safe_mode).load(config, "model")
    if not isinstance(model, Model):
        raise DeserializationError(f"the config describes a {type(model).__name__}, not a model")
    return model


_SPECIAL = {"__keras_tensor__", "__numpy__", "__tensor__", "__bytes__", "__ellipsis__", "__slice__", "__lambda__"}


class _Loader:
    """One deserialization pass: the options and the path to the object, for error messages."""

    def __init__(self, custom_objects, safe_mode):
        self.custom = dict(custom_objects or {})
        self.safe_mode = safe_mode

    # ------------------------------------------------------------------ generic
    def load(self, config, where):
        if isinstance(config, _PLAIN):
            return config
        if isinstance(config, (list, tuple)):
            return [self.load(c, where) for c in config]
        if not isinstance(config, dict):
            raise DeserializationError(f"{where}: cannot read {type(config).__name__} {config!r}")
        if "class_name" not in config or "config" not in config:
            return {k: self.load(v, f"{where}.{k}") for k, v in config.items()}
        name = config["class_name"]
        if name in _SPECIAL:
            return self._special(config, where)
        if name == "function":
            return self._function(config, where)
        cls = self._find_class(config, where)
        if inspect.isclass(cls) and issubclass(cls, Layer):
            return self._layer(cls, config, where)
        return self._other(cls, config, where)

    def _special(self, config, where):
        name, inner = config["class_name"], config["config"] or {}
        if name in ("__numpy__", "__tensor__"):
            try:
                dtype = np.dtype(inner["dtype"])
                if dtype.kind not in "biufc":
                    raise TypeError(f"dtype {dtype} is not numeric")
                return np.array(inner["value"], dtype=dtype)
            except (KeyError, TypeError, ValueError) as error:
                raise DeserializationError(f"{where}: bad array {str(inner)[:80]}: {error}") from None
        if name == "__bytes__":
            return inner["value"].encode("utf-8")
        if name == "__ellipsis__":
            return Ellipsis
        if name == "__slice__":
            return slice(*(self.load(inner.get(k), where) for k in ("start", "stop", "step")))
        if name == "__lambda__":
            return self._lambda(inner, where)
        return config  # a __keras_tensor__ is resolved by the functional loader

    # ------------------------------------------------------------------ lookup by name
    def _find_class(self, config, where):
        from .. import initializers, losses, metrics, optimizers, regularizers, schedules
        from .model import Model
        name = config["class_name"]
        registered = config.get("registered_name")
        # no "module" key: an old (Keras 2 style) config of a built-in; module None: Keras's mark
        # for a class defined in __main__, i.e. a custom one
        module = config.get("module", "keras")
        if module is None:
            module = "__main__"
        for key in (registered, name):
            if key and key in self.custom:
                return self.custom[key]
        if registered and registered in _USER_OBJECTS:
            return _USER_OBJECTS[registered]
        builtin = module == "keras" or module.startswith(("keras.", "chainrule."))
        if builtin:
            found = None
            if name == "Functional" or (name == "Model" and "layers" in (config.get("config") or {})):
                found = Model
            elif ".optimizers.schedules" in module or module.endswith("schedules"):
                found = getattr(schedules, name, None)
            elif ".optimizers" in module:
                found = getattr(optimizers, "_OPTIMIZERS", {}).get(name.lower())
            elif module.startswith("keras.losses") or module.endswith(".losses"):
                found = losses.ALL_OBJECTS.get(name)
            elif module.startswith("keras.metrics") or module.endswith(".metrics"):
                found = metrics.ALL_OBJECTS.get(name)
            elif module.startswith("keras.initializers") or module.endswith(".initializers"):
                found = initializers.ALL_OBJECTS.get(name)
            elif module.startswith("keras.regularizers") or module.endswith(".regularizers"):
                found = regularizers.ALL_OBJECTS.get(name)
            else:
                _import_layer_families()
                found = layer_base.registered(name)
            if found is not None:
                return found
        what = "class" if name != "function" else "function"
        raise DeserializationError(
            f"{where}: unknown {what} '{name}' (module {module!r}, registered name {registered!r}). "
            f"chainrule builds objects from configs by name and never runs code from a file, so it can "
            f"only build classes it knows. If '{name}' is your own class, pass it at load time, "
            f"e.g. load_model(path, custom_objects={{'{name}': {name}}}), or register it with "
            f"@chainrule.models.serialization.register_serializable(package=...) before loading. "
            f"If it is a Keras built-in, chainrule does not implement it yet.")

    def _function(self, config, where):
        from .. import activations, losses, metrics
        name = config["config"]
        registered = config.get("registered_name")
        for key in (registered, name):
            if isinstance(key, str) and key in self.custom:
                return self.custom[key]
        if isinstance(registered, str) and registered in _USER_OBJECTS:
            return _USER_OBJECTS[registered]
        if isinstance(name, str) and name in _USER_OBJECTS:
            return _USER_OBJECTS[name]
        for table in (activations.ALL_OBJECTS, losses.ALL_OBJECTS, metrics.__dict__):
            fn = table.get(name) if isinstance(name, str) else None
            if callable(fn) and not inspect.isclass(fn):
                return fn
        raise DeserializationError(
            f"{where}: unknown function {name!r}. Functions are saved by name, never as code: pass it at "
            f"load time with custom_objects={{{name!r}: fn}}, or register it with @register_serializable()")

    def _lambda(self, inner, where):
        """Keras's `__lambda__`: a base64 marshal dump of a function's bytecode. Refused in safe mode."""
        if self.safe_mode:
            raise DeserializationError(
                f"{where}: the file stores a Python lambda as bytecode, which loading would run as code. "
                f"chainrule refuses this by default (Keras's safe_mode). Either rebuild the model in code "
                f"and load only its weights (model.load_weights), or, only if you trust where the file comes "
                f"from, load with safe_mode=False")
        try:
            code = marshal.loads(base64.b64decode(inner["code"].encode("ascii")))
        except Exception as error:  # marshal's format depends on the Python version that wrote it
            raise DeserializationError(f"{where}: cannot decode the stored lambda ({error}); it was probably "
                                       f"written by another Python version") from None
        if not isinstance(code, types.CodeType):
            raise DeserializationError(f"{where}: the stored lambda is not a code object")
        warnings.warn(f"{where}: safe_mode=False, so the Python bytecode stored in the file becomes a function "
                      f"that runs each time this layer is called: code from {code.co_filename}:{code.co_firstlineno}"
                      f", using the names {list(code.co_names)} and constants {list(code.co_consts)[:8]}",
                      stacklevel=4)
        from .. import ops
        defaults = tuple(inner["defaults"]) if inner.get("defaults") else None
        closure = inner.get("closure")
        if closure:
            closure = tuple(types.CellType(c) for c in closure)
        return types.FunctionType(code, {"__builtins__": builtins, "ops": ops, "np": np}, code.co_name,
                                  defaults, closure)

    # ------------------------------------------------------------------ non-layer objects
    def _other(self, cls, config, where):
        from .. import optimizers
        inner = self.load_inner(config["config"], where)
        if not inspect.isclass(cls):
            return cls
        if not hasattr(cls, "from_config"):
            raise DeserializationError(f"{where}: class {cls.__name__} has no from_config()")
        try:
            if issubclass(cls, optimizers.Optimizer):
                inner = _optimizer_config_from_keras(inner)
                return cls.from_config(inner, self.custom)
            return cls.from_config(inner)
        except DeserializationError:
            raise
        except (TypeError, ValueError) as error:
            raise DeserializationError(f"{where}: {cls.__name__}.from_config failed on {inner}: {error}") from None

    def load_inner(self, inner, where):
        """An object's own config: nested object configs (schedules, initializers) become objects."""
        from .. import schedules
        if not isinstance(inner, dict):
            return inner
        out = {}
        for k, v in inner.items():
            if isinstance(v, dict) and "class_name" in v and "config" in v:
                cls = self._find_class(v, f"{where}.{k}") if v["class_name"] not in _SPECIAL | {"function"} else None
                if inspect.isclass(cls) and issubclass(cls, schedules.LearningRateSchedule):
                    out[k] = cls.from_config(dict(v["config"]))
                    continue
                out[k] = self.load(v, f"{where}.{k}")
            else:
                out[k] = v
        return out

    # ------------------------------------------------------------------ layers and models
    def _layer(self, cls, config, where):
        from .model import Model
        from .sequential import Sequential
        inner = dict(config["config"] or {})
        label = f"{where} > {cls.__name__} '{inner.get('name', '?')}'"
        if issubclass(cls, Sequential) and _is_builtin(cls):
            layer = self._sequential(inner, label)
        elif issubclass(cls, Model) and "input_layers" in inner and "layers" in inner:
            layer = self._functional(cls, inner, label)
        else:
            inner = self._layer_config_from_keras(cls, inner, label)
            try:
                layer = cls.from_config(inner)
            except DeserializationError:
                raise
            except (TypeError, ValueError) as error:
                raise DeserializationError(f"{label}: cannot build it from its config: {error}") from None
            build = (config.get("build_config") or {}).get("input_shape")
            if build is not None and not layer.built:
                try:
                    layer._maybe_build(_shape_from_json(build))
                except (TypeError, ValueError) as error:
                    raise DeserializationError(f"{label}: cannot build it for input shape {build}: {error}") \
                        from None
        compile_cfg = config.get("compile_config")
        if compile_cfg and isinstance(layer, Model):
            self._compile(layer, compile_cfg, label)
        return layer

    def _layer_config_from_keras(self, cls, config, label):
        """Keras's layer config in the form our constructors take: dtype policies as dtype names,
        function configs as functions, and Keras-only options dropped when they hold the value
        that means 'off' (refused by name otherwise)."""
        dtype = config.get("dtype")
        if isinstance(dtype, dict):
            policy = (dtype.get("config") or {}).get("name", "float32")
            try:
                np.dtype(policy)
            except TypeError:
                raise DeserializationError(f"{label}: dtype policy {policy!r} (mixed precision) is not supported "
                                           f"by chainrule; only plain dtypes such as 'float32'") from None
            config["dtype"] = policy
        if cls.__name__ == "Lambda" and _is_builtin(cls):
            config = self._lambda_config(config, label)
        elif _is_builtin(cls):
            for key, value in list(config.items()):
                if isinstance(value, dict) and value.get("class_name") == "function":
                    config[key] = self._function(value, f"{label}.{key}")
                elif isinstance(value, dict) and "class_name" in value and isinstance(value.get("config"), dict):
                    found = self._find_class(value, f"{label}.{key}")
                    if inspect.isclass(found) and issubclass(found, Layer):
                        config[key] = self.load(value, f"{label}.{key}")  # a wrapped layer, as an instance
        if not _is_builtin(cls):
            return config
        accepted = _init_arguments(cls)
        if accepted is None:
            return config
        for key in [k for k in config if k not in accepted]:
            value = config.pop(key)
            if not _means_off(key, value):
                raise DeserializationError(f"{label}: Keras option {key}={value!r} is not supported by "
                                           f"chainrule's {cls.__name__}")
        return config

    def _lambda_config(self, config, label):
        config = dict(config)
        for key in ("function", "output_shape", "mask"):
            value = config.get(key)
            if isinstance(value, dict) and value.get("class_name") == "__lambda__":
                config[key] = self._lambda(value.get("config") or {}, f"{label} ({key})")
            elif isinstance(value, dict) and value.get("class_name") == "function":
                config[key] = self._function(value, f"{label} ({key})")
            elif key == "function" and isinstance(value, str):
                config[key] = self._function({"config": value, "registered_name": None}, f"{label} ({key})")
        if isinstance(config.get("output_shape"), list):
            config["output_shape"] = tuple(config["output_shape"])
        if config.get("mask") is None:
            config.pop("mask", None)
        return config

    def _sequential(self, inner, label):
        from .sequential import Sequential
        from ..layers.input_layer import InputLayer
        model = Sequential(name=inner.get("name"), trainable=inner.get("trainable", True))
        for i, layer_config in enumerate(inner.get("layers", [])):
            layer = self.load(layer_config, f"{label} > layers[{i}]")
            if not isinstance(layer, Layer):
                raise DeserializationError(f"{label}: layers[{i}] is a {type(layer).__name__}, not a layer")
            model.add(layer)
            if isinstance(layer, InputLayer):
                model._input_shape = tuple(layer.batch_shape)
        shape = inner.get("build_input_shape")
        if shape is not None and not model.built and len(model.layers):
            model._maybe_build(_shape_from_json(shape))
        return model

    def _functional(self, cls, inner, label):
        created, pending, order = {}, {}, []
        for i, layer_data in enumerate(inner["layers"]):
            if not isinstance(layer_data, dict):
                raise DeserializationError(f"{label}: layers[{i}] is not a layer config")
            layer = self.load(layer_data, f"{label} > layers[{i}]")
            if not isinstance(layer, Layer):
                raise DeserializationError(f"{label}: layers[{i}] is a {type(layer).__name__}, not a layer")
            name = layer_data.get("name", layer.name)
            if name in created:
                raise DeserializationError(f"{label}: two layers are named '{name}'")
            created[name] = layer
            order.append(name)
            pending[name] = list(layer_data.get("inbound_nodes") or [])

        def tensor(history, where, endpoint=False):
            if not (isinstance(history, (list, tuple)) and len(history) == 3):
                raise DeserializationError(f"{where}: bad tensor reference {history!r}")
            name, node_index, tensor_index = history
            if name not in created:
                raise DeserializationError(f"{where}: refers to unknown layer '{name}'")
            layer = created[name]
            if endpoint and _is_functional(layer):
                node_index -= 1  # in input_layers/output_layers Keras counts a functional model's graph first
            if node_index >= len(layer._inbound):
                raise _NotYet()
            outputs = flatten(layer._inbound[node_index].outputs)
            if not 0 <= tensor_index < len(outputs):
                raise DeserializationError(f"{where}: layer '{name}' has no output {tensor_index}")
            return outputs[tensor_index]

        def resolve(value, where):
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                return tensor((value.get("config") or {}).get("keras_history"), where)
            if isinstance(value, (list, tuple)):
                return [resolve(v, where) for v in value]
            if isinstance(value, dict) and not ("class_name" in value and "config" in value):
                return {k: resolve(v, where) for k, v in value.items()}
            return self.load(value, where)

        while any(pending.values()):
            progressed = False
            for name in order:
                nodes = pending[name]
                while nodes:
                    where = f"{label} > layer '{name}' call {len(created[name]._inbound)}"
                    node = nodes[0]
                    try:
                        args = resolve(node.get("args", []), where) if isinstance(node, dict) else None
                        kwargs = resolve(node.get("kwargs", {}), where) if isinstance(node, dict) else None
                    except _NotYet:
                        break
                    if args is None:
                        raise DeserializationError(f"{where}: unsupported (legacy) node format {node!r}")
                    if kwargs.get("mask", 0) is None:
                        kwargs.pop("mask")  # Keras records mask=None on model calls
                    try:
                        created[name](*args, **kwargs)
                    except (TypeError, ValueError) as error:
                        raise DeserializationError(f"{where}: the call failed: {error}") from None
                    nodes.pop(0)
                    progressed = True
            if not progressed:
                stuck = sorted(n for n, nodes in pending.items() if nodes)
                raise DeserializationError(f"{label}: the graph has a loop or refers to calls that do not "
                                           f"exist; layers left unconnected: {stuck}")

        def endpoints(structure, what):
            if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
                try:
                    return tensor(structure, f"{label} {what}", endpoint=True)
                except _NotYet:
                    raise DeserializationError(f"{label}: {what} names call {structure[1]} of layer "
                                               f"'{structure[0]}', which does not exist") from None
            if isinstance(structure, dict):
                return {k: endpoints(v, what) for k, v in structure.items()}
            if isinstance(structure, (list, tuple)):
                return [endpoints(v, what) for v in structure]
            raise DeserializationError(f"{label}: bad {what} entry {structure!r}")

        inputs = endpoints(inner["input_layers"], "input_layers")
        outputs = endpoints(inner["output_layers"], "output_layers")
        try:
            return cls(inputs=inputs, outputs=outputs, name=inner.get("name"),
                       trainable=inner.get("trainable", True))
        except (TypeError, ValueError) as error:
            raise DeserializationError(f"{label}: {error}") from None

    # ------------------------------------------------------------------ compile
    def _compile(self, model, config, label):
        from .. import losses, metrics
        where = f"{label} compile_config"
        optimizer = config.get("optimizer")
        optimizer = self.load(optimizer, f"{where}.optimizer") if isinstance(optimizer, dict) else optimizer
        loss = _map_leaves(config.get("loss"), lambda c: self._loss_or_metric(c, losses, f"{where}.loss"))
        metric_list = _map_leaves(config.get("metrics"), lambda c: self._loss_or_metric(c, metrics, f"{where}.metrics"))
        weighted = _map_leaves(config.get("weighted_metrics"),
                               lambda c: self._loss_or_metric(c, metrics, f"{where}.weighted_metrics"))
        try:
            model.compile(optimizer=optimizer or "rmsprop", loss=loss, loss_weights=config.get("loss_weights"),
                          metrics=metric_list, weighted_metrics=weighted)
        except (TypeError, ValueError) as error:
            raise DeserializationError(f"{where}: compile failed: {error}") from None

    def _loss_or_metric(self, config, module, where):
        if isinstance(config, str):
            if config in self.custom:
                return self.custom[config]
            return config  # compile resolves names ('mse', 'accuracy') itself
        if config.get("class_name") == "function":
            return self._function(config, where)
        cls = self._find_class(config, where)
        return self._other(cls, config, where)


class _NotYet(Exception):
    """A node refers to a call that has not been rebuilt yet (shared layers): retry later."""


def _map_leaves(structure, fn):
    """Apply fn to each loss/metric entry: strings and object configs, in lists or dicts of outputs."""
    if structure is None:
        return None
    if isinstance(structure, (str,)) or (isinstance(structure, dict) and "class_name" in structure):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: _map_leaves(v, fn) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_map_leaves(v, fn) for v in structure]
    return structure


def _optimizer_config_from_keras(config):
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, (np.floating, np.ndarray)):
        config["learning_rate"] = float(lr)
    return config


# values of Keras-only options that mean "feature not used", safe to drop
_OFF_VALUES = {"groups": 1, "data_format": "channels_last", "lora_alpha": None}


def _means_off(key, value):
    if value is None or value is False or value == [] or value == {}:
        return True
    return key in _OFF_VALUES and _OFF_VALUES[key] == value


def _init_arguments(cls):
    """The keyword arguments cls(...) accepts, following **kwargs up the classes; None if any."""
    accepted = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        accepted |= {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return accepted - {"self"}
        if klass is Layer:
            return (accepted | {"input_shape", "input_dim", "batch_size", "autocast"}) - {"self"}
    return None


def _import_layer_families():
    """Make sure every built-in layer family has registered its classes."""
    import importlib
    from .. import layers  # noqa: F401
    from . import model, sequential  # noqa: F401
    for family in ("preprocessing", "recurrent", "rnn"):
        try:
            importlib.import_module(f"chainrule.layers.{family}")
        except ImportError:
            pass


# ============================================================================ variable order
def keras_layers_of(model):
    """The sublayers of a model in the order Keras keeps them (and saves their weights)."""
    from .sequential import Sequential
    if isinstance(model, Sequential):
        return list(model.layers)
    if _is_functional(model):
        return keras_layer_order(model._graph)
    return list(model._layers)


def keras_trainable_variables(layer):
    """The trainable variables in Keras's order (`model.trainable_variables` in Keras): each
    layer's own trainable variables, then its sublayers' in Keras's layer order. Keras's
    optimizers keep their state in this order, so a `.keras` file's optimizer state maps to
    variables through it."""
    if not layer.trainable:
        return []
    from .model import Model
    own = [w for w in layer._own_weights if w.trainable]
    subs = keras_layers_of(layer) if isinstance(layer, Model) else list(layer._layers)
    out, seen = [], set()
    for w in own + [w for sub in subs for w in keras_trainable_variables(sub)]:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out
