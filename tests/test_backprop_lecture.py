"""The backpropagation lecture's worked example, step by step, in float64.

Network: inputs i1, i2 -> hidden h1, h2 (sigmoid) -> outputs o1, o2 (sigmoid).
    i1 = 0.05, i2 = 0.10, targets t1 = 0.01, t2 = 0.99
    w1..w4 = 0.15 0.20 0.25 0.30 (input -> hidden), b1 = 0.35
    w5..w8 = 0.40 0.45 0.50 0.55 (hidden -> output), b2 = 0.60
    E_total = 1/2 (t1 - out_o1)^2 + 1/2 (t2 - out_o2)^2, learning rate 0.5

Every expected number below is derived by hand in the comments (rounded to 9 digits),
not copied from the library's output.
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule import ops

W0 = [.15, .20, .25, .30, .40, .45, .50, .55]

# Forward pass
#   net_h1 = w1 i1 + w2 i2 + b1 = 0.15*0.05 + 0.20*0.10 + 0.35 = 0.3775
#   out_h1 = 1 / (1 + e^-0.3775)                                  = 0.593269992
#   net_h2 = w3 i1 + w4 i2 + b1 = 0.25*0.05 + 0.30*0.10 + 0.35 = 0.3925
#   out_h2 = 1 / (1 + e^-0.3925)                                  = 0.596884378
#   net_o1 = w5 out_h1 + w6 out_h2 + b2 = 0.40*0.593269992 + 0.45*0.596884378 + 0.60 = 1.105905967
#   out_o1 = 1 / (1 + e^-1.105905967)                            = 0.751365070
#   net_o2 = w7 out_h1 + w8 out_h2 + b2 = 0.50*0.593269992 + 0.55*0.596884378 + 0.60 = 1.224921404
#   out_o2 = 1 / (1 + e^-1.224921404)                            = 0.772928465
#   E_total = 1/2 (0.01 - 0.751365070)^2 + 1/2 (0.99 - 0.772928465)^2
#           = 0.274811083 + 0.023560026                          = 0.298371109
OUT_H = (0.593269992, 0.596884378)
OUT_O = (0.751365070, 0.772928465)
E_TOTAL = 0.298371109

# Output layer: dE/dw5 = dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5
#   dE/dout_o1     = out_o1 - t1            = 0.741365070
#   dout_o1/dnet_o1 = out_o1 (1 - out_o1)   = 0.186815602
#   delta_o1 = 0.741365070 * 0.186815602    = 0.138498562
#   delta_o2 = (0.772928465 - 0.99) * 0.772928465 * (1 - 0.772928465)
#            = -0.217071535 * 0.175510053   = -0.038098236
#   dE/dw5 = delta_o1 * out_h1 = 0.138498562 * 0.593269992  = 0.082167041
#   dE/dw6 = delta_o1 * out_h2 = 0.138498562 * 0.596884378  = 0.082667628
#   dE/dw7 = delta_o2 * out_h1 = -0.038098236 * 0.593269992 = -0.022602540
#   dE/dw8 = delta_o2 * out_h2 = -0.038098236 * 0.596884378 = -0.022740242
# Hidden layer: dE/dw1 = dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1
#   dE/dout_h1 = delta_o1 w5 + delta_o2 w7 = 0.138498562*0.40 - 0.038098236*0.50 = 0.036350306
#   dout_h1/dnet_h1 = out_h1 (1 - out_h1) = 0.593269992 * 0.406730008          = 0.241300709
#   dE/dw1 = 0.036350306 * 0.241300709 * i1 (0.05) = 0.000438568
#   dE/dw2 = 0.036350306 * 0.241300709 * i2 (0.10) = 0.000877135
#   dE/dout_h2 = delta_o1 w6 + delta_o2 w8 = 0.138498562*0.45 - 0.038098236*0.55 = 0.041370323
#   dout_h2/dnet_h2 = 0.596884378 * 0.403115622                                 = 0.240613417
#   dE/dw3 = 0.041370323 * 0.240613417 * 0.05 = 0.000497713
#   dE/dw4 = 0.041370323 * 0.240613417 * 0.10 = 0.000995425
GRADS = [0.000438568, 0.000877135, 0.000497713, 0.000995425,
         0.082167041, 0.082667628, -0.022602540, -0.022740242]

# One step of gradient descent, w <- w - 0.5 dE/dw:
#   w1 = 0.15 - 0.5*0.000438568 = 0.149780716     w5 = 0.40 - 0.5*0.082167041 = 0.358916480
#   w2 = 0.20 - 0.5*0.000877135 = 0.199561433     w6 = 0.45 - 0.5*0.082667628 = 0.408666186
#   w3 = 0.25 - 0.5*0.000497713 = 0.249751144     w7 = 0.50 + 0.5*0.022602540 = 0.511301270
#   w4 = 0.30 - 0.5*0.000995425 = 0.299502288     w8 = 0.55 + 0.5*0.022740242 = 0.561370121
UPDATED = [0.149780716, 0.199561433, 0.249751144, 0.299502288,
           0.358916480, 0.408666186, 0.511301270, 0.561370121]
NINE_DIGITS = 1.5e-9  # the hand values are rounded to 9 decimals; chained roundings add up to ~1e-9


def scalar_network():
    f64 = np.float64
    w = [cr.tensor(v, dtype=f64, requires_grad=True) for v in W0]
    i1, i2 = cr.tensor(.05, dtype=f64), cr.tensor(.10, dtype=f64)
    b1, b2 = cr.tensor(.35, dtype=f64), cr.tensor(.60, dtype=f64)
    h1 = ops.sigmoid(w[0] * i1 + w[1] * i2 + b1)
    h2 = ops.sigmoid(w[2] * i1 + w[3] * i2 + b1)
    o1 = ops.sigmoid(w[4] * h1 + w[5] * h2 + b2)
    o2 = ops.sigmoid(w[6] * h1 + w[7] * h2 + b2)
    e_total = 0.5 * (0.01 - o1) ** 2 + 0.5 * (0.99 - o2) ** 2
    return w, (h1, h2), (o1, o2), e_total


def test_forward_pass_matches_the_lecture():
    _, hidden, outputs, e_total = scalar_network()
    for got, want in zip(hidden + outputs, OUT_H + OUT_O):
        assert got.dtype == np.float64
        assert got.item() == pytest.approx(want, abs=NINE_DIGITS)
    assert e_total.item() == pytest.approx(E_TOTAL, abs=NINE_DIGITS)


def test_all_eight_gradients_and_the_chain_rule_product():
    w, _, _, e_total = scalar_network()
    e_total.backward()
    for k, want in enumerate(GRADS):
        assert float(w[k].grad) == pytest.approx(want, abs=NINE_DIGITS), f"dE/dw{k + 1}"
    # the lecture's product, factor by factor
    assert 0.036350306 * 0.241300709 * 0.05 == pytest.approx(float(w[0].grad), abs=NINE_DIGITS)


def test_one_gradient_descent_step():
    w, _, _, e_total = scalar_network()
    e_total.backward()
    with cr.no_grad():
        for p in w:
            p -= 0.5 * p.grad
    for k, want in enumerate(UPDATED):
        assert w[k].item() == pytest.approx(want, abs=NINE_DIGITS), f"w{k + 1}"
    # the error goes down after the step: rebuild the network with the new weights
    f64 = np.float64
    i = cr.tensor([[.05, .10]], dtype=f64)
    w1 = cr.tensor([[w[0].item(), w[2].item()], [w[1].item(), w[3].item()]], dtype=f64)
    w2 = cr.tensor([[w[4].item(), w[6].item()], [w[5].item(), w[7].item()]], dtype=f64)
    out = ops.sigmoid(ops.sigmoid(i @ w1 + .35) @ w2 + .60)
    e_new = ops.mse(out, cr.tensor([[.01, .99]], dtype=f64), reduction="half_sum").item()
    assert e_new < E_TOTAL


def test_matrix_form_gives_the_same_gradients():
    """The same network as two matrix layers and the lecture's 1/2-sum squared error."""
    f64 = np.float64
    w1 = cr.tensor([[.15, .25], [.20, .30]], dtype=f64, requires_grad=True)  # column j feeds h_j
    w2 = cr.tensor([[.40, .50], [.45, .55]], dtype=f64, requires_grad=True)
    x = cr.tensor([[.05, .10]], dtype=f64)
    hidden = ops.sigmoid(ops.linear(x, w1, cr.tensor([.35, .35], dtype=f64)))
    out = ops.sigmoid(ops.linear(hidden, w2, cr.tensor([.60, .60], dtype=f64)))
    e_total = ops.mse(out, cr.tensor([[.01, .99]], dtype=f64), reduction="half_sum")
    assert e_total.item() == pytest.approx(E_TOTAL, abs=NINE_DIGITS)
    e_total.backward()
    np.testing.assert_allclose(w1.grad, [[GRADS[0], GRADS[2]], [GRADS[1], GRADS[3]]], atol=NINE_DIGITS, rtol=0)
    np.testing.assert_allclose(w2.grad, [[GRADS[4], GRADS[6]], [GRADS[5], GRADS[7]]], atol=NINE_DIGITS, rtol=0)


def test_demo_prints_the_same_numbers():
    from chainrule import demo
    lines = []
    e_total, grads, updated = demo.two_two_two(out=lines.append)
    assert e_total == pytest.approx(E_TOTAL, abs=NINE_DIGITS)
    assert [grads[f"w{k}"] for k in range(1, 9)] == pytest.approx(GRADS, abs=NINE_DIGITS)
    assert [updated[f"w{k}"] for k in range(1, 9)] == pytest.approx(UPDATED, abs=NINE_DIGITS)
    assert any("dE/dw1 =  0.000438568" in line for line in lines)
