"""benchmarks/train_step.py: its models build and train in both frameworks, alike, and its FLOP count adds up."""
import math

import numpy as np
import pytest

import chainrule as cr

KINDS = ("mlp", "cnn-a", "cnn-b", "unet")


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("train_step")


def tiny(bench, kind):
    """Two batches of two samples, or four images to predict."""
    if kind.startswith("predict-"):
        x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
        return [(x, None)]
    return bench.make_data(kind, n_batches=2, batch_size=2)


def test_mlp_flops_follow_the_hand_count(bench):
    # MACs per sample: 784*256 = 200,704 + 256*128 = 32,768 + 128*10 = 1,280 -> 234,752
    # forward 2 * 234,752 = 469,504; backward adds dW (469,504) and dx (469,504 - 2 * 200,704,
    # no dx for the first layer, whose input is the data): 3 * 469,504 - 401,408 = 1,007,104 a sample
    assert bench.flops_per_sample("mlp") == 1_007_104
    assert bench.train_step_flops("mlp") == 1_007_104 * 128 == 128_909_312
    assert bench.flops_per_sample("predict-mlp") == 469_504


def test_cnn_a_flops_follow_the_hand_count(bench):
    # conv1 28*28 * 25*1 * 32 = 627,200; conv2 14*14 * 25*32 * 64 = 10,035,200;
    # dense 3136*1024 = 3,211,264; dense 1024*10 = 10,240 -> 13,883,904 MACs
    assert bench.flops_per_sample("predict-cnn-a") == 2 * 13_883_904
    assert bench.flops_per_sample("cnn-a") == 6 * 13_883_904 - 2 * 627_200


@pytest.mark.parametrize("kind", KINDS)
def test_flop_shapes_are_the_chainrule_models_kernels(bench, kind):
    """Each counted GEMM's K x N is one kernel of the model, in order; for Sequential models its P
    (positions per sample) is the layer's output height * width."""
    model = bench.chainrule_model(kind)
    kernels = [w.shape for w in model.trainable_weights if len(w.shape) >= 2]
    shapes = bench.gemm_shapes(kind)
    assert [k * n for _, k, n in shapes] == [math.prod(s) for s in kernels]
    assert [n for _, _, n in shapes] == [s[-1] for s in kernels]
    if hasattr(model, "layer_output_shapes"):
        outputs = [shape for layer, shape in zip(model.layers, model.layer_output_shapes)
                   if type(layer).__name__ in ("Conv2D", "Dense")]
        assert [p for p, _, _ in shapes] == [math.prod(s[1:-1]) for s in outputs]


@pytest.mark.parametrize("kind", KINDS + ("predict-cnn-a",))
def test_chainrule_runner_trains_a_tiny_batch(bench, kind):
    cr.random.seed(0)
    step, samples = bench.chainrule_runner(kind, tiny(bench, kind))
    first, second = step(), step()
    if kind.startswith("predict-"):
        assert first.shape == (4, 10) and np.allclose(first.sum(axis=1), 1, atol=1e-5)
    else:
        assert samples == 2 and np.isfinite(first) and np.isfinite(second)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_model_has_the_same_parameters(bench, kind):
    pytest.importorskip("torch")
    model = bench.chainrule_model(kind)
    net, _, _ = bench.torch_model(kind)
    trainable = sum(w.size for w in model.trainable_weights)
    assert sum(p.numel() for p in net.parameters()) == trainable
    # Keras's moving mean and variance are torch's running_mean / running_var buffers
    frozen = sum(w.size for w in model.non_trainable_weights)
    assert sum(b.numel() for name, b in net.named_buffers() if "running" in name) == frozen
    assert frozen == (960 if kind == "cnn-b" else 0)


@pytest.mark.parametrize("kind", KINDS + ("predict-mlp",))
def test_torch_runner_trains_a_tiny_batch_to_the_same_output_size(bench, kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    batches = tiny(bench, kind)
    step, samples = bench.torch_runner(kind, bench.torch_data(batches))
    first = step()
    if kind.startswith("predict-"):
        assert tuple(first.shape) == (4, 10)
        return
    assert samples == 2 and math.isfinite(first) and math.isfinite(step())
    net, _, _ = bench.torch_model(kind)
    x = bench.torch_data(batches)[0][0]
    ours = bench.chainrule_model(kind).predict(batches[0][0], verbose=0)
    assert net(x).numel() == ours.size


def test_profile_times_every_op_of_a_step_and_puts_the_record_back(bench, capsys):
    from chainrule import autograd
    import chainrule.ops.linalg as linalg
    bench.profile("mlp", steps=1)
    out = capsys.readouterr().out
    assert "chainrule mlp:" in out and "linear" in out and "sparse_categorical_cross_entropy" in out
    assert linalg.record is autograd.record  # the timing wrapper is gone again
