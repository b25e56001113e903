"""Training runs end to end on both backends: registry, lineage, safe files, bad parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ConfigError, DatasetNotFound, IntegrityError, SchemaError
from headwater.flows import runs as run_flows
from headwater.flows import scoring
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import runs as registry
from tests.builders import write_csv, write_small_digits

FAST_MLP = {"epochs": 4, "density": 32, "batch_size": 32}


@pytest.fixture
def digits_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    return workspace


def test_run_is_registered_with_metrics_plots_and_rows(digits_ws: Workspace) -> None:
    seen: list[int] = []
    run = train(
        digits_ws, TrainRequest("digits", "mlp", FAST_MLP), on_epoch=lambda e, n, m: seen.append(e)
    )
    assert seen == [1, 2, 3, 4]
    assert run.status == "succeeded" and run.params["density"] == 32
    assert 0.5 < float(str(run.metrics["test_accuracy"])) <= 1.0
    detail = run_flows.run_detail(digits_ws, run.run_id)
    assert [e["epoch"] for e in detail.epochs] == [1, 2, 3, 4]
    names = {a.name for a in detail.artifacts}
    assert {
        "model.onnx",
        "weights.safetensors",
        "features.json",
        "params.json",
        "confusion_matrix.png",
        "predictions.png",
        "learning_curves.png",
    } <= names
    assert not any(name.endswith((".pkl", ".joblib")) for name in names)
    roles = {d.role: d for d in detail.data}
    assert roles["test"].row_count == 297
    assert roles["train"].row_count + roles["validation"].row_count == 1500
    for role, data in roles.items():
        keys = registry.run_rows(digits_ws.warehouse, run.run_id, role)
        assert registry.rows_hash(keys) == data.rows_hash and len(keys) == data.row_count
    assert run_flows.leaderboard(digits_ws, "digits")[0].run_id == run.run_id


def test_lineage_survives_a_corrected_label(digits_ws: Workspace, tmp_path: Path) -> None:
    first = train(digits_ws, TrainRequest("digits", "logistic"))
    rows_before = registry.run_rows(digits_ws.warehouse, first.run_id, "train")
    fixed = tmp_path / "fixed" / "digits.npz"
    fixed.parent.mkdir()
    report = digits_ws.ingest(write_small_digits(fixed, change_label_of=0), dataset="digits")
    assert report.rows_loaded == 1 and report.rows_duplicate == 1796
    second = train(digits_ws, TrainRequest("digits", "logistic"))
    hashes = {
        r.run_id: {d.role: d.rows_hash for d in run_flows.run_detail(digits_ws, r.run_id).data}
        for r in (first, second)
    }
    assert hashes[first.run_id]["train"] != hashes[second.run_id]["train"]
    assert np.array_equal(
        registry.run_rows(digits_ws.warehouse, first.run_id, "train"), rows_before
    )
    batches = {d.role: d.batch_ids for d in run_flows.run_detail(digits_ws, first.run_id).data}
    assert batches["train"] == [1]


def test_changed_artifact_is_refused(digits_ws: Workspace) -> None:
    run = train(digits_ws, TrainRequest("digits", "logistic"))
    model = run_flows.load_model(digits_ws, run.run_id)
    assert model.classes == [str(d) for d in range(10)]
    onnx_path = next(
        a.path
        for a in run_flows.run_detail(digits_ws, run.run_id).artifacts
        if a.name == "model.onnx"
    )
    data = bytearray(Path(onnx_path).read_bytes())
    data[-1] ^= 0xFF
    Path(onnx_path).write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        run_flows.load_model(digits_ws, run.run_id)
    assert run.run_id in str(caught.value) and "model.onnx" in str(caught.value)


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (TrainRequest("digits", "mlp", {"density": 0}), ConfigError, "density must be"),
        (TrainRequest("digits", "mlp", {"density": -3}), ConfigError, "density must be"),
        (
            TrainRequest("digits", "mlp", {"dropout": 1.0}),
            ConfigError,
            "dropout must be a number in",
        ),
        (TrainRequest("digits", "mlp", holdout=1.5), ConfigError, "strictly between 0 and 1"),
        (TrainRequest("digits", "transformer"), ConfigError, "unknown model"),
        (TrainRequest("nothing", "mlp"), DatasetNotFound, "does not exist"),
    ],
    ids=["density-0", "density-negative", "dropout-1", "holdout", "model", "dataset"],
)
def test_bad_parameters_register_nothing(
    digits_ws: Workspace, request_: TrainRequest, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        train(digits_ws, request_)
    assert run_flows.list_runs(digits_ws) == []


def test_tabular_without_label_column_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    workspace.ingest(path)
    with pytest.raises(SchemaError, match="no label column"):
        train(workspace, TrainRequest("plain", "logistic"))
    assert run_flows.list_runs(workspace) == []


def test_tabular_training_and_scoring(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 90))
    run = train(workspace, TrainRequest("orders", "random_forest", {"n_estimators": 10}))
    assert run.status == "succeeded"
    out = tmp_path / "scores.csv"
    assert scoring.predict_file(workspace, run.run_id, write_csv(tmp_path / "new.csv", 5), out) == 5
    lines = out.read_text().splitlines()
    assert lines[0] == "row_id,predicted,p_0,p_1,p_2" and len(lines) == 6


@pytest.mark.parametrize(
    ("model", "params", "tolerance"), [("logistic", {}, 0.0), ("mlp", {"epochs": 2}, 1e-4)]
)
def test_same_seed_same_metrics(
    digits_ws: Workspace, model: str, params: dict[str, int], tolerance: float
) -> None:
    a, b = (train(digits_ws, TrainRequest("digits", model, params, seed=3)) for _ in range(2))
    for key in ("test_accuracy", "test_macro_f1", "validation_accuracy"):
        assert abs(float(str(a.metrics[key])) - float(str(b.metrics[key]))) <= tolerance


def test_predict_file_writes_probabilities(digits_ws: Workspace, tmp_path: Path) -> None:
    run = train(digits_ws, TrainRequest("digits", "logistic"))
    out = tmp_path / "predictions.csv"
    written = scoring.predict_file(digits_ws, run.run_id, tmp_path / "digits.npz", out)
    lines = out.read_text().splitlines()
    assert written == 1797 and len(lines) == 1798
    header, first = lines[0].split(","), lines[1].split(",")
    assert header[:2] == ["row_id", "predicted"] and len(header) == 12
    assert abs(sum(float(p) for p in first[2:]) - 1) < 1e-4


@pytest.mark.parametrize(("model", "params"), [("mlp", FAST_MLP), ("logistic", {})])
def test_streamed_memory_mapped_features_train_the_same_model(
    digits_ws: Workspace, monkeypatch: pytest.MonkeyPatch, model: str, params: dict[str, int]
) -> None:
    """Past the memory budget the features go to a memory-mapped file, built a chunk at a time;
    the run learns exactly what it learns from features held in memory."""
    from headwater.flows import training_data

    in_memory = train(digits_ws, TrainRequest("digits", model, params, seed=5))
    monkeypatch.setattr(training_data, "CHUNK_ROWS", 97)  # many chunks, splits cut mid-role
    monkeypatch.setattr(digits_ws.settings, "train_memory_mb", 0)
    cache = digits_ws.settings.home / "cache"
    mapped_during: list[bool] = []

    def on_epoch(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        mapped_during.append(any(cache.glob("*/train.npy")))

    mapped = train(digits_ws, TrainRequest("digits", model, params, seed=5), on_epoch=on_epoch)
    if model == "mlp":
        assert mapped_during and all(mapped_during)
    assert not any(cache.glob("*/*.npy"))  # the cache goes with the run
    for key in ("test_accuracy", "test_macro_f1", "validation_accuracy"):
        assert mapped.metrics[key] == pytest.approx(in_memory.metrics[key], abs=1e-9)
    roles = [
        {d.role: d.rows_hash for d in run_flows.run_detail(digits_ws, r.run_id).data}
        for r in (in_memory, mapped)
    ]
    assert roles[0] == roles[1]


def test_tabular_features_streamed_in_chunks_match(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.flows import training_data

    workspace.ingest(write_csv(tmp_path / "orders.csv", 90))
    whole = train(workspace, TrainRequest("orders", "logistic", seed=2))
    monkeypatch.setattr(training_data, "CHUNK_ROWS", 8)
    monkeypatch.setattr(workspace.settings, "train_memory_mb", 0)
    chunked = train(workspace, TrainRequest("orders", "logistic", seed=2))
    assert chunked.metrics["test_accuracy"] == whole.metrics["test_accuracy"]
    specs = [  # means merged chunk by chunk differ from one pass in the last bits only
        json.loads(
            (workspace.settings.home / "runs" / r.run_id / "features.json").read_text(),
            parse_float=lambda text: round(float(text), 9),
        )
        for r in (whole, chunked)
    ]
    assert specs[0] == specs[1]
