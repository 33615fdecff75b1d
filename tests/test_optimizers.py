"""Optimizers: the same 20 updates as Keras 3 (and as torch.optim where the two agree),
in place, with preallocated state; learning rate, iterations, config and lookup by name."""
import os

import numpy as np
import pytest

import chainrule
from chainrule import optimizers, schedules
from chainrule.variable import Variable

# Keras 3.15's torch backend calls np.array on tensors whose __array__ lacks `copy` (NumPy 2 warns)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

SHAPES = [(3, 4), (4,), ()]  # a kernel, a bias, a scalar
STEPS = 20
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def make_problem(seed=0):
    """Initial weights and a fixed sequence of 20 gradient lists. The gradient scale varies
    per step (0.1 to 3) so that clipping bites on some steps and not on others."""
    rng = np.random.default_rng(seed)
    inits = [np.asarray(rng.standard_normal(s), np.float32) for s in SHAPES]
    grads = []
    for _ in range(STEPS):
        scale = rng.uniform(0.1, 3.0)
        grads.append([np.asarray(scale * rng.standard_normal(s), np.float32) for s in SHAPES])
    return inits, grads


def run_ours(opt, inits, grads):
    variables = [Variable(a.copy()) for a in inits]
    for step_grads in grads:
        opt.apply(step_grads, variables)
    return variables


# ---------------------------------------------------------------------------------------- versus Keras 3
SCHEDULE = ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5))
COMMON_OPTIONS = [{}, {"learning_rate": 0.1}, {"learning_rate": 0.1, "weight_decay": 0.1},
                  {"learning_rate": 0.1, "clipnorm": 1.0}, {"learning_rate": 0.1, "clipvalue": 0.5},
                  {"learning_rate": 0.1, "global_clipnorm": 1.0}, {"learning_rate": SCHEDULE}]
OWN_OPTIONS = {
    "SGD": [{"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
            {"momentum": 0.9, "nesterov": True, "learning_rate": SCHEDULE, "weight_decay": 0.05}],
    "RMSprop": [{"momentum": 0.9}, {"centered": True}, {"centered": True, "momentum": 0.5, "rho": 0.8},
                {"epsilon": 1e-2, "learning_rate": 0.1}],
    "Adagrad": [{"initial_accumulator_value": 0.0, "learning_rate": 0.1}, {"epsilon": 1e-3}],
    "Adadelta": [{"learning_rate": 1.0, "rho": 0.9}, {"learning_rate": 1.0, "epsilon": 1e-3}],
    "Adam": [{"amsgrad": True, "learning_rate": 0.1}, {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}],
    "AdamW": [{"amsgrad": True, "learning_rate": 0.1}, {"learning_rate": 0.1, "weight_decay": 0.5}],
    "Nadam": [{"learning_rate": 0.1, "beta_1": 0.8}, {"epsilon": 1e-3, "beta_2": 0.9}],
}
CASES = [(name, opts) for name in OWN_OPTIONS for opts in COMMON_OPTIONS + OWN_OPTIONS[name]]


def build_kwargs(kwargs, schedule_module):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), tuple):
        cls_name, config = kwargs["learning_rate"]
        kwargs["learning_rate"] = getattr(schedule_module, cls_name)(**config)
    return kwargs


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_twenty_steps_match_keras(keras, name, options):
    inits, grads = make_problem()
    ours = getattr(optimizers, name)(**build_kwargs(options, schedules))
    variables = run_ours(ours, inits, grads)

    theirs = getattr(keras.optimizers, name)(**build_kwargs(options, keras.optimizers.schedules))
    kvars = [keras.Variable(a.copy()) for a in inits]
    for step_grads in grads:
        theirs.apply([keras.ops.convert_to_tensor(g) for g in step_grads], kvars)

    for v, kv in zip(variables, kvars):
        assert v.data.dtype == np.float32
        np.testing.assert_allclose(v.data, keras.ops.convert_to_numpy(kv), rtol=RTOL, atol=ATOL)
    assert ours.iterations == int(keras.ops.convert_to_numpy(theirs.iterations)) == STEPS
    # the whole state too, in Keras's saving order (iteration, learning rate, slots, ...)
    kstate = [keras.ops.convert_to_numpy(s) for s in theirs.variables]
    assert len(ours.variables) == len(kstate)
    for ours_state, their_state in zip(ours.variables, kstate):
        assert ours_state.shape == their_state.shape
        np.testing.assert_allclose(ours_state, their_state, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(OWN_OPTIONS))
def test_default_config_matches_keras(keras, name):
    ours = getattr(optimizers, name)().get_config()
    theirs = getattr(keras.optimizers, name)().get_config()
    assert list(ours) == list(theirs)  # same keys, same order
    for key in theirs:
        if key == "name":
            assert ours[key].split("_")[0] == theirs[key].split("_")[0]  # 'adam' / 'adam_3': numbering differs
        elif key == "learning_rate":
            assert ours[key] == pytest.approx(theirs[key], rel=1e-7)  # Keras keeps it as float32
        else:
            assert ours[key] == theirs[key], key


def test_keras_config_loads(keras):
    lr = keras.optimizers.schedules.CosineDecay(0.1, 100, alpha=0.1)
    config = keras.optimizers.serialize(keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True))
    opt = optimizers.deserialize(config)
    assert isinstance(opt, optimizers.SGD) and opt.momentum == 0.9 and opt.nesterov
    assert opt.learning_rate == pytest.approx(0.1)
    assert isinstance(opt.get_config()["learning_rate"], dict)


# ---------------------------------------------------------------------------------------- versus torch.optim
# Each pair is configured to compute the same update; the comment says what had to be aligned
# and where the two libraries differ otherwise. eps is made negligible where the two put it
# in different places (1e-12 against gradients of order 1).
TORCH_CASES = [
    # plain SGD: identical update w -= lr * g
    ("sgd", lambda: optimizers.SGD(0.1), lambda t, p: t.optim.SGD(p, lr=0.1)),
    # momentum: Keras m = mu*m - lr*g, w += m; torch b = mu*b + g, w -= lr*b. Same while lr is constant
    ("sgd-momentum", lambda: optimizers.SGD(0.1, momentum=0.9),
     lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("sgd-nesterov", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
     lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    # Adam: Keras's eps is "epsilon hat" (added to sqrt(v) before bias correction), torch's is added
    # after it; they agree only as eps -> 0
    ("adam", lambda: optimizers.Adam(0.01, epsilon=1e-12), lambda t, p: t.optim.Adam(p, lr=0.01, eps=1e-12)),
    ("adam-amsgrad", lambda: optimizers.Adam(0.01, epsilon=1e-12, amsgrad=True),
     lambda t, p: t.optim.Adam(p, lr=0.01, eps=1e-12, amsgrad=True)),
    # AdamW: the same decoupled decay w *= 1 - lr*wd before the step; defaults differ (0.004 vs 0.01)
    ("adamw", lambda: optimizers.AdamW(0.01, weight_decay=0.1, epsilon=1e-12),
     lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-12)),
    # RMSprop: torch's alpha is Keras's rho; eps inside the root in Keras, outside in torch
    ("rmsprop", lambda: optimizers.RMSprop(0.01, rho=0.9, epsilon=1e-12),
     lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-12)),
    # with momentum, torch scales its buffer by lr at the step, Keras inside it: same for a constant lr
    ("rmsprop-momentum", lambda: optimizers.RMSprop(0.01, rho=0.9, momentum=0.9, epsilon=1e-12),
     lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.9, eps=1e-12)),
    ("rmsprop-centered", lambda: optimizers.RMSprop(0.01, rho=0.9, centered=True, epsilon=1e-12),
     lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, centered=True, eps=1e-12)),
    # Adagrad: torch's accumulator starts at 0 unless told 0.1 (Keras's default); eps placement as RMSprop
    ("adagrad", lambda: optimizers.Adagrad(0.1, epsilon=1e-12),
     lambda t, p: t.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-12)),
    # Adadelta: the same formula, eps inside both roots; only the defaults differ
    ("adadelta", lambda: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6),
     lambda t, p: t.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
    # Nadam: torch's momentum schedule is 0.96**(t * momentum_decay) with momentum_decay=0.004;
    # Keras's is 0.96**t, i.e. momentum_decay=1. Then the updates (eps placement included) agree
    ("nadam", lambda: optimizers.Nadam(0.01), lambda t, p: t.optim.NAdam(p, lr=0.01, eps=1e-7, momentum_decay=1.0)),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES])
def test_twenty_steps_match_torch(torch, ours, theirs):
    inits, grads = make_problem(seed=1)
    variables = run_ours(ours(), inits, grads)
    params = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    opt = theirs(torch, params)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    for v, p in zip(variables, params):
        np.testing.assert_allclose(v.data, p.detach().numpy(), rtol=RTOL, atol=ATOL)


def test_keras_and_torch_adam_differ_with_default_epsilon(torch):
    # why the comparison above needs a negligible eps: with eps=1e-3 the two Adams part ways
    inits, grads = make_problem(seed=1)
    variables = run_ours(optimizers.Adam(0.01, epsilon=1e-3), inits, grads)
    params = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    opt = torch.optim.Adam(params, lr=0.01, eps=1e-3)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    assert not np.allclose(variables[0].data, params[0].detach().numpy(), rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------------- hand-worked steps
def test_sgd_momentum_by_hand():
    # w = 1, g = 1 every step, lr = 0.1, mu = 0.9
    # step 1: m = 0.9*0 - 0.1 = -0.1            w = 1 - 0.1 = 0.9
    # step 2: m = 0.9*(-0.1) - 0.1 = -0.19      w = 0.9 - 0.19 = 0.71
    w = Variable(np.array([1.0], np.float32))
    opt = optimizers.SGD(0.1, momentum=0.9)
    for _ in range(2):
        opt.apply([np.ones(1, np.float32)], [w])
    np.testing.assert_allclose(w.data, [0.71], rtol=1e-6)


def test_sgd_nesterov_by_hand():
    # Nesterov looks ahead: w += mu*m - lr*g with the new m
    # step 1: m = -0.1     w = 1 + 0.9*(-0.1) - 0.1 = 0.81
    # step 2: m = -0.19    w = 0.81 + 0.9*(-0.19) - 0.1 = 0.539
    w = Variable(np.array([1.0], np.float32))
    opt = optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    for _ in range(2):
        opt.apply([np.ones(1, np.float32)], [w])
    np.testing.assert_allclose(w.data, [0.539], rtol=1e-6)


def test_adam_first_step_is_about_lr_times_sign():
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr * sqrt(0.001) / 0.1,
    # so w -= alpha * m / (sqrt(v) + eps) = lr * g / (|g| + eps / sqrt(0.001)) ~ lr * sign(g)
    w = Variable(np.zeros(3, np.float32))
    optimizers.Adam(0.01).apply([np.array([-4.0, 0.5, 2.0], np.float32)], [w])
    np.testing.assert_allclose(w.data, [0.01, -0.01, -0.01], rtol=1e-4)


# ---------------------------------------------------------------------------------------- in place, state
@pytest.mark.parametrize("name", list(OWN_OPTIONS))
def test_updates_in_place_and_state_allocated_once(name):
    inits, grads = make_problem()
    opt = getattr(optimizers, name)(learning_rate=0.1, momentum=0.9) if name in ("SGD", "RMSprop") else \
        getattr(optimizers, name)(learning_rate=0.1)
    variables = [Variable(a.copy()) for a in inits]
    arrays = [v.data for v in variables]
    grad_copies = [[g.copy() for g in gs] for gs in grads]
    opt.apply(grads[0], variables)
    state = opt.variables[2:]  # after iteration count and learning rate: the live state arrays
    assert state, "every optimizer here keeps state"
    for a in state:
        assert a.dtype == np.float32
    for step_grads in grads[1:]:
        opt.apply(step_grads, variables)
        assert all(v.data is a for v, a in zip(variables, arrays))
        assert all(s is t for s, t in zip(opt.variables[2:], state))
    assert not np.allclose(variables[0].data, inits[0])
    for gs, copies in zip(grads, grad_copies):  # the caller's gradients are never written to
        for g, c in zip(gs, copies):
            np.testing.assert_array_equal(g, c)


@pytest.mark.parametrize("name", list(OWN_OPTIONS))
def test_big_variables_updated_block_by_block_give_the_same_steps(name, monkeypatch):
    inits, grads = make_problem()

    def run(block):
        monkeypatch.setattr(optimizers, "_BLOCK", block)
        opt = getattr(optimizers, name)(learning_rate=0.1, momentum=0.9) if name in ("SGD", "RMSprop") else \
            getattr(optimizers, name)(learning_rate=0.1)
        variables = [Variable(a.copy()) for a in inits]
        for step_grads in grads:
            opt.apply(step_grads, variables)
        return [v.data for v in variables], [s.copy() for s in opt.variables[2:]]

    whole, blocks = run(1 << 30), run(3)   # blocks of 3 elements, a ragged last block
    for a, b in zip(whole[0] + whole[1], blocks[0] + blocks[1]):
        np.testing.assert_array_equal(a, b)


def test_clipping_does_not_touch_the_gradients():
    g = np.full((2, 2), 10.0, np.float32)
    for opt in (optimizers.SGD(clipnorm=1.0), optimizers.SGD(clipvalue=1.0), optimizers.SGD(global_clipnorm=1.0)):
        opt.apply([g], [Variable(np.zeros((2, 2), np.float32))])
        np.testing.assert_array_equal(g, 10.0)


def test_state_in_the_variables_dtype():
    w = Variable(np.ones(3, np.float64))
    opt = optimizers.Adam(0.1)
    opt.apply([np.ones(3, np.float32)], [w])
    assert w.data.dtype == np.float64
    assert all(s.dtype == np.float64 for s in opt.variables[2:])


def test_same_variables_again_reuse_state_and_new_ones_get_their_own():
    a, b = Variable(np.ones(2, np.float32)), Variable(np.ones(3, np.float32))
    opt = optimizers.SGD(0.1, momentum=0.9)
    opt.apply([np.ones(2, np.float32)], [a])
    opt.apply([np.ones(2, np.float32)], [a])
    assert len(opt.variables) == 3  # iteration, learning rate, one momentum
    np.testing.assert_allclose(a.data, [0.71, 0.71], rtol=1e-6)  # momentum carried over (see the hand test)
    opt.apply([np.ones(2, np.float32), np.ones(3, np.float32)], [a, b])
    assert len(opt.variables) == 4
    np.testing.assert_allclose(b.data, 0.9, rtol=1e-6)  # b's first step: fresh momentum


def test_none_gradient_skips_the_variable():
    a, b = Variable(np.ones(2, np.float32)), Variable(np.ones(2, np.float32))
    opt = optimizers.SGD(0.5, weight_decay=0.1)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply([np.ones(2, np.float32), None], [a, b])
    np.testing.assert_array_equal(b.data, 1.0)  # neither updated nor decayed
    np.testing.assert_allclose(a.data, 1 * (1 - 0.5 * 0.1) - 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="no gradients"):
        opt.apply([None, None], [a, b])


def test_apply_without_variables_uses_the_built_ones_and_apply_gradients():
    w = Variable(np.zeros(2, np.float32))
    opt = optimizers.SGD(1.0)
    opt.build([w])
    opt.apply([np.ones(2, np.float32)])
    assert opt.apply_gradients([(np.ones(2, np.float32), w)]) == 2
    np.testing.assert_array_equal(w.data, -2.0)


def test_wrong_gradient_shape_is_named():
    w = Variable(np.zeros((3, 2), np.float32), name="kernel")
    with pytest.raises(ValueError, match=r"\(2, 3\).*'kernel'.*\(3, 2\)"):
        optimizers.SGD().apply([np.zeros((2, 3), np.float32)], [w])


def test_apply_bumps_the_version_so_stale_graphs_are_caught():
    w = Variable(np.ones(2, np.float32))
    before = w._version
    optimizers.SGD().apply([np.ones(2, np.float32)], [w])
    assert w._version == before + 1


def test_constraint_applied_after_the_update():
    w = Variable(np.zeros(2, np.float32), constraint=lambda v: np.clip(v.data, -0.5, 0.5))
    optimizers.SGD(1.0).apply([np.array([-2.0, 0.1], np.float32)], [w])
    np.testing.assert_allclose(w.data, [0.5, -0.1], rtol=1e-6)


def test_exclude_from_weight_decay():
    kernel, bias = Variable(np.ones(2, np.float32), name="kernel"), Variable(np.ones(2, np.float32), name="bias")
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    zero = np.zeros(2, np.float32)
    opt.apply([zero, zero], [kernel, bias])  # zero gradients: only the decay moves the weights
    np.testing.assert_allclose(kernel.data, 1 - 0.1 * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(bias.data, 1.0)


# ---------------------------------------------------------------------------------------- learning rate, iterations
def test_learning_rate_float_get_and_set():
    opt = optimizers.Adam(learning_rate=0.01)
    assert opt.learning_rate == 0.01 and isinstance(opt.learning_rate, float)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    assert opt.get_config()["learning_rate"] == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = "fast"


def test_learning_rate_schedule_follows_iterations_and_a_float_replaces_it():
    w = Variable(np.zeros(1, np.float32))
    opt = optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5))
    assert opt.learning_rate == pytest.approx(0.1)
    for _ in range(10):
        opt.apply([np.ones(1, np.float32)], [w])
    assert opt.iterations == 10
    assert opt.learning_rate == pytest.approx(0.05)  # 0.1 * 0.5 ** (10 / 10)
    opt.learning_rate = 0.2  # as ReduceLROnPlateau / LearningRateScheduler do
    opt.apply([np.ones(1, np.float32)], [w])
    assert opt.learning_rate == 0.2
    assert opt.get_config()["learning_rate"] == 0.2


def test_learning_rate_callables():
    w = Variable(np.zeros(1, np.float32))
    opt = optimizers.SGD(learning_rate=lambda step: 1.0 / (step + 1))  # step -> lr
    for _ in range(3):
        opt.apply([np.ones(1, np.float32)], [w])
    np.testing.assert_allclose(w.data, [-(1 + 1 / 2 + 1 / 3)], rtol=1e-6)
    assert optimizers.SGD(learning_rate=lambda: 0.3).learning_rate == 0.3  # Keras's zero-argument form


def test_iterations_count_apply_calls():
    opt = optimizers.RMSprop()
    w = Variable(np.zeros(2, np.float32))
    assert opt.iterations == 0
    for i in range(1, 4):
        opt.apply([np.ones(2, np.float32)], [w])
        assert opt.iterations == i
    opt.apply([], [])  # nothing to do: not counted, as in Keras
    assert opt.iterations == 3


# ---------------------------------------------------------------------------------------- config, saving, lookup
ROUND_TRIP = [
    optimizers.SGD(0.05, momentum=0.8, nesterov=True, clipnorm=2.0),
    optimizers.RMSprop(0.01, rho=0.8, momentum=0.1, epsilon=1e-6, centered=True, weight_decay=0.01),
    optimizers.Adagrad(0.2, initial_accumulator_value=0.3, epsilon=1e-5, clipvalue=1.0),
    optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6, global_clipnorm=5.0),
    optimizers.Adam(schedules.CosineDecay(0.1, 100, alpha=0.2), beta_1=0.8, amsgrad=True),
    optimizers.AdamW(0.003, weight_decay=0.02, beta_2=0.99),
    optimizers.Nadam(0.002, beta_1=0.85, epsilon=1e-8, name="my_nadam"),
]


@pytest.mark.parametrize("opt", ROUND_TRIP, ids=lambda o: type(o).__name__)
def test_config_round_trip(opt):
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert type(clone) is type(opt)
    assert clone.get_config() == config
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == config
    assert clone.learning_rate == opt.learning_rate


def test_state_saved_and_restored():
    inits, grads = make_problem()
    first = optimizers.Nadam(0.1)
    variables = run_ours(first, inits, grads[:10])
    store = {}
    first.save_own_variables(store)

    second = optimizers.Nadam(0.1)
    twin = [Variable(v.data.copy()) for v in variables]
    second.build(twin)
    second.load_own_variables(store)
    assert second.iterations == 10
    for step_grads in grads[10:]:
        first.apply(step_grads, variables)
        second.apply(step_grads, twin)
    for a, b in zip(variables, twin):
        np.testing.assert_array_equal(a.data, b.data)


def test_get_by_string_dict_instance():
    for name, cls in [("sgd", optimizers.SGD), ("Adam", optimizers.Adam), ("ADAMW", optimizers.AdamW),
                      ("rmsprop", optimizers.RMSprop), ("adagrad", optimizers.Adagrad),
                      ("adadelta", optimizers.Adadelta), ("nadam", optimizers.Nadam)]:
        assert type(optimizers.get(name)) is cls
    opt = optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.5, "momentum": 0.5}})
    assert isinstance(opt, optimizers.SGD) and opt.learning_rate == 0.5 and opt.momentum == 0.5
    assert optimizers.get(opt) is opt


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="adagrad.*adam.*adamw.*nadam.*rmsprop.*sgd"):
        optimizers.get("adamax_typo")


def test_constructor_errors_like_keras():
    with pytest.raises(ValueError, match="only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(beta1=0.9)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)


def test_automatic_names_number_like_keras():
    names = [optimizers.RMSprop().name for _ in range(2)]
    assert names[0].startswith("rm_sprop") and names[0] != names[1]


def test_schedules_reachable_from_optimizers():
    assert optimizers.schedules is schedules
    assert chainrule.optimizers.schedules.CosineDecay is schedules.CosineDecay
