"""One contract for every estimator in the registry, and the registry's own errors."""

from __future__ import annotations

import numpy as np
import pytest

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning import ESTIMATORS, clone, make_estimator

from .conftest import FAST, TORCH_MODELS, fast_estimator


def test_registry_names_match_classes() -> None:
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        assert name in FAST, f"add fast test settings for {name}"


def test_fit_returns_self_and_learns_attributes(estimator_name: str, small: tuple) -> None:
    X, y, _, _ = small
    model = fast_estimator(estimator_name)
    assert not hasattr(model, "classes_")  # __init__ learns nothing
    assert model.fit(X, y) is model
    assert model.classes_.tolist() == list(range(10))
    assert model.n_features_in_ == 64


def test_not_fitted_error_names_class_and_fix(estimator_name: str, small: tuple) -> None:
    model = fast_estimator(estimator_name)
    with pytest.raises(ModelNotFitted, match=rf"{type(model).__name__} is not fitted.*\.fit\("):
        model.predict(small[2])
    with pytest.raises(ModelNotFitted):
        model.predict_proba(small[2])


def test_predictions_have_the_right_shape(estimator_name: str, small: tuple) -> None:
    X, y, X_test, _ = small
    model = fast_estimator(estimator_name).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba >= 0).all()
    pred = model.predict(X_test)
    assert pred.shape == (len(X_test),)
    assert set(pred.tolist()) <= set(range(10))
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])


def test_same_seed_same_model(estimator_name: str, small: tuple) -> None:
    X, y, X_test, _ = small
    first = fast_estimator(estimator_name, seed=3).fit(X, y).predict_proba(X_test)
    second = fast_estimator(estimator_name, seed=3).fit(X, y).predict_proba(X_test)
    if estimator_name in TORCH_MODELS:
        np.testing.assert_allclose(first, second, atol=1e-4)
    else:
        np.testing.assert_array_equal(first, second)


def test_labels_need_not_be_zero_based(estimator_name: str, small: tuple) -> None:
    X, y, X_test, _ = small
    model = fast_estimator(estimator_name).fit(X, y * 10 + 5)
    assert model.classes_.tolist() == [10 * k + 5 for k in range(10)]
    assert set(model.predict(X_test).tolist()) <= set(model.classes_.tolist())


def test_clone_copies_params_not_state(estimator_name: str, small: tuple) -> None:
    model = fast_estimator(estimator_name, seed=7).fit(small[0], small[1])
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "classes_")


def test_bad_input_is_refused(estimator_name: str, small: tuple) -> None:
    X, y, _, _ = small
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(SchemaError, match="NaN"):
        fast_estimator(estimator_name).fit(bad, y)
    with pytest.raises(SchemaError, match="one label per row"):
        fast_estimator(estimator_name).fit(X, y[:-1])
    with pytest.raises(SchemaError, match="two or more"):
        fast_estimator(estimator_name).fit(X, np.zeros(len(X), dtype=np.int64))
    model = fast_estimator(estimator_name).fit(X, y)
    with pytest.raises(SchemaError, match="fitted on 64"):
        model.predict(X[:, :10])


def test_make_estimator_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown model 'xgboost'; known models: adaboost, cnn"):
        make_estimator("xgboost")


def test_make_estimator_lists_known_params() -> None:
    with pytest.raises(ConfigError, match=r"no parameter\(s\) width; its parameters are: density"):
        make_estimator("mlp", width=3)


def test_make_estimator_passes_params() -> None:
    model = make_estimator("mlp", density=64, epochs=3)
    assert model.get_params()["density"] == 64
    assert model.get_params()["dropout"] == 0.3


BAD_PARAMS = [
    ("mlp", "density", 0, r"MLPClassifier\.density must be an integer in \[1, 100000\], got 0"),
    ("mlp", "density", -3, r"density must be an integer in \[1, "),
    ("mlp", "density", 2.5, r"density must be an integer in \[1, "),
    ("mlp", "density", "35", r"density must be an integer in \[1, 100000\], got '35'"),
    ("mlp", "dropout", 1.0, r"MLPClassifier\.dropout must be a number in \[0, 1\), got 1\.0"),
    ("mlp", "dropout", -0.1, r"dropout must be a number in \[0, 1\)"),
    ("mlp", "l2", -0.01, r"MLPClassifier\.l2 must be a number in \[0, 10\]"),
    ("mlp", "learning_rate", 0.0, r"learning_rate must be a number in \(0, 10\]"),
    ("mlp", "epochs", 0, r"epochs must be an integer in \[1, 10000\]"),
    ("mlp", "batch_size", True, r"batch_size must be an integer in \[1, 1000000\], got True"),
    ("mlp", "schedule", "linear", r"schedule must be one of cosine, constant, got 'linear'"),
    ("mlp", "seed", -1, r"seed must be an integer in \[0, 4294967295\]"),
    ("mlp", "seed", 2**32, r"seed must be an integer in \[0, 4294967295\]"),
    ("mlp", "patience", 0, r"patience must be an integer in \[1, 10000\], or none"),
    ("mlp", "n_threads", 0, r"n_threads must be an integer >= 1"),
    ("cnn", "channels", 0, r"CNNClassifier\.channels must be an integer in \[1, 1024\]"),
    ("cnn", "dropout", 1.5, r"CNNClassifier\.dropout must be a number in \[0, 1\)"),
    ("logistic", "c", 0.0, r"LogisticClassifier\.c must be a number in \(0, 1000000\]"),
    ("random_forest", "n_estimators", 0, r"ForestClassifier\.n_estimators must be an integer"),
    ("random_forest", "max_depth", 0, r"max_depth must be an integer in \[1, 1000\], or none"),
    ("random_forest", "n_jobs", 0, r"n_jobs must be an integer >= 1"),
    ("adaboost", "learning_rate", -1.0, r"AdaBoostClassifier\.learning_rate must be a number in"),
    ("hist_gradient_boosting", "max_leaf_nodes", 1, r"max_leaf_nodes must be an integer in \[2,"),
]


@pytest.mark.parametrize(
    ("name", "param", "value", "message"),
    BAD_PARAMS,
    ids=[f"{n}-{p}-{v}" for n, p, v, _ in BAD_PARAMS],
)
def test_bad_params_are_refused_in_fit(
    name: str, param: str, value: object, message: str, small: tuple
) -> None:
    model = ESTIMATORS[name](**{**FAST[name], param: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        model.fit(small[0], small[1])


@pytest.mark.parametrize(
    ("name", "param", "value", "message"),
    [case for case in BAD_PARAMS if case[1] not in {"n_threads", "n_jobs"}],
)
def test_make_estimator_refuses_bad_params_before_any_fit(
    name: str, param: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_estimator(name, **{param: value})  # type: ignore[arg-type]


def test_patience_without_validation_data_is_refused_in_fit(small: tuple) -> None:
    model = make_estimator("mlp", **{**FAST["mlp"], "patience": 2})
    with pytest.raises(ConfigError, match=r"patience needs fit\(\.\.\., validation_data"):
        model.fit(small[0], small[1])
