"""Learning layer: estimators, training, evaluation and safe model files.

Everything here works on in-memory arrays; reading datasets from the warehouse is
the flows' job. The public names are re-exported here; modules hold the code.
"""

from __future__ import annotations

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
    classification_metrics,
    cross_validate,
    evaluate_holdout,
    holdout_split,
)
from headwater.learning.plots import plot_confusion_matrix, plot_digit_grid, plot_history
from headwater.learning.torch_models import CNNClassifier, MLPClassifier, TorchClassifier
from headwater.learning.train import EpochCallback

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
    "HistBoostingClassifier",
    "HoldoutReport",
    "LogisticClassifier",
    "MLPClassifier",
    "OnnxAnomalyScorer",
    "OnnxPredictor",
    "ParamValue",
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
    "save_model",
]
