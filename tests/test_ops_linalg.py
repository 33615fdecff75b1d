"""matmul and linear (chainrule.ops.linalg): NumPy's 1-D and batch-broadcasting rules,
gradients by central differences, values and gradients against PyTorch.
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule import ops

# (a shape, b shape): 2-D, batched, broadcast batch axes, and every 1-D promotion
MATMUL_SHAPES = [
    ((3, 4), (4, 2)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),          # batch on the left only
    ((3, 4), (2, 4, 5)),          # batch on the right only
    ((2, 1, 3, 2), (3, 2, 2)),    # batch axes (2, 1) and (3,) broadcast to (2, 3)
    ((1, 3, 4), (2, 4, 2)),       # a stretched batch axis of size 1
    ((4,), (4, 3)),               # vector @ matrix
    ((3, 4), (4,)),               # matrix @ vector
    ((4,), (4,)),                 # dot product: a 0-d result
    ((4,), (2, 4, 3)),            # vector @ batch of matrices
    ((2, 3, 4), (4,)),            # batch of matrices @ vector
]


def normal(rng, shape):
    return np.asarray(rng.standard_normal(shape))


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_value_and_gradcheck(shapes, rng):
    a, b = normal(rng, shapes[0]), normal(rng, shapes[1])
    y = ops.matmul(cr.Tensor(a), cr.Tensor(b))
    np.testing.assert_allclose(y.numpy(), a @ b, rtol=1e-12)
    assert y.shape == np.shape(a @ b)
    cr.gradcheck(ops.matmul, a, b)
    cr.gradcheck(lambda x, w: x @ w, a, b)


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch(shapes, rng, check_torch, torch):
    a, b = normal(rng, shapes[0]).astype(np.float32), normal(rng, shapes[1]).astype(np.float32)
    check_torch(ops.matmul, torch.matmul, a, b)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))], ids=str)
def test_matmul_with_one_constant_operand(shapes, rng, check_torch, torch):
    a, b = normal(rng, shapes[0]).astype(np.float32), normal(rng, shapes[1]).astype(np.float32)
    check_torch(ops.matmul, torch.matmul, a, b, wrt=[0])
    check_torch(ops.matmul, torch.matmul, a, b, wrt=[1])


def test_matmul_with_a_numpy_array_on_the_left(rng):
    w = cr.Tensor(normal(rng, (4, 2)), requires_grad=True)
    x = normal(rng, (3, 4))
    y = x @ w  # ndarray @ Tensor defers to Tensor.__rmatmul__
    assert isinstance(y, cr.Tensor)
    y.backward(np.ones((3, 2)))
    np.testing.assert_allclose(w.grad, x.T @ np.ones((3, 2)), rtol=1e-12)


# (x shape, with bias): a batch of rows, a single row, and a 3-D (batch, time, features) input
LINEAR_CASES = [((5, 4), True), ((5, 4), False), ((2, 3, 4), True), ((2, 3, 4), False), ((4,), True)]


@pytest.mark.parametrize("x_shape, bias", LINEAR_CASES, ids=str)
def test_linear_value_and_gradcheck(x_shape, bias, rng):
    x, w, b = normal(rng, x_shape), normal(rng, (4, 3)), normal(rng, (3,))
    args = (x, w, b) if bias else (x, w)
    y = ops.linear(*[cr.Tensor(a) for a in args])
    np.testing.assert_allclose(y.numpy(), x @ w + (b if bias else 0), rtol=1e-12)
    cr.gradcheck(ops.linear, *args)


@pytest.mark.parametrize("x_shape, bias", LINEAR_CASES, ids=str)
def test_linear_matches_torch(x_shape, bias, rng, check_torch, torch):
    x = normal(rng, x_shape).astype(np.float32)
    w = normal(rng, (4, 3)).astype(np.float32)
    b = normal(rng, (3,)).astype(np.float32)
    if bias:
        # torch keeps the weight as (out, in); ours is (in, out) as in Keras's Dense
        check_torch(ops.linear, lambda x, w, b: torch.nn.functional.linear(x, w.T, b), x, w, b)
    else:
        check_torch(ops.linear, lambda x, w: torch.nn.functional.linear(x, w.T), x, w)


@pytest.mark.parametrize("wrt", [[0], [1], [2], [1, 2]], ids=str)
def test_linear_with_some_constant_inputs(wrt, rng, check_torch, torch):
    x = normal(rng, (2, 3, 4)).astype(np.float32)
    w = normal(rng, (4, 3)).astype(np.float32)
    b = normal(rng, (3,)).astype(np.float32)
    check_torch(ops.linear, lambda x, w, b: torch.nn.functional.linear(x, w.T, b), x, w, b, wrt=wrt)


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_float32_stays_float32(shapes, rng):
    a = cr.Tensor(normal(rng, shapes[0]).astype(np.float32), requires_grad=True)
    b = cr.Tensor(normal(rng, shapes[1]).astype(np.float32), requires_grad=True)
    y = a @ b
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
