"""The `chainrule` command (also `python -m chainrule`).

    chainrule demo                       a CNN learns Fashion-MNIST (shipped inside chainrule), offline
    chainrule backprop                   the backpropagation lecture's 2-2-2 network, worked by autodiff
    chainrule train --model M --data D   train a recipe or your own build_model(); save model, history, curves
    chainrule evaluate MODEL DATA        loss and metrics of a saved model on a dataset
    chainrule predict MODEL IMAGES...    the most likely class of each image
    chainrule info                       versions, backend, BLAS threads, datasets found

A user's mistake (a missing file, an unknown dataset or recipe, a bad value) prints one line that
says how to fix it and exits with status 2, as argparse does for a bad flag; Ctrl-C exits with 130.
A training run's folder holds model.chainrule, checkpoint.chainrule (resumable), history.csv,
curves.png and run.json (what was trained on what, the class names, the epochs done).
"""
import argparse
import contextlib
import json
import sys
from pathlib import Path

from . import __version__
from .demo import RUN_FILE

DATASETS = ("embedded", "fashion_mnist", "mnist", "microscopy")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "nadam")
CHECKPOINT, HISTORY, CURVES = "checkpoint", "history.csv", "curves.png"
TRAIN_DEFAULTS = {"data": "embedded", "epochs": 5, "batch_size": 32, "optimizer": "adam", "learning_rate": None,
                  "validation_split": 0.1, "seed": 0, "limit": None, "image_size": None}


class UsageError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


def _first_line(error):
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__


@contextlib.contextmanager
def _user_errors(*types, fix=None):
    """Turn the exceptions `types` raised inside the block into a UsageError (plus `fix`)."""
    try:
        yield
    except types as e:
        raise UsageError(_first_line(e) + (f"; {fix}" if fix else "")) from None


# ----------------------------------------------------------------------------- argument types
def _checked(convert, accept, wanted):
    """An argparse type: convert(text), refused with "expected <wanted>" unless accept(value)."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_positive_float = _checked(float, lambda v: v > 0, "a number > 0")
_fraction = _checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1), e.g. 0.1")


def _image_size(text):
    """'64' or '64x48' (height x width) as (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH in pixels, e.g. 64 or 64x48, got {text!r}")
    return size


# ----------------------------------------------------------------------------- data
class Data:
    """Arrays ready for fit: x float32 scaled to [0, 1] (images NHWC), y labels or masks."""

    def __init__(self, name, x_train, y_train, x_test, y_test, class_names=None, test_split="test split"):
        self.name, self.class_names, self.test_split = name, class_names, test_split
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test

    def limit(self, n):
        """Keep the first `n` samples of each split (a quick check)."""
        if n:
            self.x_train, self.y_train, self.x_test, self.y_test = (
                a[:n] for a in (self.x_train, self.y_train, self.x_test, self.y_test))
        return self


def _split(x, y, fraction, seed):
    """A seeded shuffle, then the last `fraction` of the samples as the test split."""
    import numpy as np
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * fraction)))
    train, test = order[:-n_test], order[-n_test:]
    return x[train], y[train], x[test], y[test]


def _named_dataset(name, seed):
    import numpy as np

    from . import datasets
    from .demo import scale_images
    if name == "microscopy":  # generated cells: segmentation masks for the U-Net
        # 5 to 15 cells in 64x64: the default density of 20 to 60 cells in 128x128 images
        cells = datasets.microscopy(200, image_size=(64, 64), cell_count=(5, 15), seed=seed)
        return Data(name, cells.images[:160], cells.masks[:160], cells.images[160:], cells.masks[160:],
                    ["background", "cell"])
    module = {"embedded": datasets.embedded, "fashion_mnist": datasets.fashion_mnist, "mnist": datasets.mnist}[name]
    title = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}.get(name)
    folder = datasets.cache_dir() / name.replace("_", "-")
    with _dataset_not_found(title, folder):
        (x_train, y_train), (x_test, y_test) = module.load_data()
    names = list(getattr(module, "CLASS_NAMES", [str(d) for d in range(10)]))
    return Data(name, scale_images(x_train), y_train.astype(np.int64), scale_images(x_test),
                y_test.astype(np.int64), names)


@contextlib.contextmanager
def _dataset_not_found(title, folder):
    from .datasets import DatasetNotFoundError
    try:
        yield
    except DatasetNotFoundError:
        raise UsageError(f"{title} is not on this machine and could not be downloaded: use --data embedded (shipped "
                         f"with chainrule), or put its four IDX files in {folder} or in a folder named by "
                         f"$CHAINRULE_DATA (`chainrule info` lists where it looks)") from None
    except FileNotFoundError as e:  # the embedded files are missing: a broken installation
        raise UsageError(_first_line(e)) from None


def _image_settings(folder, image_size, channels):
    """(image size, color mode) for a folder: as asked, else those of its first image."""
    from .datasets.directory import _pillow, index_directory
    color_mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels)
    if image_size is not None and color_mode is not None:
        return image_size, color_mode
    paths, _, _ = index_directory(str(folder), shuffle=False)
    if not paths:
        raise UsageError(f"no images (.png, .jpg, .jpeg, .bmp, .gif) in {folder}: put each class's images in a "
                         f"sub-folder named after the class")
    with _pillow().open(paths[0]) as first:
        size = (first.height, first.width)
        mode = "grayscale" if first.mode in ("1", "L", "LA", "I", "I;16", "F") else "rgb"
    return image_size or size, color_mode or mode


def _folder_dataset(folder, image_size, channels, seed, evaluate):
    from .datasets import load_images_from_directory

    def load(path, class_names=None):
        with _user_errors(ValueError, FileNotFoundError):
            x, y, names = load_images_from_directory(str(path), class_names=class_names, image_size=image_size,
                                                     color_mode=color_mode)
        return x / 255.0, y.astype("int64"), names

    parts = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    test_dir = parts.get("test") or parts.get("validation") or parts.get("val")
    train_dir = parts.get("train")
    source = (test_dir if evaluate else train_dir) or train_dir or folder
    with _user_errors(ImportError):
        image_size, color_mode = _image_settings(source, image_size, channels)
        if train_dir is not None and test_dir is not None and not evaluate:  # the usual train/ and test/ layout
            x_train, y_train, names = load(train_dir)
            x_test, y_test, _ = load(test_dir, names)  # the same label numbers, even if test/ lacks a class
            return Data(str(folder), x_train, y_train, x_test, y_test, names, f"{test_dir.name}/")
        x, y, names = load(source)
    if evaluate:  # all of it is the test set
        return Data(str(folder), x[:0], y[:0], x, y, names, f"{source.name}/" if source != folder else "all images")
    return Data(str(folder), *_split(x, y, 0.2, seed), names, "a random 20% held out")


def _hdf5_dataset(path, seed, evaluate):
    from .datasets.hdf5 import list_datasets, load_hdf5
    from .demo import scale_images
    with _user_errors(ImportError, OSError, KeyError, ValueError):
        keys = {k.rsplit("/", 1)[-1].lower(): k for k in list_datasets(str(path))}
        if all(k in keys for k in ("x_train", "y_train", "x_test", "y_test")):
            x_train, y_train = load_hdf5(str(path), keys["x_train"], keys["y_train"])
            x_test, y_test = load_hdf5(str(path), keys["x_test"], keys["y_test"])
            return Data(str(path), scale_images(x_train), y_train, scale_images(x_test), y_test, None, "x_test")
        x, y = load_hdf5(str(path))
    if y is None:
        raise UsageError(f"{path} holds inputs but no labels; name the label dataset 'y' or 'labels' "
                         f"(or store x_train, y_train, x_test, y_test)")
    x = scale_images(x)
    if evaluate:
        return Data(str(path), x[:0], y[:0], x, y, None, "all samples")
    return Data(str(path), *_split(x, y, 0.2, seed), None, "a random 20% held out")


def load_dataset(spec, seed=0, image_size=None, channels=None, evaluate=False):
    """The dataset `spec` names: one of DATASETS, a folder of class sub-folders (optionally split into
    train/ and test/), or an HDF5 file. Without a test part, 20% is held out (evaluate: all of it)."""
    if spec in DATASETS:
        return _named_dataset(spec, seed)
    path = Path(spec)
    if not path.exists():
        what = f"no such file or folder {spec}" if path.suffix or "/" in spec else f"no dataset named {spec!r}"
        raise UsageError(f"{what}: use one of {', '.join(DATASETS)}, a folder with one sub-folder of images per "
                         f"class, or an .h5 file")
    if path.is_dir():
        return _folder_dataset(path, image_size, channels, seed, evaluate)
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return _hdf5_dataset(path, seed, evaluate)
    raise UsageError(f"{spec} is neither a folder of images nor an HDF5 file (.h5): give one of those, or one of "
                     f"{', '.join(DATASETS)}")


def _task(y):
    """(loss name, number of outputs, targets) for the targets `y`: class labels (n,) or (n, 1),
    one-hot rows (n, k), 0/1 masks (n, h, w, 1) or integer masks (n, h, w)."""
    import numpy as np
    y = np.asarray(y)
    binary = set(np.unique(y).tolist()) <= {0, 1}
    if y.ndim >= 3 and y.shape[-1] == 1 or (y.ndim == 2 and y.shape[1] == 1 and binary and y.dtype.kind == "f"):
        if not binary:
            raise UsageError("the targets are per-pixel values other than 0/1: chainrule train fits class labels "
                             "and 0/1 masks; write a script with a regression loss for the rest")
        return "binary_crossentropy", 1, y.astype(np.float32)
    if y.ndim >= 2 and y.shape[-1] > 1 and y.dtype.kind == "f":
        return "categorical_crossentropy", y.shape[-1], y  # one-hot targets
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise UsageError("the labels are not whole numbers: chainrule train fits class labels and 0/1 masks")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (n, 1) labels, as CIFAR stores them
    return "sparse_categorical_crossentropy", int(y.max()) + 1, y.astype(np.int64)


def _fit_inputs(x, shape, what):
    """`x` reshaped to the model's input `shape` when only the layout differs (784 vs 28x28x1)."""
    if shape is None or tuple(x.shape[1:]) == tuple(shape):
        return x
    import numpy as np
    if None not in shape and int(np.prod(shape)) == int(np.prod(x.shape[1:])):
        return x.reshape((len(x),) + tuple(shape))
    raise UsageError(f"{what} expects samples of shape {tuple(shape)} but the data has {tuple(x.shape[1:])}: "
                     f"pick a model made for this data")


# ----------------------------------------------------------------------------- models
def _check_outputs(model, x, y, loss, name):
    """Run one sample through `model` and check that its output fits the targets and the loss."""
    import numpy as np
    out = model.predict(x[:1], verbose=0)
    out_shape, y_shape = tuple(np.shape(out)[1:]), tuple(np.shape(y)[1:])
    expected = y_shape + (out_shape[-1:] if loss == "sparse_categorical_crossentropy" else ())
    if out_shape != expected:
        fix = ("per-pixel targets (masks) need a model with per-pixel outputs, e.g. --model unet" if len(y_shape) >= 2
               else "one label per sample needs a classifier, e.g. --model cnn or mlp")
        raise UsageError(f"model {name} outputs shape {out_shape} per sample but the targets have shape {y_shape}: "
                         f"{fix}")


def _input_shape(model):
    shape = getattr(model, "_build_shape", None)
    if shape is None and getattr(model, "inputs", None):
        shape = model.inputs[0].shape
    if isinstance(shape, list):
        shape = shape[0]
    return None if shape is None else tuple(shape[1:])


def _model_spec(text):
    """How run.json names the model: a recipe's name, or the absolute path of a .py file."""
    return str(Path(text).resolve()) if text.endswith(".py") else text


def _rebuild(record):
    """The model of a run, rebuilt from its run.json (weights as initialised), built and compiled."""
    import numpy as np
    model = _build_model(record["model"], record["input_shape"], record["num_classes"])
    if not getattr(model, "built", False):  # a build_model without Input: create the weights now
        model.predict(np.zeros([1] + list(record["input_shape"]), np.float32), verbose=0)
    _compile(model, record["loss"], record.get("settings", {}).get("optimizer", "adam"),
             record.get("settings", {}).get("learning_rate"))
    return model


def _build_model(spec, input_shape, num_classes):
    """A recipe by name, or `build_model` from a Python file (called with (input_shape, num_classes)
    when it takes two arguments, else with none)."""
    from . import recipes
    if not spec.endswith(".py"):
        if spec not in recipes.RECIPES:
            raise UsageError(f"unknown model recipe {spec!r}: use one of {', '.join(recipes.RECIPES)}, or a .py file "
                             f"defining build_model(input_shape, num_classes)")
        with _user_errors(ValueError):
            return recipes.build(spec, input_shape, num_classes)
    import importlib.util
    import inspect
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"no such file {spec}: give a recipe ({', '.join(recipes.RECIPES)}) or a .py file "
                         f"defining build_model(input_shape, num_classes)")
    module_spec = importlib.util.spec_from_file_location(f"chainrule_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # the user's own code: its errors keep their traceback
    build = getattr(module, "build_model", None)
    if build is None:
        raise UsageError(f"{spec} defines no build_model: add `def build_model(input_shape, num_classes):` "
                         f"returning a chainrule model")
    takes_two = len(inspect.signature(build).parameters) >= 2
    model = build(tuple(input_shape), num_classes) if takes_two else build()
    if not hasattr(model, "fit"):
        raise UsageError(f"build_model in {spec} returned {type(model).__name__}, not a chainrule model")
    return model


def _compile(model, loss, optimizer="adam", learning_rate=None):
    from . import optimizers
    config = {} if learning_rate is None else {"learning_rate": learning_rate}
    model.compile(optimizer=optimizers.deserialize({"class_name": optimizer, "config": config}), loss=loss,
                  metrics=["accuracy"])


def _read_record(folder):
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise UsageError(f"{path} is damaged ({e}); delete it, or the whole folder, and train again") from None


def _write_record(folder, record):
    from .io.atomic import atomic_write_bytes
    atomic_write_bytes(Path(folder) / RUN_FILE, json.dumps(record, indent=1).encode("utf-8"))


def load_saved_model(spec):
    """(model, run record or None) from a model file, or a run folder holding one.

    `.chainrule` and `.keras` files hold the whole model; a weights file (.weights.npz, .safetensors,
    .weights.h5) is loaded into the model rebuilt from the run.json beside it."""
    from .io import keras_dispatch
    path = Path(spec)
    if path.is_dir():
        found = [path / n for n in ("model.chainrule", "model.keras", "model.weights.npz") if (path / n).is_file()]
        if not found:
            raise UsageError(f"{spec} holds no model.chainrule, model.keras or model.weights.npz: give the model "
                             f"file itself, or the folder a chainrule train or demo run wrote")
        path = found[0]
    if not path.is_file():
        raise UsageError(f"no such model file {spec}: give a file written by chainrule train or demo "
                         f"(e.g. chainrule-demo/model.chainrule)")
    record = _read_record(path.parent)
    from .io.native import ModelFileError
    errors = (ModelFileError, ValueError, ImportError, OSError, KeyError)
    if any(path.name.lower().endswith(s) for s in keras_dispatch.MODEL_SUFFIXES):
        from . import models
        with _user_errors(*errors):
            return models.load_model(str(path)), record
    if not any(path.name.lower().endswith(s) for s in keras_dispatch.WEIGHTS_SUFFIXES):
        raise UsageError(f"{spec}: a model file ends in .chainrule or .keras (weights: .weights.npz with the run.json "
                         f"of their run beside them)")
    if record is None:
        raise UsageError(f"{spec} holds weights only and there is no {RUN_FILE} beside it to rebuild the model from: "
                         f"give a .chainrule model file")
    model = _rebuild(record)
    with _user_errors(*errors):
        model.load_weights(str(path))
    return model, record


# ----------------------------------------------------------------------------- train
def _read_history(path):
    """The CSV history as {column: [floats]} (the 'epoch' column dropped)."""
    import csv
    history = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key != "epoch":
                    history.setdefault(key, []).append(float("nan") if value in ("NA", "") else float(value))
    return history


def _trim_history(path, epochs):
    """Keep the header and the first `epochs` rows: a run stopped after logging an epoch but before
    its checkpoint must not log that epoch twice when resumed."""
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:1 + epochs]), encoding="utf-8")


def _checkpoint_callback(folder, record, native):
    from .callbacks import Callback

    class EpochCheckpoint(Callback):
        """After each epoch: a resumable checkpoint and the run record (Ctrl-C loses at most one epoch)."""

        def on_epoch_end(self, epoch, logs=None):
            if native:
                from .io.native import save_checkpoint
                save_checkpoint(self.model, Path(folder) / f"{CHECKPOINT}.chainrule", epoch)
            else:
                self.model.save_weights(str(Path(folder) / f"{CHECKPOINT}.weights.npz"))
            record["epochs_done"] = epoch + 1
            _write_record(folder, record)
    return EpochCheckpoint()


def _resume(folder, record):
    """(model, epoch to start at) from the checkpoint in `folder`."""
    native = Path(folder) / f"{CHECKPOINT}.chainrule"
    if native.is_file():
        from .io.native import ModelFileError, load_checkpoint
        with _user_errors(ModelFileError, ImportError, ValueError, fix=f"delete {folder} and train again"):
            model, state = load_checkpoint(str(native))
        return model, state["epoch"]
    weights = Path(folder) / f"{CHECKPOINT}.weights.npz"
    if not weights.is_file():
        raise UsageError(f"{folder} has no checkpoint (no {native.name}): it did not finish an epoch; train afresh")
    model = _rebuild(record)
    model.load_weights(str(weights))
    print("note: resuming from weights only (safetensors is not installed), so the optimizer starts afresh")
    return model, record["epochs_done"]


def _train(args):
    from . import random
    from .callbacks import CSVLogger
    from .demo import installed, save_curves, save_model_file

    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        if args.out:
            raise UsageError("--resume continues in the run's own folder: drop --out")
        folder = Path(args.resume)
        record = _read_record(folder)
        if record is None:
            raise UsageError(f"{folder} holds no {RUN_FILE}: give the --out folder of an earlier chainrule train run")
        settings = {**TRAIN_DEFAULTS, **record["settings"], **given}
        if args.model and _model_spec(args.model) != record["model"]:
            raise UsageError(f"{folder} trained --model {record['model']}, not {args.model}: drop --model to resume")
    else:
        if not args.model:
            raise UsageError("which model? add --model with a recipe (e.g. --model cnn) or a .py file "
                             "defining build_model (or --resume DIR to continue a run)")
        settings = {**TRAIN_DEFAULTS, **given}
        stem = Path(args.model).stem if args.model.endswith(".py") else args.model
        folder = Path(args.out or f"chainrule-runs/{stem}-{Path(settings['data']).stem}")
        record = {"model": _model_spec(args.model)}

    data = load_dataset(settings["data"], settings["seed"], settings["image_size"]).limit(settings["limit"])
    loss, num_classes, data.y_train = _task(data.y_train)
    data.y_test = _task(data.y_test)[2] if len(data.y_test) else data.y_test
    random.seed(settings["seed"])  # initial weights and shuffle order (a resume restores its own state)
    if args.resume:
        model, initial_epoch = _resume(folder, record)
        if settings["epochs"] <= initial_epoch:
            raise UsageError(f"{folder} already has {initial_epoch} epochs: pass --epochs N with N > {initial_epoch} "
                             f"(the total, as in Keras's fit(initial_epoch=...))")
    else:
        model, initial_epoch = _build_model(args.model, data.x_train.shape[1:], num_classes), 0
        if getattr(model, "compiled", False):
            print("note: build_model returned a compiled model: its own loss and optimizer are used")
        else:
            _compile(model, loss, settings["optimizer"], settings["learning_rate"])
    x_train = _fit_inputs(data.x_train, _input_shape(model), f"model {record['model']}")
    x_test = _fit_inputs(data.x_test, _input_shape(model), f"model {record['model']}")
    _check_outputs(model, x_train, data.y_train, loss, record["model"])

    _make_folder(folder)
    record.update(settings=settings, data=data.name, input_shape=list(x_train.shape[1:]), num_classes=num_classes,
                  loss=loss, class_names=data.class_names, epochs_done=initial_epoch)
    _write_record(folder, record)
    print(f"Training {record['model']} on {data.name}: {len(x_train)} samples "
          f"({settings['validation_split']:.0%} kept for validation), epochs {initial_epoch + 1} to "
          f"{settings['epochs']}, batch size {settings['batch_size']}; writing to {folder}/")
    _trim_history(folder / HISTORY, initial_epoch)
    callbacks = [CSVLogger(folder / HISTORY, append=initial_epoch > 0),
                 _checkpoint_callback(folder, record, installed("safetensors"))]
    try:
        model.fit(x_train, data.y_train, batch_size=settings["batch_size"], epochs=settings["epochs"],
                  validation_split=settings["validation_split"], initial_epoch=initial_epoch, callbacks=callbacks)
    except KeyboardInterrupt:
        print(f"\ninterrupted after {record['epochs_done']} epochs; continue with: chainrule train --resume {folder}",
              file=sys.stderr)
        return 130
    results = model.evaluate(x_test, data.y_test, batch_size=settings["batch_size"], verbose=0, return_dict=True)
    print(f"Test ({len(x_test)} samples, {data.test_split}): " + _format_results(results))
    model_path, note = save_model_file(model, folder)
    for line in [note, save_curves(_read_history(folder / HISTORY), folder / CURVES)[1]]:
        if line:
            print(f"note: {line}")
    record["test"] = {k: float(v) for k, v in results.items()}
    _write_record(folder, record)
    print(f"Saved in {folder}/: {model_path.name}, {HISTORY}, {CURVES}, {RUN_FILE}")
    return 0


# ----------------------------------------------------------------------------- evaluate, predict
def _format_results(results):
    """'loss 0.4512  accuracy 0.8390': the loss first, as Keras lists it."""
    return "  ".join(f"{k} {v:.4f}" for k, v in sorted(results.items(), key=lambda kv: kv[0] != "loss"))


def _evaluate(args):
    model, record = load_saved_model(args.model)
    shape = _input_shape(model)
    image_size = tuple(shape[:2]) if shape is not None and len(shape) == 3 else None
    channels = shape[-1] if image_size else None
    data = load_dataset(args.data, 0, image_size, channels, evaluate=True).limit(args.limit)
    x = _fit_inputs(data.x_test, shape, f"model {args.model}")
    loss, _, y = _task(data.y_test)
    if not getattr(model, "compiled", False):
        _compile(model, (record or {}).get("loss") or loss)
    results = model.evaluate(x, y, batch_size=args.batch_size, verbose=0, return_dict=True)
    print(f"{data.name} ({len(x)} samples, {data.test_split}): " +
          _format_results(results))
    return 0


def _predict(args):
    import numpy as np

    from .datasets.directory import load_image
    model, record = load_saved_model(args.model)
    shape = _input_shape(model)
    if shape is None or len(shape) != 3 or shape[-1] not in (1, 3, 4):
        raise UsageError(f"predict reads images, but model {args.model} takes inputs of shape {shape}")
    color_mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[shape[-1]]
    images = []
    for path in args.images:
        if not Path(path).is_file():
            raise UsageError(f"no such image {path}")
        with _user_errors(ImportError, OSError, fix="give .png, .jpg, .bmp or .gif files"):
            images.append(load_image(path, color_mode=color_mode, image_size=tuple(shape[:2])) / 255.0)
    probs = np.asarray(model.predict(np.stack(images).astype(np.float32), verbose=0))
    if probs.ndim != 2:
        raise UsageError(f"model {args.model} outputs shape {probs.shape[1:]} per image, not class probabilities: "
                         f"predict prints classes of classifiers")
    names = args.class_names.split(",") if args.class_names else (record or {}).get("class_names")
    for path, p in zip(args.images, probs):
        if p.shape[0] == 1:  # a sigmoid output: the probability of class 1
            p = np.array([1.0 - p[0], p[0]])
        top = np.argsort(-p)[:args.top]
        label = [f"{names[k]} (class {k}) {p[k]:.3f}" if names and k < len(names) else f"class {k} {p[k]:.3f}"
                 for k in top]
        print(f"{path}: " + ", ".join(label))
    return 0


# ----------------------------------------------------------------------------- info, demo, backprop
def _dataset_locations():
    """{name: (found folder or None, folders searched)} without downloading anything."""
    from .datasets import _resolve, embedded, fashion_mnist, mnist
    found = {"embedded": (embedded.DATA_DIR if all((embedded.DATA_DIR / f).is_file() for f in embedded.FILES)
                          else None, [embedded.DATA_DIR])}
    for name, module, subdir in (("fashion_mnist", fashion_mnist, "fashion-mnist"), ("mnist", mnist, "")):
        layouts = getattr(module, "LAYOUTS", [module.FILES] if hasattr(module, "FILES") else [])
        hit, searched = _resolve.find_files(module.NAME, layouts, keras_subdir=subdir,
                                            system_dirs=getattr(module, "SYSTEM_DIRS", ()))
        found[name] = (hit[1][0].parent if hit else None, searched)
    return found


def _info(args):
    import os
    from importlib import metadata
    import platform

    import numpy as np

    from . import backend
    print(f"chainrule {__version__} ({Path(__file__).parent})")
    print(f"python {platform.python_version()} ({sys.executable}), numpy {np.__version__}")
    cupy = backend._cupy
    print("backend: numpy, float32 by default" + (f"; cupy {cupy.__version__} available" if cupy is not None
                                                  else " (cupy not installed, so no GPU)"))
    held = "; NumPy's BLAS held at 1 thread" if backend._blas_saved is not None else ""
    print(f"CPU cores: {os.cpu_count()}; chainrule threads: {backend.num_threads()} (CHAINRULE_NUM_THREADS or "
          f"chainrule.set_num_threads){held}")
    from . import accelerate
    compiled = ("numba installed" if accelerate.numba_available()
                else 'numba not installed: pip install "chainrule[fast]"')
    print(f"compiled kernels: {accelerate.numba_mode()} (CHAINRULE_NUMBA or chainrule.set_numba); {compiled}")
    try:
        from threadpoolctl import threadpool_info
        pools = threadpool_info()
        for pool in pools:
            print(f"{pool['user_api']}: {pool['internal_api']} {pool.get('version')}, {pool['num_threads']} threads")
    except ImportError:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {}) \
            if np.lib.NumpyVersion(np.__version__) >= "1.26.0" else {}
        print(f"blas: {blas.get('name', 'see numpy.show_config()')} {blas.get('version', '')}".rstrip()
              + " (thread count: pip install threadpoolctl)")
    extras = []
    for package, use in (("safetensors", "model files"), ("matplotlib", "plots"), ("pillow", "images"),
                         ("h5py", "HDF5"), ("threadpoolctl", "BLAS threads"), ("numba", "compiled kernels"),
                         ("torch", "comparisons in tests")):
        try:  # the installed version, without importing the package
            extras.append(f"{package} {metadata.version(package)} ({use})")
        except metadata.PackageNotFoundError:
            extras.append(f"{package}: not installed ({use})")
    print("optional packages: " + "; ".join(extras))
    print("datasets:")
    for name, (folder, searched) in _dataset_locations().items():
        where = f"found in {folder}" if folder else (
            "not found locally (looked in " + ", ".join(map(str, searched)) + "); downloaded on first use")
        print(f"  {name:14s} {where}")
    return 0


def _make_folder(folder):
    with _user_errors(OSError, fix="choose another --out"):
        Path(folder).mkdir(parents=True, exist_ok=True)


def _demo(args):
    from . import demo
    if args.backprop:
        return _backprop(args)
    _make_folder(args.out)
    demo.run(epochs=args.epochs, out=args.out, seed=args.seed, limit=args.limit)
    return 0


def _backprop(args):
    from . import demo
    demo.two_two_two(print)
    return 0


# ----------------------------------------------------------------------------- the parser
def build_parser():
    """The argparse parser of the `chainrule` command and its subcommands."""
    from .demo import DEFAULT_EPOCHS, DEFAULT_OUT
    parser = argparse.ArgumentParser(prog="chainrule", description="chainrule: a deep-learning library you can "
                                     "read, with the Keras API. Start with `chainrule demo`.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="train a CNN on Fashion-MNIST (shipped inside chainrule), offline",
                       description="Train TensorFlow's tutorial CNN on the 6000 + 1000 Fashion-MNIST images shipped "
                                   "inside chainrule, print the test accuracy, and save the model, its history and a "
                                   "PNG of the curves.")
    p.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS, help=f"default {DEFAULT_EPOCHS}")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and shuffles (default 0)")
    p.add_argument("--limit", type=_positive_int, default=None, help=argparse.SUPPRESS)  # quick runs for tests
    p.add_argument("--backprop", action="store_true", help="print the 2-2-2 backprop example instead")
    p.set_defaults(fn=_demo)

    p = sub.add_parser("backprop", help="the backprop lecture's 2-2-2 network, worked by autodiff",
                       description="Forward pass, E_total, the eight gradients and one gradient-descent step of the "
                                   "backpropagation lecture's 2-2-2 sigmoid network (inputs .05 .10, targets .01 .99).")
    p.set_defaults(fn=_backprop)

    from .recipes import describe
    recipes_text = "\n".join(f"  {k:12s} {v}" for k, v in describe().items())
    p = sub.add_parser("train", help="train a model recipe or your build_model() on a dataset",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train, evaluate on the test split, and save into --out: model.chainrule,\n"
                                   "checkpoint.chainrule (for --resume), history.csv, curves.png and run.json.\n\n"
                                   f"model recipes (--model NAME):\n{recipes_text}\n\n"
                                   "example: chainrule train --model cnn --data embedded --epochs 5")
    p.add_argument("--model", help="a recipe name, or a .py file defining build_model(input_shape, num_classes) "
                                   "or build_model()")
    p.add_argument("--data", help=f"{', '.join(DATASETS)}, a folder with one sub-folder per class (train/ and "
                                  f"test/ optional), or an .h5 file (default embedded)")
    p.add_argument("--epochs", type=_positive_int, help="total epochs, counting those of a resumed run (default 5)")
    p.add_argument("--batch-size", type=_positive_int, help="default 32")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--learning-rate", type=_positive_float, help="default: the optimizer's own (Keras's defaults)")
    p.add_argument("--validation-split", type=_fraction, help="fraction of the training data kept to validate each "
                                                              "epoch (default 0.1)")
    p.add_argument("--image-size", type=_image_size, help="resize a folder's images to SIZE or HxW "
                                                          "(default: the first image's size)")
    p.add_argument("--limit", type=_positive_int, help="use only the first N samples of each split (a quick check)")
    p.add_argument("--out", help="output folder (default ./chainrule-runs/MODEL-DATA)")
    p.add_argument("--seed", type=int, help="seed of the initial weights, shuffles and splits (default 0)")
    p.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR from its last finished epoch")
    p.set_defaults(fn=_train)

    p = sub.add_parser("evaluate", help="loss and metrics of a saved model on a dataset",
                       description="Evaluate a saved model on a dataset's test split (for a folder or file without "
                                   "one: all of it).")
    p.add_argument("model", help="model file (.chainrule, .keras) or the folder of a train/demo run")
    p.add_argument("data", help=f"{', '.join(DATASETS)}, a folder of images or an .h5 file")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    p.add_argument("--limit", type=_positive_int, help="use only the first N samples")
    p.set_defaults(fn=_evaluate)

    p = sub.add_parser("predict", help="the most likely class of each image",
                       description="Resize each image to the model's input, grayscale or RGB by its channel count, "
                                   "and print the top classes with their probabilities.")
    p.add_argument("model", help="model file (.chainrule, .keras) or the folder of a train/demo run")
    p.add_argument("images", nargs="+", help="image files (.png, .jpg, ...)")
    p.add_argument("--top", type=_positive_int, default=1, help="how many classes to print per image (default 1)")
    p.add_argument("--class-names", help="comma-separated class names (default: those saved with the run)")
    p.set_defaults(fn=_predict)

    p = sub.add_parser("info", help="version, backend, BLAS threads and the datasets found",
                       description="Versions of chainrule, Python and NumPy, the array backend, the BLAS library and "
                                   "its threads, optional packages, and where each dataset was found.")
    p.set_defaults(fn=_info)
    return parser


def main(argv=None):
    """Run the command; returns the exit status (0 ok, 2 a usage error, 130 interrupted)."""
    command = "chainrule"
    try:
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(errors="replace")  # the summary's box lines on a non-UTF-8 console
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        command = f"chainrule {args.command}"
        return args.fn(args)
    except UsageError as e:
        print(f"{command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chainrule info | head -1`: the reader left; say nothing more
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
