"""Reductions (chainrule.ops.reduce): every axis form (None, int, negative, tuple) with and
without keepdims, gradients by central differences, values and gradients against PyTorch.
"""
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops

SHAPE = (2, 3, 4)
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def distinct(rng, shape):
    """Values 0.1 apart in random order: max/min have no ties and no near-ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - n * 0.05).reshape(shape)


# name: (op(x, axis, keepdims), numpy reference, draw x)
REDUCTIONS = {
    "sum": (ops.sum, np.sum),
    "mean": (ops.mean, np.mean),
    "max": (ops.max, np.max),
    "min": (ops.min, np.min),
    "var": (ops.var, np.var),
    "var_ddof1": (lambda x, axis, keepdims: ops.var(x, axis, keepdims, ddof=1),
                  lambda a, axis, keepdims: np.var(a, axis=axis, keepdims=keepdims, ddof=1)),
    "std": (ops.std, np.std),
    "std_ddof1": (lambda x, axis, keepdims: ops.std(x, axis, keepdims, ddof=1),
                  lambda a, axis, keepdims: np.std(a, axis=axis, keepdims=keepdims, ddof=1)),
    "logsumexp": (ops.logsumexp,
                  lambda a, axis, keepdims: np.log(np.exp(a).sum(axis=axis, keepdims=keepdims))),
}


def torch_reduction(torch, name, x, axis, keepdims):
    """The PyTorch spelling of each reduction; var/std take ddof as torch's `correction`."""
    dim = axis if axis is None or isinstance(axis, int) else tuple(axis)
    base, _, ddof = name.partition("_ddof")
    if base in ("var", "std"):
        return getattr(torch, base)(x, dim=dim, correction=int(ddof or 0), keepdim=keepdims)
    if base in ("max", "min"):  # amax/amin: the reductions that share the gradient among ties
        fn = torch.amax if base == "max" else torch.amin
        return fn(x, dim=() if dim is None else dim, keepdim=keepdims)
    if base == "logsumexp":
        return torch.logsumexp(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdims)
    if dim is None:
        return getattr(torch, base)(x) if not keepdims else getattr(torch, base)(x, dim=tuple(range(x.ndim)),
                                                                               keepdim=True)
    return getattr(torch, base)(x, dim=dim, keepdim=keepdims)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_value_shape_and_gradcheck(name, axis, keepdims, rng):
    fn, reference = REDUCTIONS[name]
    x = distinct(rng, SHAPE)
    y = fn(cr.Tensor(x), axis, keepdims)
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)
    cr.gradcheck(lambda t: fn(t, axis, keepdims), x)


# ddof=1 needs two elements; std of one element is sqrt(0), which has no derivative
SMALL_CASES = [(name, shape) for name in REDUCTIONS for shape in [(), (1,), (5,), (1, 6)]
               if not (int(np.prod(shape)) == 1 and (name.endswith("ddof1") or name.startswith("std")))]


@pytest.mark.parametrize("name, shape", SMALL_CASES, ids=str)
def test_reduction_of_small_shapes(name, shape, rng):
    fn, reference = REDUCTIONS[name]
    x = distinct(rng, shape)
    np.testing.assert_allclose(fn(cr.Tensor(x), None, False).numpy(), reference(x, axis=None, keepdims=False),
                               rtol=1e-12, atol=1e-15)
    cr.gradcheck(lambda t: fn(t, None, False), x)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_matches_torch(name, axis, keepdims, rng, check_torch, torch):
    fn = REDUCTIONS[name][0]
    x = distinct(rng, SHAPE).astype(np.float32)
    check_torch(lambda t: fn(t, axis, keepdims), lambda t: torch_reduction(torch, name, t, axis, keepdims), x)


def test_reduction_methods_take_numpy_and_torch_argument_names(rng):
    x = cr.Tensor(distinct(rng, SHAPE))
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), x.sum(dim=1, keepdim=True).numpy())
    np.testing.assert_array_equal(x.var(dim=-1, ddof=1).numpy(), np.var(x.numpy(), axis=-1, ddof=1))


# ------------------------------------------------------------------ ties in max / min
def test_max_ties_share_the_gradient_equally():
    x = cr.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    ops.max(x, axis=1).sum().backward()
    # row 0: two maxima share 1 -> 1/2 each; row 1: three maxima -> 1/3 each
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-7)
    assert x.grad.dtype == np.float32


def test_min_ties_share_the_gradient_equally_over_all_axes():
    x = cr.tensor([[1.0, 3.0, 1.0], [2.0, 1.0, 2.0]], requires_grad=True)
    ops.min(x).backward()
    # three elements equal the global minimum 1: 1/3 each
    np.testing.assert_allclose(x.grad, [[1 / 3, 0, 1 / 3], [0, 1 / 3, 0]], rtol=1e-7)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_ties_match_torch_amax(name, axis, keepdims, rng, check_torch, torch):
    x = rng.integers(0, 3, (4, 5)).astype(np.float32)  # three values over twenty elements: ties everywhere
    check_torch(lambda t: getattr(ops, name)(t, axis, keepdims),
                lambda t: torch_reduction(torch, name, t, axis, keepdims), x)


# ------------------------------------------------------------------ logsumexp stability
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_huge_values_does_not_overflow(dtype):
    x = cr.tensor([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.0]], dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.logsumexp(x, axis=1)
        y.sum().backward()
    # 1000 + ln(2 + e^-1) = 1000.861994804;  -1000 + ln(2 + e^-1) = -999.138005196
    np.testing.assert_allclose(y.numpy(), [1000 + np.log(2 + np.exp(-1)), -1000 + np.log(2 + np.exp(-1))],
                               rtol=1e-6)
    # the gradient is the softmax of each row: e^0, e^0, e^-1 over 2 + e^-1
    row = np.array([1, 1, np.exp(-1)]) / (2 + np.exp(-1))
    np.testing.assert_allclose(x.grad, [row, row[[0, 2, 1]]], rtol=1e-6)
    assert y.dtype == dtype and x.grad.dtype == dtype


def test_logsumexp_of_huge_values_gradcheck(rng):
    cr.gradcheck(lambda t: ops.logsumexp(t, axis=-1), distinct(rng, (3, 4)) + 1000)
    cr.gradcheck(lambda t: ops.logsumexp(t, axis=0, keepdims=True), distinct(rng, (3, 4)) - 1000)


def test_logsumexp_of_huge_values_matches_torch(rng, check_torch, torch):
    x = (distinct(rng, (3, 4)) + np.array([[1000.0], [-1000.0], [0.0]])).astype(np.float32)
    check_torch(lambda t: ops.logsumexp(t, axis=1), lambda t: torch.logsumexp(t, dim=1), x)


def test_logsumexp_with_minus_infinity():
    # a row of only -inf has logsumexp -inf, not nan
    x = cr.tensor([[-np.inf, -np.inf], [0.0, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log(0) = -inf is the right answer here
        np.testing.assert_array_equal(ops.logsumexp(x, axis=1).numpy(), [-np.inf, 0.0])


# ------------------------------------------------------------------ argmax / argmin
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_numpy_and_carry_no_gradient(name, axis, keepdims, rng):
    x = cr.Tensor(rng.integers(0, 4, SHAPE).astype(np.float32), requires_grad=True)  # ties: first one wins
    y = getattr(ops, name)(x, axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims)
    assert y.dtype == np.int64 and not y.requires_grad and y.node is None
    np.testing.assert_array_equal(y.numpy(), expected)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_torch(name, axis, keepdims, rng, check_torch, torch):
    x = rng.integers(0, 4, SHAPE).astype(np.float32)
    check_torch(lambda t: getattr(ops, name)(t, axis=axis, keepdims=keepdims),
                lambda t: getattr(torch, name)(t, dim=axis, keepdim=keepdims), x, wrt=())
    check_torch(lambda t: getattr(ops, name)(t), lambda t: getattr(torch, name)(t), x, wrt=())


# ------------------------------------------------------------------ dtype
@pytest.mark.parametrize("name", REDUCTIONS)
def test_float32_stays_float32(name, rng):
    x = cr.Tensor(distinct(rng, SHAPE).astype(np.float32), requires_grad=True)
    y = REDUCTIONS[name][0](x, (0, 2), False)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32
