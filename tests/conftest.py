"""Shared fixtures: a seeded NumPy generator, and PyTorch as the reference (skipped per test when absent)."""
import numpy as np
import pytest

import chainrule as cr


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20240611)


@pytest.fixture
def torch():
    """The torch module; the test that asks for it is skipped when PyTorch is not installed."""
    return pytest.importorskip("torch")


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.fixture
def check_torch(torch):
    """check(ours, theirs, *arrays, wrt=None, rtol=1e-5, atol=1e-6).

    Runs `ours` on chainrule tensors and `theirs` on torch tensors made from the same NumPy
    arrays; asserts equal output values and dtypes, then backpropagates the same random
    output gradient through both and asserts equal input gradients, whose dtype must be the
    input's own. `wrt` lists the inputs to differentiate (default: every float array).
    """
    def check(ours, theirs, *arrays, wrt=None, rtol=1e-5, atol=1e-6):
        arrays = [np.asarray(a) for a in arrays]
        if wrt is None:
            wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
        xs = [cr.Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
        ts = [torch.from_numpy(a.copy()).requires_grad_(i in wrt) for i, a in enumerate(arrays)]
        outs, touts = _as_list(ours(*xs)), _as_list(theirs(*ts))
        assert len(outs) == len(touts)
        for o, t in zip(outs, touts):
            assert o.shape == tuple(t.shape)
            assert o.dtype.name == str(t.dtype).replace("torch.", "")
            np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
        if not wrt:
            assert not any(o.requires_grad for o in outs)
            return outs
        gen = np.random.default_rng(7)
        seeds = [gen.standard_normal(o.shape).astype(o.dtype) for o in outs]
        grads = cr.grad(outs, [xs[i] for i in wrt], grad_outputs=[cr.Tensor(s) for s in seeds], allow_unused=True)
        tgrads = torch.autograd.grad(touts, [ts[i] for i in wrt], [torch.from_numpy(s) for s in seeds],
                                     allow_unused=True)
        for i, g, tg in zip(wrt, grads, tgrads):
            expected = np.zeros(arrays[i].shape, arrays[i].dtype) if tg is None else tg.numpy()
            got = np.zeros_like(expected) if g is None else g.numpy()
            assert got.dtype == arrays[i].dtype, f"gradient of input {i} is {got.dtype}"
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
        return outs
    return check


@pytest.fixture(params=["numpy", "numba"])
def kernels(request):
    """Run the test on NumPy's kernels, then on the compiled ones (chainrule.accelerate; skipped
    where numba is not installed)."""
    from chainrule import accelerate
    if request.param == "numba" and not accelerate.numba_available():
        pytest.skip("numba and SciPy are not installed (pip install 'chainrule[fast]')")
    previous = accelerate.set_numba("always" if request.param == "numba" else "never")
    yield request.param
    accelerate.set_numba(previous)


@pytest.fixture(scope="session")
def benchmark_script():
    """load(name): the script benchmarks/<name>.py as a module (they are scripts, not a package)."""
    import importlib.util
    from pathlib import Path
    folder = Path(__file__).resolve().parents[1] / "benchmarks"

    def load(name):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
