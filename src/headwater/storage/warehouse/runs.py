"""The run registry's SQL: runs, their epochs, artifacts, aliases and the exact rows they saw."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from headwater.errors import RunNotFound
from headwater.storage.warehouse.base import Warehouse, as_time, as_time_or_none

__all__ = [
    "ENDED",
    "LIVE",
    "ArtifactRow",
    "DataRow",
    "RunRow",
    "Worker",
    "abandon_run",
    "beat",
    "create_run",
    "delete_run",
    "finish_run",
    "get_alias",
    "get_run",
    "interrupt_run",
    "list_runs",
    "live_runs",
    "record_artifacts",
    "record_data",
    "record_epoch",
    "rows_hash",
    "run_artifacts",
    "run_data",
    "run_epochs",
    "run_exists",
    "run_names",
    "run_rows",
    "set_alias",
    "start_run",
    "update_progress",
]

JsonDict = dict[str, object]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    dataset: str
    model: str
    params: JsonDict
    seed: int
    evaluation: str
    status: str
    code_version: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    train_seconds: float | None
    metrics: JsonDict
    progress: JsonDict
    error: str | None
    heartbeat_at: datetime | None = None
    worker_pid: int | None = None
    worker_host: str | None = None


@dataclass(frozen=True)
class Worker:
    """The process a run lives in: its pid on its host."""

    pid: int
    host: str


@dataclass(frozen=True)
class ArtifactRow:
    name: str
    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class DataRow:
    role: str
    row_count: int
    rows_hash: str
    batch_ids: list[int]


_RUN_COLUMNS = (
    "r.run_id, d.name, r.model, r.params_json, r.seed, r.evaluation, r.status, r.code_version, "
    "r.created_at, r.started_at, r.finished_at, r.train_seconds, r.metrics_json, "
    "r.progress_json, r.error, r.heartbeat_at, r.worker_pid, r.worker_host"
)
LIVE = ("queued", "running")
"""A run in one of these states has a worker that should still be alive."""
ENDED = ("succeeded", "failed", "interrupted", "abandoned", "pruned")
"""A run in one of these states is over: nothing will change it again."""


def _json(text: object) -> JsonDict:
    if text is None:
        return {}
    value = json.loads(str(text))
    return value if isinstance(value, dict) else {}


def _run(row: tuple[object, ...]) -> RunRow:
    (
        run_id,
        dataset,
        model,
        params,
        seed,
        evaluation,
        status,
        code,
        created,
        started,
        finished,
        seconds,
        metrics,
        progress,
        error,
        heartbeat,
        pid,
        host,
    ) = row
    return RunRow(
        str(run_id),
        str(dataset),
        str(model),
        _json(params),
        int(str(seed)),
        str(evaluation),
        str(status),
        str(code),
        as_time(created),
        as_time_or_none(started),
        as_time_or_none(finished),
        None if seconds is None else float(str(seconds)),
        _json(metrics),
        _json(progress),
        None if error is None else str(error),
        as_time_or_none(heartbeat),
        None if pid is None else int(str(pid)),
        None if host is None else str(host),
    )


def rows_hash(row_keys: np.ndarray) -> str:
    """sha256 of the sorted row keys: the same rows give the same hash, whatever their order."""
    ordered = np.sort(np.asarray(row_keys, dtype=np.int64)).astype("<i8")
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def create_run(
    wh: Warehouse,
    *,
    run_id: str,
    dataset_key: int,
    model: str,
    params: JsonDict,
    seed: int,
    evaluation: str,
    code_version: str,
    now: datetime,
    worker: Worker | None = None,
) -> None:
    wh.execute(
        "INSERT INTO dim_run (run_id, dataset_key, model, params_json, seed, evaluation, status, "
        "code_version, created_at, heartbeat_at, worker_pid, worker_host) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s, %s)",
        [
            run_id,
            dataset_key,
            model,
            json.dumps(params, sort_keys=True),
            seed,
            evaluation,
            code_version,
            now,
            now,
            None if worker is None else worker.pid,
            None if worker is None else worker.host,
        ],
    )


def delete_run(wh: Warehouse, run_id: str) -> None:
    """Remove every trace of a run, in one transaction: for a run refused before it began."""
    with wh.transaction():
        for table in ("fact_run_epoch", "run_artifact", "run_data", "run_row", "dim_run"):
            wh.execute("DELETE FROM {t} WHERE run_id = %s", [run_id], t=table)


def run_exists(wh: Warehouse, run_id: str) -> bool:
    return wh.fetch_one("SELECT 1 FROM dim_run WHERE run_id = %s", [run_id]) is not None


def start_run(wh: Warehouse, run_id: str, *, now: datetime, worker: Worker | None = None) -> None:
    wh.execute(
        "UPDATE dim_run SET status = 'running', started_at = %s, heartbeat_at = %s, "
        "worker_pid = coalesce(%s, worker_pid), worker_host = coalesce(%s, worker_host) "
        "WHERE run_id = %s",
        [
            now,
            now,
            None if worker is None else worker.pid,
            None if worker is None else worker.host,
            run_id,
        ],
    )


def beat(wh: Warehouse, run_id: str, *, now: datetime, worker: Worker) -> None:
    """The run's worker is alive: refresh its heartbeat (a run that has ended is left alone)."""
    wh.execute(
        "UPDATE dim_run SET heartbeat_at = %s, worker_pid = %s, worker_host = %s "
        "WHERE run_id = %s AND status IN ('queued', 'running')",
        [now, worker.pid, worker.host, run_id],
    )


def interrupt_run(wh: Warehouse, run_id: str, *, now: datetime, reason: str) -> None:
    """Mark a run ``interrupted`` unless it has already ended (a later end is never undone)."""
    wh.execute(
        "UPDATE dim_run SET status = 'interrupted', finished_at = %s, error = %s "
        "WHERE run_id = %s AND status IN ('queued', 'running')",
        [now, reason, run_id],
    )


def live_runs(wh: Warehouse) -> list[RunRow]:
    """Runs whose worker should be alive (queued or running), oldest first."""
    rows = wh.fetch(
        "SELECT " + _RUN_COLUMNS + " FROM dim_run r JOIN dim_dataset d "
        "ON d.dataset_key = r.dataset_key WHERE r.status IN ('queued', 'running') "
        "ORDER BY r.created_at, r.run_id"
    )
    return [_run(r) for r in rows]


def abandon_run(
    wh: Warehouse, run_id: str, *, now: datetime, reason: str, seen: datetime | None
) -> bool:
    """Mark a live run ``abandoned`` unless its heartbeat moved since ``seen``; True if marked."""
    rows = wh.fetch(
        "UPDATE dim_run SET status = 'abandoned', finished_at = %s, error = %s "
        "WHERE run_id = %s AND status IN ('queued', 'running') "
        "AND (heartbeat_at IS NULL OR heartbeat_at <= %s) RETURNING run_id",
        [now, reason, run_id, seen or now],
    )
    return bool(rows)


def update_progress(wh: Warehouse, run_id: str, progress: JsonDict) -> None:
    wh.execute(
        "UPDATE dim_run SET progress_json = %s WHERE run_id = %s",
        [json.dumps(progress, sort_keys=True), run_id],
    )


def finish_run(
    wh: Warehouse,
    run_id: str,
    *,
    status: str,
    now: datetime,
    metrics: JsonDict | None = None,
    train_seconds: float | None = None,
    error: str | None = None,
) -> None:
    wh.execute(
        "UPDATE dim_run SET status = %s, finished_at = %s, metrics_json = %s, train_seconds = %s, "
        "error = %s WHERE run_id = %s",
        [
            status,
            now,
            None if metrics is None else json.dumps(metrics, sort_keys=True),
            train_seconds,
            error,
            run_id,
        ],
    )


def record_epoch(
    wh: Warehouse, run_id: str, epoch: int, metrics: JsonDict, *, now: datetime
) -> None:
    wh.execute(
        "INSERT INTO fact_run_epoch (run_id, epoch, metrics_json, recorded_at) "
        "VALUES (%s, %s, %s, %s)",
        [run_id, epoch, json.dumps(metrics, sort_keys=True), now],
    )


def record_artifacts(wh: Warehouse, run_id: str, artifacts: list[ArtifactRow]) -> None:
    for a in artifacts:
        wh.execute(
            "INSERT INTO run_artifact (run_id, name, path, sha256, size_bytes) "
            "VALUES (%s, %s, %s, %s, %s)",
            [run_id, a.name, a.path, a.sha256, a.size_bytes],
        )


def record_data(
    wh: Warehouse, run_id: str, role: str, row_keys: np.ndarray, batch_ids: list[int]
) -> str:
    """Keep the exact row keys a run saw in one role (train, validation, test), in bulk."""
    digest = rows_hash(row_keys)
    wh.execute(
        "INSERT INTO run_data (run_id, role, row_count, rows_hash, batch_ids) "
        "VALUES (%s, %s, %s, %s, %s)",
        [run_id, role, len(row_keys), digest, json.dumps(sorted(batch_ids))],
    )
    n = len(row_keys)
    wh.load_arrow(
        "run_row",
        pa.table(
            {
                "run_id": pa.repeat(pa.scalar(run_id), n),
                "role": pa.repeat(pa.scalar(role), n),
                "row_key": pa.array(np.asarray(row_keys, dtype=np.int64)),
            }
        ),
    )
    return digest


def get_run(wh: Warehouse, run_id: str) -> RunRow:
    row = wh.fetch_one(
        "SELECT " + _RUN_COLUMNS + " FROM dim_run r JOIN dim_dataset d "
        "ON d.dataset_key = r.dataset_key WHERE r.run_id = %s",
        [run_id],
    )
    if row is None:
        raise RunNotFound(run_id)
    return _run(row)


def list_runs(wh: Warehouse, dataset: str | None = None) -> list[RunRow]:
    rows = wh.fetch(
        "SELECT " + _RUN_COLUMNS + " FROM dim_run r JOIN dim_dataset d "
        "ON d.dataset_key = r.dataset_key WHERE CAST(%s AS TEXT) IS NULL OR d.name = %s "
        "ORDER BY r.created_at, r.run_id",
        [dataset, dataset],
    )
    return [_run(r) for r in rows]


def run_epochs(wh: Warehouse, run_id: str) -> list[JsonDict]:
    rows = wh.fetch(
        "SELECT epoch, metrics_json FROM fact_run_epoch WHERE run_id = %s ORDER BY epoch",
        [run_id],
    )
    return [{"epoch": int(str(e)), **_json(m)} for e, m in rows]


def run_artifacts(wh: Warehouse, run_id: str) -> list[ArtifactRow]:
    rows = wh.fetch(
        "SELECT name, path, sha256, size_bytes FROM run_artifact WHERE run_id = %s ORDER BY name",
        [run_id],
    )
    return [ArtifactRow(str(n), str(p), str(s), int(str(z))) for n, p, s, z in rows]


def run_data(wh: Warehouse, run_id: str) -> list[DataRow]:
    rows = wh.fetch(
        "SELECT role, row_count, rows_hash, batch_ids FROM run_data WHERE run_id = %s "
        "ORDER BY role",
        [run_id],
    )
    return [DataRow(str(r), int(str(c)), str(h), json.loads(str(b))) for r, c, h, b in rows]


def run_rows(wh: Warehouse, run_id: str, role: str) -> np.ndarray:
    table = wh.fetch_arrow(
        "SELECT row_key FROM run_row WHERE run_id = %s AND role = %s ORDER BY row_key",
        [run_id, role],
    )
    keys: np.ndarray = table.column("row_key").to_numpy().astype(np.int64)
    return keys


def set_alias(wh: Warehouse, dataset_key: int, alias: str, run_id: str, *, now: datetime) -> None:
    with wh.transaction():
        wh.execute(
            "DELETE FROM run_alias WHERE dataset_key = %s AND alias = %s", [dataset_key, alias]
        )
        wh.execute(
            "INSERT INTO run_alias (dataset_key, alias, run_id, set_at) VALUES (%s, %s, %s, %s)",
            [dataset_key, alias, run_id, now],
        )


def get_alias(wh: Warehouse, dataset_key: int, alias: str) -> str | None:
    value = wh.fetch_value(
        "SELECT run_id FROM run_alias WHERE dataset_key = %s AND alias = %s", [dataset_key, alias]
    )
    return None if value is None else str(value)


def run_names(wh: Warehouse) -> dict[str, list[str]]:
    """Every run's aliases (the names it was trained or pinned under), oldest first."""
    found: dict[str, list[str]] = {}
    for run_id, alias in wh.fetch("SELECT run_id, alias FROM run_alias ORDER BY set_at, alias"):
        found.setdefault(str(run_id), []).append(str(alias))
    return found
