"""How good is a model: holdout and k-fold scores, as plain numbers that store as JSON.

Every split is stratified (each class keeps its share in every part) and seeded, so
two evaluations of the same model on the same data give the same numbers, and a
score in the registry can be reproduced. Reports are frozen dataclasses of ints,
floats and lists with a ``to_dict()`` that ``json.dumps`` accepts as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_fscore_support,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from headwater.errors import ConfigError, SchemaError
from headwater.learning.base import Estimator, LabelArray, as_labels, check_int, clone
from headwater.learning.regressors import as_target

__all__ = [
    "ClassificationMetrics",
    "CrossValidationReport",
    "HoldoutReport",
    "RegressionCVReport",
    "RegressionMetrics",
    "Split",
    "classification_metrics",
    "cross_validate",
    "cross_validate_regression",
    "evaluate_holdout",
    "holdout_split",
    "regression_metrics",
]

JsonDict = dict[str, object]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Scores for one set of predictions.

    ``confusion[i][j]`` counts rows of true class ``labels[i]`` predicted as ``labels[j]``.
    ``precision`` and ``recall`` are keyed by the label as a string (JSON keys are
    strings); a class never predicted has precision 0, as in scikit-learn.
    """

    accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: list[list[int]]
    labels: list[int]
    n: int

    def to_dict(self) -> JsonDict:
        return dataclasses.asdict(self)


def classification_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, labels: Sequence[int] | None = None
) -> ClassificationMetrics:
    """Accuracy, macro F1, per-class precision and recall and the confusion matrix.

    ``labels`` fixes the classes (and their order); by default the sorted union of both.
    """
    true = as_labels(y_true, len(np.asarray(y_true)), "classification_metrics y_true")
    pred = as_labels(y_pred, len(true), "classification_metrics y_pred")
    if len(true) == 0:
        raise SchemaError("classification_metrics: no predictions to score", field="y_true")
    classes = np.unique(np.concatenate([true, pred])) if labels is None else np.asarray(labels)
    for name, values in (("y_true", true), ("y_pred", pred)):
        if not np.isin(values, classes).all():  # sklearn would drop those rows silently
            raise SchemaError(
                f"classification_metrics: {name} holds labels outside labels={classes.tolist()}",
                field=name,
            )
    precision, recall, _, _ = precision_recall_fscore_support(
        true, pred, labels=classes, average=None, zero_division=0
    )
    keys = [str(int(c)) for c in classes]
    return ClassificationMetrics(
        accuracy=float(accuracy_score(true, pred)),
        macro_f1=float(f1_score(true, pred, labels=classes, average="macro", zero_division=0)),
        precision=dict(zip(keys, np.asarray(precision, np.float64).tolist(), strict=True)),
        recall=dict(zip(keys, np.asarray(recall, np.float64).tolist(), strict=True)),
        confusion=confusion_matrix(true, pred, labels=classes).tolist(),
        labels=[int(c) for c in classes],
        n=len(true),
    )


@dataclass(frozen=True)
class RegressionMetrics:
    """Errors of predicted numbers, in the target's units (``mape`` a fraction: 0.1 is 10%).

    ``mape`` is None when some true value is zero: a percentage of zero means nothing.
    """

    rmse: float
    mae: float
    r2: float
    mape: float | None
    n: int

    def to_dict(self) -> JsonDict:
        return dataclasses.asdict(self)


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> RegressionMetrics:
    """RMSE, MAE, R² and (when no true value is zero) MAPE, from `sklearn.metrics`."""
    true = as_target(y_true, len(np.asarray(y_true)), "regression_metrics y_true", constant_ok=True)
    pred = as_target(y_pred, len(true), "regression_metrics y_pred", constant_ok=True)
    if len(true) == 0:
        raise SchemaError("regression_metrics: no predictions to score", field="y_true")
    mape = None if np.any(true == 0) else float(mean_absolute_percentage_error(true, pred))
    return RegressionMetrics(
        rmse=float(root_mean_squared_error(true, pred)),
        mae=float(mean_absolute_error(true, pred)),
        r2=float(r2_score(true, pred)) if len(true) > 1 else float("nan"),
        mape=mape,
        n=len(true),
    )


# -- holdout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Row indices of a stratified holdout split (indices, so any X shape can be split)."""

    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def holdout_split(
    y: npt.ArrayLike, *, fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> Split:
    """Hold out ``fraction`` of the rows, seeded; the same share of every class unless
    ``stratify`` is off (a numeric target has no classes)."""
    _check_fraction(fraction)
    labels = as_labels(y, len(np.asarray(y)), "holdout_split") if stratify else None
    rows = np.arange(len(np.asarray(y)), dtype=np.int64)
    try:
        train, test = train_test_split(rows, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few rows of some class to put one on each side
        raise SchemaError(f"cannot hold out {fraction:g} stratified: {exc}", field="y") from exc
    return Split(train=np.sort(train), test=np.sort(test))


@dataclass(frozen=True)
class HoldoutReport:
    """Scores on the held-out rows, with what was held out and what was predicted."""

    metrics: ClassificationMetrics | RegressionMetrics
    n_train: int
    n_test: int
    fraction: float | None
    seed: int
    test_rows: list[int] | None
    predictions: list[int] | list[float]

    def to_dict(self) -> JsonDict:
        return dataclasses.asdict(self)


def evaluate_holdout(
    estimator: Estimator,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    validation: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    fraction: float = 0.2,
    seed: int = 0,
) -> HoldoutReport:
    """Fit ``estimator`` (in place, so it can be saved after) and score it on unseen rows.

    With ``validation`` it trains on all of ``X`` and scores on that given split;
    otherwise it holds out a stratified ``fraction`` of ``X`` (``test_rows`` says which).
    A regressor is scored with `regression_metrics` on a plain (unstratified) holdout.
    """
    if estimator.task == "regression":
        return _regression_holdout(estimator, X, y, validation, fraction, seed)
    features, labels = np.asarray(X), as_labels(y, len(np.asarray(X)), "evaluate_holdout")
    if validation is not None:
        X_test, y_test = np.asarray(validation[0]), np.asarray(validation[1])
        estimator.fit(features, labels)
        pred = estimator.predict(X_test)
        metrics = classification_metrics(y_test, pred, labels=_labels(labels, y_test))
        return HoldoutReport(metrics, len(labels), len(y_test), None, seed, None, pred.tolist())
    split = holdout_split(labels, fraction=fraction, seed=seed)
    estimator.fit(features[split.train], labels[split.train])
    pred = estimator.predict(features[split.test])
    metrics = classification_metrics(labels[split.test], pred, labels=_labels(labels, None))
    return HoldoutReport(
        metrics,
        len(split.train),
        len(split.test),
        fraction,
        seed,
        split.test.tolist(),
        pred.tolist(),
    )


def _regression_holdout(
    estimator: Estimator,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    validation: tuple[npt.ArrayLike, npt.ArrayLike] | None,
    fraction: float,
    seed: int,
) -> HoldoutReport:
    features = np.asarray(X)
    target = as_target(y, len(features), "evaluate_holdout")
    if validation is not None:
        estimator.fit(features, target)
        pred = np.asarray(estimator.predict(validation[0]), np.float64)
        scores = regression_metrics(validation[1], pred)
        n_test = len(np.asarray(validation[1]))
        return HoldoutReport(scores, len(target), n_test, None, seed, None, pred.tolist())
    split = holdout_split(target, fraction=fraction, seed=seed, stratify=False)
    estimator.fit(features[split.train], target[split.train])
    pred = np.asarray(estimator.predict(features[split.test]), np.float64)
    scores = regression_metrics(target[split.test], pred)
    return HoldoutReport(
        scores,
        len(split.train),
        len(split.test),
        fraction,
        seed,
        split.test.tolist(),
        pred.tolist(),
    )


# -- cross-validation ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionCVReport:
    """One :class:`RegressionMetrics` per fold and their mean and spread."""

    folds: list[RegressionMetrics]
    fold_sizes: list[int]
    mean_rmse: float
    std_rmse: float
    mean_r2: float
    seed: int

    def to_dict(self) -> JsonDict:
        return dataclasses.asdict(self)


def cross_validate_regression(
    estimator: Estimator, X: npt.ArrayLike, y: npt.ArrayLike, *, folds: int = 5, seed: int = 0
) -> RegressionCVReport:
    """Seeded, shuffled k-fold of a regressor: a fresh clone fitted per fold."""
    check_int("cross_validate", "folds", folds, minimum=2)
    features = np.asarray(X)
    target = as_target(y, len(features), "cross_validate")
    if folds > len(target):
        raise ConfigError(f"cross_validate.folds must be <= {len(target)} (rows), got {folds}")
    results: list[RegressionMetrics] = []
    sizes: list[int] = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(features):
        model = clone(estimator).fit(features[train], target[train])
        results.append(regression_metrics(target[test], model.predict(features[test])))
        sizes.append(len(test))
    rmses = np.array([m.rmse for m in results])
    return RegressionCVReport(
        folds=results,
        fold_sizes=sizes,
        mean_rmse=float(rmses.mean()),
        std_rmse=float(rmses.std()),
        mean_r2=float(np.mean([m.r2 for m in results])),
        seed=seed,
    )


@dataclass(frozen=True)
class CrossValidationReport:
    """One :class:`ClassificationMetrics` per fold and their mean and spread."""

    folds: list[ClassificationMetrics]
    fold_sizes: list[int]
    mean_accuracy: float
    std_accuracy: float
    mean_macro_f1: float
    seed: int

    def to_dict(self) -> JsonDict:
        return dataclasses.asdict(self)


def cross_validate(
    estimator: Estimator,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    folds: int = 5,
    seed: int = 0,
) -> CrossValidationReport | RegressionCVReport:
    """Stratified, seeded k-fold: a fresh clone of ``estimator`` is fitted per fold.

    A regressor goes to `cross_validate_regression` (plain k-fold, regression scores).
    """
    if estimator.task == "regression":
        return cross_validate_regression(estimator, X, y, folds=folds, seed=seed)
    check_int("cross_validate", "folds", folds, minimum=2)
    features, labels = np.asarray(X), as_labels(y, len(np.asarray(X)), "cross_validate")
    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    if folds > smallest:
        raise ConfigError(
            f"cross_validate.folds must be <= {smallest} (rows in the rarest class), got {folds}"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results: list[ClassificationMetrics] = []
    sizes: list[int] = []
    all_labels = _labels(labels, None)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        model = clone(estimator).fit(features[train], labels[train])
        results.append(
            classification_metrics(labels[test], model.predict(features[test]), labels=all_labels)
        )
        sizes.append(len(test))
    accuracies = np.array([m.accuracy for m in results])
    return CrossValidationReport(
        folds=results,
        fold_sizes=sizes,
        mean_accuracy=float(accuracies.mean()),
        std_accuracy=float(accuracies.std()),
        mean_macro_f1=float(np.mean([m.macro_f1 for m in results])),
        seed=seed,
    )


def _check_fraction(fraction: float) -> None:
    if not isinstance(fraction, int | float) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"holdout fraction must be in (0, 1), got {fraction!r}")


def _labels(train: LabelArray, extra: npt.ArrayLike | None) -> list[int]:
    values = train if extra is None else np.concatenate([train, np.asarray(extra, np.int64)])
    return [int(v) for v in np.unique(values)]
