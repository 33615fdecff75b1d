"""Convolutions whose receptive fields tile the image exactly (stride = kernel, no padding or dilation:
the U-Net's 2x2 stride-2 up-convolutions; a conv2d's input gradient at stride = kernel), ops/conv.py's
`_scatter_tiles` and `_tile_products`: the compiled kernels (ops/tiles_numba.py) equal NumPy's to 1e-12
in float64, on one to three threads, with small blocks and large, for every subset of gradients;
gradchecked in float64 on both kernels."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import accelerate, backend
from chainrule.ops import conv as conv_module
from chainrule.ops.conv import conv2d, conv_transpose2d

from test_conv import normal

# (x shape, kernel = stride, C_out): conv_transpose2d's x is the small image
TILE_CASES = [
    ((2, 3, 4, 5), (2, 2), 3),
    ((3, 2, 3, 4), (2, 3), 6),     # a rectangular kernel, its own stride on each axis
    ((1, 2, 2, 3), (3, 3), 1),     # one output channel
    ((2, 4, 4, 1), (2, 2), 4),     # one input channel
]
IDS = ["2x2", "2x3", "3x3_one_out", "one_in"]


def run(fn, arrays, wrt):
    ts = [cr.Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    y = fn(*ts)
    y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    return [y.numpy()] + [np.asarray(ts[i].grad) for i in wrt]


def both_kernels(fn, arrays, wrt):
    previous = accelerate.set_numba("never")
    try:
        reference = run(fn, arrays, wrt)
        accelerate.set_numba("always")
        compiled = run(fn, arrays, wrt)
    finally:
        accelerate.set_numba(previous)
    return reference, compiled


@pytest.fixture
def numba_kernels():
    if not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed (pip install 'chainrule[fast]')")


@pytest.mark.parametrize("x_shape,k,c_out", TILE_CASES, ids=IDS)
@pytest.mark.parametrize("wrt", [(0, 1, 2), (0,), (1,), (2,), (0, 1)], ids=["all", "x", "w", "b", "x_w"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("block_bytes", [64, 1 << 20], ids=["block_per_row", "one_block"])
def test_compiled_transposed_conv_equals_numpy(x_shape, k, c_out, wrt, threads, block_bytes, numba_kernels,
                                               monkeypatch):
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)  # share out even these small products
    monkeypatch.setattr(conv_module, "_TILE_BLOCK_BYTES", block_bytes)  # several blocks a thread, or one
    rng = np.random.default_rng(3)
    arrays = (normal(rng, x_shape), normal(rng, k + (c_out, x_shape[3])), normal(rng, (c_out,)))
    previous = backend.set_num_threads(threads)
    try:
        reference, compiled = both_kernels(lambda x, w, b: conv_transpose2d(x, w, b, stride=k), arrays, wrt)
    finally:
        backend.set_num_threads(previous)
    for r, c in zip(reference, compiled):
        assert c.dtype == np.float64 and c.shape == r.shape
        np.testing.assert_allclose(c, r, rtol=0, atol=1e-12 * max(1.0, np.abs(r).max()))


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_kernels_run_on_the_up_convolution(threads, numba_kernels, monkeypatch):
    # the compiled path is the one taken (not NumPy's quietly), in float32, with the bias fused
    from chainrule.ops import tiles_numba
    calls = []
    for name in ("untile", "tile_products"):
        kernel = getattr(tiles_numba, name)
        monkeypatch.setattr(tiles_numba, name, lambda *a, kernel=kernel, name=name: (calls.append(name), kernel(*a))[1])
    rng = np.random.default_rng(4)
    x, w, b = (a.astype(np.float32) for a in (normal(rng, (8, 4, 4, 32)), normal(rng, (2, 2, 16, 32)), normal(rng, (16,))))
    previous = backend.set_num_threads(threads)
    try:
        reference, compiled = both_kernels(lambda x, w, b: conv_transpose2d(x, w, b, stride=2), (x, w, b), (0, 1, 2))
    finally:
        backend.set_num_threads(previous)
    assert "untile" in calls and "tile_products" in calls
    for r, c in zip(reference, compiled):
        assert c.dtype == np.float32
        np.testing.assert_allclose(c, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())


@pytest.mark.parametrize("x_shape,k,c_out", TILE_CASES, ids=IDS)
@pytest.mark.parametrize("wrt", [(0, 1, 2), (0,), (1,)], ids=["all", "x", "w"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
def test_conv_with_stride_equal_to_kernel_equals_numpy(x_shape, k, c_out, wrt, threads, relu, numba_kernels,
                                                       monkeypatch):
    # conv2d's input gradient takes the compiled untile (no bias) when its fields tile x
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    rng = np.random.default_rng(6)
    n, h, w, c = x_shape
    arrays = (normal(rng, (n, h * k[0], w * k[1], c)), normal(rng, k + (c, c_out)), normal(rng, (c_out,)))
    previous = backend.set_num_threads(threads)
    try:
        reference, compiled = both_kernels(
            lambda x, w, b: conv2d(x, w, b, stride=k, activation="relu" if relu else None), arrays, wrt)
    finally:
        backend.set_num_threads(previous)
    for r, c in zip(reference, compiled):
        np.testing.assert_allclose(c, r, rtol=0, atol=1e-12 * max(1.0, np.abs(r).max()))


@pytest.mark.parametrize("x_shape,k,c_out", TILE_CASES, ids=IDS)
def test_conv_gradcheck_when_tiles_are_exact(x_shape, k, c_out, kernels, monkeypatch):
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    rng = np.random.default_rng(10)
    n, h, w, c = x_shape
    cr.gradcheck(lambda x, w, b: conv2d(x, w, b, stride=k),
                 normal(rng, (n, h * k[0], w * k[1], c)), normal(rng, k + (c, c_out)), normal(rng, (c_out,)))


@pytest.mark.parametrize("x_shape,k,c_out", TILE_CASES, ids=IDS)
def test_transposed_conv_gradcheck_when_tiles_are_exact(x_shape, k, c_out, kernels, monkeypatch):
    monkeypatch.setattr(backend, "_PARALLEL_ELEMENTS", 1)
    rng = np.random.default_rng(7)
    cr.gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, stride=k),
                 normal(rng, x_shape), normal(rng, k + (c_out, x_shape[3])), normal(rng, (c_out,)))


def test_empty_batch(kernels):
    x = cr.Tensor(np.zeros((0, 3, 3, 4)), requires_grad=True)
    w = cr.Tensor(np.ones((2, 2, 5, 4)), requires_grad=True)
    b = cr.Tensor(np.ones(5), requires_grad=True)
    y = conv_transpose2d(x, w, b, stride=2)
    assert y.shape == (0, 6, 6, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 3, 4)
    np.testing.assert_array_equal(w.grad, 0)
    np.testing.assert_array_equal(b.grad, 0)
