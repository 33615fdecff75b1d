"""Learning-rate schedules: Keras 3's values at a table of steps, and a few worked by hand."""
import math
import os

import numpy as np
import pytest

from chainrule import optimizers, schedules
from chainrule.variable import Variable

# Keras 3.15's torch backend calls np.array on tensors whose __array__ lacks `copy` (NumPy 2 warns)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

STEPS = [0, 1, 2, 5, 9, 10, 11, 49, 50, 99, 100, 101, 150, 999, 1000, 5000]

CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=True)),
    ("ExponentialDecay", dict(initial_learning_rate=1e-3, decay_steps=1000, decay_rate=0.96, name="decay")),
    ("PiecewiseConstantDecay", dict(boundaries=[10, 100], values=[1.0, 0.5, 0.1])),
    ("PiecewiseConstantDecay", dict(boundaries=[50, 100, 150], values=[0.1, 0.01, 0.001, 0.0001])),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.2)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)),
    ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=900, alpha=0.1, warmup_target=0.5,
                         warmup_steps=100)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=True)),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("name, config", CASES, ids=IDS)
def test_values_match_keras(keras, name, config):
    ours = getattr(schedules, name)(**config)
    theirs = getattr(keras.optimizers.schedules, name)(**config)
    for step in STEPS:
        value = ours(step)
        assert isinstance(value, float)
        expected = float(keras.ops.convert_to_numpy(theirs(step)))
        # Keras computes in float32, we in Python floats: near the end of a cosine, 1 + cos(pi * s)
        # cancels in float32 (Keras is off by ~1e-9 there), hence the absolute tolerance
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-8), f"step {step}"


@pytest.mark.parametrize("name, config", CASES, ids=IDS)
def test_config_matches_keras(keras, name, config):
    ours = getattr(schedules, name)(**config).get_config()
    theirs = getattr(keras.optimizers.schedules, name)(**config).get_config()
    assert ours == theirs  # same keys, defaults (names included) and values


def test_keras_serialized_schedule_loads(keras):
    config = keras.optimizers.schedules.serialize(keras.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5))
    schedule = schedules.deserialize(config)  # Keras adds 'module' and 'registered_name': ignored
    assert isinstance(schedule, schedules.InverseTimeDecay)
    assert schedule(10) == pytest.approx(0.1 / 1.5)


# ---------------------------------------------------------------------------------------- by hand
def test_exponential_decay_by_hand():
    lr = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert lr(0) == pytest.approx(0.1)
    assert lr(10) == pytest.approx(0.05)                      # 0.1 * 0.5 ** (10/10)
    assert lr(5) == pytest.approx(0.1 * math.sqrt(0.5))       # 0.1 * 0.5 ** 0.5 = 0.0707107
    stairs = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stairs(19) == pytest.approx(0.05)                  # floor(19/10) = 1 -> 0.1 * 0.5
    assert stairs(20) == pytest.approx(0.025)                 # floor(20/10) = 2 -> 0.1 * 0.25


def test_piecewise_constant_boundaries_belong_to_the_interval_before():
    lr = schedules.PiecewiseConstantDecay(boundaries=[100, 200], values=[1.0, 0.5, 0.1])
    # values[0] while step <= 100, values[1] while 100 < step <= 200, values[2] after
    assert [lr(s) for s in (0, 100, 101, 200, 201, 10**6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_divide_by_ten_three_times_recipe():
    # the lecture's recipe: start at 0.1, divide by 10 at epochs 30, 60 and 80 (here 50 batches per epoch)
    steps_per_epoch = 50
    lr = schedules.PiecewiseConstantDecay(
        boundaries=[30 * steps_per_epoch, 60 * steps_per_epoch, 80 * steps_per_epoch],
        values=[0.1, 0.01, 0.001, 0.0001])
    first_step_of_epoch = [lr(epoch * steps_per_epoch + 1) for epoch in (0, 29, 30, 59, 60, 79, 80, 99)]
    assert first_step_of_epoch == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]


def test_cosine_decay_by_hand():
    lr = schedules.CosineDecay(1.0, decay_steps=100)
    assert lr(0) == pytest.approx(1.0)
    assert lr(50) == pytest.approx(0.5)      # 0.5 * (1 + cos(pi/2)) = 0.5
    assert lr(100) == pytest.approx(0.0)
    assert lr(300) == pytest.approx(0.0)     # held at the end
    floor = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert floor(50) == pytest.approx(0.55)  # (1 - 0.1) * 0.5 + 0.1
    assert floor(100) == pytest.approx(0.1)  # alpha * initial


def test_cosine_warmup_by_hand():
    lr = schedules.CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert lr(5) == pytest.approx(0.5)       # halfway up the linear warmup 0 -> 1
    assert lr(10) == pytest.approx(1.0)      # warmup done, cosine starts from warmup_target
    assert lr(60) == pytest.approx(0.5)      # 50 of 100 decay steps
    assert lr(500) == pytest.approx(0.0)


def test_inverse_time_decay_by_hand():
    lr = schedules.InverseTimeDecay(1.0, decay_steps=10, decay_rate=0.5)
    assert lr(20) == pytest.approx(0.5)      # 1 / (1 + 0.5 * 20/10)
    stairs = schedules.InverseTimeDecay(1.0, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stairs(19) == pytest.approx(1 / 1.5)  # floor(19/10) = 1


def test_numpy_integer_steps():
    lr = schedules.ExponentialDecay(0.1, 10, 0.5)
    assert lr(np.int64(10)) == pytest.approx(0.05)
    assert lr(np.array(10)) == pytest.approx(0.05)


# ---------------------------------------------------------------------------------------- config, errors, use
@pytest.mark.parametrize("name, config", CASES, ids=IDS)
def test_config_round_trip(name, config):
    schedule = getattr(schedules, name)(**config)
    clone = type(schedule).from_config(schedule.get_config())
    again = schedules.deserialize(schedules.serialize(schedule))
    for step in STEPS:
        assert clone(step) == schedule(step) == again(step)
    assert again.get_config() == schedule.get_config()


def test_errors():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.CosineDecay(0.1, -1)
    with pytest.raises(ValueError, match="one element fewer"):
        schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5])
    with pytest.raises(ValueError, match="strictly increasing"):
        schedules.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match="known"):
        schedules.deserialize({"class_name": "NoSuchDecay", "config": {}})


def test_custom_schedule_subclass_drives_an_optimizer():
    class Halving(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 1.0 / 2 ** step

        def get_config(self):
            return {}

    w = Variable(np.zeros(1, np.float32))
    opt = optimizers.SGD(learning_rate=Halving())
    for _ in range(3):
        opt.apply([np.ones(1, np.float32)], [w])
    np.testing.assert_allclose(w.data, [-(1 + 0.5 + 0.25)])  # rates at steps 0, 1, 2
    restored = optimizers.SGD.from_config(opt.get_config(), custom_objects={"Halving": Halving})
    assert restored.learning_rate == 1.0
