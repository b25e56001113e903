"""The regressors' contract: numbers out in the target's units, ONNX parity, refusals named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning import (
    Estimator,
    OnnxPredictor,
    clone,
    cross_validate,
    evaluate_holdout,
    load_torch_estimator,
    make_estimator,
    plot_regression,
    regression_metrics,
    save_model,
)
from headwater.learning.base import ParamValue
from headwater.learning.evaluate import RegressionCVReport, RegressionMetrics

from .conftest import fast_estimator


@pytest.fixture(scope="module")
def linear() -> tuple[np.ndarray, ...]:
    """y = 3x0 - 2x1 + 0.5 x2 + N(0, 0.1), in units far from 0..1 (a price in thousands)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = 50_000 + 1000 * (X @ np.array([3.0, -2.0, 0.5, 0.0]) + rng.normal(0, 0.1, 500))
    return X[:400], y[:400], X[400:], y[400:]


def test_fit_predicts_numbers_in_the_target_units(regressor_name: str, linear: tuple) -> None:
    X, y, X_test, y_test = linear
    model = fast_estimator(regressor_name)
    assert model.task == "regression"
    fitted = model.fit(X, y)
    assert fitted is model and model.n_features_in_ == 4
    pred = model.predict(X_test)
    assert pred.shape == (len(X_test),) and pred.dtype == np.float64
    assert abs(model.target_mean_ - y.mean()) < 1e-6 and model.target_std_ > 1000
    # far better than predicting the mean, in the target's own units
    assert regression_metrics(y_test, pred).rmse < 0.7 * y_test.std()


def test_not_fitted_and_no_probabilities(regressor_name: str, linear: tuple) -> None:
    model = fast_estimator(regressor_name)
    with pytest.raises(ModelNotFitted, match=type(model).__name__):
        model.predict(linear[2])
    model.fit(linear[0], linear[1])
    with pytest.raises(ConfigError, match="predicts numbers"):
        model.predict_proba(linear[2])


def test_same_seed_same_model_and_clone_is_unfitted(regressor_name: str, linear: tuple) -> None:
    X, y, X_test, _ = linear
    first = fast_estimator(regressor_name, seed=3).fit(X, y)
    second = fast_estimator(regressor_name, seed=3).fit(X, y)
    np.testing.assert_allclose(first.predict(X_test), second.predict(X_test), rtol=1e-6)
    copy = clone(first)
    assert copy.get_params() == first.get_params() and not hasattr(copy, "n_features_in_")


def test_bad_targets_are_refused_naming_rows(regressor_name: str, linear: tuple) -> None:
    X, y, _, _ = linear
    bad = y.copy()
    bad[[7, 11]] = [np.nan, np.inf]
    with pytest.raises(SchemaError, match=r"2 NaN or infinite value\(s\), rows 7, 11"):
        fast_estimator(regressor_name).fit(X, bad)
    with pytest.raises(SchemaError, match="constant"):
        fast_estimator(regressor_name).fit(X, np.full(len(X), 4.2))
    with pytest.raises(SchemaError, match="numbers"):
        fast_estimator(regressor_name).fit(X, np.array(["a"] * len(X)))


def test_onnx_matches_the_fitted_model(regressor_name: str, linear: tuple, tmp_path: Path) -> None:
    X, y, X_test, _ = linear
    model = fast_estimator(regressor_name).fit(X, y)
    hashes = save_model(model, tmp_path)
    predictor = OnnxPredictor(tmp_path / "model.onnx", hashes["model.onnx"])
    assert predictor.task == "regression" and predictor.classes_.tolist() == []
    np.testing.assert_allclose(predictor.predict_values(X_test), model.predict(X_test), rtol=1e-4)
    assert predictor.predict_values(X_test[:1]).shape == (1,)
    with pytest.raises(ConfigError, match="regressor"):
        predictor.predict_proba(X_test)
    if regressor_name == "mlp_regressor":
        loaded = load_torch_estimator(tmp_path, hashes)
        np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, ...]:
    """y = a smooth function of 5 features plus N(0, NOISE_SD): 1000 rows to fit, 2000 held."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    signal = 2 * X[:, 0] - X[:, 1] + np.sin(2 * X[:, 2]) + (X[:, 3] > 0.5)
    y = 100 + signal + rng.normal(0, NOISE_SD, len(X))
    return X[:1000], y[:1000], X[1000:], y[1000:]


NOISE_SD = 0.5
INTERVAL_MODELS = ("random_forest_regressor", "hist_gradient_boosting_regressor")


@pytest.fixture(scope="module")
def interval_models(noisy: tuple) -> dict[str, Estimator]:
    """Each interval model with its defaults (a smaller forest), fitted once for the tests below."""
    X, y, _, _ = noisy
    params: dict[str, dict[str, ParamValue]] = {INTERVAL_MODELS[0]: {"n_estimators": 40}}
    with threadpool_limits(1):
        return {
            name: make_estimator(name, **params.get(name, {})).fit(X, y) for name in INTERVAL_MODELS
        }


def test_the_90_percent_interval_covers_about_90_percent(
    interval_models: dict[str, Estimator], noisy: tuple
) -> None:
    """Known noise: held-out rows inside the interval, and its width beside the ideal one."""
    _, _, X_test, y_test = noisy
    found = {}
    for name, model in interval_models.items():
        interval = model.predict_interval(X_test)  # type: ignore[attr-defined]
        assert interval is not None
        low, high = interval
        assert np.all(low <= high)
        point = model.predict(X_test)
        assert np.mean((low <= point) & (point <= high)) > 0.95
        covered = float(np.mean((y_test >= low) & (y_test <= high)))
        found[name] = (round(covered, 3), round(float(np.mean(high - low)) / NOISE_SD, 2))
    print("coverage of the 90% interval, mean width / noise sd (ideal 3.29):", found)
    assert all(0.80 <= covered <= 0.97 for covered, _ in found.values()), found
    X, y, _, _ = noisy
    assert fast_estimator("ridge").fit(X, y).predict_interval(X_test) is None  # type: ignore[attr-defined]


def test_the_onnx_graph_serves_the_same_interval(
    interval_models: dict[str, Estimator], noisy: tuple, tmp_path: Path
) -> None:
    X, y, X_test, _ = noisy
    for name, model in interval_models.items():
        hashes = save_model(model, tmp_path / name)
        predictor = OnnxPredictor(tmp_path / name / "model.onnx", hashes["model.onnx"])
        assert predictor.coverage == pytest.approx(0.9)
        values, interval = predictor.predict_interval(X_test)
        assert interval is not None
        np.testing.assert_allclose(values, model.predict(X_test), rtol=1e-5)
        expected = model.predict_interval(X_test)  # type: ignore[attr-defined]
        for served, fitted in zip(interval, expected, strict=True):
            np.testing.assert_allclose(served, fitted, rtol=1e-5, atol=1e-3)
    ridge = fast_estimator("ridge").fit(X, y)
    hashes = save_model(ridge, tmp_path / "ridge")
    predictor = OnnxPredictor(tmp_path / "ridge" / "model.onnx", hashes["model.onnx"])
    assert predictor.coverage is None and predictor.predict_interval(X_test)[1] is None


def test_holdout_and_kfold_score_a_regressor(linear: tuple) -> None:
    X, y, _, _ = linear
    report = evaluate_holdout(fast_estimator("ridge"), X, y, fraction=0.25, seed=1)
    assert isinstance(report.metrics, RegressionMetrics) and report.n_test == 100
    assert report.metrics.r2 > 0.99 and report.metrics.mape is not None
    cv = cross_validate(fast_estimator("ridge"), X, y, folds=4, seed=0)
    assert isinstance(cv, RegressionCVReport) and len(cv.folds) == 4
    assert sum(cv.fold_sizes) == len(y) and cv.mean_rmse == pytest.approx(100, rel=0.2)


def test_regression_metrics_are_sklearns() -> None:
    scores = regression_metrics([1.0, 2.0, 4.0], [1.0, 3.0, 3.0])
    assert scores.rmse == pytest.approx((2 / 3) ** 0.5) and scores.mae == pytest.approx(2 / 3)
    assert scores.r2 == pytest.approx(1 - 2 / (14 / 3))
    assert scores.mape == pytest.approx((0 + 0.5 + 0.25) / 3)
    assert regression_metrics([0.0, 2.0], [1.0, 2.0]).mape is None  # a zero target: no MAPE


def test_regression_plots(tmp_path: Path) -> None:
    written = plot_regression([1.0, 2.0, 3.0, 4.0], [1.1, 1.8, 3.3, 3.9], tmp_path)
    assert [p.name for p in written] == [
        "predicted_vs_actual.png",
        "residuals.png",
        "residual_histogram.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    with pytest.raises(SchemaError):
        plot_regression([1.0], [1.0, 2.0], tmp_path)
