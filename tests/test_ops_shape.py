"""Movement ops (chainrule.ops.shape): values against NumPy, gradients by central differences,
values and gradients against PyTorch. Indexing that picks an element twice must add both
gradients (scatter-add), not keep the last one.
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule import ops


def normal(rng, shape):
    return np.asarray(rng.standard_normal(shape))


def torch_pad(t, widths, value=0.0):
    import torch
    return torch.nn.functional.pad(t, widths, value=value)  # widths run from the last axis backwards


# name: (our op, numpy reference, torch equivalent, input shape)
MOVES = {
    "reshape": (lambda x: ops.reshape(x, 6, 4), lambda a: a.reshape(6, 4), lambda t: t.reshape(6, 4), (2, 3, 4)),
    "reshape_tuple_infer": (lambda x: ops.reshape(x, (4, -1, 2)), lambda a: a.reshape(4, -1, 2),
                            lambda t: t.reshape(4, -1, 2), (2, 3, 4)),
    "reshape_scalar": (lambda x: ops.reshape(x, 1, 1), lambda a: a.reshape(1, 1), lambda t: t.reshape(1, 1), ()),
    "reshape_method": (lambda x: x.reshape(-1), lambda a: a.reshape(-1), lambda t: t.reshape(-1), (2, 3, 4)),
    "flatten": (ops.flatten, lambda a: a.reshape(-1), lambda t: t.flatten(), (2, 3, 4)),
    "flatten_from_1": (lambda x: ops.flatten(x, 1), lambda a: a.reshape(2, -1), lambda t: t.flatten(1),
                       (2, 3, 2, 2)),
    "flatten_middle": (lambda x: ops.flatten(x, 1, 2), lambda a: a.reshape(2, 6, 2), lambda t: t.flatten(1, 2),
                       (2, 3, 2, 2)),
    "flatten_negative_end": (lambda x: ops.flatten(x, 0, -2), lambda a: a.reshape(12, 2),
                             lambda t: t.flatten(0, -2), (2, 3, 2, 2)),
    "flatten_scalar": (ops.flatten, lambda a: a.reshape(1), lambda t: t.flatten(), ()),
    "permute": (lambda x: ops.permute(x, 2, 0, 1), lambda a: a.transpose(2, 0, 1), lambda t: t.permute(2, 0, 1),
                (2, 3, 4)),
    "permute_negative": (lambda x: ops.permute(x, (-1, 0, -2)), lambda a: a.transpose(2, 0, 1),
                         lambda t: t.permute(-1, 0, -2), (2, 3, 4)),
    "transpose": (ops.transpose, lambda a: a.swapaxes(-2, -1), lambda t: t.transpose(-2, -1), (2, 3, 4)),
    "transpose_0_2": (lambda x: ops.transpose(x, 0, 2), lambda a: a.swapaxes(0, 2), lambda t: t.transpose(0, 2),
                      (2, 3, 4)),
    "T": (lambda x: x.T, lambda a: a.T, lambda t: t.permute(2, 1, 0), (2, 3, 4)),
    "mT": (lambda x: x.mT, lambda a: a.swapaxes(-1, -2), lambda t: t.mT, (2, 3, 4)),
    "expand": (lambda x: ops.expand(x, 2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
               lambda t: t.expand(2, 3, 4), (3, 1)),
    "expand_keep": (lambda x: ops.expand(x, (2, -1, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)),
                    lambda t: t.expand(2, -1, 4), (1, 3, 1)),
    "squeeze": (ops.squeeze, lambda a: a.squeeze(), lambda t: t.squeeze(), (1, 3, 1, 4)),
    "squeeze_axis": (lambda x: ops.squeeze(x, 2), lambda a: a.squeeze(2), lambda t: t.squeeze(2), (1, 3, 1, 4)),
    "squeeze_negative": (lambda x: ops.squeeze(x, -2), lambda a: a.squeeze(-2), lambda t: t.squeeze(-2),
                         (1, 3, 1, 4)),
    "squeeze_tuple": (lambda x: ops.squeeze(x, (0, 2)), lambda a: a.squeeze((0, 2)), lambda t: t.squeeze((0, 2)),
                      (1, 3, 1, 4)),
    "unsqueeze_0": (lambda x: ops.unsqueeze(x, 0), lambda a: a[None], lambda t: t.unsqueeze(0), (3, 4)),
    "unsqueeze_1": (lambda x: ops.unsqueeze(x, 1), lambda a: a[:, None], lambda t: t.unsqueeze(1), (3, 4)),
    "unsqueeze_negative": (lambda x: ops.unsqueeze(x, -1), lambda a: a[..., None], lambda t: t.unsqueeze(-1),
                           (3, 4)),
    "pad": (lambda x: ops.pad(x, ((1, 2), (0, 1))), lambda a: np.pad(a, ((1, 2), (0, 1))),
            lambda t: torch_pad(t, (0, 1, 1, 2)), (3, 4)),
    "pad_int": (lambda x: ops.pad(x, 1), lambda a: np.pad(a, 1),
                lambda t: torch_pad(t, (1, 1, 1, 1, 1, 1)), (2, 3, 2)),
    "pad_one_pair_for_all_axes": (lambda x: ops.pad(x, ((1, 2),)), lambda a: np.pad(a, ((1, 2),)),
                                  lambda t: torch_pad(t, (1, 2, 1, 2)), (3, 4)),
    "pad_value": (lambda x: ops.pad(x, ((0, 0), (2, 1)), value=3.0),
                  lambda a: np.pad(a, ((0, 0), (2, 1)), constant_values=3.0),
                  lambda t: torch_pad(t, (2, 1), value=3.0), (3, 4)),
}


@pytest.mark.parametrize("name", MOVES)
def test_movement_values_and_gradcheck(name, rng):
    fn, reference, _, shape = MOVES[name]
    x = normal(rng, shape)
    y = fn(cr.Tensor(x))
    np.testing.assert_array_equal(y.numpy(), reference(x))
    cr.gradcheck(fn, x)


@pytest.mark.parametrize("name", MOVES)
def test_movement_matches_torch(name, rng, check_torch):
    fn, _, theirs, shape = MOVES[name]
    check_torch(fn, theirs, normal(rng, shape).astype(np.float32))


def test_transpose_of_a_vector_is_itself():
    x = cr.tensor([1.0, 2.0])
    assert ops.transpose(x) is x


def test_pad_gradient_is_the_inner_block():
    x = cr.ones(2, 2, requires_grad=True)
    y = ops.pad(x, ((1, 1), (1, 1)))
    g = np.arange(16, dtype=np.float32).reshape(4, 4)
    y.backward(g)
    # the padded border gets no gradient; the inner 2x2 block of g goes back to x
    np.testing.assert_array_equal(x.grad, [[5, 6], [9, 10]])


# ------------------------------------------------------------------ getitem
MASK = np.random.default_rng(3).random((4, 5, 3)) > 0.5
ROWS = np.array([True, False, True, True])

# name: (index, torch equivalent where torch spells it differently); x has shape (4, 5, 3)
INDEXES = {
    "slice": (slice(1, 3), None),
    "slice_step": ((slice(None), slice(0, 5, 2)), None),
    "negative_step": (slice(None, None, -1), lambda t: t.flip(0)),
    "negative_step_inner": ((slice(None), slice(4, 0, -2)), lambda t: t.flip(1)[:, 0:4:2]),
    "int": (2, None),
    "negative_int": (-1, None),
    "ints": ((1, -2), None),
    "int_and_slice": ((slice(None), 3, slice(1, None)), None),
    "none_ellipsis": ((None, Ellipsis, 1), None),
    "ellipsis_none": ((Ellipsis, None), None),
    "int_array_repeated": (np.array([0, 0, 3, 1, 0]), None),
    "list_repeated": ([2, 2, 1], None),
    "pair_repeated": ((np.array([0, 0, 1]), np.array([2, 2, 2])), None),
    "slice_then_array": ((slice(None), np.array([1, 1, 4])), None),
    "array_slice_array": ((np.array([3, 3]), slice(None), np.array([0, 0])), None),
    "2d_int_array": (np.array([[0, 1], [1, 0]]), None),
    "bool_mask": (MASK, None),
    "bool_rows": (ROWS, None),
    "bool_rows_and_int": ((ROWS, slice(None), 2), None),
    "tensor": (cr.Tensor(np.array([2, 2, 0])), None),
    "tensor_in_tuple": ((slice(None), cr.Tensor(np.array([4, 4]))), None),
    "bool_tensor": (cr.Tensor(MASK), None),
    "0d_tensor": (cr.Tensor(np.array(3)), None),
}


def numpy_index(index):
    if isinstance(index, cr.Tensor):
        return index.numpy()
    if isinstance(index, tuple):
        return tuple(i.numpy() if isinstance(i, cr.Tensor) else i for i in index)
    return index


def torch_index(torch, index):
    index = numpy_index(index)
    convert = (lambda i: torch.from_numpy(i) if isinstance(i, np.ndarray) else i)
    if isinstance(index, tuple):
        return tuple(convert(i) for i in index)
    return convert(index)


@pytest.mark.parametrize("name", INDEXES)
def test_getitem_values_and_gradcheck(name, rng):
    index = INDEXES[name][0]
    x = normal(rng, (4, 5, 3))
    np.testing.assert_array_equal(ops.getitem(cr.Tensor(x), index).numpy(), x[numpy_index(index)])
    np.testing.assert_array_equal(cr.Tensor(x)[index].numpy(), x[numpy_index(index)])
    cr.gradcheck(lambda t: ops.getitem(t, index), x)


@pytest.mark.parametrize("name", INDEXES)
def test_getitem_matches_torch(name, rng, check_torch, torch):
    index, theirs = INDEXES[name]
    if theirs is None:
        theirs = lambda t: t[torch_index(torch, index)]  # noqa: E731
    check_torch(lambda t: t[index], theirs, normal(rng, (4, 5, 3)).astype(np.float32))


def test_getitem_repeated_indices_add_their_gradients():
    x = cr.tensor([10.0, 20.0, 30.0], requires_grad=True)
    y = x[np.array([0, 2, 0, 0])]
    y.backward(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    # x[0] was picked three times: 1 + 3 + 4 = 8; x[2] once: 2; x[1] never: 0
    assert x.grad.tolist() == [8.0, 0.0, 2.0]


def test_getitem_repeated_pairs_add_their_gradients():
    x = cr.zeros(2, 3, requires_grad=True)
    x[[1, 1, 0], [2, 2, 2]].sum().backward()
    assert x.grad.tolist() == [[0, 0, 1], [0, 0, 2]]


# ------------------------------------------------------------------ concat / stack / split
CONCAT_CASES = [(0, [(2, 3), (1, 3), (3, 3)]), (1, [(2, 1), (2, 4)]), (-1, [(2, 2, 1), (2, 2, 3)]),
                (-2, [(3, 1, 2), (3, 2, 2)])]


@pytest.mark.parametrize("axis, shapes", CONCAT_CASES, ids=str)
def test_concat(axis, shapes, rng):
    xs = [normal(rng, s) for s in shapes]
    y = ops.concat([cr.Tensor(x) for x in xs], axis=axis)
    np.testing.assert_array_equal(y.numpy(), np.concatenate(xs, axis=axis))
    cr.gradcheck(lambda *ts: ops.concat(ts, axis=axis), *xs)


@pytest.mark.parametrize("axis, shapes", CONCAT_CASES, ids=str)
def test_concat_matches_torch(axis, shapes, rng, check_torch, torch):
    xs = [normal(rng, s) for s in shapes]
    check_torch(lambda *ts: ops.concat(ts, axis=axis), lambda *ts: torch.cat(ts, dim=axis),
                *[x.astype(np.float32) for x in xs])


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack(axis, rng):
    xs = [normal(rng, (2, 3)) for _ in range(3)]
    y = ops.stack([cr.Tensor(x) for x in xs], axis=axis)
    np.testing.assert_array_equal(y.numpy(), np.stack(xs, axis=axis))
    cr.gradcheck(lambda *ts: ops.stack(ts, axis=axis), *xs)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack_matches_torch(axis, rng, check_torch, torch):
    xs = [normal(rng, (2, 3)) for _ in range(3)]
    check_torch(lambda *ts: ops.stack(ts, axis=axis), lambda *ts: torch.stack(ts, dim=axis),
                *[x.astype(np.float32) for x in xs])


SPLIT_CASES = [(3, 0), (2, 1), ([1, 3], 1), ([2], -1), (4, -1), ([0, 2, 2], 1)]


@pytest.mark.parametrize("sections, axis", SPLIT_CASES, ids=str)
def test_split(sections, axis, rng):
    x = normal(rng, (3, 4, 4))
    parts = ops.split(cr.Tensor(x), sections, axis=axis)
    expected = np.split(x, sections, axis=axis)
    assert len(parts) == len(expected)
    for p, e in zip(parts, expected):
        np.testing.assert_array_equal(p.numpy(), e)
    cr.gradcheck(lambda t: [p for p in ops.split(t, sections, axis=axis) if p.size], x)


@pytest.mark.parametrize("sections, axis", SPLIT_CASES, ids=str)
def test_split_matches_torch(sections, axis, rng, check_torch, torch):
    x = normal(rng, (3, 4, 4))
    check_torch(lambda t: ops.split(t, sections, axis=axis),
                lambda t: torch.tensor_split(t, sections, dim=axis), x.astype(np.float32))


def test_split_method_and_partial_use(rng):
    x = cr.Tensor(normal(rng, (6, 2)), requires_grad=True)
    a, b, c = x.split(3)
    (b * 2.0).sum().backward()
    # only the middle third was used: its rows get 2, the others 0
    np.testing.assert_array_equal(x.grad, [[0, 0]] * 2 + [[2, 2]] * 2 + [[0, 0]] * 2)


# ------------------------------------------------------------------ dtype
@pytest.mark.parametrize("name", MOVES)
def test_float32_stays_float32(name, rng):
    fn, _, _, shape = MOVES[name]
    x = cr.Tensor(normal(rng, shape).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32
