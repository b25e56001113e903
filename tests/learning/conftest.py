"""Small, learnable data for the learning tests: scikit-learn's 8x8 digits, scaled to 0..1.

1,797 real handwritten digits ship inside scikit-learn, so the tests need no network
and no files, and a model trained for one epoch already beats chance.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from headwater.learning import ESTIMATORS, Estimator, make_estimator
from headwater.learning.base import ParamValue

# The smallest settings that still train: the suite checks behaviour, not accuracy.
FAST: dict[str, dict[str, ParamValue]] = {
    "mlp": {"epochs": 2, "batch_size": 64},
    "cnn": {"epochs": 1, "batch_size": 64, "channels": 4, "hidden": 16},
    "logistic": {"max_iter": 200},
    "random_forest": {"n_estimators": 8},
    "adaboost": {"n_estimators": 5, "max_depth": 2},
    "hist_gradient_boosting": {"max_iter": 5},
    "ridge": {},
    "mlp_regressor": {"epochs": 3, "batch_size": 64},
    "random_forest_regressor": {"n_estimators": 8},
    "hist_gradient_boosting_regressor": {"max_iter": 20, "learning_rate": 0.3},
}
TORCH_MODELS = ("mlp", "cnn")
CLASSIFIERS = tuple(name for name, cls in ESTIMATORS.items() if cls.task == "classification")
REGRESSORS = tuple(name for name, cls in ESTIMATORS.items() if cls.task == "regression")


def fast_estimator(name: str, **params: ParamValue) -> Estimator:
    return make_estimator(name, **{**FAST[name], **params})


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def small(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """600 rows to train on, 200 to test on."""
    X, y = digits
    return X[:600], y[:600], X[600:800], y[600:800]


@pytest.fixture(params=sorted(CLASSIFIERS), ids=str)
def estimator_name(request: pytest.FixtureRequest) -> str:
    """Every classifier (the regressors' contract is in test_regressors.py)."""
    return str(request.param)


@pytest.fixture(params=sorted(REGRESSORS), ids=str)
def regressor_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
