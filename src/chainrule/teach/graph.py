"""Graph drawing: a computation graph (from a loss Tensor) or a model's layer graph, as Graphviz
DOT text and as a PNG drawn by matplotlib (no graphviz program needed).

    teach.to_dot(loss)                          the recorded ops, inputs at the top
    teach.plot_graph(loss, "graph.png")
    teach.model_to_dot(model, show_shapes=True) the layers, like keras.utils.model_to_dot
    teach.plot_model(model, "model.png", show_shapes=True)   like keras.utils.plot_model

The PNG layout is the layered one Graphviz's `dot` makes: each node one row below the deepest
of its inputs (its longest path from an input), and within a row ordered by the mean position
of its inputs, which keeps most edges short and uncrossed.
"""
import numpy as np

from ..autograd import Tensor
from . import _viz
from .tracing import _forward_order

__all__ = ["to_dot", "model_to_dot", "plot_graph", "plot_model", "graph_of", "model_graph"]


class _Dag:
    """Nodes (label, kind) and edges (i -> j), the shared form of both kinds of graph."""

    def __init__(self):
        self.labels, self.kinds, self.edges = [], [], []

    def add(self, label, kind):
        self.labels.append(label)
        self.kinds.append(kind)
        return len(self.labels) - 1


# ------------------------------------------------------------------ building the graphs
def graph_of(loss, show_values=True):
    """The computation graph that produced `loss`: one node per tensor (weights, constants, ops)."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"graph_of expects a Tensor, got {type(loss).__name__}; for a model use model_graph")
    dag = _Dag()
    index = {}
    for t in _forward_order(loss):
        name = getattr(t, "path", None) or t.name
        shape = "scalar" if t.ndim == 0 else str(tuple(t.shape))
        value = ""
        if show_values and t.size == 1:
            value = f" = {float(t.data.reshape(-1)[0]):.6g}"
        if t.node is None:
            kind = "weight" if t.requires_grad else "constant"
            label = f"{name or kind}{value}\n{shape}"
        else:
            kind = "op"
            label = (f"{name}\n{t.node.op}{value}" if name else f"{t.node.op}{value}") + f"\n{shape}"
        index[id(t)] = dag.add(label, kind)
        if t.node is not None:
            for p in t.node.parents:
                dag.edges.append((index[id(p)], index[id(t)]))
    return dag


def model_graph(model, show_shapes=False, show_dtype=False, show_layer_names=False,
                show_layer_activations=False, show_trainable=False):
    """The layer graph of a Sequential or functional model: one node per layer."""
    from ..layers.input_layer import InputLayer
    dag = _Dag()

    def label(layer, in_shapes, out_shapes):
        kind = type(layer).__name__
        lines = [f"{layer.name} ({kind})" if show_layer_names else kind]
        if show_layer_activations and getattr(layer, "activation", None) is not None:
            lines.append(f"Activation: {getattr(layer.activation, '__name__', layer.activation)}")
        if show_shapes:
            if not isinstance(layer, InputLayer):
                lines.append(f"Input shape: {_shapes(in_shapes)}")
            lines.append(f"Output shape: {_shapes(out_shapes)}")
        if show_dtype:
            lines.append(f"dtype: {layer.dtype}")
        if show_trainable and not isinstance(layer, InputLayer):
            lines.append(f"Trainable: {layer.trainable}")
        return "\n".join(lines)

    graph = getattr(model, "_graph", None)
    if graph is not None and type(model).__name__ != "Sequential":
        index = {}
        for node in graph.nodes:
            layer = node.layer
            ins = [t.shape for t in node.input_tensors]
            outs = [t.shape for t in node.output_tensors]
            if id(layer) not in index:
                index[id(layer)] = dag.add(label(layer, ins, outs), "input" if isinstance(layer, InputLayer)
                                           else "layer")
            for t in node.input_tensors:
                edge = (index[id(t.node.layer)], index[id(layer)])
                if edge not in dag.edges:
                    dag.edges.append(edge)
        return dag
    layers = model.layers
    if not layers:
        raise ValueError(f"model '{model.name}' has no layers to draw")
    shapes = list(getattr(model, "layer_output_shapes", []) or [])
    in_shape = getattr(model, "_input_shape", None)
    prev = None
    if in_shape is not None:
        prev = dag.add(label(InputLayer(batch_shape=in_shape, name="input_layer"), [], [in_shape]), "input")
    for i, layer in enumerate(layers):
        out = [shapes[i]] if i < len(shapes) else ["?"]
        ins = [in_shape if i == 0 else (shapes[i - 1] if i - 1 < len(shapes) else "?")]
        j = dag.add(label(layer, ins, out), "layer")
        if prev is not None:
            dag.edges.append((prev, j))
        prev = j
    return dag


def _shapes(shapes):
    def one(s):
        if not isinstance(s, tuple):
            return str(s)
        return "(" + ", ".join("None" if d is None else str(d) for d in s) + (",)" if len(s) == 1 else ")")
    return ", ".join(one(s) for s in shapes) if shapes else "?"


# ------------------------------------------------------------------ DOT text
_DOT_STYLE = {"weight": 'shape=box, style="rounded,filled", fillcolor="#cfe2f3"',
              "constant": 'shape=box, style="rounded,dashed"',
              "op": 'shape=ellipse, style=filled, fillcolor="#fff2cc"',
              "input": 'shape=box, style="rounded,filled", fillcolor="#d9ead3"',
              "layer": 'shape=box, style="rounded,filled", fillcolor="#cfe2f3"'}


def _dot(dag, rankdir="TB", dpi=None):
    lines = ["digraph G {", f"  rankdir={rankdir};"]
    if dpi:
        lines.append(f"  dpi={int(dpi)};")
    lines.append('  node [fontname="Helvetica", fontsize=10];')
    for i, (label, kind) in enumerate(zip(dag.labels, dag.kinds)):
        text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'  n{i} [label="{text}", {_DOT_STYLE[kind]}];')
    for a, b in dag.edges:
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(obj, rankdir="TB", **kwargs):
    """Graphviz DOT text of a loss Tensor's computation graph or of a model's layer graph
    (`dot -Tpng` turns it into a picture, e.g. at https://dreampuf.github.io/GraphvizOnline)."""
    if isinstance(obj, Tensor):
        return _dot(graph_of(obj, **kwargs), rankdir)
    return model_to_dot(obj, rankdir=rankdir, **kwargs)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False, **kwargs):
    """A model's layer graph as DOT text: keras.utils.model_to_dot's arguments, a string instead of
    a pydot object. expand_nested and subgraph are accepted and ignored (nested models are one node)."""
    dag = model_graph(model, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
    return _dot(dag, rankdir, dpi)


# ------------------------------------------------------------------ PNG
_FILL = {"weight": "#cfe2f3", "constant": "#ffffff", "op": "#fff2cc", "input": "#d9ead3", "layer": "#cfe2f3"}
_CHAR_W, _LINE_H, _PAD = 0.075, 0.17, 0.12   # inches, for 9-point monospace text


def _layout(dag):
    """Nodes grouped in rows: a node one row below its deepest input, an input (a weight, a constant)
    one row above its first user; within a row, ordered by the mean position of the neighbours."""
    n = len(dag.labels)
    parents, children = [[] for _ in range(n)], [[] for _ in range(n)]
    for a, b in dag.edges:
        parents[b].append(a)
        children[a].append(b)
    depth = [0] * n
    for i in range(n):  # nodes are added inputs first, so one pass in order suffices
        depth[i] = 1 + max((depth[p] for p in parents[i]), default=-1)
    for i in range(n):
        if not parents[i] and children[i]:
            depth[i] = max(min(depth[c] for c in children[i]) - 1, 0)
    rows = [[] for _ in range(max(depth) + 1)]
    for i in range(n):
        rows[depth[i]].append(i)
    slot = {i: 0.0 for i in range(n)}
    for sweep in range(4):  # barycenter heuristic: a few sweeps settle most crossings
        for row in (rows if sweep % 2 == 0 else reversed(rows)):
            neighbours = (lambda i: parents[i] + children[i])
            row.sort(key=lambda i: (np.mean([slot[j] for j in neighbours(i)]) if neighbours(i) else 0.0, i))
            for k, i in enumerate(row):
                slot[i] = k - (len(row) - 1) / 2
    return rows


def _draw(dag, what, to_file, rankdir="TB", dpi=100):
    from matplotlib.patches import FancyBboxPatch
    rows = _layout(dag)
    size = [(max(len(line) for line in lab.split("\n")) * _CHAR_W + 2 * _PAD,
             lab.count("\n") * _LINE_H + _LINE_H + 2 * _PAD) for lab in dag.labels]
    horizontal = rankdir in ("LR", "RL")
    gap_across, gap_along = 0.3, 0.45
    # extent of each row: along = the rank axis, across = within a rank
    along = [max(size[i][0] if horizontal else size[i][1] for i in row) for row in rows]
    across = [sum(size[i][1] if horizontal else size[i][0] for i in row) + gap_across * (len(row) - 1)
              for row in rows]
    width_across, length_along = max(across) + 2 * gap_across, sum(along) + gap_along * (len(rows) + 1)
    fig_w, fig_h = (length_along, width_across) if horizontal else (width_across, length_along)
    scale = min(1.0, 60.0 / max(fig_w, fig_h))  # keep huge graphs within a sane image size
    fig = _viz.figure(what, (max(fig_w * scale, 1.5), max(fig_h * scale, 1.0)), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, max(fig_w, 1.5 / scale))
    ax.set_ylim(max(fig_h, 1.0 / scale), 0)
    ax.axis("off")
    centre = {}
    pos_along = gap_along
    for r, row in enumerate(rows):
        pos_across = (width_across - across[r]) / 2
        for i in row:
            w, h = size[i]
            extent = h if horizontal else w
            c_across, c_along = pos_across + extent / 2, pos_along + along[r] / 2
            pos_across += extent + gap_across
            centre[i] = (c_along, c_across) if horizontal else (c_across, c_along)
        pos_along += along[r] + gap_along
    fontsize = 9 * scale
    for i, (label, kind) in enumerate(zip(dag.labels, dag.kinds)):
        (x, y), (w, h) = centre[i], size[i]
        style = "round,pad=0.02" if kind != "op" else "round4,pad=0.02"
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, facecolor=_FILL[kind],
                                    edgecolor="#444444", linestyle="--" if kind == "constant" else "-",
                                    linewidth=0.8))
        ax.text(x, y, label, ha="center", va="center", family="monospace", fontsize=fontsize)
    for a, b in dag.edges:
        (xa, ya), (wa, ha) = centre[a], size[a]
        (xb, yb), (wb, hb) = centre[b], size[b]
        start, end = ((xa + wa / 2, ya), (xb - wb / 2, yb)) if horizontal else ((xa, ya + ha / 2), (xb, yb - hb / 2))
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="#444444", lw=0.8, shrinkA=1, shrinkB=1))
    _viz.save(fig, to_file)
    return fig


def plot_graph(loss, to_file="graph.png", rankdir="TB", dpi=100, show_values=True):
    """Draw the computation graph of `loss` (weights blue, constants dashed, ops yellow); returns
    the matplotlib Figure, also written to `to_file` unless it is None."""
    return _draw(graph_of(loss, show_values), "plot_graph", to_file, rankdir, dpi)


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw a model's layer graph to `to_file` with keras.utils.plot_model's arguments (drawn by
    matplotlib, so no graphviz is needed); returns the matplotlib Figure."""
    dag = model_graph(model, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
    return _draw(dag, "plot_model", to_file, rankdir, dpi)
