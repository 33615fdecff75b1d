"""Teaching and inspection instruments: see backpropagation, watch training, look inside a network.

    Backpropagation made visible
        trace(loss), named(t, "net_h1"), variable(0.15, "w1")    the chain rule at every value
        delta_rule(model, x, y)                                   per-layer deltas, matrix form
        numeric_vs_analytic(model, x, y)                          finite differences vs backprop, timed
        gradcheck(fn, *inputs)                                    backprop vs finite differences, per op
        to_dot / plot_graph(loss), model_to_dot / plot_model(model)   graphs as DOT text or PNG
    Watching training
        TrainingMonitor()             update/weight ratios, gradient norms, dead ReLUs, warnings
        LivePlot(), plot_history(h)   loss and metric curves
        random_search(build, space, trials, ...)   log-uniform learning rates, a sorted table
    Looking inside
        plot_decision_boundary(model, x, y), DecisionBoundaryAnimation(x, y)
        plot_filters, plot_feature_maps, maximize_activation, plot_activation_maximization
        saliency_map, plot_saliency, layer_outputs

The pictures need matplotlib (`pip install chainrule[viz]`). Everything but gradcheck loads on
first use, so `import chainrule` stays light.
"""
import importlib

from .gradcheck import GradcheckError, GradcheckReport, gradcheck

_EXPORTS = {
    "tracing": ["named", "variable", "trace", "Trace", "TraceRow", "TraceEdge"],
    "deltas": ["delta_rule", "DeltaRule"],
    "numeric": ["numeric_vs_analytic", "GradientComparison"],
    "graph": ["to_dot", "model_to_dot", "plot_graph", "plot_model"],
    "monitor": ["TrainingMonitor"],
    "plots": ["plot_history", "LivePlot", "plot_decision_boundary", "DecisionBoundaryAnimation"],
    "inside": ["capture_outputs", "layer_outputs", "maximize_activation", "saliency_map", "plot_filters",
               "plot_feature_maps", "plot_activation_maximization", "plot_saliency"],
    "search": ["random_search", "SearchResults", "loguniform", "uniform", "choice", "randint"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["GradcheckError", "GradcheckReport", "gradcheck"] + list(_WHERE)


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'chainrule.teach' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
