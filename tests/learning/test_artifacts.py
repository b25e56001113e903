"""Saved models: ONNX parity for every estimator, hash checks, safetensors round trip, no pickle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from headwater.data.features import FeatureSpec, Pixels
from headwater.errors import ArtifactTampered, ConfigError, IntegrityError, ModelNotFitted
from headwater.learning import (
    MLPClassifier,
    OnnxPredictor,
    TorchClassifier,
    load_torch_estimator,
    save_model,
)

from .conftest import CLASSIFIERS, TORCH_MODELS, fast_estimator


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, small: tuple) -> dict[str, tuple]:
    """Every registry classifier fitted once and saved once, shared by this module's tests."""
    X, y, _, _ = small
    out = {}
    for name in CLASSIFIERS:
        model = fast_estimator(name).fit(X, y)
        folder = tmp_path_factory.mktemp(name)
        out[name] = (model, folder, save_model(model, folder))
    return out


def test_onnx_matches_the_fitted_model(estimator_name: str, saved: dict, small: tuple) -> None:
    model, folder, hashes = saved[estimator_name]
    X_test = small[2]
    predictor = OnnxPredictor(folder / "model.onnx", hashes["model.onnx"], run_id="run-1")
    np.testing.assert_allclose(
        predictor.predict_proba(X_test), model.predict_proba(X_test), atol=1e-4
    )
    np.testing.assert_array_equal(predictor.classes_, model.classes_)
    np.testing.assert_array_equal(predictor.predict(X_test), model.predict(X_test))


def test_onnx_batch_dimension_is_dynamic(estimator_name: str, saved: dict, small: tuple) -> None:
    _, folder, hashes = saved[estimator_name]
    predictor = OnnxPredictor(folder / "model.onnx", hashes["model.onnx"])
    for rows in (1, 7):
        assert predictor.predict_proba(small[2][:rows]).shape == (rows, 10)


def test_files_and_hashes(estimator_name: str, saved: dict) -> None:
    model, folder, hashes = saved[estimator_name]
    expected = {"model.onnx", "params.json"}
    if estimator_name in TORCH_MODELS:
        expected.add("weights.safetensors")
    assert set(hashes) == expected
    assert {p.name for p in folder.iterdir()} == expected  # no pickle, no joblib, nothing else
    for name, digest in hashes.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    params = json.loads((folder / "params.json").read_text())
    assert params["estimator"] == estimator_name
    assert params["params"] == model.get_params()
    assert params["classes"] == list(range(10))


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_safetensors_reload_reproduces_predictions(name: str, saved: dict, small: tuple) -> None:
    model, folder, hashes = saved[name]
    loaded = load_torch_estimator(folder, hashes, run_id="run-1")
    assert isinstance(loaded, TorchClassifier)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(small[2]), model.predict_proba(small[2]))
    assert loaded.history_ == model.history_


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for item in folder.iterdir():
        (to / item.name).write_bytes(item.read_bytes())
    return to


def test_tampered_onnx_is_refused_naming_file_and_run(saved: dict, tmp_path: Path) -> None:
    _, folder, hashes = saved["logistic"]
    copy = _copy(folder, tmp_path / "copy")
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactTampered, match=r"model\.onnx: artifact of run 'run-42'") as info:
        OnnxPredictor(copy / "model.onnx", hashes["model.onnx"], run_id="run-42")
    assert isinstance(info.value, IntegrityError)
    assert info.value.path == str(copy / "model.onnx")
    assert info.value.run_id == "run-42"


def test_tampered_weights_are_refused(saved: dict, tmp_path: Path) -> None:
    _, folder, hashes = saved["mlp"]
    copy = _copy(folder, tmp_path / "copy")
    (copy / "weights.safetensors").write_bytes(
        b"\x00" + (copy / "weights.safetensors").read_bytes()
    )
    with pytest.raises(ArtifactTampered, match=r"weights\.safetensors"):
        load_torch_estimator(copy, hashes, run_id="r")


def test_tampered_params_are_refused(saved: dict, tmp_path: Path) -> None:
    _, folder, hashes = saved["mlp"]
    copy = _copy(folder, tmp_path / "copy")
    params = json.loads((copy / "params.json").read_text())
    params["params"]["density"] = 99
    (copy / "params.json").write_text(json.dumps(params))
    with pytest.raises(ArtifactTampered, match=r"params\.json"):
        load_torch_estimator(copy, hashes)


def test_sklearn_model_has_no_torch_weights(saved: dict) -> None:
    _, folder, hashes = saved["random_forest"]
    with pytest.raises(ConfigError, match=r"weights\.safetensors"):
        load_torch_estimator(folder, hashes)


def test_feature_spec_is_saved_with_the_model(small: tuple, tmp_path: Path) -> None:
    X, y, _, _ = small
    images = (X.reshape(-1, 8, 8) * 255).astype(np.uint8)
    spec = FeatureSpec([Pixels()]).fit(images)
    model = MLPClassifier(epochs=1).fit(spec.transform(images), y)
    hashes = save_model(model, tmp_path, features=spec)
    assert "features.json" in hashes
    again = FeatureSpec.from_json((tmp_path / "features.json").read_text())
    np.testing.assert_array_equal(again.transform(images), spec.transform(images))


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFitted, match="MLPClassifier is not fitted"):
        save_model(MLPClassifier(), tmp_path)
