"""Winograd's transforms as generated loops (ops/winograd_codelets.py): each equals mat @ d for the
matrix it was written for, in float64 and float32; the file is what the generator writes now; the
compiled two-sided transform gives BLAS's result with and without codelets; the scratch rows it
allocates start half a page from the rows it reads and writes."""
import numpy as np
import pytest

from chainrule import accelerate
from chainrule.ops import winograd
from chainrule.ops import winograd_codegen as codegen   # plain Python: runs without numba

needs_numba = pytest.mark.skipif(not accelerate.numba_available(), reason="numba and SciPy are not installed")
MATRICES = sorted(codegen._matrices().items())


def test_the_file_is_what_the_generator_writes():
    assert codegen.PATH.read_text() == codegen.source(), \
        "ops/winograd_codelets.py is stale: run python -m chainrule.ops.winograd_codegen"


def test_every_transform_the_plans_use_has_its_codelets():
    for m, r in codegen.FAMILIES:
        at, _, bt = winograd.transforms(m, r)
        for role, mat in (("bt", bt), ("b", bt.T), ("at", at), ("a", at.T)):
            assert (role, *mat.shape) in dict(MATRICES)
    assert {winograd._TILE[3], winograd._TILE[5], winograd._SMALL_TILE, winograd._WIDE_TILE} == \
        {m for m, _ in codegen.FAMILIES}


@needs_numba
@pytest.mark.parametrize("key", [k for k, _ in MATRICES], ids=lambda k: f"{k[0]}_{k[1]}x{k[2]}")
@pytest.mark.parametrize("n", [1, 17, 4096])
def test_codelet_equals_the_product(key, n):
    from chainrule.ops import winograd_codelets as codelets
    mat, _ = dict(MATRICES)[key]
    role = codegen.ROLES[key[0]][0]
    rng = np.random.default_rng(n)
    for dtype, tol in ((np.float64, 1e-14), (np.float32, 1e-6)):
        d = rng.standard_normal((mat.shape[1], n)).astype(dtype)
        out = np.full((mat.shape[0], n), np.nan, dtype)
        assert codelets.apply(role, mat.astype(dtype), d, out)
        exact = mat @ d.astype(np.float64)
        np.testing.assert_allclose(out, exact, rtol=0, atol=tol * np.abs(exact).max())


@needs_numba
def test_other_matrices_have_no_codelet():
    from chainrule.ops import winograd_codelets as codelets
    _, g, bt = winograd.transforms(4, 3)
    d, out = np.ones((3, 5)), np.empty((6, 5))
    assert not codelets.apply(-1, g, d, out)                    # the kernel's transform G
    assert not codelets.apply(codelets.AT, bt, np.ones((6, 5)), out)   # a shape no A^T has


@needs_numba
@pytest.mark.parametrize("m,r", codegen.FAMILIES)
@pytest.mark.parametrize("role", ["bt", "b", "at", "a"])
def test_two_sided_transform_equals_blas(m, r, role):
    from chainrule.ops import winograd_numba
    at, _, bt = winograd.transforms(m, r)
    mat = np.ascontiguousarray({"bt": bt, "b": bt.T, "at": at, "a": at.T}[role])
    rng = np.random.default_rng(0)
    data = rng.standard_normal((mat.shape[1], mat.shape[1], 7, 5))
    fast = winograd_numba._two_sided(mat, mat, data, np.empty((mat.shape[0],) * 2 + (7, 5)), codegen.ROLES[role][0])
    blas = winograd_numba._two_sided(mat, mat, data, np.empty((mat.shape[0],) * 2 + (7, 5)), -1)
    exact = np.einsum("ik,jl,klqc->ijqc", mat, mat, data)
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-14 * np.abs(exact).max())
    np.testing.assert_allclose(fast, blas, rtol=0, atol=1e-14 * np.abs(exact).max())


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scratch_starts_half_a_page_away(dtype):
    from chainrule.ops import winograd_numba
    buf = np.empty(3 * 4096, dtype)
    for oa, ob in ((0, 0), (64, 64), (0, 1024), (512, 3584), (4032, 64)):
        a = buf[oa // buf.itemsize:]
        b = buf[ob // buf.itemsize:]
        s = winograd_numba._apart(1000, a, b)
        assert s.shape == (1000,) and s.dtype == dtype
        pos = s.ctypes.data % 4096
        far = [min((pos - p.ctypes.data) % 4096, (p.ctypes.data - pos) % 4096) for p in (a, b)]
        gap = (b.ctypes.data - a.ctypes.data) % 4096 or 4096
        assert min(far) >= max(gap, 4096 - gap) // 2 - 64, (oa, ob, far)


@needs_numba
def test_the_generator_handles_pairs_with_an_empty_half_and_equal_rows():
    """Branches no current transform takes: a pair whose even columns are all zero, two equal rows
    (no pair), a column pair (the transpose)."""
    from numba import njit, uint64
    mat = np.array([[0., 1., 0., 2.], [0., -1., 0., -2.], [1., 3., 1., 1.], [1., 3., 1., 1.]])
    rng = np.random.default_rng(0)
    for m in (mat, np.ascontiguousarray(mat.T)):
        space = {"njit": njit, "uint64": uint64, "_JIT": {}}
        exec(codegen._codelet("f", m, [], "bt"), space)
        d = rng.standard_normal((4, 9))
        out = np.empty((4, 9))
        space["f"](m, d, out)
        np.testing.assert_allclose(out, m @ d, rtol=0, atol=1e-14)
