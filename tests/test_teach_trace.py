"""teach.trace: the chain rule printed at every value, on the lecture's 2-2-2 worked example.

Network and numbers as in test_backprop_lecture.py (derived there by hand):
    i1 = 0.05, i2 = 0.10, t1 = 0.01, t2 = 0.99, w1..w8 = .15 .20 .25 .30 .40 .45 .50 .55, b1 = .35, b2 = .60
    dE/dout_h1      = delta_o1 w5 + delta_o2 w7 = 0.138498562*0.40 - 0.038098236*0.50 = 0.036350306
    dout_h1/dnet_h1 = out_h1 (1 - out_h1)                                          = 0.241300709
    dnet_h1/dw1     = i1                                                           = 0.05
    dE/dw1 = 0.036350306 * 0.241300709 * 0.05                                     = 0.000438568
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule import teach
from chainrule.teach.tracing import _Formatter

GRADS = {"w1": 0.000438568, "w2": 0.000877135, "w3": 0.000497713, "w4": 0.000995425,
         "w5": 0.082167041, "w6": 0.082667628, "w7": -0.022602540, "w8": -0.022740242}
NINE_DIGITS = 1.5e-9


def lecture_network():
    v = teach.variable
    w = {f"w{i + 1}": v(x, f"w{i + 1}") for i, x in enumerate([.15, .20, .25, .30, .40, .45, .50, .55])}
    b1, b2 = v(.35, "b1", requires_grad=False), v(.60, "b2", requires_grad=False)
    i1, i2 = v(.05, "i1", requires_grad=False), v(.10, "i2", requires_grad=False)
    t1, t2 = v(.01, "t1", requires_grad=False), v(.99, "t2", requires_grad=False)
    named = teach.named
    out_h1 = named(named(w["w1"] * i1 + w["w2"] * i2 + b1, "net_h1").sigmoid(), "out_h1")
    out_h2 = named(named(w["w3"] * i1 + w["w4"] * i2 + b1, "net_h2").sigmoid(), "out_h2")
    out_o1 = named(named(w["w5"] * out_h1 + w["w6"] * out_h2 + b2, "net_o1").sigmoid(), "out_o1")
    out_o2 = named(named(w["w7"] * out_h1 + w["w8"] * out_h2 + b2, "net_o2").sigmoid(), "out_o2")
    e_total = named(0.5 * (t1 - out_o1) ** 2 + 0.5 * (t2 - out_o2) ** 2, "E")
    return w, e_total


def test_trace_prints_the_lectures_chain_for_w1(capsys):
    _, e_total = lecture_network()
    result = teach.trace(e_total)
    printed = capsys.readouterr().out
    line = ("dE/dw1 = dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1 = 0.036350306 * 0.241300709 * 0.05 "
            "= 0.000438568")
    assert line in printed
    row = result.row("w1")
    assert row.formula == line
    assert [label for label, _ in row.chain] == ["dE/dout_h1", "dout_h1/dnet_h1", "dnet_h1/dw1"]
    np.testing.assert_allclose([v for _, v in row.chain], [0.036350306, 0.241300709, 0.05], atol=NINE_DIGITS)
    assert row.grad == pytest.approx(0.000438568, abs=NINE_DIGITS)


def test_trace_gives_every_weight_gradient_of_the_lecture():
    _, e_total = lecture_network()
    grads = teach.trace(e_total, show=False).grads
    for name, expected in GRADS.items():
        assert grads[name] == pytest.approx(expected, abs=NINE_DIGITS), name
    # dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5 = 0.741365070 * 0.186815602 * 0.593269992
    chain = teach.trace(e_total, show=False).row("w5").chain
    np.testing.assert_allclose([v for _, v in chain], [0.741365070, 0.186815602, 0.593269992], atol=NINE_DIGITS)


def test_forward_values_and_expressions():
    _, e_total = lecture_network()
    result = teach.trace(e_total, show=False)
    # out_h1 = 1 / (1 + e^-0.3775) = 0.593269992; out_o1 = 0.751365070; E_total = 0.298371109
    assert result.row("net_h1").value == pytest.approx(0.3775, abs=1e-12)
    assert result.row("out_h1").value == pytest.approx(0.593269992, abs=NINE_DIGITS)
    assert result.row("out_o1").value == pytest.approx(0.751365070, abs=NINE_DIGITS)
    assert result.row("E").value == pytest.approx(0.298371109, abs=NINE_DIGITS)
    assert result.row("net_h1").expression == "w1*i1 + w2*i2 + b1"
    assert result.row("out_h1").expression == "sigmoid(net_h1)"
    assert result.row("E").expression == "0.5*(t1 - out_o1)**2 + 0.5*(t2 - out_o2)**2"
    # inputs first, then the network layer by layer, the loss last
    names = [r.name for r in result]
    assert names.index("net_h1") < names.index("out_h1") < names.index("net_o1") < names.index("E")
    assert names[-1] == "E"


def test_a_value_used_twice_sums_its_two_products():
    """dE/dout_h1 = dE/dnet_o1 * w5 + dE/dnet_o2 * w7 = 0.138498562*0.4 + (-0.038098236)*0.5"""
    _, e_total = lecture_network()
    row = teach.trace(e_total, show=False).row("out_h1")
    assert [e.child for e in row.edges] == ["net_o1", "net_o2"]
    (e1, e2) = row.edges
    assert (e1.upstream, e1.local) == (pytest.approx(0.138498562, abs=NINE_DIGITS), pytest.approx(0.4))
    assert (e2.upstream, e2.local) == (pytest.approx(-0.038098236, abs=NINE_DIGITS), pytest.approx(0.5))
    assert e1.product == pytest.approx(0.055399425, abs=NINE_DIGITS)
    assert e2.product == pytest.approx(-0.019049118, abs=NINE_DIGITS)
    assert row.grad == pytest.approx(0.036350306, abs=NINE_DIGITS)
    assert row.formula.startswith("dE/dout_h1 = dE/dnet_o1 * dnet_o1/dout_h1 + dE/dnet_o2 * dnet_o2/dout_h1 = ")


def test_trace_leaves_grads_and_graph_alone():
    w, e_total = lecture_network()
    teach.trace(e_total, show=False)
    assert all(t.grad is None for t in w.values())
    e_total.backward()  # the graph is still whole
    assert w["w1"].grad == pytest.approx(GRADS["w1"], abs=NINE_DIGITS)


def test_trace_after_backward_says_how_to_fix_it():
    _, e_total = lecture_network()
    e_total.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        teach.trace(e_total, show=False)


def test_unnamed_graph_shows_every_op():
    # c = a*b = 6, d = c + a = 8, L = d*d = 64;  dL/dd = 2d = 16, dL/dc = 16, dL/da = 16*b + 16 = 64, dL/db = 16*a = 32
    a = cr.Tensor(np.float64(2.0), requires_grad=True, name="a")
    b = cr.Tensor(np.float64(3.0), requires_grad=True, name="b")
    d = a * b + a
    loss = d * d
    result = teach.trace(loss, show=False)
    assert [r.name for r in result] == ["a", "b", "mul_1", "add_1", "E"]
    assert result.row("add_1").grad == 16.0
    assert result.row("mul_1").grad == 16.0
    assert result.grads["a"] == 64.0 and result.grads["b"] == 32.0
    assert result.row("a").formula == "dE/da = dE/dmul_1 * dmul_1/da + dE/dadd_1 * dadd_1/da = 16 * 3 + 16 * 1 = 64"


def test_tensor_graph_matches_backward_and_shows_elementwise_jacobians():
    x = cr.tensor(np.array([[1.0, -2.0], [3.0, 4.0]]))
    w = cr.Tensor(np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]), requires_grad=True, name="W")
    loss = (x @ w).relu().sum()
    result = teach.trace(loss, show=False)
    relu_row = result.row("matmul_1")
    jac = relu_row.edges[0].local   # d relu / d matmul: diagonal, 1 where the input was positive
    assert jac.shape == (2, 3, 2, 3)
    z = x.numpy() @ w.numpy()
    np.testing.assert_array_equal(np.diagonal(jac.reshape(6, 6)), (z > 0).reshape(-1).astype(float))
    loss.backward()
    np.testing.assert_allclose(result.grads["W"], w.grad, rtol=1e-12)
    assert "diagonal (an elementwise op)" in str(result)


def test_model_weights_are_named_by_path():
    from chainrule import layers, losses, models
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, activation="sigmoid", name="hidden")])
    loss = losses.MeanSquaredError()(np.zeros((2, 2), np.float32), model(np.ones((2, 3), np.float32)))
    result = teach.trace(loss, show=False)
    names = [r.name for r in result]
    assert "hidden/kernel" in names and "hidden/bias" in names
    np.testing.assert_allclose(result.grads["hidden/kernel"],
                               cr.grad(loss, model.layers[0].kernel).numpy(), rtol=1e-6)


def test_trace_rejects_what_it_cannot_trace():
    w = teach.variable([1.0, 2.0], "w")
    with pytest.raises(ValueError, match="scalar"):
        teach.trace(w * 2.0, show=False)
    with pytest.raises(ValueError, match="requires_grad"):
        teach.trace(cr.tensor(1.0) * 2.0, show=False)
    with pytest.raises(TypeError):
        teach.named(np.ones(2), "x")


def test_numbers_are_written_as_the_lecture_writes_them():
    fmt = _Formatter(9)
    assert fmt(0.05) == "0.05"
    assert fmt(0.0004385677344743466) == "0.000438568"
    assert fmt(0.7413650695523157) == "0.74136507"
    assert fmt(-0.0) == "0"
    assert fmt(1.0) == "1"
    assert fmt(2.5e-12) == "2.5e-12"
