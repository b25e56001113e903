"""Learning layer: estimators, training, evaluation and safe model files.

Everything here works on in-memory arrays; reading datasets from the warehouse is
the flows' job. The public names are re-exported here, each loaded on first use;
modules hold the code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.learning.anomaly import AutoencoderDetector, OnnxAnomalyScorer
    from headwater.learning.artifacts import (
        OnnxPredictor,
        export_onnx,
        load_torch_estimator,
        save_model,
    )
    from headwater.learning.base import Estimator, ParamValue, clone
    from headwater.learning.estimators import (
        ESTIMATORS,
        AdaBoostClassifier,
        ForestClassifier,
        HistBoostingClassifier,
        LogisticClassifier,
        make_estimator,
    )
    from headwater.learning.evaluate import (
        ClassificationMetrics,
        CrossValidationReport,
        HoldoutReport,
        RegressionCVReport,
        RegressionMetrics,
        classification_metrics,
        cross_validate,
        evaluate_holdout,
        holdout_split,
        regression_metrics,
    )
    from headwater.learning.plots import (
        plot_confusion_matrix,
        plot_digit_grid,
        plot_history,
        plot_regression,
    )
    from headwater.learning.regressors import (
        ForestRegressor,
        HistBoostingRegressor,
        MLPRegressor,
        Regressor,
        RidgeRegressor,
    )
    from headwater.learning.torch_models import CNNClassifier, MLPClassifier, TorchClassifier
    from headwater.learning.train import EpochCallback

_HOMES: dict[str, str] = {
    "AutoencoderDetector": "headwater.learning.anomaly",
    "OnnxAnomalyScorer": "headwater.learning.anomaly",
    "OnnxPredictor": "headwater.learning.artifacts",
    "export_onnx": "headwater.learning.artifacts",
    "load_torch_estimator": "headwater.learning.artifacts",
    "save_model": "headwater.learning.artifacts",
    "Estimator": "headwater.learning.base",
    "ParamValue": "headwater.learning.base",
    "clone": "headwater.learning.base",
    "ESTIMATORS": "headwater.learning.estimators",
    "AdaBoostClassifier": "headwater.learning.estimators",
    "ForestClassifier": "headwater.learning.estimators",
    "HistBoostingClassifier": "headwater.learning.estimators",
    "LogisticClassifier": "headwater.learning.estimators",
    "make_estimator": "headwater.learning.estimators",
    "ClassificationMetrics": "headwater.learning.evaluate",
    "CrossValidationReport": "headwater.learning.evaluate",
    "HoldoutReport": "headwater.learning.evaluate",
    "classification_metrics": "headwater.learning.evaluate",
    "cross_validate": "headwater.learning.evaluate",
    "evaluate_holdout": "headwater.learning.evaluate",
    "holdout_split": "headwater.learning.evaluate",
    "plot_confusion_matrix": "headwater.learning.plots",
    "plot_digit_grid": "headwater.learning.plots",
    "plot_history": "headwater.learning.plots",
    "plot_regression": "headwater.learning.plots",
    "ForestRegressor": "headwater.learning.regressors",
    "HistBoostingRegressor": "headwater.learning.regressors",
    "MLPRegressor": "headwater.learning.regressors",
    "Regressor": "headwater.learning.regressors",
    "RidgeRegressor": "headwater.learning.regressors",
    "RegressionCVReport": "headwater.learning.evaluate",
    "RegressionMetrics": "headwater.learning.evaluate",
    "regression_metrics": "headwater.learning.evaluate",
    "CNNClassifier": "headwater.learning.torch_models",
    "MLPClassifier": "headwater.learning.torch_models",
    "TorchClassifier": "headwater.learning.torch_models",
    "EpochCallback": "headwater.learning.train",
}
"""Where each public name lives; it is imported on first use."""

__all__ = [
    "ESTIMATORS",
    "AdaBoostClassifier",
    "AutoencoderDetector",
    "CNNClassifier",
    "ClassificationMetrics",
    "CrossValidationReport",
    "EpochCallback",
    "Estimator",
    "ForestClassifier",
    "ForestRegressor",
    "HistBoostingClassifier",
    "HistBoostingRegressor",
    "HoldoutReport",
    "LogisticClassifier",
    "MLPClassifier",
    "MLPRegressor",
    "OnnxAnomalyScorer",
    "OnnxPredictor",
    "ParamValue",
    "RegressionCVReport",
    "RegressionMetrics",
    "Regressor",
    "RidgeRegressor",
    "TorchClassifier",
    "classification_metrics",
    "clone",
    "cross_validate",
    "evaluate_holdout",
    "export_onnx",
    "holdout_split",
    "load_torch_estimator",
    "make_estimator",
    "plot_confusion_matrix",
    "plot_digit_grid",
    "plot_history",
    "plot_regression",
    "regression_metrics",
    "save_model",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562).

    ``headwater.learning.params`` is read by every face to build its options; importing
    it must not load torch and onnx, which the package's other modules need.
    """
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
