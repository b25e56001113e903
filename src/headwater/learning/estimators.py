"""Every trainable model by name, and scikit-learn models behind the Headwater interface.

:data:`ESTIMATORS` is written out by hand, not filled by import side effects: a
reader sees every model the platform can train in one place, and ``make_estimator``
can list them when given an unknown name. Each model's hyperparameters (types,
defaults, ranges, help) are declared once, in its parameter model in
:mod:`headwater.learning.params` under the same name; ``fit`` checks them there.

The scikit-learn wrappers take float32 features (the dtype the ONNX export uses, so
a saved model and the fitted one see the same numbers), keep the fitted scikit-learn
object in ``model_`` and return float32 probabilities.
"""

from __future__ import annotations

import inspect
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt
from sklearn import ensemble, linear_model, tree

from headwater.errors import ConfigError
from headwater.learning.base import (
    Estimator,
    FloatArray,
    LabelArray,
    ParamValue,
    SklearnEstimator,
    as_labels,
    encode_labels,
)
from headwater.learning.regressors import (
    ForestRegressor,
    HistBoostingRegressor,
    MLPRegressor,
    RidgeRegressor,
)
from headwater.learning.torch_models import CNNClassifier, MLPClassifier

__all__ = [
    "ESTIMATORS",
    "AdaBoostClassifier",
    "ForestClassifier",
    "HistBoostingClassifier",
    "LogisticClassifier",
    "SklearnClassifier",
    "make_estimator",
]


class SklearnModel(Protocol):
    """The two methods Headwater calls on a scikit-learn classifier."""

    def fit(self, X: FloatArray, y: LabelArray) -> object: ...

    def predict_proba(self, X: FloatArray) -> npt.NDArray[np.float64]: ...


class SklearnClassifier(SklearnEstimator):
    """Fit/predict shared by the scikit-learn classifiers; subclasses build the model."""

    model_: SklearnModel

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        owner = type(self).__name__
        flat = self._fit_rows(X)
        labels = as_labels(y, len(flat), owner)
        classes, _ = encode_labels(labels, owner)
        model = self._make()
        model.fit(flat, labels)
        self.model_, self.classes_, self.n_features_in_ = model, classes, flat.shape[1]
        return self

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Class probabilities, columns in the order of ``classes_``; rows sum to 1."""
        flat = self._rows(X)  # the not-fitted error first
        return np.asarray(self.model_.predict_proba(flat), dtype=np.float32)

    def _make(self) -> SklearnModel:
        raise NotImplementedError


class LogisticClassifier(SklearnClassifier):
    """Multinomial logistic regression (lbfgs); ``c`` is the inverse L2 strength."""

    name = "logistic"

    def __init__(self, c: float = 1.0, max_iter: int = 1000, seed: int = 0) -> None:
        self.c = c
        self.max_iter = max_iter
        self.seed = seed

    def _make(self) -> SklearnModel:
        model: SklearnModel = linear_model.LogisticRegression(
            C=self.c, max_iter=self.max_iter, random_state=self.seed
        )
        return model


class ForestClassifier(SklearnClassifier):
    """A random forest; ``n_jobs`` trees in parallel, same result for any ``n_jobs``."""

    name = "random_forest"

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        n_jobs: int | None = None,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs
        self.seed = seed

    def _make(self) -> SklearnModel:
        model: SklearnModel = ensemble.RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )
        return model


class AdaBoostClassifier(SklearnClassifier):
    """AdaBoost (SAMME) over shallow trees of depth ``max_depth``."""

    name = "adaboost"

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.5,
        max_depth: int = 3,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.seed = seed

    def _make(self) -> SklearnModel:
        model: SklearnModel = ensemble.AdaBoostClassifier(
            tree.DecisionTreeClassifier(max_depth=self.max_depth, random_state=self.seed),
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            random_state=self.seed,
        )
        return model


class HistBoostingClassifier(SklearnClassifier):
    """Histogram gradient boosting; no internal early stopping, so ``max_iter`` rounds run."""

    name = "hist_gradient_boosting"

    def __init__(
        self,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.seed = seed

    def _make(self) -> SklearnModel:
        model: SklearnModel = ensemble.HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )
        return model


ESTIMATORS: dict[str, type[Estimator]] = {
    "mlp": MLPClassifier,
    "cnn": CNNClassifier,
    "logistic": LogisticClassifier,
    "random_forest": ForestClassifier,
    "adaboost": AdaBoostClassifier,
    "hist_gradient_boosting": HistBoostingClassifier,
    "ridge": RidgeRegressor,
    "mlp_regressor": MLPRegressor,
    "random_forest_regressor": ForestRegressor,
    "hist_gradient_boosting_regressor": HistBoostingRegressor,
}


def make_estimator(name: str, **params: ParamValue) -> Estimator:
    """An unfitted estimator by registry name, its values checked now (and again in fit).

    Checking here refuses a bad value before a run is registered for it.
    Example: ``make_estimator("mlp", density=64, epochs=10)``.
    """
    cls = ESTIMATORS.get(name)
    if cls is None:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(ESTIMATORS))}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"its parameters are: {', '.join(allowed)}"
        )
    estimator = cls(**params)
    estimator.checked_params()
    return estimator
