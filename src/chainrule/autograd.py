"""Tensor and reverse-mode automatic differentiation.

Every op computes its output array and, when a gradient is wanted, records one
`Node`: the op's name, its input tensors, and a `backward(g)` closure that turns
the gradient of the output into the gradients of the inputs. `Tensor.backward`
sorts the recorded nodes topologically and runs those closures in reverse.
That is the whole engine; the ops live in `chainrule.ops`.
"""
import contextlib
import threading

import numpy as np

from . import backend


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled():
    """True when ops record the graph (the default)."""
    return _grad_mode.enabled


class _SetGradMode(contextlib.ContextDecorator):
    def __init__(self, enabled):
        self.enabled = enabled

    def _recreate_cm(self):
        # a fresh instance per decorated call, so nested or recursive uses keep their own `prev`
        return type(self)()

    def __enter__(self):
        self.prev = _grad_mode.enabled
        _grad_mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self.prev
        return False


class no_grad(_SetGradMode):
    """Context manager and decorator: ops inside record no graph (inference, weight updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_SetGradMode):
    """Context manager and decorator: turn graph recording back on inside `no_grad`."""

    def __init__(self):
        super().__init__(True)


class Node:
    """One recorded op: what made a tensor, from which tensors, and how to differentiate it."""

    __slots__ = ("op", "parents", "backward", "versions")

    def __init__(self, op, parents, backward):
        self.op = op
        self.parents = parents
        self.backward = backward
        # in-place changes bump a tensor's version; backward checks these did not move
        self.versions = tuple(p._version for p in parents)


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    `data` is a backend array (numpy.ndarray, or cupy.ndarray on a GPU); `grad`
    is a backend array of the same shape after `backward()`, or None.
    """

    __slots__ = ("data", "grad", "requires_grad", "node", "name", "_version", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` defers to Tensor.__radd__

    def __init__(self, data, requires_grad=False, name=None):
        xp = backend.array_module(data)
        if not isinstance(data, xp.ndarray):
            data = xp.asarray(data)
        self.data = data
        self.grad = None
        self.node = None
        self.name = name
        self._version = 0
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self.node is None

    @property
    def op(self):
        """Name of the op that made this tensor, or None for a leaf."""
        return None if self.node is None else self.node.op

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.node is not None:
            extras.append(f"op={self.node.op}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype, copy=False)

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        return int(self.data)

    __hash__ = object.__hash__  # == is elementwise, so hash by identity as PyTorch does

    def numpy(self):
        """The data as a NumPy array (shares memory on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements, expected 1")
        return self.data.item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    # ---------------------------------------------------------------- autograd
    def requires_grad_(self, flag=True):
        """Mark this leaf tensor as a weight whose gradient `backward()` should compute."""
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad needs a float tensor, got dtype {self.dtype}: "
                            f"create it with dtype=float32 or cast with .float()")
        if not flag and self.node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True
        return self

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self):
        """Forget the accumulated gradient (sets `.grad` to None, as PyTorch does)."""
        self.grad = None

    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `grad` is the gradient of some scalar with respect to this tensor; it may be
        omitted only when this tensor has one element (it is then 1).
        """
        grad = _initial_grad(self, grad, "backward")
        _run_backward([self], [grad], retain_graph=retain_graph, accumulate=True)

    # in-place guard used by the in-place operators (see ops.math)
    def _check_inplace(self, op):
        if self.requires_grad and is_grad_enabled():
            what = "a leaf tensor that requires grad" if self.node is None else "a tensor recorded in a graph"
            raise RuntimeError(f"{op}: in-place change of {what} would corrupt the gradient; "
                               f"use the out-of-place form (x = x {op[2:-2]} y) or wrap it in cr.no_grad()")
        self._version += 1


def record(data, parents, backward, op):
    """Wrap `data` as the output of op `op`, recording a Node when any parent needs a gradient.

    `backward(g)` gets the output's gradient and returns one gradient (or None) per parent.
    It must capture arrays, not the output tensor, so the graph holds no cycles.
    """
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out.node = None
    out.name = None
    out._version = 0
    out._retains_grad = False
    out.requires_grad = False
    if _grad_mode.enabled:
        for p in parents:
            if p.requires_grad:
                out.requires_grad = True
                out.node = Node(op, parents, backward)
                break
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as tensors.

    Functional form of backward: no `.grad` attribute is touched.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    seeds = [_initial_grad(o, g, "grad") for o, g in zip(outputs, grad_outputs)]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"grad(): an input of shape {t.shape} does not require grad")
    found = _run_backward(outputs, seeds, retain_graph=retain_graph, accumulate=False, targets=inputs)
    result = []
    for t in inputs:
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad(): an input of shape {t.shape} was not used to compute the outputs; "
                               f"pass allow_unused=True to get None for it")
        result.append(None if g is None else Tensor(g))
    return result[0] if single else result


def _initial_grad(t, g, where):
    if not t.requires_grad:
        raise RuntimeError(f"{where}(): tensor of shape {t.shape} does not require grad; "
                           f"create the weights with requires_grad=True and compute it outside cr.no_grad()")
    xp = backend.array_module(t.data)
    if g is None:
        if t.data.size != 1:
            raise RuntimeError(f"{where}(): output of shape {t.shape} is not a scalar; "
                               f"pass grad= of the same shape (e.g. ones) or reduce it with .sum() first")
        return xp.ones_like(t.data)
    g = g.data if isinstance(g, Tensor) else xp.asarray(g, dtype=t.dtype)
    if g.shape != t.shape:
        raise ValueError(f"{where}(): grad has shape {g.shape} but the output has shape {t.shape}")
    return g


def _topological_order(roots):
    """Tensors reachable from `roots` through recorded nodes, inputs before outputs."""
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:  # iterative DFS: recurrent nets make graphs deeper than Python's recursion limit
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        node = t.node
        if node is not None:
            if node.backward is None:
                raise RuntimeError(f"backward through the graph a second time (at op '{node.op}'): its saved "
                                   f"arrays were freed; pass retain_graph=True to the first backward()")
            for p in node.parents:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def _owner(a):
    """The array whose memory `a` is: a itself, or for a view its base (NumPy and CuPy point a view's
    base at the owning array itself, not at the view it was taken from)."""
    return a if a.flags.owndata or a.base is None else a.base


def _may_hand_out(g, handed):
    """Whether a gradient can become a leaf's .grad without a copy: a plain writeable block that is
    all of its memory (itself, or a reshaped view of a whole array), memory no .grad or seed holds.
    Ops hand back such views (a weight gradient reshaped to the kernel's shape, say); copying each of
    them cost a pass over every weight gradient per step (and 0.05 ms of a 0.3 ms 1x1 convolution
    for its 2 MB input gradient)."""
    owner = _owner(g)
    # CuPy's flags have no `writeable` (its arrays always are)
    if id(owner) in handed or not (getattr(g.flags, "writeable", True) and g.flags.c_contiguous):
        return False
    if owner is g:
        return True
    flags = getattr(owner, "flags", None)  # a view of a bytes object or an mmap: copy
    return flags is not None and flags.owndata and g.size == owner.size


def _run_backward(roots, seeds, retain_graph, accumulate, targets=()):
    order = _topological_order(roots)
    grads = {}
    for r, g in zip(roots, seeds):
        grads[id(r)] = g if id(r) not in grads else grads[id(r)] + g
    # memory handed out as some .grad (and the caller's seeds): a second leaf must not share it (users
    # mutate grads in place)
    handed = {id(_owner(g)) for g in seeds}
    wanted = {id(t) for t in targets}
    found = {}
    for t in reversed(order):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        if id(t) in wanted:
            found[id(t)] = g
        node = t.node
        if node is None or t._retains_grad:
            if accumulate:
                if t.grad is None:
                    if not _may_hand_out(g, handed):
                        g = g.copy()
                    handed.add(id(_owner(g)))
                    t.grad = g
                else:
                    t.grad = t.grad + g
            if node is None:
                continue
        for p, v in zip(node.parents, node.versions):
            if p._version != v:
                raise RuntimeError(f"backward of '{node.op}': an input of shape {p.shape} was changed in place "
                                   f"after it was used; use an out-of-place op instead")
        input_grads = node.backward(g)
        for p, pg in zip(node.parents, input_grads):
            if pg is None or not p.requires_grad:
                continue
            prev = grads.get(id(p))
            grads[id(p)] = pg if prev is None else prev + pg
        if not retain_graph:
            node.backward = None  # frees every array the closure saved
            node.parents = ()
    return found
