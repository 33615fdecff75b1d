"""teach.random_search: log-uniform learning rates, a table sorted by validation score."""
import numpy as np
import pytest

from chainrule import layers, models, optimizers
from chainrule import teach
from chainrule.teach.search import _as_space


def test_loguniform_spreads_evenly_over_decades():
    space = teach.loguniform(1e-4, 1e-1)
    rng = np.random.default_rng(0)
    draws = np.array([space.sample(rng) for _ in range(3000)])
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    per_decade = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0] / len(draws)
    np.testing.assert_allclose(per_decade, 1 / 3, atol=0.04)   # uniform would put ~90% in the top decade


def test_space_shorthands():
    assert _as_space("learning_rate", (1e-4, 1e-1)).kind == "loguniform"
    assert _as_space("dropout", (0.0, 0.5)).kind == "uniform"
    assert _as_space("layers", (1, 3)).kind == "randint"
    assert _as_space("units", [8, 16]).kind == "choice"
    with pytest.raises(ValueError):
        teach.loguniform(0, 1)


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    return x, (x[:, 0] - x[:, 1] > 0).astype(np.int64)


def build(learning_rate, units):
    model = models.Sequential([layers.Input((4,)), layers.Dense(units, activation="relu"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_random_search_sorts_trials_by_validation_loss():
    x, y = data()
    space = {"learning_rate": (1e-3, 1.0), "units": [4, 8]}
    results = teach.random_search(build, space, trials=4, x=x[:64], y=y[:64], validation_data=(x[64:], y[64:]),
                                  epochs=2, seed=3, batch_size=16)
    scores = [t["score"] for t in results]
    assert scores == sorted(scores)
    for t in results:
        assert 1e-3 <= t["params"]["learning_rate"] <= 1.0 and t["params"]["units"] in (4, 8)
        assert t["score"] == min(t["history"]["val_loss"])
    again = teach.random_search(build, space, trials=4, x=x[:64], y=y[:64], validation_data=(x[64:], y[64:]),
                                epochs=2, seed=3, batch_size=16)
    assert [t["params"] for t in again] == [t["params"] for t in results]
    np.testing.assert_allclose([t["score"] for t in again], scores, rtol=1e-6)  # reseeded: the same run
    text = str(results)
    assert "val_loss (lower is better)" in text and "learning_rate" in text.splitlines()[1]


def test_accuracy_objective_sorts_highest_first():
    x, y = data(1)
    results = teach.random_search(build, {"learning_rate": teach.loguniform(1e-3, 1.0), "units": [4]}, trials=3,
                                  x=x, y=y, epochs=2, seed=0, objective="val_accuracy", validation_split=0.25,
                                  batch_size=16)
    scores = [t["score"] for t in results]
    assert scores == sorted(scores, reverse=True)
    assert results.best is results[0]


def test_random_search_needs_validation_data():
    x, y = data()
    with pytest.raises(ValueError, match="validation_data"):
        teach.random_search(build, {"learning_rate": (1e-3, 1e-1), "units": [4]}, trials=1, x=x, y=y)
