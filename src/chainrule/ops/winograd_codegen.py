"""Writes ops/winograd_codelets.py: Winograd's transforms as straight-line loops.

    python -m chainrule.ops.winograd_codegen      # rewrites the codelets file beside this one

Each transform of ops/winograd.py is a small matrix applied along one axis of a tile, out = mat @ d,
with d (k, n) and n the tiles' other axis, tiles and channels (thousands of floats). BLAS does that
product densely: 64 multiply-adds per output column of an 8x8 matrix. The matrices are sparse and
symmetric, since the Cook-Toom points come in pairs +p, -p:

- rows in pairs (B^T, A): row(-p) is row(+p) with its odd columns negated, so with
  e = the even columns' sum and o = the odd columns', out(+p) = e + o and out(-p) = e - o;
- columns in pairs (A^T, B, the transposes): column(-p) is column(+p) with its odd rows negated,
  so each row reads s = d(+p) + d(-p) on even rows and t = d(+p) - d(-p) on odd rows.

Zeros are skipped, equal magnitudes share one multiply (5.25 * (d2 - d4)) and ones need none. The
8x8 B^T takes 38 multiplies and adds per column of 8 outputs instead of 120, in one pass over d and
out with every sum in registers (one thread, 1 MB of tiles: 0.024 ms, BLAS 0.096 ms).

A codelet reads its coefficients from the matrix it is given, in the data's dtype; only which
entries are zero, paired or of equal magnitude is fixed here. tests/test_winograd_codelets.py checks
every codelet against mat @ d and this file against what the generator writes now.
"""
import pathlib

import numpy as np

from . import winograd

# The transforms the plans use (ops/winograd.py: _TILE, _SMALL_TILE, _WIDE_TILE): F(m, r).
FAMILIES = ((4, 3), (3, 3), (6, 3), (4, 5))
# What a codelet computes from each F(m, r)'s (A^T, G, B^T): the role's number and the matrix.
ROLES = {
    "bt": (0, lambda at, bt: bt),       # V = B^T d B, forward
    "b": (1, lambda at, bt: bt.T),      # dd = B dV B^T, backward
    "at": (2, lambda at, bt: at),       # y = A^T M A, forward
    "a": (3, lambda at, bt: at.T),      # dM = A dY A^T, backward
}


def _matrices():
    """{(role, rows, cols): (matrix, the F(m, r) it comes from)}, one per distinct matrix."""
    found = {}
    for m, r in FAMILIES:
        at, _, bt = winograd.transforms(m, r)
        for role, (_, pick) in ROLES.items():
            mat = pick(at, bt)
            key = (role, *mat.shape)
            if key in found:
                assert np.array_equal(found[key][0], mat), f"two {role} matrices of shape {mat.shape}"
                found[key][1].append((m, r))
            else:
                found[key] = (mat, [(m, r)])
    return found


def _mirror(u, v, parity):
    """Whether v is u with the entries at odd positions (parity 1) or even ones (0) negated, some of
    those nonzero (equal rows are no pair)."""
    sign = np.where(np.arange(u.size) % 2 == parity, -1.0, 1.0)
    return bool(np.any(u[sign < 0])) and np.array_equal(v, u * sign)


def _pairs(mat):
    """[(i, j, parity)] of rows of `mat` that mirror each other, each row in one pair at most."""
    used, pairs = set(), []
    for i in range(mat.shape[0]):
        for j in range(i + 1, mat.shape[0]):
            if i in used or j in used:
                continue
            for parity in (1, 0):
                if _mirror(mat[i], mat[j], parity):
                    pairs.append((i, j, parity))
                    used |= {i, j}
                    break
    return pairs


class _Terms:
    """A sum of coefficient * variable, written with one multiply per distinct magnitude."""

    def __init__(self, mat):
        self.mat, self.consts = mat, {}

    def write(self, terms):
        """terms: [(i, k, variable)]: the sum of mat[i, k] * variable, each mat[i, k] != 0."""
        groups = {}
        for i, k, var in terms:
            value = self.mat[i, k]
            groups.setdefault(abs(value), []).append((i, k, var, np.sign(value)))
        parts = []
        for magnitude in sorted(groups, key=lambda g: (g != 1, g)):
            members = groups[magnitude]
            if magnitude == 1:
                parts += [("+" if s > 0 else "-", var) for _, _, var, s in members]
                continue
            i, k, _, ref = members[0]        # the constant read is mat[i, k], sign included
            name = f"c{i}_{k}"
            self.consts[name] = (i, k)
            inner = _signed([("+" if s * ref > 0 else "-", var) for _, _, var, s in members])
            parts.append(("+", f"{name} * {inner}" if len(members) == 1 else f"{name} * ({inner})"))
        assert parts, "a sum with no terms: a row of zeros, or an empty half of a pair (see _body)"
        return _signed(parts)


def _signed(parts):
    """'a - b + c' from [('+', 'a'), ('-', 'b'), ('+', 'c')], a leading '-' kept only if all are."""
    parts = sorted(parts, key=lambda p: p[0] == "-")
    text = ("-" if parts[0][0] == "-" else "") + parts[0][1]
    return text + "".join(f" {s} {v}" for s, v in parts[1:])


def _body(mat):
    """(statements of the loop body, the constants it reads) for out = mat @ d."""
    rows, cols = mat.shape
    terms = _Terms(mat)
    lines = [f"a{k} = x{k}[j]" for k in range(cols) if np.any(mat[:, k])]
    row_pairs, col_pairs = _pairs(mat), _pairs(mat.T)
    if len(col_pairs) > len(row_pairs):     # pre-add the paired inputs: s = d(+p) + d(-p), t = d(+p) - d(-p)
        paired = {}
        for k, l, parity in col_pairs:
            lines += [f"s{k} = a{k} + a{l}", f"t{k} = a{k} - a{l}"]
            paired[k] = (l, parity)
        skip = {l for l, _ in paired.values()}
        for i in range(rows):
            row = []
            for k in range(cols):
                if k in skip or mat[i, k] == 0:
                    continue
                if k in paired:
                    row.append((i, k, f"t{k}" if i % 2 == paired[k][1] else f"s{k}"))
                else:
                    row.append((i, k, f"a{k}"))
            lines.append(f"y{i}[j] = {terms.write(row)}")
    else:                                    # rows in pairs: out(+p), out(-p) = e + o, e - o
        done = set()
        for i, j, parity in row_pairs:
            even = [(i, k, f"a{k}") for k in range(cols) if mat[i, k] and k % 2 != parity]
            odd = [(i, k, f"a{k}") for k in range(cols) if mat[i, k] and k % 2 == parity]
            if not even:     # (_mirror makes the odd half nonempty)
                lines += [f"o{i} = {terms.write(odd)}", f"y{i}[j] = o{i}", f"y{j}[j] = -o{i}"]
            else:
                lines += [f"e{i} = {terms.write(even)}", f"o{i} = {terms.write(odd)}",
                          f"y{i}[j] = e{i} + o{i}", f"y{j}[j] = e{i} - o{i}"]
            done |= {i, j}
        for i in range(rows):
            if i not in done:
                lines.append(f"y{i}[j] = {terms.write([(i, k, f'a{k}') for k in range(cols) if mat[i, k]])}")
    return lines, terms.consts


def _codelet(name, mat, families, role):
    rows, cols = mat.shape
    body, consts = _body(mat)
    used = [k for k in range(cols) if np.any(mat[:, k])]
    names = ", ".join(f"F({m}, {r})" for m, r in families)
    out = ["@njit(**_JIT)", f"def {name}(mat, d, out):",
           f'    """out = mat @ d for the {rows}x{cols} {_ROLE_TEXT[role]} of {names}."""']
    out += [f"    {', '.join(f'x{k}' for k in used)} = {', '.join(f'd[{k}]' for k in used)}"
            if len(used) > 1 else f"    x{used[0]} = d[{used[0]}]"]
    out += [f"    y{i} = out[{i}]" for i in range(rows)]
    out += [f"    {c} = mat[{i}, {k}]" for c, (i, k) in sorted(consts.items())]
    out.append("    for j in range(uint64(d.shape[1])):")
    out += [f"        {line}" for line in body]
    return "\n".join(out)


_ROLE_TEXT = {"bt": "B^T", "b": "B", "at": "A^T", "a": "A"}

_HEADER = '''"""Winograd's transforms as straight-line loops (see ops/winograd_codegen.py, which writes this file).

Generated: do not edit; change the generator and run `python -m chainrule.ops.winograd_codegen`.
"""
from numba import njit, uint64

_JIT = dict(nogil=True, cache=True)

BT, B, AT, A = 0, 1, 2, 3    # the roles: V = B^T d B, dd = B dV B^T, y = A^T M A, dM = A dY A^T
'''


def source():
    """The text of ops/winograd_codelets.py."""
    parts, dispatch = [], []
    by_role = sorted(_matrices().items(), key=lambda kv: (ROLES[kv[0][0]][0], kv[0][1:]))
    for (role, rows, cols), (mat, families) in by_role:
        name = f"{role}_{rows}x{cols}"
        parts.append(_codelet(name, mat, families, role))
        dispatch.append((ROLES[role][0], rows, cols, name))
    lines = ["@njit(**_JIT)", "def apply(role, mat, d, out):",
             '    """out = mat @ d by the codelet for `role` and mat\'s shape; False when there is none."""',
             "    rows, cols = mat.shape"]
    for number, rows, cols, name in dispatch:
        lines += [f"    if role == {number} and rows == {rows} and cols == {cols}:", f"        {name}(mat, d, out)",
                  "        return True"]
    lines.append("    return False")
    parts.append("\n".join(lines))
    return _HEADER + "\n\n" + "\n\n\n".join(parts) + "\n"


PATH = pathlib.Path(__file__).with_name("winograd_codelets.py")

if __name__ == "__main__":
    PATH.write_text(source())
    print(f"wrote {PATH}")
