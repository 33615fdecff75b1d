"""conv1d, conv2d, conv_transpose2d (chainrule.ops.conv): the lecture's worked examples, output
sizes, gradients by central differences, values and gradients against PyTorch, and the errors.

Layouts are Keras's: NHWC / NWC data, kernels (kh, kw, C_in, C_out) for conv2d, (k, C_in, C_out)
for conv1d and (kh, kw, C_out, C_in) for conv_transpose2d. PyTorch is NCHW with (C_out, C_in, kh, kw)
kernels ((C_in, C_out, kh, kw) for its conv_transpose2d); the tests convert.
"""
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import conv as conv_module
from chainrule.ops.conv import conv1d, conv2d, conv_output_length, conv_transpose2d


def normal(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def tf_same_padding(n, k, s, d=1):
    """TensorFlow's 'same' padding of one axis, written out independently of the op:
    out = ceil(n / s); total = max((out - 1) * s + (k - 1) * d + 1 - n, 0); smaller half first."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, n_hw, k_hw, stride, dilation):
    """Any 2-D padding spec as ((top, bottom), (left, right)) for the PyTorch side."""
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return tuple(tf_same_padding(n, k, si, di) for n, k, si, di in zip(n_hw, k_hw, s, d))
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


# ------------------------------------------------------------------ the lecture's worked examples

def test_1d_convolution_of_a_ten_sample_signal_by_hand():
    # x = 3 1 4 1 5 9 2 6 5 3, kernel w = (1, 0, -1): y[t] = x[t] - x[t + 2] (cross-correlation)
    #   t:      0      1      2      3      4      5      6      7
    #   y:  3-4=-1  1-1=0  4-5=-1  1-9=-8  5-2=3  9-6=3  2-5=-3  6-3=3
    # stride 1: (10 - 3)/1 + 1 = 8 outputs, all of the above
    # stride 3: floor((10 - 3)/3) + 1 = 3 outputs, at t = 0, 3, 6: -1, -8, -3
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], np.float32).reshape(1, 10, 1)
    w = np.array([1, 0, -1], np.float32).reshape(3, 1, 1)
    y1 = conv1d(x, w, stride=1)
    assert y1.shape == (1, 8, 1)
    np.testing.assert_array_equal(y1.numpy().ravel(), [-1, 0, -1, -8, 3, 3, -3, 3])
    y3 = conv1d(x, w, stride=3)
    assert y3.shape == (1, 3, 1)
    np.testing.assert_array_equal(y3.numpy().ravel(), [-1, -8, -3])


def test_1d_causal_padding_sees_only_the_past():
    # causal: (k - 1) * d = 2 zeros on the left, so y[t] = x[t-2] - x[t] with x[-2] = x[-1] = 0:
    # y = 0-3, 0-1, 3-4, 1-1, 4-5, 1-9, 5-2, 9-6, 2-5, 6-3 = -3 -1 -1 0 -1 -8 3 3 -3 3
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], np.float32).reshape(1, 10, 1)
    w = np.array([1, 0, -1], np.float32).reshape(3, 1, 1)
    y = conv1d(x, w, padding="causal")
    np.testing.assert_array_equal(y.numpy().ravel(), [-3, -1, -1, 0, -1, -8, 3, 3, -3, 3])


# (w, f, p, s): input width, filter size, padding per side, stride; out = (w - f + 2p)/s + 1, rounded down
OUTPUT_SIZE_TABLE = [
    (10, 3, 0, 1),    # 8
    (10, 3, 0, 3),    # 3
    (7, 3, 1, 1),     # 7: 'same' for an odd kernel at stride 1
    (7, 3, 1, 2),     # 4
    (5, 3, 1, 2),     # 3
    (28, 5, 0, 1),    # 24
    (28, 5, 2, 1),    # 28
    (32, 3, 1, 1),    # 32
    (224, 7, 3, 2),   # 112 (223/2 + 1 rounded down): ResNet's stem
    (227, 11, 0, 4),  # 55: AlexNet's first layer
]


@pytest.mark.parametrize("w,f,p,s", OUTPUT_SIZE_TABLE)
def test_output_size_formula_in_1d(w, f, p, s):
    expected = (w - f + 2 * p) // s + 1
    assert conv_output_length(w, f, stride=s, padding=p) == expected
    y = conv1d(np.zeros((1, w, 1), np.float32), np.zeros((f, 1, 2), np.float32), stride=s, padding=p)
    assert y.shape == (1, expected, 2)


@pytest.mark.parametrize("w,f,p,s", OUTPUT_SIZE_TABLE)
def test_output_size_formula_in_2d(w, f, p, s):
    expected = (w - f + 2 * p) // s + 1
    # a non-square image: height w, width w + 4 (so (w + 4 - f + 2p)/s + 1 across)
    across = (w + 4 - f + 2 * p) // s + 1
    y = conv2d(np.zeros((1, w, w + 4, 1), np.float32), np.zeros((f, f, 1, 2), np.float32), stride=s, padding=p)
    assert y.shape == (1, expected, across, 2)


def test_2d_convolution_by_hand():
    x = np.array([[1, 2, 0, 1],
                  [0, 1, 3, 2],
                  [2, 1, 0, 1],
                  [1, 0, 2, 3]], np.float32)
    # kernel [[1, 0], [0, -1]]: y[i, j] = x[i, j] - x[i+1, j+1], a 3x3 output ((4 - 2)/1 + 1 = 3)
    #   y00 = 1-1 = 0   y01 = 2-3 = -1   y02 = 0-2 = -2
    #   y10 = 0-1 = -1  y11 = 1-0 = 1    y12 = 3-1 = 2
    #   y20 = 2-0 = 2   y21 = 1-2 = -1   y22 = 0-3 = -3
    w = np.array([[1, 0], [0, -1]], np.float32).reshape(2, 2, 1, 1)
    xt = cr.Tensor(x.reshape(1, 4, 4, 1), requires_grad=True)
    wt = cr.Tensor(w, requires_grad=True)
    y = conv2d(xt, wt)
    np.testing.assert_array_equal(y.numpy()[0, :, :, 0], [[0, -1, -2], [-1, 1, 2], [2, -1, -3]])
    # L = sum(y). dL/dw[p, q] = sum of the 3x3 block of x starting at (p, q):
    #   w00: rows 0-2, cols 0-2: 1+2+0 + 0+1+3 + 2+1+0 = 10    w01: rows 0-2, cols 1-3: 2+0+1 + 1+3+2 + 1+0+1 = 11
    #   w10: rows 1-3, cols 0-2: 0+1+3 + 2+1+0 + 1+0+2 = 10    w11: rows 1-3, cols 1-3: 1+3+2 + 1+0+1 + 0+2+3 = 13
    # dL/dx[a, b] = +1 if (a, b) is in the top-left 3x3 block (tap w00) and -1 if in the bottom-right (tap w11)
    y.sum().backward()
    np.testing.assert_array_equal(wt.grad[:, :, 0, 0], [[10, 11], [10, 13]])
    np.testing.assert_array_equal(xt.grad[0, :, :, 0], [[1, 1, 1, 0], [1, 0, 0, -1], [1, 0, 0, -1], [0, -1, -1, -1]])

    # an X-shaped 3x3 kernel [[1, 0, 1], [0, 1, 0], [1, 0, 1]]: a 2x2 output, each the sum of 5 pixels
    #   y00 = x00 + x02 + x11 + x20 + x22 = 1 + 0 + 1 + 2 + 0 = 4
    #   y01 = x01 + x03 + x12 + x21 + x23 = 2 + 1 + 3 + 1 + 1 = 8
    #   y10 = x10 + x12 + x21 + x30 + x32 = 0 + 3 + 1 + 1 + 2 = 7
    #   y11 = x11 + x13 + x22 + x31 + x33 = 1 + 2 + 0 + 0 + 3 = 6
    cross = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.float32).reshape(3, 3, 1, 1)
    np.testing.assert_array_equal(conv2d(x.reshape(1, 4, 4, 1), cross).numpy()[0, :, :, 0], [[4, 8], [7, 6]])
    # 'same' at stride 2: out = ceil(4/2) = 2, total padding (2-1)*2 + 3 - 4 = 1, and TensorFlow puts the
    # odd one AFTER: no zero on top/left, one on the bottom/right. The windows start at rows/cols 0 and 2:
    #   y00 = x00 + x02 + x11 + x20 + x22 = 1 + 0 + 1 + 2 + 0 = 4
    #   y01 = x02 + x13 + x22 (+ two padding taps) = 0 + 2 + 0 = 2
    #   y10 = x20 + x22 + x31 (+ two padding taps) = 2 + 0 + 0 = 2
    #   y11 = x22 + x33 (+ three padding taps) = 0 + 3 = 3
    y = conv2d(x.reshape(1, 4, 4, 1), cross, stride=2, padding="same")
    np.testing.assert_array_equal(y.numpy()[0, :, :, 0], [[4, 2], [2, 3]])


# ------------------------------------------------------------------ output sizes and padding rules

@pytest.mark.parametrize("n,k,s,d,expected", [
    (5, 4, 2, 1, (1, 2)),   # even kernel, stride 2: out 3, total 3, the larger half after
    (7, 2, 1, 1, (0, 1)),   # 2x2 at stride 1: one zero, after
    (6, 2, 2, 1, (0, 0)),   # fits exactly
    (8, 3, 2, 1, (0, 1)),   # odd kernel at stride 2 can also be asymmetric
    (9, 3, 1, 2, (2, 2)),   # dilation 2: span 5
])
def test_same_padding_follows_tensorflow(n, k, s, d, expected):
    assert tf_same_padding(n, k, s, d) == expected
    assert conv_module._axis_padding(n, k, s, "same", d) == expected
    assert conv_output_length(n, k, s, "same", d) == -(-n // s)


def test_conv_output_length_other_paddings():
    assert conv_output_length(None, 3) is None            # unknown sizes pass through shape inference
    assert conv_output_length(28, 5) == 24
    assert conv_output_length(10, 3, padding="causal") == 10
    assert conv_output_length(10, 3, stride=2, padding="causal", dilation=2) == 5
    assert conv_output_length(10, 3, padding=(2, 0)) == 10
    assert conv_output_length(9, 3, stride=2, dilation=2) == 3  # (9 - 5)/2 + 1
    assert conv_output_length(2, 3) == 0                   # too small: <= 0


@pytest.mark.parametrize("n,k,s,padding,output_padding,expected", [
    (4, 3, 2, "valid", None, 9),    # (4 - 1) * 2 + 3
    (4, 2, 2, "valid", None, 8),
    (4, 1, 3, "valid", None, 12),   # Keras: 4 * 3 + max(1 - 3, 0); the last 2 rows get only the bias
    (4, 3, 2, "same", None, 8),     # 4 * 2
    (4, 4, 2, "same", None, 8),
    (4, 3, 2, "valid", 1, 10),      # (4 - 1) * 2 + 3 + 1
    (4, 3, 2, "same", 1, 8),        # (4 - 1) * 2 + 3 - 2 * 1 + 1
    (4, 3, 2, 1, None, 7),          # explicit: (4 - 1) * 2 + 3 - 2
    (4, 3, 2, 1, 1, 8),
])
def test_conv_transpose_output_size_as_keras(n, k, s, padding, output_padding, expected):
    x = np.zeros((1, n, n + 1, 2), np.float32)
    w = np.zeros((k, k, 3, 2), np.float32)
    y = conv_transpose2d(x, w, stride=s, padding=padding, output_padding=output_padding)
    assert y.shape[1] == expected and y.shape[3] == 3
    # conv2d with the same kernel, stride and padding maps the output back to the input's size
    pad_back = padding if output_padding is None or not isinstance(padding, int) else \
        ((padding, padding - output_padding),) * 2
    back = conv2d(np.zeros((1,) + y.shape[1:], np.float32), np.zeros((k, k, 3, 2), np.float32), stride=s,
                  padding=pad_back)
    assert back.shape[1:3] == (n, n + 1)


# ------------------------------------------------------------------ gradients by central differences

# (x shape NHWC, kernel (kh, kw), C_out, keyword arguments). Besides the options, the cases cover each
# internal path: single-channel input (tap-major blocks), C_in >= C_out at stride 1 (input gradient as a
# flipped convolution), C_in < C_out or stride > 1 (col2im), 1x1 kernels (plain matmul).
CONV2D_CASES = [
    ((2, 5, 6, 2), (3, 3), 3, dict()),
    ((2, 5, 6, 2), (3, 3), 3, dict(stride=2)),
    ((2, 6, 5, 2), (3, 2), 3, dict(stride=(2, 1))),
    ((2, 5, 6, 3), (3, 3), 2, dict(padding="same")),
    ((2, 5, 6, 2), (2, 2), 3, dict(padding="same")),
    ((2, 5, 6, 2), (2, 2), 3, dict(padding="same", stride=2)),
    ((2, 7, 6, 2), (4, 4), 3, dict(padding="same", stride=2)),
    ((2, 5, 5, 3), (3, 3), 2, dict(padding=1)),
    ((2, 5, 5, 2), (3, 3), 3, dict(padding=(2, 1), stride=2)),
    ((2, 5, 6, 2), (3, 2), 3, dict(padding=((1, 0), (2, 1)))),
    ((2, 7, 7, 3), (3, 3), 2, dict(dilation=2)),
    ((2, 6, 7, 2), (3, 2), 3, dict(dilation=(2, 1), padding="same")),
    ((2, 6, 7, 2), (2, 2), 2, dict(dilation=2, padding="same", stride=2)),
    ((2, 6, 5, 1), (3, 3), 3, dict(padding="same")),
    ((2, 6, 5, 1), (5, 5), 2, dict(padding=2, stride=2)),
    ((2, 4, 5, 3), (1, 1), 2, dict()),
    ((2, 4, 5, 3), (1, 1), 1, dict()),
    ((2, 5, 5, 3), (1, 1), 2, dict(stride=2)),
    ((2, 4, 4, 2), (3, 3), 2, dict(padding=3)),  # padding wider than the kernel: the col2im path
    ((2, 6, 4, 3), (2, 2), 2, dict(stride=2)),   # fields tile the input exactly: dx by one copy
    ((2, 6, 6, 2), (3, 2), 3, dict(stride=(3, 2))),
]
CASE_IDS = [f"{x}-{k}-{co}-{kw}" for x, k, co, kw in CONV2D_CASES]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV2D_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_gradcheck(x_shape, k, c_out, kwargs, bias, rng):
    x = normal(rng, x_shape)
    w = normal(rng, k + (x_shape[3], c_out))
    if bias:
        cr.gradcheck(lambda x, w, b: conv2d(x, w, b, **kwargs), x, w, normal(rng, (c_out,)))
    else:
        cr.gradcheck(lambda x, w: conv2d(x, w, **kwargs), x, w)


CONV1D_CASES = [
    ((2, 9, 2), 3, 3, dict()),
    ((2, 9, 2), 3, 3, dict(stride=2)),
    ((2, 9, 3), 3, 2, dict(padding="same")),
    ((2, 9, 2), 4, 3, dict(padding="same", stride=2)),
    ((2, 9, 2), 3, 2, dict(padding="causal")),
    ((2, 9, 2), 3, 3, dict(padding="causal", dilation=2)),
    ((2, 9, 1), 3, 2, dict(padding=(2, 1))),
    ((2, 9, 2), 2, 3, dict(padding=1, dilation=3)),
]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV1D_CASES, ids=[str(c) for c in CONV1D_CASES])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_conv1d_gradcheck(x_shape, k, c_out, kwargs, bias, rng):
    x = normal(rng, x_shape)
    w = normal(rng, (k, x_shape[2], c_out))
    if bias:
        cr.gradcheck(lambda x, w, b: conv1d(x, w, b, **kwargs), x, w, normal(rng, (c_out,)))
    else:
        cr.gradcheck(lambda x, w: conv1d(x, w, **kwargs), x, w)


# (x shape, kernel (kh, kw), C_out, keyword arguments) for conv_transpose2d
TRANSPOSE_CASES = [
    ((2, 3, 4, 2), (3, 3), 3, dict()),
    ((2, 3, 4, 2), (3, 3), 3, dict(stride=2)),
    ((2, 3, 4, 3), (2, 2), 2, dict(stride=2)),                       # the U-Net up-convolution
    ((2, 3, 4, 2), (3, 2), 3, dict(stride=(3, 2))),                  # non-square, still exact tiles
    ((2, 3, 4, 2), (3, 2), 3, dict(stride=(2, 1), padding="same")),
    ((2, 3, 4, 2), (4, 4), 2, dict(stride=2, padding="same")),
    ((2, 3, 3, 2), (3, 3), 2, dict(stride=2, padding="same", output_padding=1)),
    ((2, 3, 3, 2), (3, 3), 2, dict(stride=2, output_padding=1)),
    ((2, 3, 4, 2), (3, 3), 2, dict(stride=2, padding=1)),
    ((2, 3, 4, 2), (4, 3), 2, dict(stride=2, padding=((1, 2), (0, 1)))),
    ((2, 3, 4, 2), (2, 2), 3, dict(dilation=2)),
    ((2, 3, 4, 1), (1, 1), 2, dict(stride=3)),                        # stride > kernel: gaps get the bias
    ((2, 3, 4, 3), (1, 1), 2, dict()),
    ((2, 3, 4, 1), (3, 3), 1, dict(padding="same")),
]


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", TRANSPOSE_CASES, ids=[str(c) for c in TRANSPOSE_CASES])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_conv_transpose2d_gradcheck(x_shape, k, c_out, kwargs, bias, rng):
    x = normal(rng, x_shape)
    w = normal(rng, k + (c_out, x_shape[3]))
    if bias:
        cr.gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, **kwargs), x, w, normal(rng, (c_out,)))
    else:
        cr.gradcheck(lambda x, w: conv_transpose2d(x, w, **kwargs), x, w)


def test_only_the_requested_gradients_are_computed(rng):
    x = cr.Tensor(normal(rng, (2, 5, 5, 2), np.float32))
    w = cr.Tensor(normal(rng, (3, 3, 2, 3), np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(3, np.float32))
    conv2d(x, w, b, padding="same").sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (3, 3, 2, 3)
    assert not conv2d(x, b=b, w=cr.Tensor(w.data)).requires_grad


# ------------------------------------------------------------------ the same result through every chunking

@pytest.mark.parametrize("make", [
    lambda x, w, b: conv2d(x, w, b, padding="same"),
    lambda x, w, b: conv2d(x, w, b, stride=2),
    lambda x, w, b: conv2d(x[..., :1], w[:, :, :1], b),
    lambda x, w, b: conv_transpose2d(x, w[..., :2], b[:2], stride=2),
], ids=["same", "stride2", "one_channel", "transpose"])
def test_batch_chunks_do_not_change_the_result(make, rng, monkeypatch):
    x = normal(rng, (5, 6, 7, 2), np.float32)
    w = normal(rng, (3, 3, 2, 3), np.float32)
    b = normal(rng, (3,), np.float32)

    def run():
        ts = [cr.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
        y = make(*ts)
        y.backward(np.ones(y.shape, np.float32))
        return [y.numpy()] + [t.grad if t.grad is not None else np.zeros(1) for t in ts]
    whole = run()
    for budget in (1, 1500):  # one image per chunk; two per chunk and a remainder of one
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", budget)
        for a, e in zip(run(), whole):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("x_shape,w_shape,kwargs", [
    ((5, 9, 8, 1), (3, 3, 1, 4), dict(padding="same")),                # one channel: blocks by tap
    ((4, 11, 10, 2), (5, 3, 2, 6), dict(stride=2, padding="same")),
    ((3, 12, 12, 3), (3, 3, 3, 5), dict(dilation=2)),
], ids=["one_channel", "stride2", "dilation2"])
def test_both_gradients_from_one_pass_equal_two_passes(threads, x_shape, w_shape, kwargs, rng, monkeypatch):
    """dW and dx from the same blocks in one pass over the batch (`_windows_matmul(col2im=...)`):
    the very numbers of the separate passes, in small chunks on 1-3 threads."""
    x, w, g = normal(rng, x_shape, np.float64), normal(rng, w_shape, np.float64), None
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1500)   # several blocks per thread
    taken = []
    fused = conv_module._windows_matmul
    monkeypatch.setattr(conv_module, "_windows_matmul",
                        lambda *a, **k: taken.append(k.get("col2im") is not None) or fused(*a, **k))
    previous = cr.set_num_threads(threads)
    try:
        results = []
        for one_pass in (True, False):
            monkeypatch.setattr(conv_module, "_by_col2im", lambda geom, w2, _on=one_pass: _on)
            ts = [cr.Tensor(a.copy(), requires_grad=True) for a in (x, w)]
            y = conv2d(*ts, **kwargs)
            g = normal(rng, y.shape, np.float64) if g is None else g
            y.backward(g)
            results.append([y.numpy(), ts[0].grad, ts[1].grad])
    finally:
        cr.set_num_threads(previous)
    assert taken.count(True) == 1   # the one-pass backward, in the first run only
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kwargs", [dict(padding="same"), dict(stride=2), dict(padding=2, dilation=2)])
def test_one_channel_bias_folded_into_the_gemms_matches_the_sums(threads, kwargs, rng, monkeypatch):
    """A one-channel input takes its bias as a row of ones in the GEMM, and gives the bias's gradient
    as one more row of the weight gradient's: y, dx, dW and db against float64 sums written out."""
    x, w, b = normal(rng, (3, 9, 8, 1), np.float64), normal(rng, (3, 3, 1, 4), np.float64), normal(rng, (4,), np.float64)
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1500)   # several blocks per thread
    previous = cr.set_num_threads(threads)
    try:
        ts = [cr.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
        y = conv2d(*ts, **kwargs)
        g = normal(rng, y.shape, np.float64)
        y.backward(g)
    finally:
        cr.set_num_threads(previous)
    # the same convolution as explicit sums over its receptive fields
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    pad = 1 if kwargs.get("padding") == "same" else kwargs.get("padding", 0)
    if pad == "valid":
        pad = 0
    xp_ = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = y.shape[1], y.shape[2]
    fields = np.stack([np.stack([xp_[:, i * stride + dilation * np.arange(3)[:, None], j * stride + dilation * np.arange(3)[None, :], 0]
                                 for j in range(wo)], 1) for i in range(ho)], 1)      # (N, Ho, Wo, 3, 3)
    y_ref = np.einsum("nhwij,ijo->nhwo", fields, w[:, :, 0]) + b
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ts[2].grad, g.sum(axis=(0, 1, 2)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ts[1].grad[:, :, 0], np.einsum("nhwij,nhwo->ijo", fields, g), rtol=1e-12, atol=1e-12)
    dx = np.zeros_like(xp_)
    for i in range(ho):
        for j in range(wo):
            rows, cols = i * stride + dilation * np.arange(3), j * stride + dilation * np.arange(3)
            dx[:, rows[:, None], cols[None, :], 0] += np.einsum("no,ijo->nij", g[:, i, j], w[:, :, 0])
    np.testing.assert_allclose(ts[0].grad, dx[:, pad:pad + 9, pad:pad + 8], rtol=1e-12, atol=1e-12)


def test_an_empty_batch_gives_empty_outputs_and_zero_kernel_gradients():
    x = cr.Tensor(np.zeros((0, 5, 5, 2), np.float32), requires_grad=True)
    w = cr.Tensor(np.ones((3, 3, 2, 4), np.float32), requires_grad=True)
    y = conv2d(x, w, padding="same")
    assert y.shape == (0, 5, 5, 4)
    y.backward(np.zeros(y.shape, np.float32))
    assert x.grad.shape == (0, 5, 5, 2) and not w.grad.any()


# ------------------------------------------------------------------ how the three ops relate

def test_conv1d_is_conv2d_on_a_height_one_image(rng):
    x, w, b = normal(rng, (2, 11, 3)), normal(rng, (4, 3, 2)), normal(rng, (2,))
    y1 = conv1d(x, w, b, stride=2, padding="same")  # out ceil(11/2) = 6, padding 5*2 + 4 - 11 = 3: (1, 2)
    y2 = conv2d(x[:, None], w[None], b, stride=(1, 2), padding=((0, 0), (1, 2)))
    np.testing.assert_allclose(y1.numpy(), y2.numpy()[:, 0], rtol=1e-12)


@pytest.mark.parametrize("n,k,s,padding,output_padding", [
    (8, 3, 2, "same", None), (9, 3, 2, "valid", None), (10, 3, 2, "valid", 1), (7, 4, 1, "same", None),
    (8, 2, 2, "valid", None), (9, 5, 2, 2, None),
])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(n, k, s, padding, output_padding, rng):
    # <conv2d(x, w), y> == <x, conv_transpose2d(y, w)>: the transposed convolution is the transpose
    # of the linear map x -> conv2d(x, w), with the very same kernel array (Keras's two layouts agree)
    x = normal(rng, (2, n, n, 3))
    w = normal(rng, (k, k, 3, 4))
    y_shape = conv2d(x, w, stride=s, padding=padding).shape
    y = normal(rng, y_shape)
    back = conv_transpose2d(y, w, stride=s, padding=padding, output_padding=output_padding)
    assert back.shape == x.shape
    lhs = float((conv2d(x, w, stride=s, padding=padding).numpy() * y).sum())
    np.testing.assert_allclose(lhs, float((x * back.numpy()).sum()), rtol=1e-10)


# ------------------------------------------------------------------ against PyTorch, in float32

def torch_conv2d(torch, x, w, b, stride, pads, dilation):
    F = torch.nn.functional
    (top, bottom), (left, right) = pads
    xt = F.pad(x.permute(0, 3, 1, 2), (left, right, top, bottom))
    y = F.conv2d(xt, w.permute(3, 2, 0, 1), b, stride=stride, dilation=dilation)
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV2D_CASES + [
    ((3, 14, 14, 8), (5, 5), 16, dict(padding="same")),    # CNN-A's second layer, scaled down
    ((3, 13, 12, 1), (5, 5), 8, dict(padding="same")),     # CNN-A's first layer
    ((2, 16, 16, 16), (3, 3), 8, dict(padding="same")),    # a U-Net layer
    ((2, 10, 9, 8), (3, 3), 8, dict(padding="same", dilation=2)),
], ids=CASE_IDS + ["cnn_a_2", "cnn_a_1", "unet", "dilated"])
def test_conv2d_matches_torch(x_shape, k, c_out, kwargs, rng, check_torch, torch):
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    pads = explicit_pads(kwargs.get("padding", "valid"), x_shape[1:3], k, stride, dilation)
    x = normal(rng, x_shape, np.float32)
    w = normal(rng, k + (x_shape[3], c_out), np.float32)
    b = normal(rng, (c_out,), np.float32)
    # outputs are sums of kh*kw*C unit products, of size sqrt(kh*kw*C); Winograd's transforms (the
    # default for stride-1 3x3 and 5x5 kernels with 8+ channels) round at ~1e-6 of that size
    atol = 2e-5 * np.sqrt(k[0] * k[1] * x_shape[3])
    check_torch(lambda x, w, b: conv2d(x, w, b, **kwargs),
                lambda x, w, b: torch_conv2d(torch, x, w, b, stride, pads, dilation),
                x, w, b, rtol=1e-4, atol=atol)
    check_torch(lambda x, w: conv2d(x, w, **kwargs),   # without bias, and the input alone
                lambda x, w: torch_conv2d(torch, x, w, None, stride, pads, dilation),
                x, w, wrt=[0], rtol=1e-4, atol=atol)


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", CONV1D_CASES, ids=[str(c) for c in CONV1D_CASES])
def test_conv1d_matches_torch(x_shape, k, c_out, kwargs, rng, check_torch, torch):
    F = torch.nn.functional
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    padding = kwargs.get("padding", "valid")
    if padding == "causal":
        pads = ((k - 1) * dilation, 0)
    elif isinstance(padding, str):
        pads = explicit_pads(padding, (x_shape[1],), (k,), (stride,), (dilation,))[0]
    else:
        pads = (padding, padding) if isinstance(padding, int) else padding

    def theirs(x, w, b):
        y = F.conv1d(F.pad(x.permute(0, 2, 1), pads), w.permute(2, 1, 0), b, stride=stride, dilation=dilation)
        return y.permute(0, 2, 1)
    x = normal(rng, x_shape, np.float32)
    w = normal(rng, (k, x_shape[2], c_out), np.float32)
    b = normal(rng, (c_out,), np.float32)
    check_torch(lambda x, w, b: conv1d(x, w, b, **kwargs), theirs, x, w, b, rtol=1e-4, atol=1e-5)


def keras_transpose_axis(n, k, s, d, padding, output_padding):
    """(crop before, output length) of one axis, from Keras's deconv_output_length and TF's padding."""
    k_eff = d * (k - 1) + 1
    full = (n - 1) * s + k_eff
    if isinstance(padding, tuple):
        return padding[0], full - padding[0] - padding[1] + (output_padding or 0)
    if output_padding is None:
        out = n * s + max(k_eff - s, 0) if padding == "valid" else n * s
    else:
        out = full + output_padding - (2 * (k_eff // 2) if padding == "same" else 0)
    return (max(full - out, 0) // 2 if padding == "same" else 0), out


def torch_conv_transpose2d(torch, x, w, b, stride, dilation, axes):
    """PyTorch's full-size transposed convolution, then cropped (or zero-extended) to Keras's window."""
    F = torch.nn.functional
    y = F.conv_transpose2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), None, stride=stride, dilation=dilation)
    (top, out_h), (left, out_w) = axes
    y = F.pad(y, (-left, out_w + left - y.shape[3], -top, out_h + top - y.shape[2]))
    if b is not None:
        y = y + b[:, None, None]
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("x_shape,k,c_out,kwargs", TRANSPOSE_CASES + [
    ((2, 4, 4, 16), (2, 2), 8, dict(stride=2)),   # a U-Net up-convolution
], ids=[str(c) for c in TRANSPOSE_CASES] + ["unet"])
def test_conv_transpose2d_matches_torch(x_shape, k, c_out, kwargs, rng, check_torch, torch, kernels):
    s = kwargs.get("stride", 1)
    s = (s, s) if isinstance(s, int) else s
    d = kwargs.get("dilation", 1)
    padding = kwargs.get("padding", "valid")
    if not isinstance(padding, str):
        padding = explicit_pads(padding, x_shape[1:3], k, s, d)
    op = kwargs.get("output_padding")
    axes = [keras_transpose_axis(n, kk, ss, d, padding if isinstance(padding, str) else padding[a], op)
            for a, (n, kk, ss) in enumerate(zip(x_shape[1:3], k, s))]
    x = normal(rng, x_shape, np.float32)
    w = normal(rng, k + (c_out, x_shape[3]), np.float32)
    b = normal(rng, (c_out,), np.float32)
    check_torch(lambda x, w, b: conv_transpose2d(x, w, b, **kwargs),
                lambda x, w, b: torch_conv_transpose2d(torch, x, w, b, s, d, axes),
                x, w, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ dtypes

@pytest.mark.parametrize("op,x_shape,w_shape", [
    (conv2d, (2, 6, 6, 3), (3, 3, 3, 4)),
    (conv2d, (2, 6, 6, 1), (3, 3, 1, 4)),
    (conv1d, (2, 9, 3), (3, 3, 4)),
    (conv_transpose2d, (2, 4, 4, 3), (2, 2, 4, 3)),
], ids=["conv2d", "conv2d_one_channel", "conv1d", "conv_transpose2d"])
def test_float32_in_float32_out_and_float32_gradients(op, x_shape, w_shape, rng):
    x = cr.Tensor(normal(rng, x_shape, np.float32), requires_grad=True)
    w = cr.Tensor(normal(rng, w_shape, np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = op(x, w, b, padding="same")
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_integer_images_take_the_kernel_dtype(rng):
    x = rng.integers(0, 256, (2, 5, 5, 1)).astype(np.uint8)
    w = normal(rng, (3, 3, 1, 2), np.float32)
    y = conv2d(x, w)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), conv2d(x.astype(np.float32), w).numpy())


def test_mixed_float_dtypes_are_an_error(rng):
    with pytest.raises(TypeError, match=r"conv2d: input is float64 but the kernel is float32"):
        conv2d(normal(rng, (1, 5, 5, 1)), normal(rng, (3, 3, 1, 2), np.float32))


# ------------------------------------------------------------------ errors that say what to do

def test_channel_mismatch_names_the_shapes():
    x, w = np.zeros((2, 8, 8, 3), np.float32), np.zeros((3, 3, 1, 32), np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "conv2d: input has 3 channels but the kernel expects 1 (kernel shape (3, 3, 1, 32)); "
            "make the kernel (3, 3, 3, 32)")):
        conv2d(x, w)
    with pytest.raises(ValueError, match=re.escape("conv1d: input has 3 channels but the kernel expects 2")):
        conv1d(np.zeros((2, 8, 3), np.float32), np.zeros((3, 2, 4), np.float32))
    with pytest.raises(ValueError, match=re.escape("conv_transpose2d: input has 3 channels but the kernel "
                                                   "expects 4 (kernel shape (2, 2, 8, 4)")):
        conv_transpose2d(np.zeros((2, 4, 4, 3), np.float32), np.zeros((2, 2, 8, 4), np.float32))


def test_wrong_rank_says_which_layout():
    with pytest.raises(ValueError, match=re.escape("conv2d: expects (batch, height, width, channels) input but "
                                                   "got shape (28, 28, 1): add a batch axis")):
        conv2d(np.zeros((28, 28, 1), np.float32), np.zeros((3, 3, 1, 8), np.float32))
    with pytest.raises(ValueError, match=re.escape("conv2d: expects a (kernel_height, kernel_width, in_channels, "
                                                   "out_channels) kernel but got shape (3, 3, 8)")):
        conv2d(np.zeros((1, 28, 28, 1), np.float32), np.zeros((3, 3, 8), np.float32))
    with pytest.raises(ValueError, match=re.escape("conv1d: expects (batch, steps, channels) input")):
        conv1d(np.zeros((1, 2, 28, 1), np.float32), np.zeros((3, 1, 8), np.float32))
    with pytest.raises(ValueError, match=re.escape("conv_transpose2d: expects (batch, height, width, channels)")):
        conv_transpose2d(np.zeros((4, 4, 2), np.float32), np.zeros((2, 2, 3, 2), np.float32))


@pytest.mark.parametrize("call,message", [
    (lambda: conv2d(np.zeros((1, 2, 2, 1), np.float32), np.zeros((3, 3, 1, 1), np.float32)),
     "conv2d: the input's spatial size (2, 2) padded by ((0, 0), (0, 0)) to (2, 2) is smaller than the kernel's"),
    (lambda: conv2d(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 4), np.float32), np.zeros(3, np.float32)),
     "conv2d: bias has shape (3,) but the kernel has 4 output channels"),
    (lambda: conv2d(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 4), np.float32), padding="full"),
     "conv2d: padding 'full' is not one of 'valid', 'same'"),
    (lambda: conv2d(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 4), np.float32), padding="causal"),
     "('causal' is for conv1d)"),
    (lambda: conv2d(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 4), np.float32), padding=-1),
     "conv2d: padding must be"),
    (lambda: conv2d(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 4), np.float32), stride=0),
     "conv2d: stride must be a positive int or a pair of them, got 0"),
    (lambda: conv1d(np.zeros((1, 5, 1), np.float32), np.zeros((3, 1, 4), np.float32), dilation=(1, 2)),
     "conv1d: dilation must be a positive int"),
    (lambda: conv_transpose2d(np.zeros((1, 3, 3, 1), np.float32), np.zeros((3, 3, 2, 1), np.float32), stride=2,
                              output_padding=2),
     "conv_transpose2d: output_padding (2, 2) must be smaller than the stride (2, 2)"),
])
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ------------------------------------------------------------------ fused bias + ReLU
@pytest.mark.parametrize("x_shape,k,c_out,kwargs", [
    ((2, 9, 8, 3), (3, 3), 4, dict(padding="same")),                 # im2col
    ((2, 12, 12, 8), (3, 3), 8, dict(padding="same")),               # Winograd when it pays (see below)
    ((2, 7, 6, 5), (1, 1), 3, {}),                                   # pointwise
    ((2, 9, 9, 4), (3, 3), 4, dict(stride=2, padding="same")),       # strided
])
@pytest.mark.parametrize("algorithm", ["auto", "im2col"])
def test_fused_relu_equals_relu_of_the_convolution(x_shape, k, c_out, kwargs, algorithm, monkeypatch):
    from chainrule.ops import winograd
    monkeypatch.setattr(winograd, "_MIN_TILES", 1)
    previous = conv_module.set_conv_algorithm(algorithm)
    try:
        rng = np.random.default_rng(11)
        arrays = [normal(rng, x_shape), normal(rng, k + (x_shape[3], c_out)), normal(rng, (c_out,))]
        seed = None
        results = []
        for fused in (True, False):
            ts = [cr.Tensor(a.copy(), requires_grad=True) for a in arrays]
            y = conv2d(*ts, activation="relu", **kwargs) if fused else cr.relu(conv2d(*ts, **kwargs))
            seed = normal(rng, y.shape) if seed is None else seed
            y.backward(seed)
            results.append([y.numpy()] + [np.asarray(t.grad) for t in ts])
        assert (results[0][0] == 0).any() and (results[0][0] > 0).any()
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        cr.gradcheck(lambda x, w, b: conv2d(x, w, b, activation="relu", **kwargs), *arrays)
    finally:
        conv_module.set_conv_algorithm(previous)


def test_conv1d_fused_relu_and_refused_activations():
    rng = np.random.default_rng(12)
    x, w, b = normal(rng, (2, 10, 3)), normal(rng, (3, 3, 4)), normal(rng, (4,))
    np.testing.assert_allclose(conv1d(x, w, b, padding="causal", activation="relu").numpy(),
                               np.maximum(conv1d(x, w, b, padding="causal").numpy(), 0))
    with pytest.raises(ValueError, match="conv2d: activation='tanh' cannot be fused"):
        conv2d(normal(rng, (1, 4, 4, 1)), normal(rng, (3, 3, 1, 1)), activation="tanh")


def test_conv2d_layer_with_relu_records_one_node():
    from chainrule import layers
    layer = layers.Conv2D(4, 3, activation="relu")
    x = cr.Tensor(np.random.default_rng(0).standard_normal((1, 6, 6, 2)).astype(np.float32))
    y = layer(x)
    assert y.node.op == "conv2d" and y.node.parents[0] is x
    assert (y.numpy() >= 0).all()


@pytest.mark.parametrize("x_shape,c_out", [
    ((2, 12, 12, 16), 8),     # input-heavy: Winograd's F(6x6, 3x3) tiles
    ((2, 16, 16, 8), 8),      # F(4x4, 3x3)
    ((2, 9, 8, 3), 4),        # im2col (3 channels)
])
def test_fused_relu_conv_matches_torch(x_shape, c_out, rng, check_torch, torch, monkeypatch):
    from chainrule.ops import winograd
    monkeypatch.setattr(winograd, "_MIN_TILES", 1)   # Winograd on these small batches too
    x = normal(rng, x_shape, np.float32)
    w = normal(rng, (3, 3, x_shape[3], c_out), np.float32)
    b = normal(rng, (c_out,), np.float32)
    pads = explicit_pads("same", x_shape[1:3], (3, 3), 1, 1)
    atol = 2e-5 * np.sqrt(9 * x_shape[3])
    check_torch(lambda x, w, b: conv2d(x, w, b, padding="same", activation="relu"),
                lambda x, w, b: torch.relu(torch_conv2d(torch, x, w, b, 1, pads, 1)),
                x, w, b, rtol=1e-4, atol=atol)
    geom = conv_module._Geometry(x_shape[0], x_shape[1:3], x_shape[3], (3, 3), c_out, (1, 1), (1, 1),
                                 ((1, 1), (1, 1)), x_shape[1:3])
    plan = winograd.plan(geom, np.dtype(np.float32))
    assert (None if plan is None else plan.h.m) == {16: 6, 8: 4, 3: None}[x_shape[3]]  # the path each case runs


@pytest.mark.parametrize("rows,cols", [(0, 4), (1, 1), (7, 3), (40, 16), (4096, 16), (6, 300), (32768, 1)])
def test_outer_product_of_the_one_channel_pointwise_gradient(rows, cols):
    rng = np.random.default_rng(rows + cols)
    g, w = rng.standard_normal(rows).astype(np.float32), rng.standard_normal(cols).astype(np.float32)
    np.testing.assert_array_equal(conv_module._outer(g, w), np.outer(g, w))


def test_exact_tiling_is_recognised():
    def geom(x_shape, k, stride, padding="valid"):
        n, h, w, c = x_shape
        pads = tuple(conv_module._axis_padding(size, k, stride, padding, 1) for size in (h, w))
        out = tuple(conv_module.conv_output_length(size, k, stride, p, 1) for size, p in zip((h, w), pads))
        return conv_module._Geometry(n, (h, w), c, (k, k), 4, (stride, stride), (1, 1), pads, out)
    assert conv_module._tiles_exactly(geom((2, 8, 8, 3), 2, 2))
    assert not conv_module._tiles_exactly(geom((2, 7, 8, 3), 2, 2))          # a row left over
    assert not conv_module._tiles_exactly(geom((2, 8, 8, 3), 3, 2, "same"))   # overlapping fields
    assert not conv_module._tiles_exactly(geom((2, 8, 8, 3), 2, 3))           # gaps
