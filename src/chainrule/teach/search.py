"""Random hyperparameter search, as the lectures recommend over grid search (Bergstra & Bengio,
2012): with a few hyperparameters that matter and many that do not, random points try more
distinct values of each one than a grid of the same size. Learning rates are drawn log-uniformly,
so 1e-4..1e-3 is as likely as 1e-2..1e-1.

    results = teach.random_search(build, {"learning_rate": teach.loguniform(1e-4, 1e-1),
                                          "units": [16, 32, 64]},
                                  trials=10, x=x, y=y, validation_data=(xv, yv), epochs=5, seed=0)
    print(results)          # a table, best first
    results.best["params"]
"""
import math
import time

import numpy as np

from .. import random as cr_random

__all__ = ["random_search", "SearchResults", "loguniform", "uniform", "choice", "randint"]


class _Space:
    def __init__(self, kind, *args):
        self.kind, self.args = kind, args

    def sample(self, rng):
        if self.kind == "loguniform":
            lo, hi = self.args
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.kind == "uniform":
            return float(rng.uniform(*self.args))
        if self.kind == "randint":
            lo, hi = self.args
            return int(rng.integers(lo, hi + 1))
        values = self.args[0]
        return values[int(rng.integers(len(values)))]

    def __repr__(self):
        return f"{self.kind}{self.args}"


def loguniform(low, high):
    """A value v with log(v) uniform in [log(low), log(high)] (learning rates, weight decay)."""
    if not 0 < low < high:
        raise ValueError(f"loguniform needs 0 < low < high, got {low}, {high}")
    return _Space("loguniform", low, high)


def uniform(low, high):
    """A float uniform in [low, high] (dropout rates, momentum)."""
    return _Space("uniform", low, high)


def randint(low, high):
    """An int uniform in [low, high], both included (layer counts)."""
    return _Space("randint", int(low), int(high))


def choice(values):
    """One of `values`, each equally likely (units, activations, optimizers)."""
    values = list(values)
    if not values:
        raise ValueError("choice needs at least one value")
    return _Space("choice", values)


def _as_space(name, spec):
    """A spec as a _Space: lists are choices; a (low, high) pair is log-uniform for a learning rate
    (a name with 'learning_rate' or 'lr'), an int range for ints, uniform otherwise."""
    if isinstance(spec, _Space):
        return spec
    if isinstance(spec, list):
        return choice(spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        lo, hi = spec
        if "learning_rate" in name or name == "lr" or name.endswith("_lr"):
            return loguniform(lo, hi)
        if isinstance(lo, int) and isinstance(hi, int):
            return randint(lo, hi)
        return uniform(lo, hi)
    return choice([spec])  # a constant


class SearchResults(list):
    """One dict per trial, best first: 'params', 'score' (the objective at its best epoch), 'epoch',
    'history', 'seconds'."""

    def __init__(self, trials, objective, mode):
        super().__init__(trials)
        self.objective, self.mode = objective, mode

    @property
    def best(self):
        return self[0]

    def __str__(self):
        names = list(dict.fromkeys(k for t in self for k in t["params"]))
        cells = [[str(i + 1), _fmt(t["score"])] + [_fmt(t["params"].get(n)) for n in names]
                 + [str(t["epoch"] + 1 if t["epoch"] is not None else "-"), f"{t['seconds']:.2f}s"] for i, t in
                 enumerate(self)]
        head = ["rank", self.objective] + names + ["epoch", "time"]
        widths = [max(len(h), *(len(c[j]) for c in cells)) for j, h in enumerate(head)]
        line = lambda row: "  ".join(v.rjust(w) for v, w in zip(row, widths))
        better = "lower" if self.mode == "min" else "higher"
        return "\n".join([f"random search: {len(self)} trials, sorted by {self.objective} ({better} is better)",
                          line(head), line(["-" * w for w in widths])] + [line(c) for c in cells])

    __repr__ = __str__


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def random_search(build_fn, space, trials=10, x=None, y=None, validation_data=None, epochs=5, seed=0,
                  objective="auto", batch_size=None, verbose=0, **fit_kwargs):
    """Train `trials` models with hyperparameters drawn at random from `space`; returns a
    `SearchResults` table sorted by the validation score, best first.

    build_fn(**params) returns a compiled model. space maps each parameter to `loguniform(lo, hi)`,
    `uniform(lo, hi)`, `randint(lo, hi)`, `choice([...])`, a list (a choice) or a (lo, hi) pair
    (log-uniform for names containing 'learning_rate', else uniform, or randint for ints).
    objective: a key of the History ('val_loss', 'val_accuracy', ...); 'auto' = 'val_loss'.
    Scores are the best epoch's value (lowest for losses and errors, highest otherwise). Each trial
    reseeds chainrule's random source with seed + trial, so a search repeats exactly.
    """
    spaces = {name: _as_space(name, spec) for name, spec in space.items()}
    if objective == "auto":
        objective = "val_loss"
    if validation_data is None and not fit_kwargs.get("validation_split") and objective.startswith("val_"):
        raise ValueError(f"random_search scores trials by {objective!r}: pass validation_data=(x_val, y_val) "
                         f"or validation_split=0.2, or choose objective='loss'")
    mode = "min" if ("loss" in objective or "error" in objective) else "max"
    rng = np.random.default_rng(seed)
    results = []
    for trial in range(trials):
        params = {name: s.sample(rng) for name, s in spaces.items()}
        cr_random.seed(seed + trial)
        start = time.perf_counter()
        model = build_fn(**params)
        history = model.fit(x, y, validation_data=validation_data, epochs=epochs, batch_size=batch_size,
                            verbose=verbose, **fit_kwargs)
        values = history.history.get(objective)
        if not values:
            raise ValueError(f"random_search: the History has no {objective!r}; it has {sorted(history.history)}")
        finite = [(v, e) for e, v in enumerate(values) if np.isfinite(v)]
        if finite:
            score, epoch = min(finite, key=lambda t: (t[0] if mode == "min" else -t[0], t[1]))
        else:  # a diverged trial ranks last
            score, epoch = (math.inf if mode == "min" else -math.inf), None
        results.append({"params": params, "score": float(score), "epoch": epoch, "history": history.history,
                        "seconds": time.perf_counter() - start})
        if verbose:
            print(f"trial {trial + 1}/{trials}: {params} -> {objective} {score:.4g}")
    results.sort(key=lambda t: t["score"] if mode == "min" else -t["score"])
    return SearchResults(results, objective, mode)
