"""Metrics against a hand-worked example, and the holdout and k-fold splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from headwater.errors import ConfigError, SchemaError
from headwater.learning import (
    classification_metrics,
    cross_validate,
    evaluate_holdout,
    holdout_split,
)

from .conftest import fast_estimator


def test_metrics_on_a_hand_computed_example() -> None:
    # true 0 0 1 1 2 2 / predicted 0 1 1 1 2 0
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m.labels == [0, 1, 2]
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.precision == pytest.approx({"0": 1 / 2, "1": 2 / 3, "2": 1.0})
    assert m.recall == pytest.approx({"0": 1 / 2, "1": 1.0, "2": 1 / 2})
    # F1 per class: 0.5, 0.8, 2/3
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    m = classification_metrics(y_true, y_pred)
    assert m.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m.confusion == skm.confusion_matrix(y_true, y_pred).tolist()


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    m = classification_metrics([0, 1, 2], [0, 0, 0], labels=[0, 1, 2, 3])
    assert m.precision == {"0": pytest.approx(1 / 3), "1": 0.0, "2": 0.0, "3": 0.0}
    assert m.recall["3"] == 0.0
    assert len(m.confusion) == 4


def test_labels_outside_the_given_list_are_refused() -> None:
    with pytest.raises(SchemaError, match="y_pred holds labels outside"):
        classification_metrics([0, 1], [0, 7], labels=[0, 1])


def test_reports_serialise_to_json(small: tuple) -> None:
    X, y, _, _ = small
    report = cross_validate(fast_estimator("logistic"), X, y, folds=3)
    text = json.dumps(report.to_dict())
    assert json.loads(text)["folds"][0]["labels"] == list(range(10))
    holdout = evaluate_holdout(fast_estimator("logistic"), X, y, fraction=0.25)
    assert json.loads(json.dumps(holdout.to_dict()))["n_test"] == holdout.n_test


def test_holdout_split_is_stratified_and_seeded(small: tuple) -> None:
    y = small[1]
    split = holdout_split(y, fraction=0.25, seed=4)
    assert len(split.test) == 150 and len(split.train) == 450
    assert not set(split.train.tolist()) & set(split.test.tolist())
    share = np.bincount(y[split.test], minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(share - 0.25) < 0.05)
    assert holdout_split(y, fraction=0.25, seed=4).test.tolist() == split.test.tolist()
    assert holdout_split(y, fraction=0.25, seed=5).test.tolist() != split.test.tolist()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_holdout_fraction_outside_zero_one_is_refused(fraction: float, small: tuple) -> None:
    with pytest.raises(ConfigError, match=r"fraction must be in \(0, 1\)"):
        evaluate_holdout(fast_estimator("logistic"), small[0], small[1], fraction=fraction)


def test_holdout_fits_and_scores_the_held_out_rows(small: tuple) -> None:
    X, y, _, _ = small
    model = fast_estimator("random_forest")
    report = evaluate_holdout(model, X, y, fraction=0.2, seed=1)
    assert report.n_train + report.n_test == len(X)
    assert report.test_rows is not None
    rows = np.array(report.test_rows)
    np.testing.assert_array_equal(model.predict(X[rows]), report.predictions)
    assert report.metrics.accuracy == pytest.approx(float((y[rows] == report.predictions).mean()))


def test_holdout_with_a_given_validation_split(small: tuple) -> None:
    X, y, X_val, y_val = small
    report = evaluate_holdout(fast_estimator("logistic"), X, y, validation=(X_val, y_val))
    assert (report.n_train, report.n_test, report.fraction) == (600, 200, None)
    assert report.metrics.n == 200


def test_cross_validation_fold_counts(small: tuple) -> None:
    X, y, _, _ = small
    report = cross_validate(fast_estimator("adaboost"), X, y, folds=4, seed=2)
    assert len(report.folds) == 4
    assert sum(report.fold_sizes) == len(X)
    assert all(m.n == size for m, size in zip(report.folds, report.fold_sizes, strict=True))
    assert report.mean_accuracy == pytest.approx(np.mean([m.accuracy for m in report.folds]))
    again = cross_validate(fast_estimator("adaboost"), X, y, folds=4, seed=2)
    assert again.to_dict() == report.to_dict()


def test_cross_validation_runs_torch_models(small: tuple) -> None:
    report = cross_validate(fast_estimator("mlp", epochs=1), small[0], small[1], folds=2)
    assert len(report.folds) == 2


@pytest.mark.parametrize("folds", [1, 0])
def test_too_few_folds_are_refused(folds: int, small: tuple) -> None:
    with pytest.raises(ConfigError, match="folds must be an integer >= 2"):
        cross_validate(fast_estimator("logistic"), small[0], small[1], folds=folds)


def test_more_folds_than_the_rarest_class_are_refused() -> None:
    X = np.random.default_rng(0).random((12, 3), dtype=np.float32)
    y = np.array([0] * 9 + [1] * 3)
    with pytest.raises(
        ConfigError, match=r"folds must be <= 3 \(rows in the rarest class\), got 4"
    ):
        cross_validate(fast_estimator("logistic"), X, y, folds=4)
