"""Anomaly runs end to end on both backends: train on clean rows, flag a corrupted batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from headwater.errors import ConfigError, IntegrityError, NotFound
from headwater.flows import runs as run_flows
from headwater.flows.anomaly import detector_run, score_batch, train_detector
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import runs as registry
from tests.builders import write_csv

SMALL = {"latent": 8, "hidden": 64, "batch_size": 64}
EPOCHS = 40
CLEAN = 30  # rows 0..29 of the new batch are real, unseen digits
CORRUPTED = {30: "inverted", 31: "inverted", 32: "noise", 33: "noise", 34: "blank", 35: "random"}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return np.clip(bunch.images * 16, 0, 255).astype(np.uint8), bunch.target.astype(np.int64)


@pytest.fixture
def digits_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    """1,200 train and 300 test digits; the last 297 are kept back for the new batch."""
    images, labels = _digits()
    path = tmp_path / "digits.npz"
    np.savez(
        path,
        x_train=images[:1200],
        y_train=labels[:1200],
        x_test=images[1200:1500],
        y_test=labels[1200:1500],
    )
    workspace.ingest(path)
    return workspace


def _ingest_suspect_batch(ws: Workspace, tmp_path: Path) -> int:
    """30 unseen real digits, then 6 broken ones at source rows 30..35."""
    images, labels = _digits()
    rng = np.random.default_rng(0)
    clean, spare = images[1500 : 1500 + CLEAN], images[1600:1602]
    noisy = np.clip(spare + rng.normal(0, 80, spare.shape), 0, 255).astype(np.uint8)
    broken = np.concatenate(
        [
            255 - images[1700:1702],
            noisy,
            np.zeros((1, 8, 8), np.uint8),
            rng.integers(0, 256, (1, 8, 8), dtype=np.uint8),
        ]
    )
    folder = tmp_path / "new"
    folder.mkdir()
    path = folder / "digits.npz"
    np.savez(
        path,
        images=np.concatenate([clean, broken]),
        labels=np.concatenate([labels[1500 : 1500 + CLEAN], labels[:6]]),
    )
    report = ws.ingest(path, dataset="digits")
    assert report.rows_loaded == CLEAN + len(CORRUPTED)
    (batch,) = report.batches
    assert batch.batch_id is not None
    return batch.batch_id


def test_a_corrupted_batch_is_flagged_in_its_quality_report(
    digits_ws: Workspace, tmp_path: Path
) -> None:
    seen: list[int] = []
    run = train_detector(
        digits_ws, "digits", epochs=EPOCHS, params=SMALL, on_epoch=lambda e, n, m: seen.append(e)
    )
    assert seen == list(range(1, EPOCHS + 1))
    assert run.model == "autoencoder" and run.status == "succeeded" and run.params["latent"] == 8
    assert float(str(run.metrics["test_flag_rate"])) < 0.05
    headline = run_flows.run_summary(run)["metrics"]
    assert isinstance(headline, dict)
    assert {"threshold", "test_flag_rate", "train_flagged"} <= set(headline)
    detail = run_flows.run_detail(digits_ws, run.run_id)
    assert len(detail.epochs) == EPOCHS
    names = {a.name for a in detail.artifacts}
    assert {"model.onnx", "weights.safetensors", "params.json", "train_anomalies.png"} <= names
    (train,) = detail.data
    assert train.role == "train" and train.row_count == 1200
    keys = registry.run_rows(digits_ws.warehouse, run.run_id, "train")
    assert registry.rows_hash(keys) == train.rows_hash

    batch_id = _ingest_suspect_batch(digits_ws, tmp_path)
    found = score_batch(digits_ws, "digits", batch_id)

    assert found.run_id == run.run_id and found.n_rows == CLEAN + len(CORRUPTED)
    flagged = [row.source_row for row in found.top]
    assert set(flagged[: len(CORRUPTED)]) == set(CORRUPTED)  # the broken rows come first
    assert found.n_flagged <= len(CORRUPTED) + 1  # at most one real digit flagged too
    scores = [row.score for row in found.top]
    assert scores == sorted(scores, reverse=True)
    assert all(score > found.threshold for score in scores)
    assert found.grid is not None and found.grid.read_bytes()[:4] == b"\x89PNG"

    (report,) = digits_ws.quality("digits", batch_id)
    (check,) = [c for c in report.checks if c.name == "anomaly"]
    assert check.outcome == "warn" and check.count == found.n_flagged
    assert f"of run {run.run_id}" in check.detail and "99th-percentile" in check.detail
    assert f"source rows {flagged[0]}" in check.detail and str(found.grid) in check.detail
    assert report.status == "warned"

    score_batch(digits_ws, "digits", batch_id, run_id=run.run_id)  # again: replaced, not added
    (report,) = digits_ws.quality("digits", batch_id)
    assert [c.name for c in report.checks].count("anomaly") == 1

    model = Path(next(a.path for a in detail.artifacts if a.name == "model.onnx"))
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match=r"model\.onnx: artifact of run"):
        score_batch(digits_ws, "digits", batch_id)


def test_scoring_needs_a_detector_and_a_batch_of_the_dataset(
    digits_ws: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="has no checked batch 999"):
        score_batch(digits_ws, "digits", 999)
    with pytest.raises(NotFound, match="has no anomaly detector yet"):
        score_batch(digits_ws, "digits", 1)
    with pytest.raises(NotFound, match="has no anomaly detector yet"):
        detector_run(digits_ws, "digits")
    with pytest.raises(ConfigError, match="--epochs must be 1 or more"):
        train_detector(digits_ws, "digits", epochs=0)
    with pytest.raises(ConfigError, match=r"quantile must be in \(0, 1\)"):
        train_detector(digits_ws, "digits", params={"quantile": 1.5})
    with pytest.raises(ConfigError, match=r"unknown detector parameters \['depth'\]"):
        train_detector(digits_ws, "digits", params={"depth": 3})
    digits_ws.ingest(write_csv(tmp_path / "orders.csv"))
    with pytest.raises(ConfigError, match="holds tabular rows"):
        train_detector(digits_ws, "orders")
    assert run_flows.list_runs(digits_ws, "digits") == []  # nothing refused was registered


def test_a_memory_mapped_detector_learns_the_same_threshold(
    digits_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the memory budget the detector reads its rows a chunk at a time from a mapped file."""
    from headwater.flows import training_data

    in_memory = train_detector(digits_ws, "digits", epochs=3, params=SMALL)
    monkeypatch.setattr(training_data, "CHUNK_ROWS", 50)
    monkeypatch.setattr(digits_ws.settings, "train_memory_mb", 0)
    mapped = train_detector(digits_ws, "digits", epochs=3, params=SMALL)
    for key in ("threshold", "test_flag_rate", "train_score_mean"):
        assert mapped.metrics[key] == pytest.approx(in_memory.metrics[key], abs=1e-9)
    assert not any((digits_ws.settings.home / "cache").glob("*/*.npy"))
