"""model.summary(): each layer's output shape and parameter count, then the totals, drawn as Keras 3 draws it."""
import textwrap

from ..layers.input_layer import InputLayer


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _rows(model):
    """(name (type), output shape, params, connected-to or None) per layer."""
    from .sequential import Sequential
    rows = []
    if isinstance(model, Sequential):
        for layer, shape in zip(model.layers, model.layer_output_shapes):
            rows.append((f"{layer.name} ({type(layer).__name__})", _shape_text(shape), _count(layer), None))
        return rows
    for node in model._graph.nodes:
        layer = node.layer
        inbound = []
        for t in node.input_tensors:
            source = t.node.layer
            calls = source._inbound.index(t.node) if t.node in source._inbound else 0
            inbound.append(f"{source.name}[{calls}][{t.index}]")
        shape = [t.shape for t in node.output_tensors]
        rows.append((f"{layer.name} ({type(layer).__name__})", _shape_text(shape[0] if len(shape) == 1 else shape),
                     0 if isinstance(layer, InputLayer) else _count(layer), ", ".join(inbound) or "-"))
    return rows


def _count(layer):
    return int(sum(w.size for w in layer.weights)) if layer.built else 0


def print_summary(model, line_length=None, print_fn=None, show_trainable=False):
    from .sequential import Sequential
    print_fn = print_fn or print
    if not model.built or (isinstance(model, Sequential) and not model.layer_output_shapes):
        raise ValueError(f"summary(): model '{model.name}' is not built yet: give it an input shape "
                         f"(start with layers.Input(shape=...)) or call it on a batch of data first")
    if model._graph is None and not isinstance(model, Sequential):
        rows = [(f"{layer.name} ({type(layer).__name__})", "?", _count(layer), None) for layer in model.layers]
    else:
        rows = _rows(model)
    functional = rows and rows[0][3] is not None
    widths = [21, 19, 12, 19] if functional else [33, 24, 15]
    headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"][:len(widths)]

    def line(left, mid, right, fill):
        return left + mid.join(fill * w for w in widths) + right

    def cells(values, bold=False):
        wrapped = [textwrap.wrap(v, w - 2) or [""] for v, w in zip(values, widths)]
        out = []
        bar = "┃" if bold else "│"
        for k in range(max(len(c) for c in wrapped)):
            parts = []
            for j, (c, w) in enumerate(zip(wrapped, widths)):
                text = c[k] if k < len(c) else ""
                parts.append(" " + (text.rjust(w - 2) if j == 2 else text.ljust(w - 2)) + " ")
            out.append(bar + bar.join(parts) + bar)
        return out

    print_fn(f'Model: "{model.name}"')
    print_fn(line("┏", "┳", "┓", "━"))
    for text in cells(headers, bold=True):
        print_fn(text)
    print_fn(line("┡", "╇", "┩", "━"))
    for i, (name, shape, params, connected) in enumerate(rows):
        values = [name, shape, f"{params:,}"] + ([connected] if functional else [])
        for text in cells(values):
            print_fn(text)
        print_fn(line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─"))
    trainable = sum(w.size for w in model.trainable_weights)
    total = sum(w.size for w in model.weights)
    size = model.weights[0].dtype.itemsize if model.weights else 4
    print_fn(f" Total params: {total:,} ({_format_bytes(total * size)})")
    print_fn(f" Trainable params: {trainable:,} ({_format_bytes(trainable * size)})")
    print_fn(f" Non-trainable params: {total - trainable:,} ({_format_bytes((total - trainable) * size)})")
