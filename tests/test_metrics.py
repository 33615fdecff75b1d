"""Keras-compatible metrics (chainrule.metrics): every metric against real Keras 3 after several
update_state calls (sample weights, thresholds, top_k, class_id, AUC's curves and summations,
MeanIoU), and again after reset_state; the metric functions; `get` and Keras's compile-time
resolution of 'accuracy' (checked against the History of a real Keras fit); names and configs.
"""
import os
import re
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import metrics

N, C = 40, 4


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def to_numpy(x):
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------ batches: (y_true, y_pred, sample_weight)
def draw(rng, kind, weighted):
    """One batch of the given kind; the weight has the shape users pass for that kind."""
    w = None
    if kind == "binary":
        y_true, y_pred = rng.integers(0, 2, (N, 1)).astype(np.float32), rng.random((N, 1)).astype(np.float32)
        w = rng.random(N)
    elif kind == "binary_flat":
        y_true, y_pred = rng.integers(0, 2, N), rng.random(N).astype(np.float32)
        w = rng.random(N)
    elif kind == "logits":
        y_true, y_pred = rng.integers(0, 2, (N, 1)), (rng.standard_normal((N, 1)) * 3).astype(np.float32)
        w = rng.random((N, 1))
    elif kind == "multilabel":
        y_true, y_pred = rng.integers(0, 2, (N, 3)).astype(np.float32), rng.random((N, 3)).astype(np.float32)
        w = rng.random(N)
    elif kind == "onehot":
        y_true = np.eye(C, dtype=np.float32)[rng.integers(0, C, N)]
        y_pred = softmax(rng.standard_normal((N, C)).astype(np.float32) * 3 + 2 * y_true)  # better than chance
        w = rng.random((N, 1))
    elif kind in ("sparse", "sparse_column"):
        labels = rng.integers(0, C, N)
        y_pred = softmax(rng.standard_normal((N, C)).astype(np.float32) * 3 + 2 * np.eye(C)[labels])
        y_true = labels[:, None] if kind == "sparse_column" else labels
        w = rng.random(N)
    elif kind == "classes":  # class ids on both sides, for exact-match accuracy
        y_true, y_pred = rng.integers(0, 3, N), rng.integers(0, 3, N)
        w = rng.random(N)
    elif kind == "regression":
        y_true, y_pred = rng.standard_normal((N, 3)).astype(np.float32), rng.standard_normal((N, 3)).astype(np.float32)
        w = rng.random((N, 1))
    elif kind == "segmentation":  # class id maps, integer weights (IoU counts are integers in Keras)
        y_true, y_pred = rng.integers(0, C, (2, 5, 5)), rng.integers(0, C, (2, 5, 5))
        w = rng.integers(0, 3, (2, 5, 5))
    elif kind == "segmentation_scores":
        y_true = rng.integers(0, C, (2, 5, 5))
        y_pred = rng.random((2, 5, 5, C)).astype(np.float32)
        w = rng.integers(0, 3, (2, 5, 5))
    elif kind == "values":
        y_true, y_pred = rng.random((N, 3)).astype(np.float32), None
        w = rng.random(N)
    else:
        raise KeyError(kind)
    return y_true, y_pred, (w.astype(np.float32) if w is not None and w.dtype.kind == "f" else w) if weighted else None


CASES = [  # (class name, kwargs, kind of data)
    ("Accuracy", {}, "classes"),
    ("BinaryAccuracy", {}, "binary"),
    ("BinaryAccuracy", {"threshold": 0.3}, "binary_flat"),
    ("CategoricalAccuracy", {}, "onehot"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_column"),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "sparse_column"),
    ("Precision", {}, "binary"),
    ("Precision", {"thresholds": [0.3, 0.5, 0.8]}, "binary_flat"),
    ("Precision", {"top_k": 2}, "onehot"),
    ("Precision", {"class_id": 1}, "onehot"),
    ("Recall", {}, "binary"),
    ("Recall", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),  # evenly spaced: Keras's bucket path
    ("Recall", {"top_k": 1, "class_id": 2}, "onehot"),
    ("AUC", {}, "binary"),
    ("AUC", {"curve": "PR"}, "binary"),
    ("AUC", {"num_thresholds": 13, "summation_method": "minoring"}, "binary_flat"),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}, "binary"),
    ("AUC", {"curve": "PRGAIN"}, "binary"),
    ("AUC", {"thresholds": [0.1, 0.35, 0.5, 0.9]}, "binary"),
    ("AUC", {"from_logits": True}, "logits"),
    ("AUC", {}, "multilabel"),
    ("AUC", {"multi_label": True}, "multilabel"),
    ("AUC", {"multi_label": True, "curve": "PR", "label_weights": [1.0, 2.0, 0.5]}, "multilabel"),
    ("AUC", {"label_weights": [1.0, 2.0, 0.5]}, "multilabel"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("KLDivergence", {}, "onehot"),
    ("BinaryCrossentropy", {}, "binary"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "onehot"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("MeanIoU", {"num_classes": C}, "segmentation"),
    ("MeanIoU", {"num_classes": C, "ignore_class": 0}, "segmentation"),
    ("MeanIoU", {"num_classes": C, "sparse_y_pred": False}, "segmentation_scores"),
    ("Mean", {}, "values"),
    ("Sum", {}, "values"),
]


def update(metric, batch):
    y_true, y_pred, w = batch
    if y_pred is None:  # Mean and Sum take the values themselves
        metric.update_state(y_true, sample_weight=w)
    else:
        metric.update_state(y_true, y_pred, sample_weight=w)


def assert_same(ours, theirs, what):
    theirs = to_numpy(theirs)
    if theirs.ndim == 0:
        assert isinstance(ours, float), f"{what}: result should be a Python float, got {type(ours)}"
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("cls_name,kwargs,kind", CASES,
                         ids=[f"{c}-{k}-{'-'.join(f'{a}={b}' for a, b in kw.items())}" for c, kw, k in CASES])
def test_metric_equals_keras_over_several_batches_and_after_reset(keras, rng, cls_name, kwargs, kind):
    ours, theirs = getattr(metrics, cls_name)(**kwargs), getattr(keras.metrics, cls_name)(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for weighted in (False, True, True):  # three batches, two of them weighted
            batch = draw(rng, kind, weighted)
            update(ours, batch)
            update(theirs, batch)
        assert_same(ours.result(), theirs.result(), f"{cls_name} after 3 batches")
        ours.reset_state()
        theirs.reset_state()
        assert_same(ours.result(), theirs.result(), f"{cls_name} after reset_state")
        batch = draw(rng, kind, True)
        update(ours, batch)
        update(theirs, batch)
        assert_same(ours.result(), theirs.result(), f"{cls_name} after reset and one batch")


def test_metrics_take_tensors_and_call_updates_then_returns(rng):
    y_true, y_pred, _ = draw(rng, "binary", False)
    a, b = metrics.AUC(), metrics.AUC()
    a.update_state(cr.tensor(y_true), cr.tensor(y_pred, requires_grad=True))
    assert b(y_true, y_pred) == a.result()
    acc = metrics.SparseCategoricalAccuracy()
    logits = cr.tensor(np.array([[2.0, 1.0], [0.0, 3.0]], np.float32), requires_grad=True)
    assert acc(cr.tensor(np.array([0, 0])), logits) == 0.5


# ------------------------------------------------------------------ worked values (no Keras needed)
def test_worked_values():
    # Keras's docstring examples
    assert metrics.Accuracy()([[1], [2], [3], [4]], [[0], [2], [3], [4]]) == 0.75
    assert metrics.BinaryAccuracy()([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]) == 0.75
    m = metrics.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)
    assert metrics.TopKCategoricalAccuracy(k=1)([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]) == 0.5
    assert metrics.Precision()([0, 1, 1, 1], [1, 0, 1, 1]) == pytest.approx(2 / 3)
    assert metrics.Recall()([0, 1, 1, 1], [1, 0, 1, 1]) == pytest.approx(2 / 3)
    # a perfect ranking has ROC AUC 1 and PR AUC 1; the reverse ranking ROC AUC 0
    assert metrics.AUC()([0, 0, 1, 1], [0.1, 0.4, 0.6, 0.9]) == pytest.approx(1.0, abs=1e-6)
    assert metrics.AUC(curve="PR")([0, 0, 1, 1], [0.1, 0.4, 0.6, 0.9]) == pytest.approx(1.0, abs=1e-6)
    assert metrics.AUC()([1, 1, 0, 0], [0.1, 0.4, 0.6, 0.9]) == pytest.approx(0.0, abs=1e-6)
    # IoU = tp / (tp + fp + fn): confusion [[1, 1], [1, 1]] gives 1 / 3 for each class; mean 1/3
    assert metrics.MeanIoU(num_classes=2)([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(1 / 3, abs=1e-6)
    # perfect class 0, class 1 predicted once where class 0 is true: IoU_0 = 2/3, IoU_1 = 1/1
    assert metrics.MeanIoU(num_classes=2)([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-6)
    # weighted mean: (1 * 1 + 3 * 0) / (1 + 0) -> sample weight 0 masks the second value
    assert metrics.Mean()([1.0, 3.0], sample_weight=[1, 0]) == 1.0
    assert metrics.Sum()([1.0, 3.0, 5.0, 7.0], sample_weight=[1, 1, 0, 0]) == 4.0
    mse = metrics.MeanSquaredError()
    mse.update_state([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]])  # per sample: 0.5, 0
    assert mse.result() == 0.25
    mse.reset_state()
    assert mse.result() == 0.0


def test_precision_with_several_thresholds_returns_one_value_each():
    p = metrics.Precision(thresholds=[0.2, 0.7])
    p.update_state([0, 1, 1, 0], [0.3, 0.8, 0.5, 0.1])
    # > 0.2: predictions 0.3, 0.8, 0.5 -> tp 2, fp 1;  > 0.7: only 0.8 -> tp 1, fp 0
    np.testing.assert_allclose(p.result(), [2 / 3, 1.0])


def test_mean_iou_truncates_float_weights_like_keras():
    iou = metrics.MeanIoU(num_classes=2)
    with pytest.warns(UserWarning, match="float"):
        iou.update_state([0, 1], [0, 1], sample_weight=np.array([0.9, 1.5]))
    assert iou.total_cm.tolist() == [[0, 0], [0, 1]]  # 0.9 -> 0, 1.5 -> 1, as Keras's int32 counts


# ------------------------------------------------------------------ functions
@pytest.mark.parametrize("name,kind,kwargs", [
    ("binary_accuracy", "binary", {}), ("binary_accuracy", "binary_flat", {"threshold": 0.7}),
    ("categorical_accuracy", "onehot", {}), ("sparse_categorical_accuracy", "sparse", {}),
    ("sparse_categorical_accuracy", "sparse_column", {}), ("top_k_categorical_accuracy", "onehot", {"k": 2}),
    ("sparse_top_k_categorical_accuracy", "sparse_column", {"k": 3})])
def test_functions_equal_keras(keras, rng, name, kind, kwargs):
    y_true, y_pred, _ = draw(rng, kind, False)
    ours = getattr(metrics, name)(y_true, cr.tensor(y_pred), **kwargs)
    theirs = to_numpy(getattr(keras.metrics, name)(y_true, y_pred, **kwargs))
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_functions_on_segmentation_maps(keras, rng):
    labels = rng.integers(0, C, (2, 3, 3))
    scores = rng.random((2, 3, 3, C)).astype(np.float32)
    for name, kwargs in (("sparse_categorical_accuracy", {}), ("sparse_top_k_categorical_accuracy", {"k": 2})):
        ours = getattr(metrics, name)(labels, scores, **kwargs)
        theirs = to_numpy(getattr(keras.metrics, name)(labels, scores, **kwargs))
        assert ours.shape == theirs.shape == (2, 3, 3)
        np.testing.assert_array_equal(ours, theirs)
    onehot = np.eye(C, dtype=np.float32)[labels]
    np.testing.assert_array_equal(metrics.categorical_accuracy(onehot, scores),
                                  to_numpy(keras.metrics.categorical_accuracy(onehot, scores)))


@pytest.mark.parametrize("weight_shape", [(N,), (N, 1), (N, 3), ()])
def test_mean_of_values_weighted_like_keras(keras, rng, weight_shape):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for _ in range(2):
        values = rng.random((N, 3)).astype(np.float32)
        w = rng.random(weight_shape).astype(np.float32)
        ours.update_state(values, sample_weight=w)
        theirs.update_state(values, sample_weight=w)
    assert_same(ours.result(), theirs.result(), f"Mean with weights {weight_shape}")


def test_custom_function_metric(keras, rng):
    def maxAbsError(y_true, y_pred):  # receives Tensors; may use Tensor methods
        return (y_true - y_pred).abs().max(axis=-1)
    y_true, y_pred, w = draw(rng, "regression", True)
    ours = metrics.resolve(maxAbsError, "mse", y_true.shape, y_pred.shape)
    assert isinstance(ours, metrics.MeanMetricWrapper) and ours.name == "max_abs_error"  # Keras snake-cases it
    ours.update_state(y_true, y_pred, sample_weight=w[:, 0])
    theirs = keras.metrics.MeanMetricWrapper(lambda t, p: keras.ops.max(keras.ops.abs(t - p), axis=-1))
    theirs.update_state(y_true, y_pred, sample_weight=w[:, 0])
    assert_same(ours.result(), theirs.result(), "custom metric")


# ------------------------------------------------------------------ 'accuracy' as compile resolves it
ACCURACY_CASES = {
    # name: (loss, y_true, model output (from Activation on fixed inputs)), with expected class and value
    "sparse_ce_labels": ("sparse_categorical_crossentropy", "softmax", np.array([0, 1, 2, 1]),
                         "SparseCategoricalAccuracy", 0.75),
    "sparse_ce_label_column": ("sparse_categorical_crossentropy", "softmax", np.array([[0], [1], [2], [1]]),
                               "SparseCategoricalAccuracy", 0.75),
    "ce_one_hot": ("categorical_crossentropy", "softmax", np.eye(3)[[0, 1, 2, 1]], "CategoricalAccuracy", 0.75),
    "bce_one_sigmoid": ("binary_crossentropy", "sigmoid", np.array([[1.0], [0.0], [1.0], [1.0]]),
                        "BinaryAccuracy", 0.75),
    "mse_one_unit": ("mse", "linear", np.array([[1.0], [0.0], [1.0], [1.0]]), "BinaryAccuracy", 0.5),
    "mse_three_units": ("mse", "linear", np.eye(3)[[0, 1, 1, 2]], "CategoricalAccuracy", 0.5),
}
# fixed model inputs: three-class scores, argmax [0, 1, 0, 1]; one-unit scores
X3 = np.array([[2.0, 0.5, 0.1], [0.2, 1.5, 0.3], [1.0, 0.0, 0.5], [0.1, 0.9, 0.2]], np.float32)
X1 = np.array([[1.2], [-0.4], [0.3], [-2.0]], np.float32)  # sigmoid > 0.5 for rows 0, 2; linear > 0.5 for row 0


def model_output(activation, units):
    x = X3 if units == 3 else X1
    if activation == "softmax":
        return x, softmax(x)
    if activation == "sigmoid":
        return x, (1 / (1 + np.exp(-x))).astype(np.float32)
    return x, x


@pytest.mark.parametrize("case", list(ACCURACY_CASES))
def test_accuracy_resolution_values(case):
    loss, activation, y, expected_cls, expected = ACCURACY_CASES[case]
    units = 3 if activation == "softmax" or case == "mse_three_units" else 1
    _, y_pred = model_output(activation, units)
    for identifier in ("accuracy", "acc"):
        m = metrics.resolve(identifier, loss, np.shape(y), y_pred.shape)
        assert type(m).__name__ == expected_cls and m.name == identifier
        m.update_state(y, y_pred)
        assert m.result() == pytest.approx(expected)


@pytest.mark.parametrize("case", list(ACCURACY_CASES))
def test_accuracy_resolution_matches_keras_history(keras, case):
    loss, activation, y, expected_cls, expected = ACCURACY_CASES[case]
    units = 3 if activation == "softmax" or case == "mse_three_units" else 1
    x, y_pred = model_output(activation, units)
    model = keras.Sequential([keras.Input((units,)), keras.layers.Activation(activation)])
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the model does not have any trainable weights"
        history = model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
    (picked,) = model.metrics[-1].metrics
    assert type(picked).__name__ == expected_cls
    ours = metrics.resolve("accuracy", loss, np.shape(y), y_pred.shape)
    ours.update_state(y, y_pred)
    assert ours.result() == pytest.approx(history.history["accuracy"][0], abs=1e-6) == expected


def test_accuracy_resolution_falls_back_on_the_loss_without_shapes():
    assert isinstance(metrics.resolve("accuracy", "binary_crossentropy"), metrics.BinaryAccuracy)
    assert isinstance(metrics.resolve("acc", cr.losses.SparseCategoricalCrossentropy()),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.resolve("accuracy", cr.losses.categorical_crossentropy), metrics.CategoricalAccuracy)
    # with shapes, Keras 3 looks at the shapes only: BCE over 3 sigmoid units gets categorical accuracy
    assert isinstance(metrics.resolve("accuracy", "binary_crossentropy", (8, 3), (8, 3)), metrics.CategoricalAccuracy)


# ------------------------------------------------------------------ lookup, names, configs
def base_name(name):
    return re.sub(r"_\d+$", "", name)


@pytest.mark.parametrize("identifier", ["accuracy", "binary_accuracy", "categorical_accuracy", "AUC", "auc",
                                        "precision", "Recall", "mse", "MSE", "mae", "mean_squared_error",
                                        "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
                                        "binary_crossentropy", "root_mean_squared_error", "kl_divergence"])
def test_get_gives_keras_classes_and_default_names(keras, identifier):
    ours, theirs = metrics.get(identifier), keras.metrics.get(identifier)
    assert type(ours).__name__ == type(theirs).__name__
    assert base_name(ours.name) == base_name(theirs.name)
    their_config = {k: v for k, v in theirs.get_config().items() if k != "name"}
    assert {k: v for k, v in ours.get_config().items() if k != "name"} == their_config


def test_resolve_names_metrics_as_keras_history_does():
    assert metrics.resolve("mse", "mse", (4, 1), (4, 1)).name == "mse"
    auc = metrics.resolve("AUC", "binary_crossentropy", (4, 1), (4, 1))
    assert isinstance(auc, metrics.AUC) and auc.name == "AUC"
    assert isinstance(metrics.resolve("precision"), metrics.Precision)
    mine = metrics.Recall(name="my_recall")
    assert metrics.resolve(mine) is mine and mine.name == "my_recall"
    assert metrics.resolve(cr.losses.mean_absolute_error).name == "mean_absolute_error"
    with pytest.raises(ValueError, match=r"Could not interpret metric identifier: 'acuracy'.*did you mean"):
        metrics.get("acuracy")


def test_unnamed_metrics_are_numbered():
    first, second = metrics.Precision(), metrics.Precision()
    assert base_name(first.name) == "precision" and second.name != first.name


@pytest.mark.parametrize("metric", [
    metrics.BinaryAccuracy(threshold=0.3), metrics.TopKCategoricalAccuracy(k=3), metrics.Precision(thresholds=[0.2]),
    metrics.Recall(top_k=2, class_id=1), metrics.AUC(curve="PR", num_thresholds=50),
    metrics.AUC(thresholds=[0.2, 0.6]), metrics.MeanIoU(num_classes=3, ignore_class=0),
    metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True), metrics.Mean(name="m"),
    metrics.MeanMetricWrapper(cr.losses.mean_squared_error, name="w")], ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    clone = type(metric).from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    again = metrics.deserialize(metrics.serialize(metric))
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


def test_configs_equal_keras(keras):
    pairs = [(metrics.AUC(name="a", num_thresholds=50, curve="PR"), keras.metrics.AUC(name="a", num_thresholds=50,
                                                                                      curve="PR")),
             (metrics.AUC(name="a", thresholds=[0.2, 0.6]), keras.metrics.AUC(name="a", thresholds=[0.2, 0.6])),
             (metrics.Precision(name="p", top_k=2), keras.metrics.Precision(name="p", top_k=2)),
             (metrics.MeanIoU(3, name="iou"), keras.metrics.MeanIoU(3, name="iou")),
             (metrics.BinaryAccuracy(), keras.metrics.BinaryAccuracy())]
    for ours, theirs in pairs:
        assert ours.get_config() == theirs.get_config()
