"""Regressors behind the common estimator interface: a number out instead of a class.

Each one standardises the target inside itself: ``fit`` learns the target's mean and
standard deviation from the training rows, fits the model to ``(y - mean) / std``,
and ``predict`` (and the exported ONNX graph) maps the output back with
``* std + mean``. So a neural net's learning rate and a penalty's strength mean the
same whether the target is a probability or a price, and what is served is in the
target's own units.

A target must be finite and not constant; :func:`as_target` says which rows are not.
Forests and histogram gradient boosting also give a 90% interval per prediction
(:meth:`SklearnRegressor.predict_interval`): the 5% and 95% quantiles of the forest's
trees' predictions, or two quantile-loss models (5% and 95%) trained beside boosting's
point model. Neither is calibrated by construction (the trees' spread depends on how
alike they are, quantile boosting covers too little on small data), so each is then
widened or narrowed by one shift learned on rows the interval was not fitted on (split
conformal, CQR): the forest's out-of-bag rows, or a fifth of boosting's training rows
held back from its quantile models. On held-out rows 90% should then fall inside.
"""

from __future__ import annotations

import math
from typing import ClassVar, Protocol, Self

import numpy as np
import numpy.typing as npt
import torch
from sklearn import ensemble, linear_model
from torch import nn

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning.base import (
    Estimator,
    FloatArray,
    SklearnEstimator,
    as_features,
    check_features,
)
from headwater.learning.params import Schedule
from headwater.learning.torch_models import MLPNet, TorchEstimator, ValidationData, mlp_optimizer
from headwater.learning.train import EpochCallback, predict_logits, reproducible

__all__ = [
    "COVERAGE",
    "INTERVAL",
    "ForestRegressor",
    "HistBoostingRegressor",
    "MLPRegressor",
    "Regressor",
    "RidgeRegressor",
    "SklearnRegressor",
    "TargetArray",
    "as_target",
]

TargetArray = npt.NDArray[np.float64]
INTERVAL = (0.05, 0.95)
"""The quantiles of a prediction interval: 90% of outcomes should fall inside."""
COVERAGE = round(INTERVAL[1] - INTERVAL[0], 6)
"""The share of outcomes the interval should hold: 0.9."""
CALIBRATION_FRACTION = 0.2
"""Of boosting's training rows, those kept from its quantile models to calibrate them."""
MAX_NAMED_ROWS = 10
MIN_OUT_OF_BAG = 5
"""Fewest trees a row must be out of the bag of to calibrate a forest's interval on it."""


def as_target(
    y: npt.ArrayLike, n_rows: int, owner: str, *, constant_ok: bool = False
) -> TargetArray:
    """y as finite float64, one per row; refuses NaN/inf (naming rows) and a constant target
    (one to learn from; a validation or test target may be anything finite)."""
    array = np.asarray(y)
    if array.ndim != 1 or len(array) != n_rows:
        raise SchemaError(
            f"{owner}: y must be 1-D with one number per row of X ({n_rows}), got {array.shape}",
            field="y",
        )
    if array.dtype.kind not in "biuf":
        raise SchemaError(f"{owner}: y must hold numbers, got {array.dtype}", field="y")
    target = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(target))
    if len(bad):
        shown = ", ".join(str(int(i)) for i in bad[:MAX_NAMED_ROWS])
        raise SchemaError(
            f"{owner}: y holds {len(bad)} NaN or infinite value(s), rows {shown}"
            + (" ..." if len(bad) > MAX_NAMED_ROWS else ""),
            field="y",
        )
    if not constant_ok and (n_rows < 2 or float(np.ptp(target)) == 0.0):
        raise SchemaError(
            f"{owner}: y is constant ({target[0] if n_rows else 'no rows'}); "
            "there is nothing to predict",
            field="y",
        )
    return target


class Regressor(Estimator):
    """A model of a number: ``predict`` gives it, in the target's own units."""

    task: ClassVar[str] = "regression"
    target_mean_: float
    target_std_: float

    def require_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise ModelNotFitted(type(self).__name__)

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        raise ConfigError(f"{type(self).__name__} predicts numbers, not class probabilities")

    def predict(self, X: npt.ArrayLike) -> TargetArray:  # type: ignore[override]  # numbers, not labels
        """The predicted number for each row."""
        self.require_fitted()
        owner = type(self).__name__
        flat = check_features(as_features(X, owner), self.n_features_in_, owner)
        return self._predict_scaled(flat) * self.target_std_ + self.target_mean_

    def _standardise(self, y: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.float32]:
        target = as_target(y, n_rows, type(self).__name__)
        self.target_mean_, self.target_std_ = float(target.mean()), float(target.std())
        scaled: npt.NDArray[np.float32] = ((target - self.target_mean_) / self.target_std_).astype(
            np.float32
        )
        return scaled

    def _predict_scaled(self, flat: FloatArray) -> TargetArray:
        raise NotImplementedError


def conformal_shift(
    low: npt.NDArray[np.float64], high: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> float:
    """How far to move both ends of ``[low, high]`` out (or, negative, in) so ``COVERAGE``
    of rows like these fall inside: the conformity scores' finite-sample quantile (CQR)."""
    scores = np.maximum(low - y, y - high)
    n = len(scores)
    if n == 0:
        return 0.0
    level = min(1.0, math.ceil((n + 1) * COVERAGE) / n)
    return float(np.quantile(scores, level, method="higher"))


# -- scikit-learn ----------------------------------------------------------------------------


class SklearnRegressorModel(Protocol):
    def fit(self, X: FloatArray, y: npt.NDArray[np.float32]) -> object: ...

    def predict(self, X: FloatArray) -> npt.NDArray[np.float64]: ...


class SklearnRegressor(Regressor, SklearnEstimator):
    """Fit/predict shared by the scikit-learn regressors; subclasses build the model."""

    model_: SklearnRegressorModel
    interval_: tuple[SklearnRegressorModel, SklearnRegressorModel] | None = None
    interval_shift_: float = 0.0
    """Added to the interval's high end and taken from its low end (standardised units)."""

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> Self:
        flat = self._fit_rows(X)
        scaled = self._standardise(y, len(flat))
        model = self._make()
        model.fit(flat, scaled)
        self.model_, self.n_features_in_ = model, flat.shape[1]
        self._fit_interval(flat, scaled)
        return self

    def _predict_scaled(self, flat: FloatArray) -> TargetArray:
        return np.asarray(self.model_.predict(flat), dtype=np.float64).reshape(len(flat))

    def predict_interval(self, X: npt.ArrayLike) -> tuple[TargetArray, TargetArray] | None:
        """Low and high ends of a 90% interval per row, or None for a model that has none."""
        scaled = self._interval_scaled(self._rows(X))
        if scaled is None:
            return None
        shift = self.interval_shift_
        low, high = (
            (s + d) * self.target_std_ + self.target_mean_
            for s, d in zip(scaled, (-shift, shift), strict=True)
        )
        return np.minimum(low, high), np.maximum(low, high)

    def _interval_scaled(self, flat: FloatArray) -> tuple[TargetArray, TargetArray] | None:
        return None

    def _fit_interval(self, flat: FloatArray, scaled: npt.NDArray[np.float32]) -> None:
        """Fit what an interval needs beyond the model; nothing by default."""

    def _make(self) -> SklearnRegressorModel:
        raise NotImplementedError


class RidgeRegressor(SklearnRegressor):
    """Ridge: least squares with ``alpha * |w|^2``; on standardised features its
    coefficients say how much a one-standard-deviation change moves the target."""

    name = "ridge"

    def __init__(self, alpha: float = 1.0, seed: int = 0) -> None:
        self.alpha = alpha
        self.seed = seed

    def _make(self) -> SklearnRegressorModel:
        model: SklearnRegressorModel = linear_model.Ridge(alpha=self.alpha)
        return model


class ForestRegressor(SklearnRegressor):
    """A random forest of regression trees; the interval is the spread of the trees."""

    name = "random_forest_regressor"

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: int = 5,
        max_features: float = 1 / 3,
        n_jobs: int | None = None,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.seed = seed

    def _make(self) -> SklearnRegressorModel:
        model: SklearnRegressorModel = ensemble.RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )
        return model

    def _fit_interval(self, flat: FloatArray, scaled: npt.NDArray[np.float32]) -> None:
        """Calibrate on out-of-bag rows: each row's quantiles over the trees not grown on it."""
        trees = self._tree_values(flat)
        assert isinstance(self.model_, ensemble.RandomForestRegressor)
        for values, in_bag in zip(trees, self.model_.estimators_samples_, strict=True):
            values[in_bag] = np.nan
        usable = np.sum(~np.isnan(trees), axis=0) >= MIN_OUT_OF_BAG
        if usable.sum() < MIN_OUT_OF_BAG:
            return  # too few trees to hold any row out of enough of them
        low, high = np.nanquantile(trees[:, usable], INTERVAL, axis=0)
        self.interval_shift_ = conformal_shift(low, high, scaled[usable].astype(np.float64))

    def _tree_values(self, flat: FloatArray) -> npt.NDArray[np.float64]:
        """``(n_trees, n_rows)``: every tree's prediction of every row."""
        assert isinstance(self.model_, ensemble.RandomForestRegressor)
        return np.stack([tree.predict(flat) for tree in self.model_.estimators_]).astype(np.float64)

    def _interval_scaled(self, flat: FloatArray) -> tuple[TargetArray, TargetArray] | None:
        low, high = np.quantile(self._tree_values(flat), INTERVAL, axis=0)
        return np.asarray(low, np.float64), np.asarray(high, np.float64)


class HistBoostingRegressor(SklearnRegressor):
    """Histogram gradient boosting on squared error, stopped early on ``validation_fraction``
    of the training rows; two quantile models give the interval."""

    name = "hist_gradient_boosting_regressor"

    def __init__(
        self,
        max_iter: int = 500,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 4,
        l2_regularization: float = 0.0,
        validation_fraction: float | None = 0.1,
        seed: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.validation_fraction = validation_fraction
        self.seed = seed

    def _make(
        self, loss: str = "squared_error", quantile: float | None = None
    ) -> SklearnRegressorModel:
        model: SklearnRegressorModel = ensemble.HistGradientBoostingRegressor(
            loss=loss,
            quantile=quantile,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            early_stopping=self.validation_fraction is not None,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=10,
            random_state=self.seed,
        )
        return model

    def _fit_interval(self, flat: FloatArray, scaled: npt.NDArray[np.float32]) -> None:
        """Quantile models on four fifths of the rows, calibrated on the fifth they did not see."""
        order = np.random.default_rng(self.seed).permutation(len(flat))
        held = order[: int(len(flat) * CALIBRATION_FRACTION)]
        fitted = order[len(held) :]
        low, high = (self._make("quantile", q) for q in INTERVAL)
        low.fit(flat[fitted], scaled[fitted])
        high.fit(flat[fitted], scaled[fitted])
        self.interval_ = (low, high)
        if len(held):
            ends = self._interval_scaled(flat[held])
            assert ends is not None
            self.interval_shift_ = conformal_shift(*ends, scaled[held].astype(np.float64))

    def _interval_scaled(self, flat: FloatArray) -> tuple[TargetArray, TargetArray] | None:
        if self.interval_ is None:
            return None
        low, high = (np.asarray(m.predict(flat), np.float64) for m in self.interval_)
        return low, high


# -- PyTorch ---------------------------------------------------------------------------------


class MLPRegressor(Regressor, TorchEstimator):
    """The MLP (``density`` units, then ``second_width`` with L2, input dropout) with one
    linear output, trained on squared error of the standardised target."""

    name = "mlp_regressor"

    def __init__(
        self,
        density: int = 35,
        second_width: int = 21,
        l2: float = 0.001,
        dropout: float = 0.0,
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 3e-3,
        schedule: Schedule = "cosine",
        patience: int | None = None,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> None:
        self.density = density
        self.second_width = second_width
        self.l2 = l2
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.patience = patience
        self.seed = seed
        self.n_threads = n_threads

    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        validation_data: ValidationData | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> Self:
        """Train from scratch; ``on_epoch(epoch, metrics)`` after every epoch (loss, val_loss)."""
        owner = type(self).__name__
        config = self._check_params(validation_data is not None)
        features = as_features(X, owner)
        flat = features.reshape(len(features), -1)
        scaled = self._standardise(y, len(flat))
        validation = None
        if validation_data is not None:
            validation = self._validation_tensors(validation_data, flat.shape[1])
        with reproducible(self.seed, self.n_threads):
            net = self._build(flat.shape[1])
            self._train(
                net,
                flat,
                torch.from_numpy(scaled),
                config,
                validation=validation,
                on_epoch=on_epoch,
                regression=True,
            )
        self.n_features_in_, self.input_shape_ = flat.shape[1], (flat.shape[1],)
        return self

    def _predict_scaled(self, flat: FloatArray) -> TargetArray:
        out = predict_logits(self.model_, torch.from_numpy(flat))
        return out[:, 0].double().numpy()

    def load_fitted_state(
        self,
        *,
        n_features: int,
        target: tuple[float, float],
        state: dict[str, torch.Tensor],
        history: list[dict[str, float]] | None = None,
    ) -> Self:
        """Become the fitted model whose weights are ``state`` (read from safetensors)."""
        self._check_params(has_validation=True)
        self._load_state(self._build(n_features), state, history)
        self.n_features_in_, self.input_shape_ = n_features, (n_features,)
        self.target_mean_, self.target_std_ = target
        return self

    def _build(self, n_features: int) -> MLPNet:
        return MLPNet(n_features, self.density, self.second_width, self.dropout, 1)

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        return mlp_optimizer(net, self.learning_rate, self.l2)

    def _validation_tensors(
        self, data: ValidationData, n_features: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        owner = f"{type(self).__name__} validation_data"
        X_val, y_val = data
        flat = check_features(as_features(X_val, owner), n_features, owner)
        target = as_target(y_val, len(flat), owner, constant_ok=True)
        scaled = ((target - self.target_mean_) / self.target_std_).astype(np.float32)
        return torch.from_numpy(flat), torch.from_numpy(scaled)
