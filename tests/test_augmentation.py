"""Augmentation and preprocessing layers: Keras 3's semantics, seeding, identity at inference,
the same transform on images and masks, value ranges, Normalization.adapt against Keras."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, models
from chainrule.layers.preprocessing import (Normalization, RandomBrightness, RandomContrast, RandomFlip,
                                            RandomRotation, RandomShear, RandomTranslation, RandomZoom, Rescaling,
                                            _affine_rows, affine_transform)


# Keras's torch backend warns about NumPy 2's copy keyword when its variables become arrays
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def random_layers(seed=None):
    return [RandomFlip(seed=seed), RandomRotation(0.2, seed=seed), RandomTranslation(0.2, 0.1, seed=seed),
            RandomZoom(0.3, seed=seed), RandomShear(0.3, 0.2, seed=seed), RandomContrast(0.4, seed=seed),
            RandomBrightness(0.2, seed=seed)]


def names(layer_list):
    return [type(layer).__name__ for layer in layer_list]


@pytest.fixture
def images(rng):
    return rng.uniform(0, 255, (4, 12, 10, 3)).astype(np.float32)


def blob_images(n=6, size=24):
    """Smooth bright discs of assorted centres and radii, and their masks (image > 0.5)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(2.5, 5)
            out[i, ..., 0] = np.maximum(out[i, ..., 0], np.clip(1.5 - np.hypot(yy - cy, xx - cx) / r, 0, 1))
    return out, (out > 0.5).astype(np.float32)


# ----------------------------------------------------------------------------- training only
@pytest.mark.parametrize("layer", random_layers(seed=3), ids=names(random_layers()))
def test_identity_at_inference(layer, images):
    for out in (layer(images), layer(images, training=False)):
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.numpy(), images)
    changed = layer(images, training=True).numpy()
    assert changed.shape == images.shape and changed.dtype == np.float32
    assert not np.array_equal(changed, images)


def test_uint8_images_come_out_float32(images):
    out = RandomRotation(0.1, seed=0)(images.astype(np.uint8))
    assert out.dtype == np.float32


@pytest.mark.parametrize("make", [lambda: RandomRotation(0.3, seed=2), lambda: RandomContrast(0.3, seed=2)],
                         ids=["rotation", "contrast"])
def test_single_unbatched_image(make, images):
    batch = make()(images[:1], training=True).numpy()
    single = make()(images[0], training=True).numpy()
    assert single.shape == images[0].shape
    np.testing.assert_allclose(single, batch[0], rtol=1e-6, atol=1e-4)


# ----------------------------------------------------------------------------- seeding
@pytest.mark.parametrize("index", range(7), ids=names(random_layers()))
def test_same_seed_same_transform_other_seed_other_transform(index, images):
    a, b, c = random_layers(seed=5)[index], random_layers(seed=5)[index], random_layers(seed=6)[index]
    first = a(images, training=True).numpy()
    np.testing.assert_array_equal(first, b(images, training=True).numpy())
    assert not np.array_equal(first, c(images, training=True).numpy())
    assert not np.array_equal(first, a(images, training=True).numpy())  # the layer's generator moves on


def test_unseeded_layers_follow_the_shared_generator(images):
    layer = RandomZoom(0.3)
    cr.random.seed(42)
    first = layer(images, training=True).numpy()
    cr.random.seed(42)
    np.testing.assert_array_equal(first, layer(images, training=True).numpy())


def test_config_round_trip_replays_the_same_draws(images):
    for layer in random_layers(seed=9):
        twin = type(layer).from_config(layer.get_config())
        np.testing.assert_array_equal(twin(images, training=True).numpy(), layer(images, training=True).numpy())


# ----------------------------------------------------------------------------- geometry vs Keras
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest", "mirror"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_equals_keras(keras, rng, fill_mode, interpolation):
    images = rng.uniform(0, 255, (3, 9, 11, 2)).astype(np.float32)
    rows = _affine_rows(9, 11, angle=rng.uniform(-3, 3, 3), scale_x=rng.uniform(0.5, 2.5, 3),
                        scale_y=rng.uniform(0.5, 2.5, 3), shift_x=rng.uniform(-30, 30, 3),
                        shift_y=rng.uniform(-30, 30, 3))
    rows[:, 1] += rng.uniform(-0.5, 0.5, 3)  # a shear too
    theirs = keras.ops.image.affine_transform(images, rows, interpolation=interpolation, fill_mode=fill_mode,
                                              fill_value=7.0)
    ours = affine_transform(images, rows, interpolation, fill_mode, 7.0)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-3)


def _rows_from_keras(name, transformation, height, width):
    """Our transform rows for the random parameters Keras drew (its transformation dict)."""
    t = {k: np.asarray(v) if not isinstance(v, (int, tuple)) else v for k, v in transformation.items()}
    if name == "RandomRotation":
        return _affine_rows(height, width, angle=np.deg2rad(t["angle"]))
    if name == "RandomZoom":
        return _affine_rows(height, width, scale_x=t["width_zoom"][:, 0], scale_y=t["height_zoom"][:, 0])
    if name == "RandomTranslation":
        return _affine_rows(height, width, shift_x=t["translations"][:, 0], shift_y=t["translations"][:, 1])
    s = t["shear_factor"]
    n = len(s)
    return np.stack([np.ones(n), s[:, 0], np.zeros(n), s[:, 1], np.ones(n), np.zeros(n), np.zeros(n),
                     np.zeros(n)], 1).astype(np.float32)


@pytest.mark.parametrize("ours,args", [(RandomRotation, (0.3,)), (RandomZoom, (0.4, 0.2)),
                                       (RandomTranslation, (0.3, 0.2)), (RandomShear, (0.3, 0.3))],
                         ids=["rotation", "zoom", "translation", "shear"])
def test_geometric_layers_apply_kerass_transform(keras, images, ours, args):
    """Given the random parameters Keras drew, our layer produces Keras's output."""
    theirs = getattr(keras.layers, ours.__name__)(*args, seed=1)
    transformation = theirs.get_random_transformation(images, training=True)
    expected = np.asarray(theirs.transform_images(images, transformation, training=True))
    rows = _rows_from_keras(ours.__name__, transformation, *images.shape[1:3])
    got = ours(*args).apply(images, rows, "bilinear")
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)


def test_keras_signatures_and_defaults(keras):
    import inspect
    for layer in random_layers() + [Rescaling(1.0), Normalization()]:
        name = type(layer).__name__
        theirs = inspect.signature(getattr(keras.layers, name).__init__).parameters
        ours = inspect.signature(type(layer).__init__).parameters
        for arg, param in theirs.items():
            if arg in ("self", "kwargs", "bounding_box_format"):
                continue
            assert arg in ours, f"{name} lacks {arg}"
            assert ours[arg].default == param.default, f"{name}.{arg}: {ours[arg].default} != {param.default}"


def test_fill_modes_by_hand():
    """One row [a b c d] moved right by 2 pixels: output x reads input x - 2, i.e. -2, -1, 0, 1.
    reflect: -2 -> b, -1 -> a;  mirror: -2 -> c, -1 -> b;  wrap: -2 -> c, -1 -> d;
    nearest: a, a;  constant: the fill value."""
    row = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 4, 1)  # a b c d
    expected = {"reflect": [2, 1, 1, 2], "mirror": [3, 2, 1, 2], "wrap": [3, 4, 1, 2], "nearest": [1, 1, 1, 2],
                "constant": [9, 9, 1, 2]}
    for mode, values in expected.items():
        layer = RandomTranslation(0.0, (0.5, 0.5), fill_mode=mode, fill_value=9.0, seed=0)
        np.testing.assert_array_equal(layer(row, training=True).numpy().ravel(), values, err_msg=mode)


def test_rotation_by_a_quarter_turn_is_rot90():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    turned = RandomRotation((0.25, 0.25), seed=0)(image, training=True).numpy()[0, ..., 0]
    # output (x, y) reads input x' = c + cos t (x - c) - sin t (y - c), y' = c + sin t (x - c) + cos t (y - c);
    # with t = 90 degrees and c = 2: out[y, x] = in[x, 4 - y], a counter-clockwise turn as Keras documents
    np.testing.assert_allclose(turned, np.rot90(image[0, ..., 0], k=1), atol=1e-4)
    assert turned[0].tolist() == [4.0, 9.0, 14.0, 19.0, 24.0]


def test_zoom_positive_factor_zooms_out():
    image = np.zeros((1, 21, 21, 1), np.float32)
    image[0, 5:16, 5:16] = 1.0  # an 11 x 11 square
    out = RandomZoom((1.0, 1.0), fill_mode="constant", interpolation="nearest", seed=0)(image, training=True)
    assert (out.numpy() > 0.5).sum() < 0.4 * 121  # zoom factor 2: the square shrinks to about a quarter


def test_flip_keras3_semantics(images):
    out = RandomFlip("horizontal_and_vertical", seed=0)(np.repeat(images[:1], 16, axis=0), training=True).numpy()
    both = images[0, ::-1, ::-1]
    flags = [np.array_equal(o, images[0]) for o in out]
    assert all(f or np.array_equal(o, both) for f, o in zip(flags, out)) and 0 < sum(flags) < 16
    horizontal = RandomFlip("horizontal", seed=0)(np.repeat(images[:1], 16, axis=0), training=True).numpy()
    assert all(np.array_equal(o, images[0]) or np.array_equal(o, images[0, :, ::-1]) for o in horizontal)


# ----------------------------------------------------------------------------- masks
@pytest.mark.parametrize("layer", [RandomFlip(seed=1), RandomRotation(0.25, seed=1), RandomZoom(0.3, seed=1),
                                   RandomTranslation(0.2, 0.2, seed=1), RandomShear(0.3, 0.3, seed=1)],
                         ids=["flip", "rotation", "zoom", "translation", "shear"])
def test_same_transform_on_image_and_mask(layer):
    """The mask of the augmented image is the augmented mask, up to interpolation at the edges."""
    images, masks = blob_images()
    out_images, out_masks = layer([images, masks], training=True)
    out_images, out_masks = out_images.numpy(), out_masks.numpy()
    assert set(np.unique(out_masks)) <= {0.0, 1.0}  # nearest interpolation keeps labels
    # the blobs' edges ramp by at most 0.4 per input pixel and the nearest pixel lies within 0.71
    # pixel of the bilinear sample: wherever the image is clearly off the threshold they agree
    clear = np.abs(out_images - 0.5) > 0.3
    assert clear.mean() > 0.6
    np.testing.assert_array_equal((out_images > 0.5)[clear], out_masks[clear] == 1)
    assert np.mean((out_images > 0.5) != (out_masks == 1)) < 0.05
    if isinstance(layer, RandomFlip):
        np.testing.assert_array_equal(out_images > 0.5, out_masks == 1)
    # a mask moved by another draw does not match: the checks above can fail
    other = type(layer).from_config(dict(layer.get_config(), seed=12345))
    _, wrong_masks = other([images, masks], training=True)
    assert np.mean((out_images > 0.5)[clear] != (wrong_masks.numpy() == 1)[clear]) > 0.02


def test_mask_forms_list_tuple_dict():
    images, masks = blob_images(3)
    as_list = RandomRotation(0.2, seed=4)([images, masks], training=True)
    as_tuple = RandomRotation(0.2, seed=4)((images, masks), training=True)
    as_dict = RandomRotation(0.2, seed=4)({"images": images, "segmentation_masks": masks}, training=True)
    assert isinstance(as_list, list) and isinstance(as_tuple, tuple) and set(as_dict) == {"images",
                                                                                            "segmentation_masks"}
    np.testing.assert_array_equal(as_list[1].numpy(), as_dict["segmentation_masks"].numpy())
    np.testing.assert_array_equal(as_tuple[0].numpy(), as_dict["images"].numpy())


def test_integer_masks_keep_their_dtype_and_values():
    images, masks = blob_images(3)
    labels = (masks * 3).astype(np.uint8)  # class ids 0 and 3
    _, out = RandomRotation(0.3, seed=0)([images, labels], training=True)
    assert out.dtype == np.uint8 and set(np.unique(out.numpy())) <= {0, 3}


def test_photometric_layers_leave_masks_alone():
    images, masks = blob_images(3)
    for layer in (RandomContrast(0.5, value_range=(0, 1), seed=0), RandomBrightness(0.3, (0, 1), seed=0)):
        out_images, out_masks = layer([images, masks], training=True)
        np.testing.assert_array_equal(out_masks.numpy(), masks)
        assert not np.array_equal(out_images.numpy(), images)


def test_mask_shape_mismatch_is_explained():
    images, masks = blob_images(2)
    with pytest.raises(ValueError, match="do not match"):
        RandomRotation(0.1, seed=0)([images, masks[:, :10]], training=True)


# ----------------------------------------------------------------------------- colour
def test_contrast_factor_range_and_clipping(rng):
    # mid-grey images: even a factor of 1.5 stays inside 0..255, so the factor can be read back
    images = rng.uniform(100, 155, (200, 6, 6, 3)).astype(np.float32)
    out = RandomContrast(0.5, seed=0)(images, training=True).numpy()
    centred_in = images - images.mean(axis=(1, 2), keepdims=True)
    centred_out = out - out.mean(axis=(1, 2), keepdims=True)
    factor = (centred_out * centred_in).sum(axis=(1, 2, 3)) / (centred_in ** 2).sum(axis=(1, 2, 3))
    assert factor.min() >= 0.5 - 1e-4 and factor.max() <= 1.5 + 1e-4
    assert factor.min() < 0.8 and factor.max() > 1.2  # both lower and raise contrast, as documented
    wide = rng.uniform(0, 1, (50, 6, 6, 3)).astype(np.float32)
    clipped = RandomContrast((0.0, 1.0), value_range=(0, 1), seed=0)(wide, training=True).numpy()
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0 and (clipped == 1.0).any()


def test_brightness_delta_range_and_clipping(rng):
    images = rng.uniform(60, 195, (200, 5, 5, 3)).astype(np.float32)
    out = RandomBrightness(0.2, seed=0)(images, training=True).numpy()
    delta = out - images
    np.testing.assert_allclose(delta, delta[:, :1, :1, :1] * np.ones_like(delta), atol=1e-3)  # one delta per image
    assert np.abs(delta).max() <= 0.2 * 255 + 1e-3 and delta.min() < -25 and delta.max() > 25
    unit = RandomBrightness((0.5, 0.9), value_range=(0, 1), seed=0)(images / 255, training=True).numpy()
    assert unit.min() >= 0.5 * 60 / 255 and unit.max() == 1.0


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="RandomRotation 'rot'.*fill_mode"):
        RandomRotation(0.1, fill_mode="bounce", name="rot")
    with pytest.raises(ValueError, match="factor"):
        RandomContrast(1.5)
    with pytest.raises(ValueError, match="x_factor"):
        RandomShear(x_factor=-0.2)
    with pytest.raises(ValueError, match="> -1"):
        RandomZoom((-1.0, 0.5))
    with pytest.raises(ValueError, match="rank 4"):
        RandomFlip(seed=0)(np.zeros((2, 3), np.float32), training=True)


# ----------------------------------------------------------------------------- Rescaling, Normalization
def test_rescaling_formula_and_gradient():
    x = cr.tensor(np.array([[0.0, 127.5, 255.0]], np.float32), requires_grad=True)
    y = Rescaling(1 / 127.5, offset=-1.0)(x)
    np.testing.assert_allclose(y.numpy(), [[-1.0, 0.0, 1.0]], atol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full((1, 3), 1 / 127.5, np.float32), rtol=1e-6)
    assert Rescaling(1 / 255)(np.array([[255]], np.uint8)).dtype == np.float32
    per_channel = Rescaling([1.0, 2.0, 3.0])(np.ones((1, 2, 2, 3), np.float32)).numpy()
    np.testing.assert_array_equal(per_channel[0, 0, 0], [1.0, 2.0, 3.0])


def test_rescaling_and_normalization_apply_at_inference():
    x = np.array([[2.0, 4.0]], np.float32)
    assert Rescaling(0.5)(x, training=False).numpy().tolist() == [[1.0, 2.0]]
    assert Normalization(mean=1.0, variance=4.0)(x, training=False).numpy().tolist() == [[0.5, 1.5]]


@pytest.mark.parametrize("axis", [-1, None, (1, 2)], ids=["last", "none", "spatial"])
def test_normalization_adapt_matches_keras(keras, rng, axis):
    data = rng.normal(3.0, 2.0, (40, 4, 5, 3)).astype(np.float32) * np.array([1.0, 10.0, 0.1], np.float32)
    ours, theirs = Normalization(axis=axis), keras.layers.Normalization(axis=axis)
    ours.adapt(data)
    theirs.adapt(data)
    mean, variance = (keras.ops.convert_to_numpy(v) for v in (theirs.adapt_mean, theirs.adapt_variance))
    np.testing.assert_allclose(ours.adapt_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.adapt_variance.numpy(), variance, rtol=1e-4)
    np.testing.assert_allclose(ours(data).numpy(), keras.ops.convert_to_numpy(theirs(data)), rtol=1e-4, atol=1e-4)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]


def test_normalization_adapt_on_batches_matches_keras(keras, rng):
    batches = [rng.normal(5.0, 3.0, (n, 6)).astype(np.float32) for n in (7, 13, 4)]
    ours, theirs = Normalization(), keras.layers.Normalization()
    ours.adapt(iter([(b, None) for b in batches]))  # (x, y) batches, as a dataset yields them
    theirs.adapt(np.concatenate(batches))  # Keras 3.15 on torch needs TensorFlow to adapt on a list
    mean, variance = (keras.ops.convert_to_numpy(v) for v in (theirs.adapt_mean, theirs.adapt_variance))
    np.testing.assert_allclose(ours.adapt_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(ours.adapt_variance.numpy(), variance, rtol=1e-4)
    whole = np.concatenate(batches)
    np.testing.assert_allclose(ours.adapt_variance.numpy(), whole.var(axis=0), rtol=1e-5)


def test_normalization_given_statistics_and_invert_match_keras(keras, rng):
    x = rng.normal(0, 1, (5, 3)).astype(np.float32)
    for kwargs in (dict(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 0.0]), dict(mean=2.0, variance=9.0),
                   dict(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0], invert=True)):
        np.testing.assert_allclose(Normalization(**kwargs)(x).numpy(),
                                   np.asarray(keras.layers.Normalization(**kwargs)(x)), rtol=1e-5, atol=1e-5)


def test_normalization_by_hand_and_gradient():
    # mean 2, population variance ((1-2)^2 + (3-2)^2) / 2 = 1: y = x - 2
    layer = Normalization(axis=None)
    layer.adapt(np.array([[1.0], [3.0]], np.float32))
    x = cr.tensor(np.array([[5.0]], np.float32), requires_grad=True)
    y = layer(x)
    assert y.numpy().tolist() == [[3.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[1.0]]
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)


def test_layers_inside_a_model_train_and_predict(rng):
    cr.random.seed(0)
    x = rng.uniform(0, 255, (32, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    norm = Normalization()
    norm.adapt(x)
    model = models.Sequential([layers.Input((8, 8, 1)), RandomFlip(seed=0), RandomRotation(0.1, seed=0),
                               RandomZoom(0.1, seed=0), norm, layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(history.history["loss"]) == 2
    a, b = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)  # no augmentation at inference
