"""Error messages of the ops: each names the op, shows the shapes it got, and says what to do."""
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops


def shapes_in(*shapes):
    """A pattern that finds every shape, in order, anywhere in the message."""
    return ".*".join(re.escape(str(tuple(s))) for s in shapes)


# ------------------------------------------------------------------ matmul / linear
@pytest.mark.parametrize("a, b", [((2, 3), (4, 5)), ((3,), (4, 2)), ((2, 3), (2,)), ((3,), (2,)),
                                  ((2, 3, 4), (5, 2))], ids=str)
def test_matmul_shape_mismatch_names_the_op_and_both_shapes(a, b):
    with pytest.raises(ValueError, match="^matmul: shapes " + shapes_in(a, b) + ".*do not line up"):
        ops.matmul(cr.zeros(*a), cr.zeros(*b))


def test_matmul_error_says_which_axes_must_agree():
    with pytest.raises(ValueError, match=r"last axis of the first \(3\) must equal the second-to-last axis of "
                                         r"the second \(4\)"):
        cr.zeros(2, 3) @ cr.zeros(4, 5)


def test_matmul_batch_axes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="^matmul: batch axes of " + shapes_in((2, 3, 4), (5, 4, 2))):
        ops.matmul(cr.zeros(2, 3, 4), cr.zeros(5, 4, 2))


def test_matmul_of_a_scalar_points_to_mul():
    with pytest.raises(ValueError, match=r"^matmul: operands must have at least one axis.*use \*"):
        ops.matmul(cr.tensor(2.0), cr.zeros(3))


def test_linear_mismatch_names_input_and_weight_shapes():
    with pytest.raises(ValueError, match="^linear: input of shape " + shapes_in((5, 3)) + ".*weights of shape "
                                         + shapes_in((4, 2))):
        ops.linear(cr.zeros(5, 3), cr.zeros(4, 2))


# ------------------------------------------------------------------ broadcasting
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("a, b", [((3, 4), (5,)), ((2, 3), (3, 2)), ((4,), (2, 3))], ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_broadcast_failure_names_the_op_and_both_shapes(name, a, b):
    with pytest.raises(ValueError, match=f"^{name}: shapes " + shapes_in(a, b) + " do not broadcast"):
        getattr(ops, name)(cr.ones(*a), cr.ones(*b))


@pytest.mark.parametrize("expression, name", [(lambda a, b: a + b, "add"), (lambda a, b: a * b, "mul"),
                                              (lambda a, b: a - b, "sub"), (lambda a, b: a / b, "div")],
                         ids=["+", "*", "-", "/"])
def test_broadcast_failure_through_operators(expression, name):
    with pytest.raises(ValueError, match=f"^{name}: shapes " + shapes_in((3, 4), (5,)) + ".*reshape one operand"):
        expression(cr.ones(3, 4), cr.ones(5))


def test_broadcast_failure_with_a_numpy_operand():
    with pytest.raises(ValueError, match="^add: shapes " + shapes_in((3, 4), (2,))):
        cr.ones(3, 4) + np.ones(2)


def test_where_broadcast_failure():
    with pytest.raises(ValueError, match="^where: shapes " + shapes_in((3, 4), (5,))):
        ops.where(np.ones((3, 4), bool), cr.ones(3, 4), cr.ones(5))


# ------------------------------------------------------------------ shape ops
def test_reshape_to_a_wrong_size():
    with pytest.raises(ValueError, match=r"^reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                         r"into \(4, 2\)"):
        ops.reshape(cr.zeros(2, 3), 4, 2)


def test_reshape_method_to_a_wrong_size():
    with pytest.raises(ValueError, match=r"^reshape: .*\(2, 3\).*into \(5, -1\)"):
        cr.zeros(2, 3).reshape(5, -1)


def test_permute_that_is_not_a_permutation():
    with pytest.raises(ValueError, match=r"^permute: \(0, 0, 1\) is not a permutation of the 3 axes"):
        ops.permute(cr.zeros(2, 3, 4), 0, 0, 1)


def test_expand_of_an_axis_that_is_not_one():
    with pytest.raises(ValueError, match=r"^expand: cannot broadcast shape \(2, 3\) to \(4, 3\)"):
        ops.expand(cr.zeros(2, 3), 4, 3)


def test_squeeze_of_an_axis_that_is_not_one():
    with pytest.raises(ValueError, match=r"^squeeze: axis 1 of shape \(2, 3\) has size 3, not 1"):
        ops.squeeze(cr.zeros(2, 3), 1)


def test_concat_of_mismatched_shapes():
    with pytest.raises(ValueError, match=r"^concat: shapes \[\(2, 3\), \(2, 4\)\] differ outside axis 0"):
        ops.concat([cr.zeros(2, 3), cr.zeros(2, 4)])


def test_concat_of_nothing():
    with pytest.raises(ValueError, match="^concat: needs at least one tensor"):
        ops.concat([])


def test_stack_of_mismatched_shapes():
    with pytest.raises(ValueError, match=r"^stack: all tensors must have the same shape, got \[\(2, 3\), \(3, 2\)\]"):
        ops.stack([cr.zeros(2, 3), cr.zeros(3, 2)])


def test_split_into_sections_that_do_not_divide():
    with pytest.raises(ValueError, match=r"^split: axis 0 of shape \(5, 2\) has size 5, which 2 sections do not"):
        ops.split(cr.zeros(5, 2), 2)


@pytest.mark.parametrize("fn", [ops.sum, ops.mean, ops.max, ops.var, ops.logsumexp])
def test_reduction_axis_out_of_range(fn):
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimensions"):
        fn(cr.zeros(2, 3), axis=2)


def test_max_of_an_empty_tensor():
    with pytest.raises(ValueError, match=r"^max: cannot reduce an empty tensor of shape \(0, 3\)"):
        ops.max(cr.zeros(0, 3))


# ------------------------------------------------------------------ losses
@pytest.mark.parametrize("sparse, dense", [(ops.sparse_softmax_cross_entropy, "softmax_cross_entropy"),
                                           (ops.sparse_categorical_cross_entropy, "categorical_cross_entropy")],
                         ids=["softmax", "categorical"])
def test_sparse_loss_given_one_hot_targets_suggests_the_dense_loss(sparse, dense):
    scores = cr.full((4, 3), 1 / 3)
    onehot = np.eye(3)[[0, 2, 1, 1]]
    with pytest.raises(ValueError, match=f"^{sparse.__name__}: scores of shape " + shapes_in((4, 3))
                       + f".*look like one-hot targets: use {dense} instead"):
        sparse(scores, onehot)


@pytest.mark.parametrize("dense, sparse", [(ops.softmax_cross_entropy, "sparse_softmax_cross_entropy"),
                                           (ops.categorical_cross_entropy, "sparse_categorical_cross_entropy")],
                         ids=["softmax", "categorical"])
@pytest.mark.parametrize("labels", [np.array([0, 2, 1, 1]), np.array([[0], [2], [1], [1]])], ids=["flat", "column"])
def test_dense_loss_given_integer_labels_suggests_the_sparse_loss(dense, sparse, labels):
    scores = cr.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=f"^{dense.__name__}: scores of shape " + shapes_in((4, 3))
                       + ".*targets of shape " + shapes_in(labels.shape) + f".*integer labels: use {sparse} instead"):
        dense(scores, labels)


@pytest.mark.parametrize("bad", [[0, 3, 1, 1], [-1, 0, 1, 2]], ids=["too_big", "negative"])
@pytest.mark.parametrize("fn", [ops.sparse_softmax_cross_entropy, ops.sparse_categorical_cross_entropy])
def test_labels_out_of_range(fn, bad):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: labels must lie in \[0, 3\) for 3 classes, got values "
                                         rf"in \[{min(bad)}, {max(bad)}\]"):
        fn(cr.full((4, 3), 1 / 3), np.array(bad))


@pytest.mark.parametrize("fn", [ops.sparse_softmax_cross_entropy, ops.sparse_categorical_cross_entropy])
def test_labels_of_the_wrong_shape(fn):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: scores of shape \(4, 3\) need integer labels of shape "
                                         rf"\(4,\), got \(5,\)$"):
        fn(cr.full((4, 3), 1 / 3), np.zeros(5, np.int64))


@pytest.mark.parametrize("fn", [ops.sparse_softmax_cross_entropy, ops.sparse_categorical_cross_entropy])
def test_fractional_or_non_integer_labels(fn):
    with pytest.raises(ValueError, match=f"^{fn.__name__}: labels must be whole class indices"):
        fn(cr.full((2, 3), 1 / 3), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=f"^{fn.__name__}: labels must be integers, got dtype bool"):
        fn(cr.full((2, 3), 1 / 3), np.array([True, False]))


@pytest.mark.parametrize("fn", [ops.mse, ops.mae, ops.huber, ops.binary_cross_entropy,
                                ops.binary_cross_entropy_with_logits])
def test_elementwise_loss_shape_mismatch(fn):
    with pytest.raises(ValueError, match=f"^{fn.__name__}: predictions of shape " + shapes_in((4, 1))
                       + " and targets of shape " + shapes_in((4,)) + " differ"):
        fn(cr.zeros(4, 1), cr.zeros(4))


@pytest.mark.parametrize("call", [
    lambda r: ops.mse(cr.zeros(3), cr.zeros(3), reduction=r),
    lambda r: ops.binary_cross_entropy_with_logits(cr.zeros(3), cr.zeros(3), reduction=r),
    lambda r: ops.softmax_cross_entropy(cr.zeros(2, 3), cr.zeros(2, 3), reduction=r),
    lambda r: ops.sparse_softmax_cross_entropy(cr.zeros(2, 3), [0, 1], reduction=r),
    lambda r: ops.categorical_cross_entropy(cr.ones(2, 3), cr.zeros(2, 3), reduction=r),
    lambda r: ops.sparse_categorical_cross_entropy(cr.ones(2, 3), [0, 1], reduction=r),
], ids=["mse", "bce_logits", "softmax_ce", "sparse_softmax_ce", "categorical_ce", "sparse_categorical_ce"])
def test_unknown_reduction(call):
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none', 'half_sum'\), "
                                         r"got 'average'"):
        call("average")
