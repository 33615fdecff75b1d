"""Backpropagation made visible: `trace(loss)` prints the chain rule at every node of a graph.

The lecture names its values (w1, net_h1, out_h1, E) and writes each gradient as a product
of local derivatives:

    dE/dw1 = dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1

`trace` does the same on a recorded graph. Tensors that carry a name (`named(t, "net_h1")`
or `t.name = "net_h1"`) are the values shown; the unnamed ops between two named values
(`w1 * i1 + w2 * i2 + b1`) are folded into one local derivative, as the lecture folds them.
With no intermediate value named, every op is shown on its own line.

`trace` never calls `loss.backward()` (which frees the graph): it runs each recorded node's
backward itself, keeping the graph, and leaves every `.grad` untouched.
"""
import re
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd import Tensor

__all__ = ["named", "variable", "trace", "Trace", "TraceRow", "TraceEdge"]


def named(tensor, name):
    """Give `tensor` a name for `trace` and graph drawings, and return it:
    ``net_h1 = named(w1 * i1 + w2 * i2 + b1, "net_h1")``."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"named(..., {name!r}) expects a Tensor, got {type(tensor).__name__}; "
                        f"make one with cr.tensor(...) or teach.variable(value, name)")
    tensor.name = str(name)
    return tensor


def variable(value, name, requires_grad=True, dtype=np.float64):
    """A named leaf tensor for hand-worked examples: ``w1 = variable(0.15, "w1")``.

    float64 by default (explicitly, unlike the library's float32), so a trace reproduces
    the lecture's nine decimals; pass dtype="float32" to see float32's rounding instead.
    """
    return Tensor(np.asarray(value, dtype=dtype), requires_grad=requires_grad, name=str(name))


@dataclass
class TraceEdge:
    """One use of a value by a later value (its child): the three numbers of the chain rule.

    upstream = dE/dchild, local = dchild/dvalue (a number for scalars, the Jacobian with shape
    child.shape + value.shape for small tensors, None when too large), product = the part of
    dE/dvalue that flows through this child.
    """
    child: str
    upstream: object
    local: object
    product: object


@dataclass
class TraceRow:
    """One value of the graph: its name, op, forward value, gradient and how it was assembled."""
    name: str
    op: str                  # 'leaf', 'constant' or the op that made it ('sigmoid', 'add', ...)
    expression: str          # how it was computed from the other shown values
    value: object            # float for one element, else a NumPy array
    grad: object = None      # dE/d(this value); None for constants
    edges: list = field(default_factory=list)   # TraceEdge per child, in forward order
    chain: list = field(default_factory=list)   # [(label, number)]: the chain-rule factors, outermost first
    formula: str = ""        # the printed chain-rule line(s)
    depth: int = 0           # longest path from an input (0 for inputs): the layer of the value

    @property
    def requires_grad(self):
        return self.grad is not None


class Trace(list):
    """The rows of a trace in forward order (inputs before outputs); `str()` gives the printout."""

    def __init__(self, rows, loss_name, digits):
        super().__init__(rows)
        self.loss_name = loss_name
        self.digits = digits

    def row(self, name):
        """The row of the value called `name`."""
        for r in self:
            if r.name == name:
                return r
        raise KeyError(f"trace has no value named {name!r}; the names are {[r.name for r in self]}")

    @property
    def grads(self):
        """{name: dE/dname} for every value that has a gradient."""
        return {r.name: r.grad for r in self if r.grad is not None}

    def __str__(self):
        fmt = _Formatter(self.digits)
        loss = self.row(self.loss_name)
        lines = [f"trace of {self.loss_name} = {fmt(loss.value)}", "forward pass (inputs before outputs):"]
        for r in self:
            head = f"  {r.name} = " if r.op in ("leaf", "constant") else f"  {r.name} = {r.expression} = "
            lines.append(head + fmt(r.value).replace("\n", "\n" + " " * len(head)))
        lines.append(f"backward pass (the chain rule, from {self.loss_name} back to the inputs):")
        for r in self.backward_order():
            if r.grad is not None:
                lines.extend("  " + line for line in r.formula.splitlines())
        return "\n".join(lines)

    def backward_order(self):
        """The rows as backpropagation reaches them: the loss, the values by decreasing depth
        (left to right within a layer), then the inputs."""
        inner = sorted((r for r in self if r.op not in ("leaf", "constant")), key=lambda r: -r.depth)
        return inner + [r for r in self if r.op in ("leaf", "constant")]

    def __repr__(self):
        return f"<Trace of {self.loss_name}: {len(self)} values>"


def trace(loss, show=True, collapse="auto", digits=9, jacobian_limit=64, print_fn=print):
    """Walk the recorded graph of `loss` and show the chain rule at every value.

    For each value v (from the loss back to the inputs) it shows the forward value, and for
    each later value c that uses v: the upstream gradient dE/dc, the local derivative dc/dv
    and their product; dE/dv is the sum of the products over the children c:

        dE/dv = sum_c dE/dc * dc/dv

    Where a chain runs through values used only once, the line reads as the lecture's:
    ``dE/dw1 = dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1 = 0.036350306 * 0.241300709 * 0.05``.

    collapse: "auto" folds unnamed ops into the local derivative between named values when any
    intermediate value is named (else every op is shown); True or False force it.
    Returns a `Trace` (a list of `TraceRow`, forward order); prints it when `show`.
    Call it before `loss.backward()`, which frees the graph (or after backward(retain_graph=True)).
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"trace expects the loss Tensor, got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(f"trace needs a scalar loss, got shape {loss.shape}: reduce it with .sum() or .mean()")
    if not loss.requires_grad:
        raise ValueError("trace: the loss does not depend on any tensor with requires_grad=True, so there is "
                         "nothing to differentiate; create the weights with requires_grad=True "
                         "(teach.variable(0.15, 'w1')) and compute the loss outside cr.no_grad()")
    order = _forward_order(loss)
    if collapse == "auto":
        collapse = any(t.name for t in order if t.node is not None and t is not loss)
    shown = [t for t in order if t is loss or t.name or (t.requires_grad and (t.node is None or not collapse))]
    shown_ids = {id(t) for t in shown}
    segments = {id(t): _segment(t, shown_ids) for t in shown if t.node is not None}
    shown, depths = _layered(shown, segments, shown_ids)
    names = _names(shown, loss)

    # backward: each shown value c, from the loss down, hands dE/dc through its segment of unnamed ops
    grads = {id(loss): backend.array_module(loss.data).ones_like(loss.data)}
    edges = {id(t): [] for t in shown}
    for c in reversed(shown):
        if c.node is None or id(c) not in grads:
            continue
        segment = segments[id(c)]
        products = _segment_vjp(c, segment, grads[id(c)], shown_ids)
        local = _local_derivatives(c, segment, shown_ids, jacobian_limit)
        for vid, product in products.items():
            grads[vid] = product if vid not in grads else grads[vid] + product
            edges[vid].append(TraceEdge(names[id(c)], _plain(grads[id(c)]), local.get(vid), _plain(product)))

    rows, by_id = [], {}
    for t in shown:
        edges[id(t)].reverse()  # found from the loss down; listed in forward order
        op = t.node.op if t.node is not None else ("leaf" if t.requires_grad else "constant")
        g = grads.get(id(t)) if t.requires_grad else None
        if t.requires_grad and g is None:  # used only through ops whose gradient is zero or absent
            g = np.zeros(t.shape, t.dtype)
        row = TraceRow(names[id(t)], op, _expression(t, shown_ids, names, top=True), _plain(t.data),
                       None if g is None else _plain(g), edges[id(t)])
        row.depth = depths[id(t)]
        rows.append(row)
        by_id[id(t)] = row
    loss_name = names[id(loss)]
    fmt = _Formatter(digits)
    for t in shown:
        row = by_id[id(t)]
        if row.grad is not None:
            row.chain = _chain(row, loss_name, rows)
            row.formula = _formula(row, loss_name, fmt)
    result = Trace(rows, loss_name, digits)
    if show:
        print_fn(str(result))
    return result


# ------------------------------------------------------------------ walking the graph
def _forward_order(loss):
    """Every tensor that `loss` was computed from (constants too), inputs before outputs."""
    order, seen = [], set()
    stack = [(loss, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.node is not None:
            if t.node.backward is None:
                raise RuntimeError(f"trace: the graph was freed at op '{t.node.op}' by an earlier backward(); "
                                   f"call trace(loss) before loss.backward(), or pass retain_graph=True to it")
            for p in reversed(t.node.parents):
                if id(p) not in seen:
                    stack.append((p, False))
    return order


def _names(shown, loss):
    """A label per shown tensor: its name, a weight's path, else op_1, op_2 ... / x1, x2 ..."""
    names, counts = {}, {}
    for t in shown:
        label = getattr(t, "path", None) or t.name  # a layer's weight: 'dense/kernel', not 'kernel'
        if t is loss and not label:
            label = "E"  # the lecture's error
        if not label:
            base = t.node.op if t.node is not None else "x"
            counts[base] = counts.get(base, 0) + 1
            label = f"{base}_{counts[base]}" if t.node is not None else f"x{counts[base]}"
        names[id(t)] = label
    return names


def _layered(shown, segments, shown_ids):
    """The shown tensors by depth (longest path from an input, through the shown values), as the
    lecture lists a network layer by layer; inputs sorted by name (b1, i1, w1, w2, ...)."""
    depths = {}
    for t in shown:  # `shown` is topological, so every input's depth is known first
        below = [depths[id(p)] for s in segments.get(id(t), ()) for p in s.node.parents
                 if id(p) in shown_ids and p.requires_grad and id(p) in depths]
        depths[id(t)] = 0 if t.node is None else 1 + max(below, default=0)
    position = {id(t): i for i, t in enumerate(shown)}

    def key(t):
        if t.node is None:
            name = getattr(t, "path", None) or t.name or ""
            return (0, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)], 0)
        return (depths[id(t)], [], position[id(t)])
    return sorted(shown, key=key), depths


def _segment(c, shown_ids):
    """The unnamed tensors between shown tensor `c` and the shown tensors it was computed from,
    in forward order, `c` last."""
    order, seen = [], set()
    stack = [(c, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for p in t.node.parents:
            if p.requires_grad and id(p) not in shown_ids and id(p) not in seen:
                stack.append((p, False))
    return order


def _segment_vjp(c, segment, seed, shown_ids):
    """{id(v): seed . dc/dv} for the shown tensors v at the bottom of c's segment."""
    grads = {id(c): seed}
    out = {}
    for t in reversed(segment):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        for p, v in zip(t.node.parents, t.node.versions):
            if p._version != v:
                raise RuntimeError(f"trace: an input of op '{t.node.op}' (shape {p.shape}) was changed in place "
                                   f"after it was used")
        # a copy, so a backward that reuses its argument cannot change the numbers shown
        for p, pg in zip(t.node.parents, t.node.backward(g.copy())):
            if pg is None or not p.requires_grad:
                continue
            into = out if id(p) in shown_ids else grads
            into[id(p)] = pg if id(p) not in into else into[id(p)] + pg
    return out


def _local_derivatives(c, segment, shown_ids, limit):
    """{id(v): dc/dv}: a number when c and v are scalars, the Jacobian (c.shape + v.shape) when
    c has at most `limit` elements (one backward per element of c), else nothing."""
    if c.size > limit:
        return {}
    xp = backend.array_module(c.data)
    rows = {}
    for i in range(c.size):
        seed = xp.zeros(c.size, dtype=c.dtype)
        seed[i] = 1
        for vid, g in _segment_vjp(c, segment, seed.reshape(c.shape), shown_ids).items():
            rows.setdefault(vid, []).append(backend.to_numpy(g))
    out = {}
    for vid, parts in rows.items():
        jac = np.stack(parts).reshape(c.shape + parts[0].shape)
        out[vid] = float(jac.reshape(-1)[0]) if jac.size == 1 else jac
    return out


def _plain(a):
    a = backend.to_numpy(a.data if isinstance(a, Tensor) else a)
    return float(a.reshape(-1)[0]) if a.size == 1 else np.array(a)


# ------------------------------------------------------------------ the printed forms
class _Formatter:
    """Numbers as the lecture writes them: nine decimals, trailing zeros dropped (0.05, 0.241300709)."""

    def __init__(self, digits):
        self.digits = digits

    def __call__(self, v):
        if isinstance(v, np.ndarray):
            return np.array2string(v, precision=min(self.digits, 6), suppress_small=True, separator=", ",
                                   max_line_width=100)
        v = float(v)
        if v != 0 and (abs(v) < 10.0 ** -(self.digits - 3) or abs(v) >= 1e6) or not np.isfinite(v):
            return f"{v:.{self.digits}g}"
        text = f"{v:.{self.digits}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text


def _chain(row, loss_name, rows):
    """The factors of dE/dv along the values used only once: [(label, value)], outermost first."""
    by_name = {r.name: r for r in rows}
    factors = []
    cur = row
    while len(cur.edges) == 1 and cur.edges[0].child != loss_name:
        e = cur.edges[0]
        child = by_name[e.child]
        if not (_is_number(e.local) and _is_number(cur.value) and _is_number(child.value)):
            break
        factors.insert(0, (f"d{child.name}/d{cur.name}", e.local))
        cur = child
    factors.insert(0, (f"d{loss_name}/d{cur.name}", cur.grad))
    return factors


def _is_number(v):
    return isinstance(v, float)


def _formula(row, loss_name, fmt):
    target = f"d{loss_name}/d{row.name}"
    if row.name == loss_name:
        return f"{target} = 1"
    if len(row.chain) > 1:
        labels = " * ".join(label for label, _ in row.chain)
        values = " * ".join(fmt(v) for _, v in row.chain)
        return f"{target} = {labels} = {values} = {fmt(row.grad)}"
    scalar = all(_is_number(e.local) and _is_number(e.upstream) for e in row.edges)
    if len(row.edges) == 1 and row.edges[0].child == loss_name and scalar:
        return f"{target} = {fmt(row.grad)}"
    if scalar and row.edges:
        labels = " + ".join(f"d{loss_name}/d{e.child} * d{e.child}/d{row.name}" for e in row.edges)
        values = " + ".join(f"{fmt(e.upstream)} * {fmt(e.local)}" for e in row.edges)
        return f"{target} = {labels} = {values} = {fmt(row.grad)}"
    lines = [f"{target} = " + (" + ".join(f"d{loss_name}/d{e.child} . d{e.child}/d{row.name}" for e in row.edges)
                               or "0")]
    for e in row.edges:
        local = ("(Jacobian not formed: too many elements)" if e.local is None else
                 fmt(e.local) if not isinstance(e.local, np.ndarray) or e.local.shape == np.shape(row.value)
                 else _describe_jacobian(e.local, fmt))  # a scalar child's Jacobian is just a gradient
        lines.append(f"  through {e.child}:")
        lines.append(_aligned(f"    upstream d{loss_name}/d{e.child} = ", fmt(e.upstream)))
        lines.append(_aligned(f"    local d{e.child}/d{row.name} = ", local))
        lines.append(_aligned("    product = ", fmt(e.product)))
    lines.append(_aligned(f"  {target} = ", fmt(row.grad)))
    return "\n".join(lines)


def _describe_jacobian(jac, fmt):
    """'Jacobian of shape ...', with its diagonal when it is one (an elementwise op: relu's 0/1 mask)."""
    half = jac.ndim // 2
    n = int(np.prod(jac.shape[:half]))
    if jac.ndim % 2 == 0 and jac.shape[:half] == jac.shape[half:]:
        square = jac.reshape(n, n)
        diagonal = np.diagonal(square)
        if np.array_equal(square, np.diag(diagonal)):
            return _aligned("diagonal (an elementwise op): ", fmt(diagonal.reshape(jac.shape[:half])))
    return f"Jacobian of shape {jac.shape}"


def _aligned(label, text):
    """label + text, the text's later lines indented under its first."""
    return label + text.replace("\n", "\n" + " " * len(label))


# expressions: how a shown value was computed from the shown values below it
_INFIX = {"add": (" + ", 1), "sub": (" - ", 1), "mul": ("*", 2), "div": ("/", 2), "matmul": (" @ ", 2),
          "pow": ("**", 4)}


def _expression(t, shown_ids, names, top=False):
    text, _ = _expr(t, shown_ids, names, top, [0])
    return text if len(text) <= 160 else text[:157] + "..."


def _expr(t, shown_ids, names, top, count):
    """(text, precedence) of t: its name when shown (and not the top), else its op applied to its inputs."""
    count[0] += 1
    if count[0] > 200:
        return "...", 9
    if not top and (id(t) in shown_ids or t.node is None):
        if id(t) in shown_ids:
            return names[id(t)], 9
        return (_Formatter(6)(float(t.data.reshape(-1)[0])) if t.size == 1 else f"<constant {t.shape}>"), 9
    if t.node is None:
        return names.get(id(t), "?"), 9
    op = t.node.op
    args = [_expr(p, shown_ids, names, False, count) for p in t.node.parents]
    if op in _INFIX and len(args) == 2:
        sym, prec = _INFIX[op]
        (a, pa), (b, pb) = args
        left = a if pa > prec or (pa == prec and op != "pow") else f"({a})"
        right = b if pb > prec or (pb == prec and op in ("add", "mul")) else f"({b})"
        return f"{left}{sym}{right}", prec
    if op == "neg":
        a, pa = args[0]
        return f"-{a if pa > 2 else '(' + a + ')'}", 3
    if op == "linear":
        parts = [a for a, _ in args]
        return (f"{parts[0]} @ {parts[1]}" + (f" + {parts[2]}" if len(parts) > 2 else "")), 1
    return f"{op}({', '.join(a for a, _ in args)})", 9
