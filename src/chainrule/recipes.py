"""Ready-made models for `chainrule train --model NAME`, and for your own scripts.

Each recipe is a function ``recipe(input_shape, num_classes)`` that returns a new, uncompiled
model (the caller picks the loss and the optimizer)::

    from chainrule import recipes
    model = recipes.build("cnn", (28, 28, 1), 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

`input_shape` excludes the batch axis. A classifier ends in ``Dense(num_classes, softmax)``, or in
``Dense(1, sigmoid)`` when ``num_classes == 1`` (a yes/no question); the U-Net ends in a 1x1
convolution with the same rule applied to every pixel.
"""
from . import layers, models

__all__ = ["RECIPES", "recipe", "build", "describe", "mlp", "cnn", "small_cnn", "lecture_cnn", "unet"]

RECIPES = {}


def recipe(fn):
    """Register `fn` under its own name (a decorator)."""
    RECIPES[fn.__name__] = fn
    return fn


def build(name, input_shape, num_classes):
    """The recipe `name` built for inputs of `input_shape` and `num_classes` outputs.

    Raises KeyError naming the known recipes when `name` is not one of them."""
    if name not in RECIPES:
        raise KeyError(f"unknown model recipe {name!r}; the recipes are {', '.join(RECIPES)} "
                       f"(or a path to a .py file defining build_model)")
    return RECIPES[name](tuple(input_shape), int(num_classes))


def describe():
    """{name: first line of its docstring} for every recipe, for help texts."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in RECIPES.items()}


def _classifier_head(num_classes):
    # one unit + sigmoid for a single yes/no output, softmax over the classes otherwise
    if num_classes == 1:
        return layers.Dense(1, activation="sigmoid")
    return layers.Dense(num_classes, activation="softmax")


def _need_image(name, input_shape, min_side):
    """Check that a convolutional recipe gets (height, width, channels) images it can shrink."""
    if len(input_shape) != 3:
        raise ValueError(f"recipe '{name}' expects images (height, width, channels) but the data has samples of "
                         f"shape {input_shape}: use --model mlp for vectors")
    if min(input_shape[:2]) < min_side:
        raise ValueError(f"recipe '{name}' needs images of at least {min_side}x{min_side} pixels but got "
                         f"{input_shape[0]}x{input_shape[1]}: use larger images (--image-size) or --model mlp")


@recipe
def mlp(input_shape, num_classes):
    """Flatten, Dense 128 ReLU, Dropout 0.2, output: TensorFlow's beginner quick-start."""
    return models.Sequential([
        layers.Input(input_shape),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        _classifier_head(num_classes),
    ], name="mlp")


@recipe
def cnn(input_shape, num_classes):
    """TensorFlow's CNN tutorial: 3x3 convs of 32, 64, 64 filters with 2x2 max pools, Dense 64."""
    # 28x28 inputs: 26 -> pool 13 -> 11 -> pool 5 -> 3, so Flatten sees 3*3*64 = 576 values
    _need_image("cnn", input_shape, 18)
    return models.Sequential([
        layers.Input(input_shape),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        _classifier_head(num_classes),
    ], name="cnn")


@recipe
def small_cnn(input_shape, num_classes):
    """Two 3x3 convs of 16 and 32 filters with 2x2 max pools, Dense 64: about 4x cheaper than cnn."""
    _need_image("small_cnn", input_shape, 10)
    return models.Sequential([
        layers.Input(input_shape),
        layers.Conv2D(16, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        _classifier_head(num_classes),
    ], name="small_cnn")


@recipe
def lecture_cnn(input_shape, num_classes):
    """The Keras lecture's CNN: convs of 32, 64, 128, 256 filters with batch norm, global pooling, Dense 128."""
    # 28x28 inputs: 26 -> 24 -> pool 12 -> 10 -> pool 5 -> 3 -> pool 1, then 256 features
    _need_image("lecture_cnn", input_shape, 28)
    stack = [layers.Input(input_shape)]
    for i, filters in enumerate((32, 64, 128, 256)):
        stack += [layers.Conv2D(filters, (3, 3)), layers.BatchNormalization(momentum=0.95), layers.Activation("relu")]
        if i > 0:
            stack.append(layers.MaxPooling2D((2, 2)))
    stack += [layers.Dropout(0.25), layers.GlobalAveragePooling2D(), layers.Dense(128, activation="relu"),
              layers.Dropout(0.5), _classifier_head(num_classes)]
    return models.Sequential(stack, name="lecture_cnn")


@recipe
def unet(input_shape, num_classes):
    """A small U-Net for per-pixel labels (segmentation): two poolings down, two up-convolutions with skips."""
    if len(input_shape) != 3 or input_shape[0] % 4 or input_shape[1] % 4:
        raise ValueError(f"recipe 'unet' expects images (height, width, channels) with height and width divisible "
                         f"by 4 (it pools twice), got samples of shape {input_shape}: resize them (--image-size)")

    def double_conv(x, filters):
        x = layers.Conv2D(filters, (3, 3), padding="same", activation="relu")(x)
        return layers.Conv2D(filters, (3, 3), padding="same", activation="relu")(x)

    inputs = layers.Input(input_shape)
    skip1 = double_conv(inputs, 16)                                  # H x W x 16
    skip2 = double_conv(layers.MaxPooling2D((2, 2))(skip1), 32)      # H/2 x W/2 x 32
    x = double_conv(layers.MaxPooling2D((2, 2))(skip2), 64)          # H/4 x W/4 x 64: the bottleneck
    for skip, filters in ((skip2, 32), (skip1, 16)):
        x = layers.Conv2DTranspose(filters, (2, 2), strides=(2, 2))(x)  # double the resolution
        x = double_conv(layers.Concatenate()([x, skip]), filters)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = layers.Conv2D(num_classes, (1, 1), activation=activation)(x)
    return models.Model(inputs, outputs, name="unet")
