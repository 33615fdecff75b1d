"""PyTorch state_dict interop: the same weights in both frameworks give the same predictions.

Each test builds one architecture twice, in chainrule (channels-last) and as the matching
torch.nn.Sequential (channels-first, one module per Keras layer plus one per fused activation),
moves the weights across with export_state_dict / import_state_dict, and compares outputs on the
same data (NHWC for chainrule, the NCHW transpose for PyTorch).
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule import layers, models
from chainrule.io.torch_interop import export_state_dict, import_state_dict


def _randomize(model, rng):
    """Non-trivial values everywhere, moving statistics included (variances positive)."""
    for w in model.weights:
        value = rng.normal(scale=0.3, size=w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 2.0, size=w.shape)
        w.assign(value.astype(np.float32))


def _cnn2d():
    cr.random.seed(0)
    return models.Sequential([
        layers.Input((10, 10, 3)),
        layers.Conv2D(4, 3, activation="relu"),          # 0 Conv2d, 1 ReLU
        layers.BatchNormalization(),                     # 2
        layers.MaxPooling2D(),                           # 3
        layers.Conv2D(6, 3, padding="same"),             # 4
        layers.Flatten(),                                # 5  (features permuted for the next Dense)
        layers.Dropout(0.5),                             # 6
        layers.Dense(10, activation="relu"),             # 7 Linear, 8 ReLU
        layers.Dense(3),                                 # 9
    ])


def _torch_cnn2d(nn):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4, eps=1e-3), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 4 * 4, 10), nn.ReLU(),
        nn.Linear(10, 3))


def _cnn1d():
    cr.random.seed(0)
    return models.Sequential([
        layers.Input((12, 2)),
        layers.Conv1D(5, 3, activation="tanh"),          # 0 Conv1d, 1 Tanh
        layers.MaxPooling1D(2),                          # 2
        layers.Flatten(),                                # 3
        layers.BatchNormalization(),                     # 4  BatchNorm1d over the (permuted) features
        layers.Dense(4),                                 # 5
    ])


def _torch_cnn1d(nn):
    return nn.Sequential(nn.Conv1d(2, 5, 3), nn.Tanh(), nn.MaxPool1d(2), nn.Flatten(),
                         nn.BatchNorm1d(25, eps=1e-3), nn.Linear(25, 4))


CASES = {"conv2d": (_cnn2d, _torch_cnn2d, (5, 10, 10, 3), (0, 3, 1, 2)),
         "conv1d": (_cnn1d, _torch_cnn1d, (5, 12, 2), (0, 2, 1))}


def _torch_predict(torch, net, x, to_channels_first):
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x.transpose(to_channels_first)))).numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_chainrule_weights_in_pytorch_predict_the_same(torch, rng, case):
    make, make_torch, shape, to_channels_first = CASES[case]
    model = make()
    _randomize(model, rng)
    state = export_state_dict(model)
    net = make_torch(torch.nn)
    assert sorted(state) == sorted(net.state_dict())  # names as nn.Sequential gives them
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), _torch_predict(torch, net, x, to_channels_first),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pytorch_weights_in_chainrule_predict_the_same(torch, rng, case):
    make, make_torch, shape, to_channels_first = CASES[case]
    torch.manual_seed(0)
    net = make_torch(torch.nn)
    for name, buffer in net.named_buffers():  # moving statistics that are not the defaults
        if "running_mean" in name:
            buffer.copy_(torch.randn(buffer.shape))
        elif "running_var" in name:
            buffer.copy_(torch.rand(buffer.shape) + 0.5)
    model = make()
    import_state_dict(model, net.state_dict())  # torch tensors are accepted as they are
    x = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), _torch_predict(torch, net, x, to_channels_first),
                               rtol=1e-4, atol=1e-5)
    back = export_state_dict(model)  # and the round trip gives PyTorch's arrays back exactly
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(back[key], value.numpy())


def test_conv2d_transpose_layout(torch, rng):
    # padding 'valid': with 'same', Keras crops the extra row at the end and PyTorch cannot (its
    # padding is symmetric), so only the weights, not the layer options, carry over one to one
    cr.random.seed(0)
    model = models.Sequential([layers.Input((4, 4, 3)), layers.Conv2DTranspose(2, 3, strides=2)])
    _randomize(model, rng)
    state = export_state_dict(model)
    assert state["0.weight"].shape == (3, 2, 3, 3)  # ConvTranspose2d: (in, out, kh, kw)
    net = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 2, 3, stride=2))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    expected = _torch_predict(torch, net, x, (0, 3, 1, 2)).transpose(0, 2, 3, 1)  # back to NHWC
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


def test_flatten_permutation_by_hand():
    """Feature (h, w, c) of a (2, 2, 3) map sits at (h*2 + w)*3 + c in Keras, at c*4 + h*2 + w in PyTorch."""
    cr.random.seed(0)
    model = models.Sequential([layers.Input((2, 2, 3)), layers.Flatten(), layers.Dense(1, use_bias=False)])
    kernel = np.arange(12, dtype=np.float32).reshape(12, 1)  # row r of the kernel is Keras feature r
    model.layers[1].kernel.assign(kernel)
    weight = export_state_dict(model)["1.weight"][0]
    for h in range(2):
        for w in range(2):
            for c in range(3):
                assert weight[c * 4 + h * 2 + w] == (h * 2 + w) * 3 + c


def test_import_checks_everything_before_changing_anything(rng):
    model = _cnn2d()
    state = export_state_dict(model)
    before = model.get_weights()
    bad = dict(state, **{"7.weight": np.zeros((10, 95), np.float32)})
    with pytest.raises(ValueError, match=r"'7.weight' has shape \(10, 95\)"):
        import_state_dict(model, bad)
    with pytest.raises(KeyError, match="'9.bias' is missing"):
        import_state_dict(model, {k: v for k, v in state.items() if k != "9.bias"})
    with pytest.raises(KeyError, match="extra"):
        import_state_dict(model, dict(state, extra=np.zeros(1)))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    import_state_dict(model, dict(state, extra=np.zeros(1)), strict=False)


def test_unsupported_models_and_layers_are_named():
    cr.random.seed(0)
    inputs = layers.Input((3,))
    with pytest.raises(TypeError, match="Sequential"):
        export_state_dict(models.Model(inputs, layers.Dense(2)(inputs)))
    with pytest.raises(ValueError, match="LayerNormalization 'layer_normalization.*' has weights"):
        export_state_dict(models.Sequential([layers.Input((3,)), layers.LayerNormalization()]))
    with pytest.raises(ValueError, match="Reshape 'reshape.*' between a Flatten"):
        export_state_dict(models.Sequential([layers.Input((2, 2, 3)), layers.Flatten(), layers.Reshape((3, 4)),
                                             layers.Dense(2)]))
