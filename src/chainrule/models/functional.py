"""The graph of a functional model: the layer calls that lead from its Inputs to its outputs."""
from ..layers.base import KerasTensor, flatten, map_structure
from ..layers.input_layer import InputLayer


class Graph:
    """Call nodes in execution order, found by walking back from the outputs to the inputs."""

    def __init__(self, inputs, outputs):
        self.inputs = _normalize_structure(inputs, "inputs")
        self.outputs = _normalize_structure(outputs, "outputs")
        self.input_tensors = flatten(self.inputs)
        self.output_tensors = flatten(self.outputs)
        for t in self.input_tensors:
            if not isinstance(t, KerasTensor) or not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from chainrule.layers.Input(...), got {t!r}")
        self.nodes = self._order()
        self.layers = []
        for node in self.nodes:
            if all(node.layer is not known for known in self.layers):
                self.layers.append(node.layer)

    def _order(self):
        known_inputs = {id(t) for t in self.input_tensors}
        order, done = [], set()

        def visit(tensor, consumer):
            node = tensor.node
            if node is None:
                raise ValueError(f"{tensor!r} was not produced by a layer call")
            if isinstance(node.layer, InputLayer) and id(tensor) not in known_inputs:
                raise ValueError(f"Graph disconnected: layer '{consumer}' needs Input '{node.layer.name}' "
                                 f"{tensor.shape}, which is not among the model's inputs "
                                 f"{[t.name for t in self.input_tensors]}; pass it in Model(inputs=[...])")
            if id(node) in done:
                return
            done.add(id(node))
            for t in node.input_tensors:
                visit(t, node.layer.name)
            order.append(node)

        for t in self.input_tensors:  # inputs first, in the user's order, even if unused
            visit(t, "model")
        for t in self.output_tensors:
            visit(t, "model")
        return order

    @property
    def input_names(self):
        return [t.node.layer.name for t in self.input_tensors]

    @property
    def output_names(self):
        return [t.node.layer.name for t in self.output_tensors]

    def run(self, inputs, training):
        """Feed concrete inputs through every call node; returns outputs in the user's structure."""
        values = {id(t): v for t, v in zip(self.input_tensors, self.match_inputs(inputs))}
        for node in self.nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = map_structure(lambda t: values[id(t)], node.inputs)
            kwargs = dict(node.kwargs)
            if training is not None:  # the model's flag wins over one recorded at wiring time, as in Keras
                kwargs["training"] = training
            result = node.layer(args, **kwargs)
            for t, v in zip(node.output_tensors, flatten(result)):
                values[id(t)] = v
        return map_structure(lambda t: values[id(t)], self.outputs)

    def match_inputs(self, inputs):
        """Concrete inputs as a flat list in the order of the model's inputs (dicts matched by name)."""
        n = len(self.input_tensors)
        if isinstance(inputs, dict):
            missing = [name for name in self.input_names if name not in inputs]
            if missing:
                raise ValueError(f"inputs dict lacks {missing}; the model's inputs are named {self.input_names}")
            return [inputs[name] for name in self.input_names]
        flat = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != n:
            raise ValueError(f"the model expects {n} input(s) {self.input_names}, got {len(flat)}")
        return flat


def _normalize_structure(structure, what):
    if isinstance(structure, KerasTensor):
        return structure
    if isinstance(structure, dict):
        return dict(structure)
    if isinstance(structure, (list, tuple)):
        return list(structure)
    raise TypeError(f"Model {what} must be a KerasTensor, a list or a dict of them; got {type(structure).__name__}")
