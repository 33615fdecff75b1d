"""Elementwise ops (chainrule.ops.math): gradients by central differences in float64, then
values and gradients against PyTorch in float32, and float32 kept through scalar operands.

Inputs are drawn away from the kinks (|x| near 0, maximum near a tie, clip near a bound):
a finite difference across a kink measures neither one-sided derivative.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import chainrule as cr
from chainrule import ops
from chainrule.ops.math import cast

# (a shape, b shape): equal, trailing-axis, stretched on both sides, and 0-d scalars
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
                   ((), (2, 3)), ((3, 1), ()), ((), ()), ((1, 3), (2, 1))]
UNARY_SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


def normal(rng, shape):
    return np.asarray(rng.standard_normal(shape))


def away_from_zero(rng, shape):
    """|x| in [0.2, 2]: no kink of abs, sign, relu within a finite-difference step."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape))


def positive(rng, shape):
    return np.asarray(rng.uniform(0.5, 2.0, shape))


def grid(rng, shape, offset=0.0):
    """Multiples of 0.2 plus `offset`: grid(.) and grid(., 0.1) never tie and differ by >= 0.1."""
    return np.asarray(rng.integers(-5, 6, shape) * 0.2 + offset)


# name: (op, torch op name, draw a, draw b)
BINARY = {
    "add": (ops.add, "add", normal, normal),
    "sub": (ops.sub, "sub", normal, normal),
    "mul": (ops.mul, "mul", normal, normal),
    "div": (ops.div, "div", normal, away_from_zero),
    "pow": (ops.pow, "pow", positive, normal),
    "maximum": (ops.maximum, "maximum", grid, lambda rng, s: grid(rng, s, 0.1)),
    "minimum": (ops.minimum, "minimum", grid, lambda rng, s: grid(rng, s, 0.1)),
}

# name: (op, torch equivalent, draw x)
UNARY = {
    "neg": (ops.neg, lambda t, x: t.neg(x), normal),
    "square": (ops.square, lambda t, x: t.square(x), normal),
    "exp": (ops.exp, lambda t, x: t.exp(x), normal),
    "log": (ops.log, lambda t, x: t.log(x), positive),
    "log1p": (ops.log1p, lambda t, x: t.log1p(x), lambda rng, s: np.asarray(rng.uniform(-0.5, 2.0, s))),
    "sqrt": (ops.sqrt, lambda t, x: t.sqrt(x), positive),
    "abs": (ops.abs, lambda t, x: t.abs(x), away_from_zero),
    "sign": (ops.sign, lambda t, x: t.sign(x), away_from_zero),
    # grid(., 0.05) keeps every value at least 0.05 from the bounds +-0.5
    "clip": (lambda x: ops.clip(x, -0.5, 0.5), lambda t, x: t.clamp(x, -0.5, 0.5),
             lambda rng, s: grid(rng, s, 0.05)),
    "clip_min": (lambda x: ops.clip(x, min=-0.5), lambda t, x: t.clamp(x, min=-0.5),
                 lambda rng, s: grid(rng, s, 0.05)),
    "clip_max": (lambda x: ops.clip(x, max=0.5), lambda t, x: t.clamp(x, max=0.5),
                 lambda rng, s: grid(rng, s, 0.05)),
}


# ------------------------------------------------------------------ gradients (float64)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_with_broadcasting(name, shapes, rng):
    fn, _, draw_a, draw_b = BINARY[name]
    a, b = draw_a(rng, shapes[0]), draw_b(rng, shapes[1])
    assert fn(cr.Tensor(a), cr.Tensor(b)).shape == np.broadcast_shapes(*shapes)
    cr.gradcheck(fn, a, b)


@settings(max_examples=20, deadline=None, database=None, derandomize=True)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3))
@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_any_broadcastable_shapes(name, shapes):
    fn, _, draw_a, draw_b = BINARY[name]
    rng = np.random.default_rng(len(shapes.input_shapes[0]) * 10 + len(shapes.input_shapes[1]))
    a, b = draw_a(rng, shapes.input_shapes[0]), draw_b(rng, shapes.input_shapes[1])
    assert fn(cr.Tensor(a), cr.Tensor(b)).shape == shapes.result_shape
    cr.gradcheck(fn, a, b)


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name, shape, rng):
    fn, _, draw = UNARY[name]
    cr.gradcheck(fn, draw(rng, shape))


@pytest.mark.parametrize("exponent", [3, 2.0, -1.5, 0.5, np.float64(1.7)])
def test_pow_scalar_exponent_gradcheck(exponent, rng):
    cr.gradcheck(lambda x: x ** exponent, positive(rng, (3, 4)))
    cr.gradcheck(lambda x: ops.pow(x, exponent), positive(rng, (5,)))


def test_pow_integer_exponent_of_negative_base(rng):
    # d/dx x^3 = 3 x^2 holds for x < 0 too
    cr.gradcheck(lambda x: x ** 3, -positive(rng, (6,)))


def test_pow_scalar_base_gradcheck(rng):
    # d/dx 2^x = 2^x ln 2
    cr.gradcheck(lambda x: 2.0 ** x, normal(rng, (3, 4)))
    cr.gradcheck(lambda x: ops.pow(1.5, x), normal(rng, (4,)))


def test_pow_exponent_gradient_is_zero_at_zero_base():
    a = cr.tensor([0.0, 2.0], dtype=np.float64, requires_grad=True)
    b = cr.tensor([2.0, 3.0], dtype=np.float64, requires_grad=True)
    (a ** b).sum().backward()
    # d/db a^b = a^b ln a, taken as 0 at a = 0 (a^b = 0 there); 2^3 ln 2 = 5.545177444
    np.testing.assert_allclose(b.grad, [0.0, 8 * np.log(2)])
    np.testing.assert_allclose(a.grad, [0.0, 12.0])


@pytest.mark.parametrize("cond_shape, a_shape, b_shape", [((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1)),
                                                      ((3, 1), (3, 4), ()), ((4,), (2, 1, 4), (3, 1))])
def test_where_gradcheck(cond_shape, a_shape, b_shape, rng):
    cond = rng.random(cond_shape) > 0.5
    cr.gradcheck(lambda a, b: ops.where(cond, a, b), normal(rng, a_shape), normal(rng, b_shape))
    cr.gradcheck(lambda a, b: ops.where(cr.Tensor(cond), a, b), normal(rng, a_shape), normal(rng, b_shape))


def test_where_with_a_constant_branch(rng):
    cond = rng.random((3, 4)) > 0.5
    cr.gradcheck(lambda a: ops.where(cond, a, 0.0), normal(rng, (3, 4)))
    cr.gradcheck(lambda b: ops.where(cond, 1.0, b), normal(rng, (4,)))


def test_cast_gradient_comes_back_in_the_source_dtype(rng):
    x = cr.Tensor(normal(rng, (3, 4)).astype(np.float32), requires_grad=True)
    y = cast(x, np.float64)
    assert y.dtype == np.float64 and y.op == "cast"
    np.testing.assert_array_equal(y.numpy(), x.numpy().astype(np.float64))
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * x.numpy(), rtol=1e-6)
    cr.gradcheck(lambda t: cast(t, np.float64) * 3.0, normal(rng, (5,)))


def test_cast_to_integer_or_same_dtype_records_nothing(rng):
    x = cr.Tensor(normal(rng, (4,)), requires_grad=True)
    assert cast(x, np.float64) is x
    i = cast(x * 10, np.int64)
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), (x.numpy() * 10).astype(np.int64))


@pytest.mark.parametrize("name", ["abs", "sign", "clip", "clip_min", "clip_max"])
def test_derivative_at_the_kink_follows_torch(name, check_torch, torch):
    # abs and sign at 0, clip exactly at its bounds (counted as inside: derivative 1)
    fn, theirs, _ = UNARY[name]
    check_torch(fn, lambda x: theirs(torch, x), np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32))


# ------------------------------------------------------------------ maximum / minimum ties
def test_maximum_tie_splits_gradient_half_half():
    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([1.0, 0.0, 5.0], requires_grad=True)
    ops.maximum(a, b).sum().backward()
    # position 0 ties (1 = 1): half each; a wins position 1, b wins position 2
    assert a.grad.tolist() == [0.5, 1.0, 0.0]
    assert b.grad.tolist() == [0.5, 0.0, 1.0]


def test_minimum_tie_splits_gradient_half_half():
    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([1.0, 0.0, 5.0], requires_grad=True)
    ops.minimum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0, 1.0]
    assert b.grad.tolist() == [0.5, 1.0, 0.0]


def test_maximum_ties_with_broadcasting_sum_the_halves():
    a = cr.ones(2, 3, requires_grad=True)
    b = cr.tensor(1.0, requires_grad=True)
    ops.maximum(a, b).sum().backward()
    # six ties: each a element gets 1/2, the scalar b collects 6 * 1/2 = 3
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 0.5, np.float32))
    assert b.grad.dtype == np.float32 and float(b.grad) == 3.0


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_ties_match_torch(name, rng, check_torch):
    a = rng.integers(-2, 3, (3, 4)).astype(np.float32)  # five values: many ties
    b = rng.integers(-2, 3, (4,)).astype(np.float32)
    a[0] = b  # a whole row of ties, and more by chance
    check_torch(getattr(ops, name), lambda x, y: getattr(x, name)(y), a, b)


# ------------------------------------------------------------------ comparisons
COMPARISONS = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
               "gt": np.greater, "ge": np.greater_equal}


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (5,))], ids=str)
@pytest.mark.parametrize("name", COMPARISONS)
def test_comparison_is_a_bool_tensor_without_gradient(name, shapes, rng):
    a = cr.Tensor(rng.integers(-1, 2, shapes[0]).astype(np.float32), requires_grad=True)
    b = cr.Tensor(rng.integers(-1, 2, shapes[1]).astype(np.float32), requires_grad=True)
    y = getattr(ops, name)(a, b)
    assert y.dtype == np.bool_ and not y.requires_grad and y.node is None
    np.testing.assert_array_equal(y.numpy(), COMPARISONS[name](a.numpy(), b.numpy()))
    # with a Python scalar on either side
    np.testing.assert_array_equal(getattr(ops, name)(a, 0.0).numpy(), COMPARISONS[name](a.numpy(), 0.0))
    np.testing.assert_array_equal(getattr(ops, name)(0.5, b).numpy(), COMPARISONS[name](0.5, b.numpy()))


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparison_matches_torch(name, rng, check_torch):
    a = rng.integers(-1, 2, (3, 4)).astype(np.float32)
    b = rng.integers(-1, 2, (4,)).astype(np.float32)
    check_torch(getattr(ops, name), lambda x, y: getattr(x, name)(y), a, b, wrt=())


def test_comparison_operators():
    x = cr.tensor([1.0, 2.0, 3.0])
    assert (x == 2.0).tolist() == [False, True, False]
    assert (x != 2.0).tolist() == [True, False, True]
    assert (x < 2.0).tolist() == [True, False, False]
    assert (x <= 2.0).tolist() == [True, True, False]
    assert (x > 2.0).tolist() == [False, False, True]
    assert (x >= 2.0).tolist() == [False, True, True]


# ------------------------------------------------------------------ against PyTorch (float32)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3))], ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_matches_torch(name, shapes, rng, check_torch, torch):
    fn, torch_name, draw_a, draw_b = BINARY[name]
    a = draw_a(rng, shapes[0]).astype(np.float32)
    b = draw_b(rng, shapes[1]).astype(np.float32)
    check_torch(fn, getattr(torch, torch_name), a, b)


@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_torch(name, rng, check_torch, torch):
    fn, theirs, draw = UNARY[name]
    check_torch(fn, lambda x: theirs(torch, x), draw(rng, (3, 4)).astype(np.float32))


@pytest.mark.parametrize("exponent", [3, 2.0, -1.5, 0.5])
def test_pow_scalar_exponent_matches_torch(exponent, rng, check_torch):
    check_torch(lambda x: x ** exponent, lambda x: x ** exponent, positive(rng, (3, 4)).astype(np.float32))


def test_where_matches_torch(rng, check_torch, torch):
    cond = rng.random((3, 4)) > 0.5
    check_torch(ops.where, torch.where, cond, normal(rng, (4,)).astype(np.float32),
                normal(rng, (3, 1)).astype(np.float32))


@pytest.mark.parametrize("src, dst", [(np.float32, np.float64), (np.float64, np.float32)])
def test_cast_matches_torch(src, dst, rng, check_torch, torch):
    tdst = getattr(torch, np.dtype(dst).name)
    check_torch(lambda x: cast(x, dst), lambda x: x.to(tdst), normal(rng, (3, 4)).astype(src))


# ------------------------------------------------------------------ float32 stays float32
SCALAR_OPERANDS = {
    "x * 0.5": lambda x: x * 0.5,
    "0.5 * x": lambda x: 0.5 * x,
    "x + np.float64(1)": lambda x: x + np.float64(1),
    "np.float64(1) + x": lambda x: np.float64(1) + x,
    "x - 2.0": lambda x: x - 2.0,
    "np.float64(2) - x": lambda x: np.float64(2) - x,
    "x / 3.0": lambda x: x / 3.0,
    "np.float64(3) / x": lambda x: np.float64(3) / x,
    "x ** 2.0": lambda x: x ** 2.0,
    "x ** np.float64(3)": lambda x: x ** np.float64(3),
    "2.0 ** x": lambda x: 2.0 ** x,
    "np.float64(2) ** x": lambda x: np.float64(2) ** x,
    "x * 2": lambda x: x * 2,
    "x + np.array(0.5)": lambda x: x + np.array(0.5),
    "x * float64 array": lambda x: x * np.arange(4.0),
    "maximum(x, 0.0)": lambda x: ops.maximum(x, 0.0),
    "minimum(np.float64(0), x)": lambda x: ops.minimum(np.float64(0), x),
    "where(c, x, 0.0)": lambda x: ops.where(x.numpy() > 0, x, 0.0),
    "where(c, np.float64(1), x)": lambda x: ops.where(x.numpy() > 0, np.float64(1), x),
    "clip(x, np.float64(-.5), .5)": lambda x: ops.clip(x, np.float64(-0.5), 0.5),
}


@pytest.mark.parametrize("name", SCALAR_OPERANDS)
def test_float32_stays_float32_with_python_and_float64_scalars(name, rng):
    x = cr.Tensor(positive(rng, (3, 4)).astype(np.float32), requires_grad=True)
    y = SCALAR_OPERANDS[name](x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("name", list(UNARY) + list(BINARY))
def test_float32_stays_float32_through_every_elementwise_op(name, rng):
    if name in UNARY:
        fn, _, draw = UNARY[name]
        xs = [cr.Tensor(draw(rng, (3, 4)).astype(np.float32), requires_grad=True)]
    else:
        fn, _, draw_a, draw_b = BINARY[name]
        xs = [cr.Tensor(draw_a(rng, (3, 4)).astype(np.float32), requires_grad=True),
              cr.Tensor(draw_b(rng, (4,)).astype(np.float32), requires_grad=True)]
    y = fn(*xs)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert all(x.grad.dtype == np.float32 for x in xs)


@pytest.mark.parametrize("name", list(UNARY) + list(BINARY))
def test_float64_stays_float64(name, rng):
    fn = UNARY[name][0] if name in UNARY else BINARY[name][0]
    xs = [cr.Tensor(normal(rng, (3, 4)) ** 2 + 0.5)] * (1 if name in UNARY else 2)
    assert fn(*xs).dtype == np.float64
