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
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, train_test_split

from headwater.errors import ConfigError, SchemaError
from headwater.learning.base import Estimator, LabelArray, as_labels, check_int, clone

__all__ = [
    "ClassificationMetrics",
    "CrossValidationReport",
    "HoldoutReport",
    "Split",
    "classification_metrics",
    "cross_validate",
    "evaluate_holdout",
    "holdout_split",
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


# -- holdout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Row indices of a stratified holdout split (indices, so any X shape can be split)."""

    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def holdout_split(y: npt.ArrayLike, *, fraction: float = 0.2, seed: int = 0) -> Split:
    """Hold out ``fraction`` of the rows, the same share of every class, seeded."""
    _check_fraction(fraction)
    labels = as_labels(y, len(np.asarray(y)), "holdout_split")
    rows = np.arange(len(labels), dtype=np.int64)
    try:
        train, test = train_test_split(rows, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few rows of some class to put one on each side
        raise SchemaError(f"cannot hold out {fraction:g} stratified: {exc}", field="y") from exc
    return Split(train=np.sort(train), test=np.sort(test))


@dataclass(frozen=True)
class HoldoutReport:
    """Scores on the held-out rows, with what was held out and what was predicted."""

    metrics: ClassificationMetrics
    n_train: int
    n_test: int
    fraction: float | None
    seed: int
    test_rows: list[int] | None
    predictions: list[int]

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
    """
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


# -- cross-validation ------------------------------------------------------------------------


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
) -> CrossValidationReport:
    """Stratified, seeded k-fold: a fresh clone of ``estimator`` is fitted per fold."""
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
