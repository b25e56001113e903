"""The autoencoder anomaly detector: threshold, flags, determinism, ONNX parity, safe files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import (
    ArtifactTampered,
    ConfigError,
    IntegrityError,
    ModelNotFitted,
    SchemaError,
)
from headwater.learning import AutoencoderDetector, OnnxAnomalyScorer
from headwater.learning.anomaly import load_detector, plot_anomaly_grid, save_detector

# Small enough to train in well under a second on the 8x8 digits, big enough to rebuild them.
FAST = {"latent": 8, "hidden": 64, "epochs": 40, "batch_size": 64}


def corrupted(X: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Four kinds of broken rows, built from real ones: the bench's corruptions in miniature."""
    rng = np.random.default_rng(seed)
    return {
        "inverted": 1.0 - X[:5],
        "noise": np.clip(X[5:10] + rng.normal(0, 0.3, X[5:10].shape), 0, 1).astype(np.float32),
        "blank": np.zeros((5, X.shape[1]), np.float32),
        "random": rng.random((5, X.shape[1])).astype(np.float32),
    }


@pytest.fixture(scope="module")
def fitted(small: tuple) -> AutoencoderDetector:
    return AutoencoderDetector(**FAST).fit(small[0])


@pytest.fixture(scope="module")
def saved(
    fitted: AutoencoderDetector, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("detector")
    return folder, save_detector(fitted, folder)


def test_threshold_is_the_quantile_of_the_training_scores(
    fitted: AutoencoderDetector, small: tuple
) -> None:
    X_train = small[0]
    scores = fitted.score(X_train)
    assert scores.dtype == np.float32 and scores.shape == (len(X_train),)
    assert fitted.threshold_ == pytest.approx(float(np.quantile(scores, 0.99)), rel=1e-6)
    np.testing.assert_array_equal(fitted.flag(X_train), scores > fitted.threshold_)
    assert fitted.flag(X_train).sum() == 6  # 1% of 600 rows lie above their own 99th percentile


def test_corrupted_rows_score_above_the_threshold(
    fitted: AutoencoderDetector, small: tuple
) -> None:
    X_test = small[2]
    for kind, rows in corrupted(X_test).items():
        assert fitted.flag(rows).all(), kind
    assert fitted.flag(X_test).mean() < 0.05  # unseen real digits are mostly not flagged


def test_an_empty_row_scores_one_however_faint_its_reconstruction(
    fitted: AutoencoderDetector,
) -> None:
    """Why the score is relative: under plain MSE an empty MNIST image looks most normal."""
    blank = np.zeros((1, 64), np.float32)
    assert fitted.score(blank)[0] == pytest.approx(1.0, abs=1e-6)
    assert fitted.reconstruction_error(blank)[0] > 0


def test_images_are_flattened_and_the_width_is_checked(fitted: AutoencoderDetector) -> None:
    images = np.full((3, 8, 8), 0.5, np.float32)
    np.testing.assert_allclose(fitted.score(images), fitted.score(images.reshape(3, 64)))
    with pytest.raises(SchemaError, match="10 features per row, the model was fitted on 64"):
        fitted.score(np.zeros((2, 10), np.float32))


def test_same_seed_same_detector_other_seed_another(small: tuple) -> None:
    X = small[0][:200]
    params = {**FAST, "epochs": 3}
    first = AutoencoderDetector(**params, seed=3).fit(X)
    again = AutoencoderDetector(**params, seed=3).fit(X)
    other = AutoencoderDetector(**params, seed=4).fit(X)
    np.testing.assert_array_equal(first.score(X), again.score(X))
    assert [h["loss"] for h in first.history_] == [h["loss"] for h in again.history_]
    assert not np.array_equal(first.score(X), other.score(X))


def test_fit_returns_self_and_params_clone(small: tuple) -> None:
    detector = AutoencoderDetector(**{**FAST, "epochs": 1})
    assert detector.fit(small[0][:50]) is detector
    clone = AutoencoderDetector(**detector.get_params())
    assert clone.get_params() == detector.get_params()
    assert not hasattr(clone, "threshold_")
    assert "AutoencoderDetector(latent=8" in repr(clone)


def test_unfitted_and_bad_input_are_refused() -> None:
    with pytest.raises(ModelNotFitted, match="AutoencoderDetector is not fitted"):
        AutoencoderDetector().score(np.zeros((1, 4), np.float32))
    with pytest.raises(SchemaError, match=r"values in 0\.\.1, got 255\.\.255"):
        AutoencoderDetector(epochs=1).fit(np.full((4, 4), 255, np.uint8))
    with pytest.raises(SchemaError, match="NaN"):
        AutoencoderDetector(epochs=1).fit(np.full((4, 4), np.nan, np.float32))


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("quantile", 1.0, r"quantile must be in \(0, 1\)"),
        ("quantile", 0.0, r"quantile must be in \(0, 1\)"),
        ("latent", 0, "latent must be an integer >= 1"),
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("learning_rate", -1.0, "learning_rate must be in"),
        ("seed", -1, "seed must be an integer >= 0"),
    ],
)
def test_bad_hyperparameters_are_refused_in_fit(param: str, value: float, message: str) -> None:
    detector = AutoencoderDetector(**{param: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        detector.fit(np.zeros((4, 4), np.float32))


def test_onnx_scores_match_torch_with_any_batch_size(
    fitted: AutoencoderDetector, saved: tuple[Path, dict[str, str]], small: tuple
) -> None:
    folder, hashes = saved
    scorer = OnnxAnomalyScorer(folder / "model.onnx", hashes["model.onnx"], run_id="run-1")
    assert scorer.threshold_ == fitted.threshold_ and scorer.n_features_in_ == 64
    X = np.concatenate([small[2], *corrupted(small[2]).values()])
    for rows in (X, X[:1], X[:7]):
        score, mse = scorer.scores(rows)
        np.testing.assert_allclose(score, fitted.score(rows), atol=1e-4)
        np.testing.assert_allclose(mse, fitted.reconstruction_error(rows), atol=1e-4)
    np.testing.assert_array_equal(scorer.flag(X), fitted.flag(X))


def test_saved_detector_round_trips_without_pickle(
    fitted: AutoencoderDetector, saved: tuple[Path, dict[str, str]], small: tuple
) -> None:
    folder, hashes = saved
    assert sorted(hashes) == ["model.onnx", "params.json", "weights.safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(hashes)
    meta = json.loads((folder / "params.json").read_text())
    assert meta["format"] == "headwater.anomaly" and meta["threshold"] == fitted.threshold_
    loaded = load_detector(folder, hashes, run_id="run-1")
    np.testing.assert_array_equal(loaded.score(small[2]), fitted.score(small[2]))
    assert loaded.threshold_ == fitted.threshold_ and loaded.input_shape_ == (64,)


@pytest.mark.parametrize("name", ["model.onnx", "weights.safetensors", "params.json"])
def test_a_changed_file_is_refused_before_it_is_parsed(
    saved: tuple[Path, dict[str, str]], tmp_path: Path, name: str
) -> None:
    source, hashes = saved
    for file in source.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    target = tmp_path / name
    target.write_bytes(target.read_bytes() + b" ")
    with pytest.raises(ArtifactTampered, match=rf"{name}: artifact of run 'run-9'") as caught:
        if name == "model.onnx":
            OnnxAnomalyScorer(target, hashes[name], run_id="run-9")
        else:
            load_detector(tmp_path, hashes, run_id="run-9")
    assert isinstance(caught.value, IntegrityError)


def test_grid_is_a_png_and_checks_its_inputs(tmp_path: Path) -> None:
    images = np.zeros((4, 8, 8), np.float32)
    path = plot_anomaly_grid(
        images, [0.1, 0.9, 0.2, 0.5], 0.4, tmp_path / "grid.png", captions=list("abcd")
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SchemaError, match="4 images but 3 scores"):
        plot_anomaly_grid(images, [0.1, 0.2, 0.3], 0.4, tmp_path / "bad.png")
