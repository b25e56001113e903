"""Pipeline runs' SQL: runs and their steps, fires claimed once, one lease per pipeline.

Starting a run is one transaction under a lock on the pipeline's name
(`begin_run`): the lease is taken (a live holder's lease refuses; an expired or dead
one's run is marked ``abandoned``, its fire freed, and the lease taken over), the
fire is claimed (a fire another scheduler already ran is not run again), and the run
row is written.
Ending one (`end_run`) moves the ``best`` alias, writes the outcome and lets the
lease go in one transaction too, so a run is never half-promoted.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from headwater.errors import NotFound
from headwater.storage.warehouse.base import Warehouse, as_time, as_time_or_none

__all__ = [
    "Begun",
    "PipelineRunRow",
    "StepRow",
    "TrialRow",
    "abandon_dead",
    "begin_run",
    "end_run",
    "finish_step",
    "first_seen",
    "get_run",
    "heartbeat",
    "last_data_fire",
    "last_fire_at",
    "list_runs",
    "list_trials",
    "note_step",
    "record_trial",
    "start_step",
    "untrained_batches",
]

Begun = Literal["started", "already-fired", "busy"]
Alive = Callable[[str], bool]
"""Whether a lease holder (``host:pid:token``) is still running, as far as can be told."""

JsonDict = dict[str, object]


@dataclass(frozen=True)
class StepRow:
    position: int
    step: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    outcome: JsonDict
    error: str | None


@dataclass(frozen=True)
class PipelineRunRow:
    pipeline_run_id: str
    pipeline: str
    dataset: str
    trigger: str
    fire_key: str | None
    status: str
    outcome: str | None
    error: str | None
    holder: str
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    batch_ids: list[int]
    run_ids: list[str]
    champion_run_id: str | None
    challenger_run_id: str | None
    promoted: bool
    steps: list[StepRow] = field(default_factory=list)


_COLUMNS = (
    "pipeline_run_id, pipeline, dataset, trigger, fire_key, status, outcome, error, holder, "
    "started_at, heartbeat_at, finished_at, batch_ids_json, run_ids_json, champion_run_id, "
    "challenger_run_id, promoted"
)


def _row(r: tuple[object, ...]) -> PipelineRunRow:
    return PipelineRunRow(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        None if r[4] is None else str(r[4]),
        str(r[5]),
        None if r[6] is None else str(r[6]),
        None if r[7] is None else str(r[7]),
        str(r[8]),
        as_time(r[9]),
        as_time(r[10]),
        as_time_or_none(r[11]),
        [int(b) for b in json.loads(str(r[12]))],
        [str(x) for x in json.loads(str(r[13]))],
        None if r[14] is None else str(r[14]),
        None if r[15] is None else str(r[15]),
        bool(r[16]),
    )


def _lock(wh: Warehouse, pipeline: str) -> None:
    wh.hold_lock("pipeline", zlib.crc32(pipeline.encode()))


def first_seen(wh: Warehouse, pipeline: str, now: datetime) -> datetime:
    """When a scheduler first saw this pipeline: fires before it were never due."""
    with wh.transaction():
        _lock(wh, pipeline)
        found = wh.fetch_value(
            "SELECT first_seen_at FROM pipeline_state WHERE pipeline = %s", [pipeline]
        )
        if found is not None:
            return as_time(found)
        wh.execute(
            "INSERT INTO pipeline_state (pipeline, first_seen_at) VALUES (%s, %s)", [pipeline, now]
        )
        return now


def last_fire_at(wh: Warehouse, pipeline: str) -> datetime | None:
    """The latest scheduled fire claimed for this pipeline."""
    value = wh.fetch_value(
        "SELECT max(fire_at) FROM pipeline_fire WHERE pipeline = %s AND fire_at IS NOT NULL",
        [pipeline],
    )
    return as_time_or_none(value)


def last_data_fire(wh: Warehouse, pipeline: str) -> str | None:
    """The fire key of the latest new-data fire (``data:<fingerprint>``), if any."""
    value = wh.fetch_value(
        "SELECT fire_key FROM pipeline_fire WHERE pipeline = %s AND fire_key LIKE 'data:%%' "
        "ORDER BY claimed_at DESC LIMIT 1",
        [pipeline],
    )
    return None if value is None else str(value)


def _abandon(wh: Warehouse, run_id: str, now: datetime, why: str) -> None:
    """Mark a dead worker's run abandoned and free its fire, so the fire runs again, once."""
    wh.execute("DELETE FROM pipeline_fire WHERE pipeline_run_id = %s", [run_id])
    wh.execute(
        "UPDATE pipeline_run SET status = 'abandoned', finished_at = %s, error = %s "
        "WHERE pipeline_run_id = %s AND status = 'running'",
        [now, why, run_id],
    )
    wh.execute(
        "UPDATE pipeline_step SET status = 'failed', finished_at = %s, error = %s "
        "WHERE pipeline_run_id = %s AND status = 'running'",
        [now, why, run_id],
    )


def _lease_free(wh: Warehouse, pipeline: str, now: datetime, alive: Alive) -> bool | None:
    """True: no lease; False: a live holder has it; None: a dead or expired one (run abandoned)."""
    row = wh.fetch_one(
        "SELECT holder, pipeline_run_id, expires_at FROM pipeline_lease WHERE pipeline = %s",
        [pipeline],
    )
    if row is None:
        return True
    holder, run_id, expires = str(row[0]), str(row[1]), as_time(row[2])
    if expires > now and alive(holder):
        return False
    why = (
        "abandoned: its worker stopped renewing the lease"
        if expires <= now
        else (f"abandoned: its worker {holder} is gone")
    )
    _abandon(wh, run_id, now, why)
    return None


def begin_run(
    wh: Warehouse,
    run: PipelineRunRow,
    *,
    fire_at: datetime | None,
    expires_at: datetime,
    alive: Alive,
) -> Begun:
    """Claim the run's fire and the pipeline's lease, and record the run; see the docstring."""
    with wh.transaction():
        _lock(wh, run.pipeline)
        free = _lease_free(wh, run.pipeline, run.started_at, alive)
        if free is False:
            return "busy"
        if run.fire_key is not None and wh.fetch_one(
            "SELECT 1 FROM pipeline_fire WHERE pipeline = %s AND fire_key = %s",
            [run.pipeline, run.fire_key],
        ):
            return "already-fired"
        if free is None:
            wh.execute(
                "UPDATE pipeline_lease SET holder = %s, pipeline_run_id = %s, expires_at = %s "
                "WHERE pipeline = %s",
                [run.holder, run.pipeline_run_id, expires_at, run.pipeline],
            )
        else:
            wh.execute(
                "INSERT INTO pipeline_lease (pipeline, holder, pipeline_run_id, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                [run.pipeline, run.holder, run.pipeline_run_id, expires_at],
            )
        if run.fire_key is not None:
            wh.execute(
                "INSERT INTO pipeline_fire (pipeline, fire_key, fire_at, claimed_at, "
                "pipeline_run_id) VALUES (%s, %s, %s, %s, %s)",
                [run.pipeline, run.fire_key, fire_at, run.started_at, run.pipeline_run_id],
            )
        wh.execute(
            f"INSERT INTO pipeline_run ({_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, 'running', NULL, NULL, %s, %s, %s, NULL, '[]', '[]', "
            "NULL, NULL, FALSE)",
            [
                run.pipeline_run_id,
                run.pipeline,
                run.dataset,
                run.trigger,
                run.fire_key,
                run.holder,
                run.started_at,
                run.started_at,
            ],
        )
    return "started"


def heartbeat(
    wh: Warehouse, run_id: str, holder: str, *, now: datetime, expires_at: datetime
) -> None:
    """Renew a running run's lease: while renewed, no other scheduler takes the pipeline over."""
    with wh.transaction():
        wh.execute(
            "UPDATE pipeline_run SET heartbeat_at = %s WHERE pipeline_run_id = %s", [now, run_id]
        )
        wh.execute(
            "UPDATE pipeline_lease SET expires_at = %s WHERE pipeline_run_id = %s AND holder = %s",
            [expires_at, run_id, holder],
        )


def start_step(wh: Warehouse, run_id: str, position: int, step: str, *, now: datetime) -> None:
    wh.execute(
        "INSERT INTO pipeline_step (pipeline_run_id, position, step, status, started_at) "
        "VALUES (%s, %s, %s, 'running', %s)",
        [run_id, position, step, now],
    )


def finish_step(
    wh: Warehouse,
    run_id: str,
    position: int,
    *,
    status: str,
    now: datetime,
    seconds: float,
    outcome: JsonDict | None,
    error: str | None = None,
) -> None:
    """End a step; ``outcome`` None keeps what `note_step` wrote while it ran (a failed step)."""
    wh.execute(
        "UPDATE pipeline_step SET status = %s, finished_at = %s, seconds = %s, "
        "outcome_json = coalesce(%s, outcome_json), error = %s "
        "WHERE pipeline_run_id = %s AND position = %s",
        [
            status,
            now,
            seconds,
            None if outcome is None else json.dumps(outcome, default=str),
            error,
            run_id,
            position,
        ],
    )


def note_step(wh: Warehouse, run_id: str, position: int, outcome: JsonDict) -> None:
    """What a running step has done so far (the batches an ingest committed): a run killed
    or failed in the middle of the step leaves it for the next run (`untrained_batches`)."""
    wh.execute(
        "UPDATE pipeline_step SET outcome_json = %s WHERE pipeline_run_id = %s AND position = %s",
        [json.dumps(outcome, default=str), run_id, position],
    )


def end_run(
    wh: Warehouse,
    run: PipelineRunRow,
    *,
    now: datetime,
    alias: tuple[int, str] | None,
) -> None:
    """Record how a run ended, move ``best`` to ``alias`` (dataset key, run id), free the lease."""
    with wh.transaction():
        if alias is not None:
            dataset_key, run_id = alias
            wh.execute(
                "DELETE FROM run_alias WHERE dataset_key = %s AND alias = 'best'", [dataset_key]
            )
            wh.execute(
                "INSERT INTO run_alias (dataset_key, alias, run_id, set_at) "
                "VALUES (%s, 'best', %s, %s)",
                [dataset_key, run_id, now],
            )
        wh.execute(
            "UPDATE pipeline_run SET status = %s, outcome = %s, error = %s, finished_at = %s, "
            "heartbeat_at = %s, batch_ids_json = %s, run_ids_json = %s, champion_run_id = %s, "
            "challenger_run_id = %s, promoted = %s WHERE pipeline_run_id = %s",
            [
                run.status,
                run.outcome,
                run.error,
                now,
                now,
                json.dumps(run.batch_ids),
                json.dumps(run.run_ids),
                run.champion_run_id,
                run.challenger_run_id,
                run.promoted,
                run.pipeline_run_id,
            ],
        )
        wh.execute(
            "DELETE FROM pipeline_lease WHERE pipeline = %s AND holder = %s",
            [run.pipeline, run.holder],
        )


def untrained_batches(wh: Warehouse, pipeline: str) -> list[int]:
    """Batches a pipeline's abandoned or failed runs ingested since its last succeeded run.

    A run killed or failed after its ingest committed leaves batches no model of the
    pipeline was compared on; the loads are no-ops the next time (their fingerprints
    are known), so the next run takes these ids from the ended runs' ingest steps.
    """
    rows = wh.fetch(
        "SELECT s.outcome_json FROM pipeline_run r LEFT JOIN pipeline_step s "
        "ON s.pipeline_run_id = r.pipeline_run_id AND s.step = 'ingest' "
        "WHERE r.pipeline = %s AND r.status IN ('abandoned', 'failed') AND NOT EXISTS "
        "(SELECT 1 FROM pipeline_run later WHERE later.pipeline = r.pipeline "
        "AND later.status = 'succeeded' AND later.started_at > r.started_at) "
        "ORDER BY r.started_at",
        [pipeline],
    )
    found: dict[int, None] = {}
    for (outcome,) in rows:
        ingested = json.loads(str(outcome)).get("batch_ids", []) if outcome is not None else []
        found.update(dict.fromkeys(int(b) for b in ingested))
    return list(found)


def abandon_dead(wh: Warehouse, *, now: datetime, alive: Alive) -> list[str]:
    """Mark ``abandoned`` every running run whose lease expired or whose worker is gone."""
    rows = wh.fetch("SELECT DISTINCT pipeline FROM pipeline_lease")
    done = []
    for (pipeline,) in rows:
        with wh.transaction():
            _lock(wh, str(pipeline))
            run_id = wh.fetch_value(
                "SELECT pipeline_run_id FROM pipeline_lease WHERE pipeline = %s", [str(pipeline)]
            )
            if run_id is not None and _lease_free(wh, str(pipeline), now, alive) is None:
                wh.execute("DELETE FROM pipeline_lease WHERE pipeline = %s", [str(pipeline)])
                done.append(str(run_id))
    return done


def _steps(wh: Warehouse, run_id: str) -> list[StepRow]:
    rows = wh.fetch(
        "SELECT position, step, status, started_at, finished_at, seconds, outcome_json, error "
        "FROM pipeline_step WHERE pipeline_run_id = %s ORDER BY position",
        [run_id],
    )
    return [
        StepRow(
            int(str(r[0])),
            str(r[1]),
            str(r[2]),
            as_time(r[3]),
            as_time_or_none(r[4]),
            None if r[5] is None else float(str(r[5])),
            json.loads(str(r[6])) if r[6] is not None else {},
            None if r[7] is None else str(r[7]),
        )
        for r in rows
    ]


def get_run(wh: Warehouse, run_id: str) -> PipelineRunRow:
    row = wh.fetch_one(f"SELECT {_COLUMNS} FROM pipeline_run WHERE pipeline_run_id = %s", [run_id])
    if row is None:
        raise NotFound(f"no pipeline run {run_id!r}; see headwater pipeline history NAME")
    found = _row(row)
    found.steps.extend(_steps(wh, run_id))
    return found


def list_runs(
    wh: Warehouse, pipeline: str | None = None, *, limit: int = 100
) -> list[PipelineRunRow]:
    """Runs newest first, with their steps; of one pipeline or of all."""
    where = "WHERE pipeline = %s " if pipeline is not None else ""
    rows = wh.fetch(
        f"SELECT {_COLUMNS} FROM pipeline_run {where}ORDER BY started_at DESC LIMIT %s",
        [*([pipeline] if pipeline is not None else []), limit],
    )
    found = [_row(r) for r in rows]
    for run in found:
        run.steps.extend(_steps(wh, run.pipeline_run_id))
    return found


@dataclass(frozen=True)
class TrialRow:
    number: int
    run_id: str | None
    state: str
    value: float | None
    params: JsonDict


def record_trial(wh: Warehouse, study: str, trial: TrialRow, *, now: datetime) -> None:
    wh.execute(
        "INSERT INTO tune_trial (study, number, run_id, state, value, params_json, finished_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            study,
            trial.number,
            trial.run_id,
            trial.state,
            trial.value,
            json.dumps(trial.params, sort_keys=True),
            now,
        ],
    )


def list_trials(wh: Warehouse, study: str) -> list[TrialRow]:
    """A study's recorded trials, in order: what a resumed search starts from."""
    rows = wh.fetch(
        "SELECT number, run_id, state, value, params_json FROM tune_trial WHERE study = %s "
        "ORDER BY number",
        [study],
    )
    return [
        TrialRow(
            int(str(r[0])),
            None if r[1] is None else str(r[1]),
            str(r[2]),
            None if r[3] is None else float(str(r[3])),
            json.loads(str(r[4])),
        )
        for r in rows
    ]
