"""The Keras lecture's CNN, written exactly as in the course, with only the imports swapped."""
import io
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, losses, models, optimizers
from chainrule.utils import to_categorical

num_classes = 10
input_shape = (28, 28, 1)


def lecture_model():
    # --- from the lecture, unchanged ---
    model = models.Sequential()
    model.add(layers.Conv2D(32, kernel_size=(3, 3), input_shape=input_shape))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation('relu'))
    model.add(layers.Conv2D(64, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation('relu'))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Conv2D(128, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation('relu'))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Conv2D(256, (3, 3)))
    model.add(layers.BatchNormalization(momentum=0.95))
    model.add(layers.Activation('relu'))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(128, activation='relu'))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation='softmax'))
    model.compile(loss=losses.categorical_crossentropy,
                  optimizer=optimizers.Adadelta(),
                  metrics=['accuracy'])
    return model


# The lecture's parameter counting: a conv layer has filters * (kh*kw*C_in + 1), a batch norm
# 4 * channels (gamma, beta trainable; moving mean and variance not), a dense (in + 1) * units.
#   conv 32:   32 * (3*3*1 + 1)    =     320      BN 32:   4 * 32  =   128
#   conv 64:   64 * (3*3*32 + 1)   =  18,496      BN 64:   4 * 64  =   256
#   conv 128: 128 * (3*3*64 + 1)   =  73,856      BN 128:  4 * 128 =   512
#   conv 256: 256 * (3*3*128 + 1)  = 295,168      BN 256:  4 * 256 = 1,024
#   dense 128: (256 + 1) * 128     =  32,896      dense 10: (128 + 1) * 10 = 1,290
#   total 423,946, of which non-trainable 2 * (32 + 64 + 128 + 256) = 960
# Shapes: 28 -> 26 -> 24 -> pool 12 -> 10 -> pool 5 -> 3 -> pool 1 -> global pool 256.
TOTAL, NON_TRAINABLE = 423_946, 960


def test_lecture_cnn_parameter_counts_follow_the_arithmetic():
    model = lecture_model()
    assert model.count_params() == TOTAL
    assert sum(w.size for w in model.non_trainable_weights) == NON_TRAINABLE
    assert model.layer_output_shapes[0] == (None, 26, 26, 32)
    assert model.layer_output_shapes[-4] == (None, 256)
    text = io.StringIO()
    model.summary(print_fn=lambda line: text.write(line + "\n"))
    assert "Total params: 423,946" in text.getvalue()
    assert "Non-trainable params: 960" in text.getvalue()


def test_lecture_cnn_parameter_counts_equal_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    k = keras.Sequential([keras.Input(input_shape)])
    for layer in lecture_model().layers:
        cls = getattr(keras.layers, type(layer).__name__)
        config = {key: v for key, v in layer.get_config().items() if key not in ("batch_input_shape", "dtype")}
        k.add(cls.from_config(config))
    assert k.count_params() == TOTAL
    assert sum(int(np.prod(w.shape)) for w in k.non_trainable_weights) == NON_TRAINABLE


def test_lecture_cnn_trains_on_a_slice_of_data_unchanged():
    cr.random.seed(0)
    rng = np.random.default_rng(0)
    # two easy classes of 28x28 images (bright top half vs bright bottom half) among ten
    n = 64
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 0.3, (n, 28, 28, 1)).astype('float32')
    x[y == 0, :14] += 0.7
    x[y == 1, 14:] += 0.7
    x_train, x_test = x[:48], x[48:]
    y_train, y_test = to_categorical(y[:48], num_classes), to_categorical(y[48:], num_classes)
    model = lecture_model()
    history = model.fit(x_train, y_train, batch_size=16, epochs=2, verbose=1, validation_data=(x_test, y_test))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(np.isfinite(v) for v in history.history["loss"])
    score = model.evaluate(x_test, y_test, verbose=0)
    assert len(score) == 2 and 0.0 <= score[1] <= 1.0
