"""The run registry's storage on both backends: runs, epochs, artifacts, exact rows, aliases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from headwater.errors import RunNotFound, WarehouseError
from headwater.settings import Settings
from headwater.storage.warehouse import Warehouse, open_warehouse, runs
from headwater.storage.warehouse import catalog as cat

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        cat.create_dataset(wh, "d", kind="image", label_column="label", schema=None, now=NOW)
        yield wh


def _new_run(wh: Warehouse, run_id: str = "r1") -> None:
    runs.create_run(
        wh,
        run_id=run_id,
        dataset_key=cat.get_dataset(wh, "d").key,
        model="mlp",
        params={"density": 35},
        seed=7,
        evaluation="holdout",
        code_version="abc",
        now=NOW,
    )


def test_run_lifecycle(warehouse: Warehouse) -> None:
    _new_run(warehouse)
    assert runs.get_run(warehouse, "r1").status == "queued"
    runs.start_run(warehouse, "r1", now=NOW)
    runs.record_epoch(warehouse, "r1", 1, {"loss": 0.5}, now=NOW)
    runs.record_epoch(warehouse, "r1", 2, {"loss": 0.25}, now=NOW)
    runs.update_progress(warehouse, "r1", {"epoch": 2})
    runs.finish_run(
        warehouse, "r1", status="succeeded", now=NOW, metrics={"accuracy": 0.9}, train_seconds=1.5
    )
    run = runs.get_run(warehouse, "r1")
    assert (run.status, run.metrics, run.params, run.seed) == (
        "succeeded",
        {"accuracy": 0.9},
        {"density": 35},
        7,
    )
    assert run.progress == {"epoch": 2} and run.train_seconds == 1.5
    assert runs.run_epochs(warehouse, "r1") == [
        {"epoch": 1, "loss": 0.5},
        {"epoch": 2, "loss": 0.25},
    ]
    assert [r.run_id for r in runs.list_runs(warehouse, "d")] == ["r1"]
    assert runs.list_runs(warehouse, "other") == []


def test_exact_rows_and_their_hash(warehouse: Warehouse) -> None:
    _new_run(warehouse)
    keys = np.array([5, 3, 9, 1], dtype=np.int64)
    digest = runs.record_data(warehouse, "r1", "train", keys, [2, 1])
    assert digest == runs.rows_hash(keys[::-1]) != runs.rows_hash(keys[:3])
    assert runs.run_rows(warehouse, "r1", "train").tolist() == [1, 3, 5, 9]
    (data,) = runs.run_data(warehouse, "r1")
    assert (data.role, data.row_count, data.rows_hash, data.batch_ids) == (
        "train",
        4,
        digest,
        [1, 2],
    )


def test_aliases_move(warehouse: Warehouse) -> None:
    key = cat.get_dataset(warehouse, "d").key
    runs.set_alias(warehouse, key, "best", "r1", now=NOW)
    runs.set_alias(warehouse, key, "best", "r2", now=NOW)
    assert runs.get_alias(warehouse, key, "best") == "r2"
    assert runs.get_alias(warehouse, key, "latest") is None


def test_unknown_run(warehouse: Warehouse) -> None:
    with pytest.raises(RunNotFound, match="headwater runs"):
        runs.get_run(warehouse, "nope")


def test_migration_5_keeps_runs_and_admits_interrupted_and_abandoned(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.storage.warehouse import migrations

    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:4])
    with open_warehouse(settings) as wh:
        cat.create_dataset(wh, "d", kind="image", label_column="label", schema=None, now=NOW)
        wh.execute(  # as version 4 wrote it, before heartbeats
            "INSERT INTO dim_run (run_id, dataset_key, model, params_json, seed, evaluation, "
            "status, code_version, created_at, train_seconds, error) "
            "VALUES ('old', %s, 'mlp', %s, 7, 'holdout', 'failed', 'abc', %s, 2.5, 'boom')",
            [cat.get_dataset(wh, "d").key, '{"density": 35}', NOW],
        )
    monkeypatch.setattr(migrations, "MIGRATIONS", every)
    with open_warehouse(settings) as wh:
        old = runs.get_run(wh, "old")
        assert (old.status, old.error, old.train_seconds, old.params) == (
            "failed",
            "boom",
            2.5,
            {"density": 35},
        )
        _new_run(wh, "new")
        runs.finish_run(wh, "new", status="interrupted", now=NOW, error="SIGTERM")
        assert runs.get_run(wh, "new").status == "interrupted"


def test_migration_9_keeps_runs_and_admits_pruned(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.storage.warehouse import migrations

    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:8])
    with open_warehouse(settings) as wh:
        cat.create_dataset(wh, "d", kind="image", label_column="label", schema=None, now=NOW)
        _new_run(wh, "old")
        runs.start_run(wh, "old", now=NOW, worker=runs.Worker(42, "box"))
        runs.finish_run(wh, "old", status="abandoned", now=NOW, error="gone")
        _new_run(wh, "trial")
        with pytest.raises(WarehouseError):  # version 8 has no word for a pruned run
            runs.finish_run(wh, "trial", status="pruned", now=NOW, error="pruned at epoch 2")
    monkeypatch.setattr(migrations, "MIGRATIONS", every)
    with open_warehouse(settings) as wh:
        old = runs.get_run(wh, "old")
        assert (old.status, old.error, old.worker_pid, old.worker_host, old.params) == (
            "abandoned",
            "gone",
            42,
            "box",
            {"density": 35},
        )
        runs.finish_run(wh, "trial", status="pruned", now=NOW, error="pruned at epoch 2")
        assert runs.get_run(wh, "trial").status == "pruned"
        with pytest.raises(WarehouseError):  # the CHECK is still there
            runs.finish_run(wh, "trial", status="sleeping", now=NOW)
