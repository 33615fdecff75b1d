"""The engine's mechanics: Tensor basics, backward, accumulation, graph freeing, no_grad, grad()."""
import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops


# ------------------------------------------------------------------ creation and dtype
def test_python_floats_become_float32_and_float64_is_kept():
    assert cr.tensor([1.0, 2.0]).dtype == np.float32
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor(np.zeros(3)).dtype == np.float64
    assert cr.tensor([1.0], dtype="float64").dtype == np.float64
    for make in (cr.zeros, cr.ones, cr.empty, cr.rand, cr.randn):
        assert make(2, 3).dtype == np.float32
        assert make((2, 3)).shape == (2, 3)
    assert cr.full((2,), 7.0).dtype == np.float32
    assert cr.arange(5).dtype == np.int64 and cr.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert cr.linspace(0, 1, 5).shape == (5,) and cr.eye(3).data.trace() == 3
    assert cr.zeros_like(cr.ones(2, dtype="float64")).dtype == np.float64


def test_seed_makes_random_repeatable():
    cr.random.seed(123)
    a = cr.randn(4, 5).numpy().copy()
    b = cr.rand(3).numpy().copy()
    cr.random.seed(123)
    np.testing.assert_array_equal(a, cr.randn(4, 5).numpy())
    np.testing.assert_array_equal(b, cr.rand(3).numpy())
    state = cr.random.get_state()
    c = cr.randn(2).numpy().copy()
    cr.random.set_state(state)
    np.testing.assert_array_equal(c, cr.randn(2).numpy())


def test_metadata_and_conversions():
    t = cr.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.T.shape == (3, 2)
    assert isinstance(t.numpy(), np.ndarray) and np.asarray(t).shape == (2, 3)
    assert [row.shape for row in t] == [(3,), (3,)]
    assert t.sum().item() == 21.0 and isinstance(t.sum().item(), float)
    with pytest.raises(ValueError, match="1 elements|expected 1"):
        t.item()
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_repr_shows_the_op_that_made_the_tensor():
    w = cr.ones(2, requires_grad=True)
    assert "requires_grad=True" in repr(w)
    y = w * 3
    assert "op=mul" in repr(y) and y.op == "mul" and w.op is None
    assert "op=" not in repr(cr.ones(2) * 3)


def test_requires_grad_needs_float():
    with pytest.raises(TypeError, match="float"):
        cr.tensor([1, 2], requires_grad=True)


# ------------------------------------------------------------------ backward
def test_backward_needs_grad_for_non_scalar_outputs():
    w = cr.ones(3, requires_grad=True)
    y = w * 2
    with pytest.raises(RuntimeError, match="not a scalar"):
        y.backward()
    y.backward(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    np.testing.assert_allclose(w.grad, [2.0, 4.0, 6.0])
    assert isinstance(w.grad, np.ndarray) and w.grad.dtype == np.float32


def test_backward_on_a_tensor_without_grad_explains():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.ones(2).sum().backward()


def test_gradients_accumulate_across_backward_calls_and_zero_grad_resets():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, [4.0, 8.0])  # 2 * (2w)
    w.zero_grad()
    assert w.grad is None


def test_a_tensor_used_twice_gets_the_sum_of_both_paths():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1 = 7
    y.backward()
    assert float(x.grad) == 7.0


def test_leaf_grads_never_share_memory():
    a = cr.ones(3, requires_grad=True)
    b = cr.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad[0] = 100.0
    assert b.grad[0] == 1.0
    c = cr.ones(2, 3, requires_grad=True)
    d = cr.ones(6, requires_grad=True)
    (c.reshape(6) + d).sum().backward()
    assert not np.shares_memory(c.grad, d.grad)


def test_leaf_grads_that_are_views_never_share_memory_with_each_other_or_the_seed():
    a, b = cr.ones(2, 3, requires_grad=True), cr.ones(3, 2, requires_grad=True)
    (a.reshape(6) + b.reshape(6)).sum().backward()  # both grads are reshaped views of one array
    assert not np.shares_memory(a.grad, b.grad)
    seed = np.arange(6.0)
    c = cr.ones(2, 3, requires_grad=True)
    c.reshape(6).backward(seed)  # the backward of reshape hands back a view of the caller's array
    assert not np.shares_memory(c.grad, seed)
    c.grad[0, 0] = -1.0
    assert seed[0] == 0.0


def test_which_gradients_become_a_grad_without_a_copy():
    from chainrule.autograd import _may_hand_out
    fresh = np.zeros((4, 6))
    assert _may_hand_out(fresh, set())
    assert _may_hand_out(fresh.reshape(2, 12), set())  # all of an array: e.g. a reshaped weight gradient
    assert not _may_hand_out(fresh.reshape(2, 12), {id(fresh)})  # its memory is someone's grad already
    assert not _may_hand_out(fresh[:2], set())  # part of a bigger array
    assert not _may_hand_out(fresh.T, set())  # not a plain block
    assert not _may_hand_out(np.broadcast_to(np.zeros(6), (4, 6)), set())  # read-only
    assert not _may_hand_out(np.frombuffer(bytearray(48)), set())  # memory that is not an array's


def test_graph_is_freed_after_backward_unless_retained():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w.exp() * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph"):
        loss.backward()
    loss = (w.exp() * 2).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(w.grad, 2 * np.exp([1.0, 2.0]) * 3, rtol=1e-6)


def test_nothing_leaks_across_training_steps():
    """The graph of a step holds the step's arrays; after backward they must be gone."""
    w = cr.randn(50, 50, requires_grad=True)
    refs = []
    for _ in range(3):
        h = ops.relu(cr.randn(8, 50) @ w)
        refs.append(weakref.ref(h))
        loss = (h * h).mean()
        loss.backward()
        del h, loss
    gc.collect()
    assert all(r() is None for r in refs)


def test_backward_frees_saved_arrays_even_while_the_output_lives():
    w = cr.randn(100, requires_grad=True)
    big = cr.randn(100)
    loss = (w * big).sum()
    ref = weakref.ref(big)
    del big
    loss.backward()
    gc.collect()
    assert ref() is None  # the mul node dropped it when its backward ran


def test_retain_grad_keeps_intermediate_gradients():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, [6.0, 12.0])
    np.testing.assert_allclose(x.grad, [18.0, 36.0])


def test_detach_cuts_the_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = (x * y).sum()
    z.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


# ------------------------------------------------------------------ no_grad and grad()
def test_no_grad_as_context_manager_and_decorator():
    w = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = w * 2
        with cr.enable_grad():
            z = w * 2
    assert cr.is_grad_enabled()
    assert not y.requires_grad and y.node is None
    assert z.requires_grad

    @cr.no_grad()
    def predict(v):
        return v * 2

    assert not predict(w).requires_grad
    assert cr.is_grad_enabled()


def test_no_grad_decorator_is_reentrant():
    @cr.no_grad()
    def nested(n):
        if n:
            nested(n - 1)
        return cr.is_grad_enabled()

    assert nested(3) is False
    assert cr.is_grad_enabled()


def test_functional_grad_does_not_touch_dot_grad():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = cr.tensor([0.5], requires_grad=True)
    loss = (x * x * y).sum()
    gx, gy = cr.grad(loss, [x, y])
    np.testing.assert_allclose(gx.numpy(), 2 * x.numpy() * 0.5)
    np.testing.assert_allclose(gy.numpy(), [14.0])
    assert x.grad is None and y.grad is None


def test_functional_grad_of_an_intermediate_and_unused_inputs():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    unused = cr.tensor([1.0], requires_grad=True)
    h = x * 2
    loss = (h * h).sum()
    gh = cr.grad(loss, h, retain_graph=True)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    with pytest.raises(RuntimeError, match="allow_unused"):
        cr.grad(loss, [x, unused], retain_graph=True)
    gx, gu = cr.grad(loss, [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.numpy(), 8 * x.numpy())


# ------------------------------------------------------------------ in-place changes
def test_in_place_on_a_weight_raises_under_grad_and_works_under_no_grad():
    w = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w += 1
    with cr.no_grad():
        w -= 0.5
    np.testing.assert_allclose(w.numpy(), 0.5)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 3.0


def test_in_place_change_of_a_saved_input_is_detected_at_backward():
    w = cr.ones(3, requires_grad=True)
    x = cr.tensor([1.0, 2.0, 3.0])
    loss = (w * x).sum()
    x *= 2  # x was saved by mul for dL/dw = x
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_in_place_keeps_dtype_and_identity():
    x = cr.ones(3)
    before = x.data
    x += 0.5
    x *= np.float64(2)
    assert x.data is before and x.dtype == np.float32
    np.testing.assert_allclose(x.numpy(), 3.0)


# ------------------------------------------------------------------ float32 discipline
def test_float32_stays_float32_through_a_training_step():
    cr.random.seed(0)
    w = cr.randn(4, 3, requires_grad=True)
    b = cr.zeros(3, requires_grad=True)
    x = cr.randn(5, 4)
    h = ops.sigmoid(ops.linear(x, w, b) * 0.5 + np.float64(0.1))
    loss = ops.sparse_softmax_cross_entropy(h, np.array([0, 1, 2, 1, 0]))
    assert h.dtype == np.float32 and loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert float(x.grad) == pytest.approx(1.0001 ** 5000, rel=1e-3)


def test_gradcheck_reports_and_raises_on_a_wrong_gradient():
    def wrong(x):
        from chainrule.autograd import record
        return record(x.data ** 2, (x,), lambda g: (g * x.data,), "wrong_square")  # should be 2x

    x = cr.tensor([1.0, 2.0, 3.0], dtype="float64")
    with pytest.raises(cr.GradcheckError, match="wrong_square.*FAILED") as info:
        cr.gradcheck(wrong, x)
    row = info.value.report.rows[0]
    assert row["worst_index"] == (2,) and row["analytic"] == pytest.approx(row["numeric"] / 2, rel=1e-4)
    report = cr.gradcheck(lambda v: v * v, x)
    assert report.ok and "passed" in str(report)
    assert not cr.gradcheck(wrong, x, raise_exception=False).ok
