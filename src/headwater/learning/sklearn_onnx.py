"""scikit-learn models as ONNX graphs: one converter call for classifiers and regressors, and
the nodes a regressor adds (its target's units restored, its prediction interval).

A regressor's graph has the input ``input`` ``(batch, n_features)`` float32 and the output
``prediction`` ``(batch, 1)``; one that gives an interval also has ``lower`` and ``upper``,
and says its coverage in the model's ``headwater.interval`` metadata. The interval is part
of the one graph (one file, one hash, one ONNX Runtime call per batch), built from the same
fitted models the Python ``predict_interval`` uses:

* a random forest: every tree's prediction as its own column (the forest's ensemble node
  with one target per tree), sorted by ``TopK``, and the quantiles read off by linear
  interpolation between neighbours, as ``numpy.quantile`` does;
* gradient boosting: the two quantile-loss models' graphs beside the point model's.

Either is then widened (or narrowed) by the fitted calibration shift and mapped back to
the target's units.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.operator_converters.random_forest import (
    convert_sklearn_random_forest_classifier,
    convert_sklearn_random_forest_regressor_converter,
)
from sklearn import ensemble

from headwater.learning.regressors import (
    INTERVAL,
    ForestRegressor,
    HistBoostingRegressor,
    SklearnRegressor,
)

__all__ = [
    "INPUT_NAME",
    "INTERVAL_NAMES",
    "OPSET",
    "PREDICTION_NAME",
    "convert",
    "regressor_graph",
]

INPUT_NAME = "input"
PREDICTION_NAME = "prediction"
"""A regressor's ONNX output: ``(batch, 1)`` numbers in the target's units."""
INTERVAL_NAMES = ("lower", "upper")
"""A regressor's interval outputs, ``(batch, 1)`` each, in the target's units."""
OPSET = 18


def convert(model: object, n_features: int, *, probabilities: bool = False) -> onnx.ModelProto:
    """One fitted scikit-learn model as an ONNX graph on ``input`` ``(batch, n_features)``.

    ``probabilities``: a classifier's class probabilities as a plain tensor (no ZipMap).
    """
    options = {id(model): {"zipmap": False}} if probabilities else None
    proto: onnx.ModelProto = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options=options,
        target_opset={"": OPSET, "ai.onnx.ml": 3},
        custom_conversion_functions={
            ensemble.HistGradientBoostingClassifier: _hist_boosting_classifier,
            ensemble.HistGradientBoostingRegressor: _hist_boosting_regressor,
        },
    )
    return proto


def regressor_graph(estimator: SklearnRegressor) -> onnx.ModelProto:
    """The regressor's graph in the target's units, with ``lower``/``upper`` where it has them."""
    proto = convert(estimator.model_, estimator.n_features_in_)
    graph = proto.graph
    raw = graph.output[0].name
    del graph.output[:]
    _constant(graph, "hw_std", estimator.target_std_)
    _constant(graph, "hw_mean", estimator.target_mean_)
    _restore(graph, raw, PREDICTION_NAME)
    scaled = _interval_nodes(estimator, graph)
    if scaled is not None:
        _constant(graph, "hw_shift", estimator.interval_shift_)
        low, high = scaled
        graph.node.extend(
            [
                onnx.helper.make_node("Sub", [low, "hw_shift"], ["hw_low_shifted"]),
                onnx.helper.make_node("Add", [high, "hw_shift"], ["hw_high_shifted"]),
            ]
        )
        _restore(graph, "hw_low_shifted", "hw_low_units")
        _restore(graph, "hw_high_shifted", "hw_high_units")
        lower, upper = INTERVAL_NAMES
        graph.node.extend(
            [
                onnx.helper.make_node("Min", ["hw_low_units", "hw_high_units"], [lower]),
                onnx.helper.make_node("Max", ["hw_low_units", "hw_high_units"], [upper]),
            ]
        )
    for name in (PREDICTION_NAME, *(INTERVAL_NAMES if scaled is not None else ())):
        graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 1])
        )
    onnx.checker.check_model(proto)
    return proto


def _constant(graph: onnx.GraphProto, name: str, value: float) -> None:
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([value], np.float32), name))


def _restore(graph: onnx.GraphProto, scaled: str, out: str) -> None:
    """``out = scaled * std + mean``: a standardised output back in the target's units."""
    graph.node.extend(
        [
            onnx.helper.make_node("Mul", [scaled, "hw_std"], [f"{out}_scaled"]),
            onnx.helper.make_node("Add", [f"{out}_scaled", "hw_mean"], [out]),
        ]
    )


def _interval_nodes(estimator: SklearnRegressor, graph: onnx.GraphProto) -> tuple[str, str] | None:
    """Add the nodes of the interval's two ends (standardised units); their names, or None."""
    if isinstance(estimator, ForestRegressor):
        return _tree_quantiles(estimator, graph)
    if isinstance(estimator, HistBoostingRegressor) and estimator.interval_ is not None:
        ends = []
        for prefix, model in zip(("hw_lo_", "hw_hi_"), estimator.interval_, strict=True):
            quantile = convert(model, estimator.n_features_in_).graph
            ends.append(_merge(graph, quantile, prefix))
        return ends[0], ends[1]
    return None


def _merge(graph: onnx.GraphProto, other: onnx.GraphProto, prefix: str) -> str:
    """Copy ``other``'s nodes and initialisers in under ``prefix`` (sharing the input); the
    name of its output."""

    def renamed(name: str) -> str:
        return name if name in {INPUT_NAME, ""} else prefix + name

    for node in other.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + node.name
        copy.input[:] = [renamed(n) for n in node.input]
        copy.output[:] = [renamed(n) for n in node.output]
        graph.node.append(copy)
    for tensor in other.initializer:
        copy_t = onnx.TensorProto()
        copy_t.CopyFrom(tensor)
        copy_t.name = renamed(tensor.name)
        graph.initializer.append(copy_t)
    return renamed(other.output[0].name)


def _tree_quantiles(estimator: ForestRegressor, graph: onnx.GraphProto) -> tuple[str, str]:
    """Each tree's prediction as a column, sorted, and the ``INTERVAL`` quantiles read off."""
    (forest,) = [n for n in graph.node if n.op_type == "TreeEnsembleRegressor"]
    trees = onnx.NodeProto()
    trees.CopyFrom(forest)
    trees.name, trees.output[:] = "hw_trees", ["hw_tree_values"]
    assert isinstance(estimator.model_, ensemble.RandomForestRegressor)
    n_trees = len(estimator.model_.estimators_)
    attrs = {a.name: a for a in trees.attribute}
    # The forest's node sums leaf / n_trees into one target; one target per tree instead.
    attrs["target_ids"].ints[:] = list(attrs["target_treeids"].ints)
    attrs["target_weights"].floats[:] = [w * n_trees for w in attrs["target_weights"].floats]
    attrs["n_targets"].i = n_trees
    graph.node.append(trees)
    graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([n_trees], np.int64), "hw_n_trees")
    )
    graph.node.append(
        onnx.helper.make_node(
            "TopK",
            ["hw_tree_values", "hw_n_trees"],
            ["hw_sorted", "hw_order"],
            axis=1,
            largest=0,
            sorted=1,
        )
    )
    return _sorted_quantile(graph, INTERVAL[0], n_trees), _sorted_quantile(
        graph, INTERVAL[1], n_trees
    )


def _sorted_quantile(graph: onnx.GraphProto, q: float, n: int) -> str:
    """``numpy.quantile``'s linear interpolation between two neighbours of ``hw_sorted``."""
    position = q * (n - 1)
    below = math.floor(position)
    above, fraction = min(below + 1, n - 1), position - below
    tag = f"hw_q{round(q * 1000)}"
    for name, index in ((f"{tag}_i", below), (f"{tag}_j", above)):
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([index], np.int64), name))
    _constant(graph, f"{tag}_f", fraction)
    graph.node.extend(
        [
            onnx.helper.make_node("Gather", ["hw_sorted", f"{tag}_i"], [f"{tag}_a"], axis=1),
            onnx.helper.make_node("Gather", ["hw_sorted", f"{tag}_j"], [f"{tag}_b"], axis=1),
            onnx.helper.make_node("Sub", [f"{tag}_b", f"{tag}_a"], [f"{tag}_gap"]),
            onnx.helper.make_node("Mul", [f"{tag}_gap", f"{tag}_f"], [f"{tag}_step"]),
            onnx.helper.make_node("Add", [f"{tag}_a", f"{tag}_step"], [tag]),
        ]
    )
    return tag


class _IntAttributes:
    """Passes node attributes on with Python/numpy bools turned into ints.

    skl2onnx 1.20 writes ``False`` into ``nodes_missing_value_tracks_true`` for the
    leaves of histogram-boosting trees, which onnx >= 1.17 refuses in an int list.
    """

    def __init__(self, container: object) -> None:
        self._container = container

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def add_node(self, *args: object, **attrs: object) -> object:
        fixed = {
            key: [int(v) if isinstance(v, bool | np.bool_) else v for v in value]
            if isinstance(value, list)
            else value
            for key, value in attrs.items()
        }
        return self._container.add_node(*args, **fixed)  # type: ignore[attr-defined]  # skl2onnx container


def _hist_boosting_classifier(scope: object, operator: object, container: object) -> None:
    convert_sklearn_random_forest_classifier(scope, operator, _IntAttributes(container))


def _hist_boosting_regressor(scope: object, operator: object, container: object) -> None:
    convert_sklearn_random_forest_regressor_converter(scope, operator, _IntAttributes(container))
