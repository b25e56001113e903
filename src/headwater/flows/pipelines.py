"""Running a declared pipeline: ingest, quality, train, evaluate, compare, promote.

Each step is recorded in the warehouse as it starts and ends (status, seconds, what
it found), on a pipeline run linked to the batches it loaded and the training runs
it made. The first step that fails stops the run, which ends ``failed`` with the
reason; the ``best`` alias only moves in the run's last transaction (`end_run`), so
a failed or killed run leaves the served model as it was. The batches such a run
loaded are carried over to the pipeline's next run (`store.untrained_batches`), which
trains on them even when its own ingest finds nothing new.

Champion and challenger are compared on the same rows: the challenger's test rows,
through each model's own saved ONNX file and feature transform. The champion is the
run ``best`` serves when the pipeline starts (pinned, or the top of the leaderboard,
which a pipeline then pins so a new run's higher score on other rows cannot take it).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from headwater.data.ingest import boundary
from headwater.errors import ConfigError, HeadwaterError, QualityCheckFailed, WriteConflict
from headwater.flows.pipeline_config import PipelineConfig
from headwater.flows.runs import leaderboard, load_model
from headwater.flows.training import TrainRequest, train
from headwater.flows.training_data import RoleRows, label_mapping, role_chunks, roles_for
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import pipelines as store
from headwater.storage.warehouse import runs as registry
from headwater.storage.warehouse.pipelines import PipelineRunRow

__all__ = [
    "IMAGE_STEPS",
    "STEPS",
    "PipelineRunRow",
    "StepFn",
    "begin_pipeline",
    "finish_pipeline",
    "holder_alive",
    "new_holder",
    "pipeline_history",
    "pipeline_run",
    "pipeline_run_dict",
    "pipeline_summaries",
    "run_pipeline",
    "score_run",
]

log = logging.getLogger("headwater.pipelines")

STEPS = ("ingest", "quality", "train", "evaluate", "compare", "promote")
IMAGE_STEPS = ("images-ingest", "embed", "export")
"""An image pipeline's steps (`flows.image_pipeline`); its first step's name tells its runs."""
StepFn = Callable[[str, str, dict[str, object]], None]
"""Called as (step, status, outcome) when a step starts (``running``) and when it ends."""
JsonDict = dict[str, object]


def new_holder() -> str:
    """Who holds a lease: ``host:pid:token``, so a dead worker on this host is told at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_alive(holder: str) -> bool:
    """False when the holder ran on this host and its process is gone; else assume alive."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def score_run(
    ws: Workspace, run_id: str, dataset: cat.DatasetRow, rows: RoleRows, names: dict[int, str]
) -> JsonDict:
    """Accuracy and macro F1 of a registered model on the given rows, by class name."""
    model = load_model(ws, run_id)
    classes = np.asarray(model.classes, dtype=object)
    predicted = np.empty(len(rows), dtype=object)
    for _, raw, positions in role_chunks(ws, dataset, {"test": rows}):
        predicted[positions] = classes[np.argmax(model.predict_proba(raw), axis=1)]
    truth = np.asarray([names.get(int(c), str(int(c))) for c in rows.y], dtype=object)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "rows": len(rows),
        "rows_hash": registry.rows_hash(rows.row_keys),
    }


@dataclass
class _State:
    """What the steps learn as they go, written to the run when it ends."""

    run: PipelineRunRow
    dataset: cat.DatasetRow | None = None
    champion: str | None = None
    champion_pinned: bool = False
    scores: dict[str, JsonDict] = field(default_factory=dict)
    skip_rest: bool = False


class _Steps:
    """The six steps of one run; each returns what it found, recorded as its outcome."""

    def __init__(self, ws: Workspace, config: PipelineConfig, state: _State, force: bool) -> None:
        self.ws, self.config, self.state, self.force = ws, config, state, force
        self.quality_error: QualityCheckFailed | None = None

    def ingest(self) -> JsonDict:
        """Load the source; batches a killed or failed run before loaded are carried over.

        Without the carry-over, a run killed after its load committed would leave its
        batch to a rerun that finds nothing new and never trains on it.
        """
        carried = store.untrained_batches(self.ws.warehouse, self.config.name)
        batches: list[int] = []
        loaded = 0
        for source in _sources(self.config):
            try:
                report = self.ws.ingest(
                    str(source), dataset=self.config.dataset, label=self.config.label
                )
            except QualityCheckFailed as error:
                self.quality_error = error
                break
            loaded += report.rows_loaded
            found = [b.batch_id for b in report.batches if b.status == "loaded" and b.batch_id]
            if found:  # committed: a kill before the step ends must not lose them
                batches += found
                done = {"batch_ids": carried + batches, "rows_loaded": loaded}
                store.note_step(self.ws.warehouse, self.state.run.pipeline_run_id, 0, done)
        state = self.state
        every = list(dict.fromkeys(carried + batches))
        state.run = replace(state.run, batch_ids=every)
        if not every and self.quality_error is None and not self.force:
            state.skip_rest = True
        return {
            "batch_ids": every,
            "rows_loaded": loaded,
            "new_data": bool(batches),
            "carried_over": [b for b in every if b not in batches],
        }

    def quality(self) -> JsonDict:
        if self.quality_error is not None:
            raise self.quality_error
        found = cat.get_dataset(self.ws.warehouse, self.config.dataset)
        self.state.dataset = found
        reports = {
            str(r.batch_id): {"status": r.status, "rows_quarantined": r.rows_quarantined}
            for r in self.ws.quality(self.config.dataset)
            if r.batch_id in self.state.run.batch_ids
        }
        return {"batches": reports}

    def train(self) -> JsonDict:
        self._find_champion()
        config, state = self.config, self.state
        if config.tune:
            return self._tune(config.tune)
        request = TrainRequest(config.dataset, config.model, dict(config.params), config.seed)
        run = train(self.ws, request)
        state.run = replace(state.run, run_ids=[run.run_id], challenger_run_id=run.run_id)
        return {"run_id": run.run_id, "model": run.model, "champion": state.champion}

    def _tune(self, trials: int) -> JsonDict:
        """A search of ``trials`` trials; its best (by validation accuracy) is the challenger."""
        from headwater.flows.tuning import TuneRequest, tune

        config = self.config
        found = tune(
            self.ws,
            TuneRequest(
                config.dataset, config.model, trials, seed=config.seed, fixed=config.params
            ),
        )
        if found.best_run_id is None:
            raise ConfigError(f"none of the {trials} tuning trials of {config.model} completed")
        runs = [t.run_id for t in found.trials if t.run_id]
        self.state.run = replace(self.state.run, run_ids=runs, challenger_run_id=found.best_run_id)
        return {**found.to_dict(), "run_id": found.best_run_id, "champion": self.state.champion}

    def _find_champion(self) -> None:
        """The run ``best`` serves now: pinned, or the leaderboard's top."""
        assert self.state.dataset is not None
        pinned = registry.get_alias(self.ws.warehouse, self.state.dataset.key, "best")
        top = leaderboard(self.ws, self.config.dataset)
        self.state.champion = pinned or (top[0].run_id if top else None)
        self.state.champion_pinned = pinned is not None
        self.state.run = replace(self.state.run, champion_run_id=self.state.champion)

    def evaluate(self) -> JsonDict:
        dataset, challenger = self.state.dataset, self.state.run.challenger_run_id
        assert dataset is not None
        assert challenger is not None
        mapping = label_mapping(self.ws, dataset)
        self._rows = roles_for(self.ws, dataset, mapping, holdout=None, seed=self.config.seed)
        self._names = {code: name for name, code in (mapping or {}).items()}
        score = score_run(self.ws, challenger, dataset, self._rows["test"], self._names)
        self.state.scores["challenger"] = score
        return {"run_id": challenger, **score}

    def compare(self) -> JsonDict:
        champion, dataset = self.state.champion, self.state.dataset
        if champion is None or dataset is None:
            return {"champion": None, "better": True, "why": "no model served yet"}
        score = score_run(self.ws, champion, dataset, self._rows["test"], self._names)
        self.state.scores["champion"] = score
        metric = self.config.metric
        ours = float(str(self.state.scores["challenger"][metric]))
        theirs = float(str(score[metric]))
        return {
            "champion": champion,
            "metric": metric,
            "challenger_score": ours,
            "champion_score": theirs,
            "better": ours > theirs,
            "same_rows": score["rows_hash"],
        }

    def promote(self, better: bool) -> JsonDict:
        policy = self.config.promote
        promoted = policy == "always" or (policy == "if-better" and better)
        run = self.state.run
        self.state.run = replace(
            run, promoted=promoted, outcome="promoted" if promoted else "kept champion"
        )
        served = run.challenger_run_id if promoted else self.state.champion
        return {"policy": policy, "promoted": promoted, "serving": served}


def _sources(config: PipelineConfig) -> list[str]:
    """What to ingest: each file of a flat folder or a glob (one batch each), else the source.

    A folder with sub-folders is an image or IDX layout and is ingested whole; a file
    that was loaded before is a no-op (its fingerprint is known), so re-reading is cheap.
    """
    path = Path(config.source)
    flat = path.is_dir() and all(p.is_file() for p in path.iterdir())
    if flat or glob.has_magic(config.source):
        return [str(p) for p in config.watched_files()]
    return [config.source]


@contextlib.contextmanager
def _heartbeat(ws: Workspace, run: PipelineRunRow, lease_s: float) -> Iterator[None]:
    """Renew the lease every third of its length while the run works."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            now = datetime.now(UTC)
            try:
                store.heartbeat(
                    ws.warehouse,
                    run.pipeline_run_id,
                    run.holder,
                    now=now,
                    expires_at=now + timedelta(seconds=lease_s),
                )
            except HeadwaterError:
                log.exception("pipeline run %s: could not renew its lease", run.pipeline_run_id)

    thread = threading.Thread(target=beat, name=f"lease-{run.pipeline}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _step(
    ws: Workspace,
    state: _State,
    position: int,
    name: str,
    work: Callable[[], JsonDict],
    on_step: StepFn | None,
) -> JsonDict:
    """Run one step, recording its start, its time and its outcome (or its failure)."""
    wh, run_id = ws.warehouse, state.run.pipeline_run_id
    store.start_step(wh, run_id, position, name, now=datetime.now(UTC))
    if on_step is not None:
        on_step(name, "running", {})
    began = time.perf_counter()
    try:
        outcome = work()
    except Exception as error:
        store.finish_step(
            wh,
            run_id,
            position,
            status="failed",
            now=datetime.now(UTC),
            seconds=time.perf_counter() - began,
            outcome=None,
            error=str(error),
        )
        if on_step is not None:
            on_step(name, "failed", {"error": str(error)})
        raise
    boundary(f"pipeline_{name}")  # a kill test's pause: the step's work done, not recorded
    store.finish_step(
        wh,
        run_id,
        position,
        status="succeeded",
        now=datetime.now(UTC),
        seconds=time.perf_counter() - began,
        outcome=outcome,
    )
    if on_step is not None:
        on_step(name, "succeeded", outcome)
    return outcome


def _work(ws: Workspace, steps: _Steps, on_step: StepFn | None) -> None:
    """The steps in order; after an ingest that found nothing new, the rest are skipped."""
    state = steps.state
    if steps.config.kind == "images":  # images-ingest → embed → export
        from headwater.flows.image_pipeline import ImageSteps

        images = ImageSteps(ws, steps.config, state.run, force=steps.force)
        for position, (name, work) in enumerate(images.steps()):
            try:
                _step(ws, state, position, name, work, on_step)
            finally:
                state.run = images.run
        state.run = images.run
        return
    _step(ws, state, 0, "ingest", steps.ingest, on_step)
    if state.skip_rest:
        state.run = replace(state.run, status="skipped", outcome="no new data")
        return
    _step(ws, state, 1, "quality", steps.quality, on_step)
    _step(ws, state, 2, "train", steps.train, on_step)
    _step(ws, state, 3, "evaluate", steps.evaluate, on_step)
    compared = _step(ws, state, 4, "compare", steps.compare, on_step)
    _step(ws, state, 5, "promote", lambda: steps.promote(bool(compared["better"])), on_step)
    state.run = replace(state.run, status="succeeded")


def _alias_at_end(state: _State) -> tuple[int, str] | None:
    """Where ``best`` points after the run: the challenger if promoted, else the champion pinned."""
    if state.dataset is None:
        return None
    run = state.run
    if run.status == "succeeded" and run.promoted and run.challenger_run_id:
        return state.dataset.key, run.challenger_run_id
    if state.champion is not None and not state.champion_pinned:
        return state.dataset.key, state.champion
    return None


def run_pipeline(
    ws: Workspace,
    config: PipelineConfig,
    *,
    trigger: str = "manual",
    fire_key: str | None = None,
    fire_at: datetime | None = None,
    holder: str | None = None,
    lease_s: float = 300.0,
    force: bool = False,
    on_step: StepFn | None = None,
) -> PipelineRunRow | None:
    """Run a pipeline once; see the module docstring. None when ``fire_key`` was run already.

    A pipeline another worker is running now is refused (`WriteConflict`). ``force``
    trains even when the ingest found no new data.
    """
    run = begin_pipeline(
        ws,
        config,
        trigger=trigger,
        fire_key=fire_key,
        fire_at=fire_at,
        holder=holder,
        lease_s=lease_s,
    )
    if run is None:
        return None
    return finish_pipeline(ws, config, run, lease_s=lease_s, force=force, on_step=on_step)


def finish_pipeline(
    ws: Workspace,
    config: PipelineConfig,
    run: PipelineRunRow,
    *,
    lease_s: float = 300.0,
    force: bool = False,
    on_step: StepFn | None = None,
) -> PipelineRunRow:
    """Work the steps of a run `begin_pipeline` recorded, and end it; returns it as ended.

    Split from `begin_pipeline` so a face can answer with the run's id at once and let
    a thread do the steps (`flows.background.PipelineRuns`).
    """
    state = _State(run)
    try:
        with _heartbeat(ws, run, lease_s):
            _work(ws, _Steps(ws, config, state, force), on_step)
    except BaseException as error:
        state.run = replace(
            state.run,
            status="failed",
            error=str(error) or type(error).__name__,
            promoted=False,
            outcome="failed",
        )
        log.warning("pipeline %s failed: %s", config.name, state.run.error)
        if not isinstance(error, Exception):  # Ctrl-C, SIGTERM: record it, then stop
            store.end_run(
                ws.warehouse, state.run, now=datetime.now(UTC), alias=_alias_at_end(state)
            )
            raise
    store.end_run(ws.warehouse, state.run, now=datetime.now(UTC), alias=_alias_at_end(state))
    return store.get_run(ws.warehouse, run.pipeline_run_id)


def begin_pipeline(
    ws: Workspace,
    config: PipelineConfig,
    *,
    trigger: str = "manual",
    fire_key: str | None = None,
    fire_at: datetime | None = None,
    holder: str | None = None,
    lease_s: float = 300.0,
) -> PipelineRunRow | None:
    """Record a run as ``running`` under the pipeline's lease; None when this fire ran already.

    `WriteConflict` when another worker (or thread) is running the pipeline now.
    """
    return _begin(ws, config, trigger, fire_key, fire_at, holder, lease_s)


def _begin(
    ws: Workspace,
    config: PipelineConfig,
    trigger: str,
    fire_key: str | None,
    fire_at: datetime | None,
    holder: str | None,
    lease_s: float,
) -> PipelineRunRow | None:
    """Record the run as running under a lease; None when this fire was run already."""
    now = datetime.now(UTC)
    run = PipelineRunRow(
        uuid.uuid4().hex[:12],
        config.name,
        config.dataset,
        trigger,
        fire_key,
        "running",
        None,
        None,
        holder or new_holder(),
        now,
        now,
        None,
        [],
        [],
        None,
        None,
        False,
    )
    begun = store.begin_run(
        ws.warehouse,
        run,
        fire_at=fire_at,
        expires_at=now + timedelta(seconds=lease_s),
        alive=holder_alive,
    )
    if begun == "already-fired":
        return None
    if begun == "busy":
        raise WriteConflict(
            f"pipeline {config.name!r} is running in another worker now; "
            f"see headwater pipeline history {config.name}"
        )
    return run


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _unrecorded(run: PipelineRunRow) -> list[JsonDict]:
    """The steps a run has not reached: ``pending`` while it runs, ``not run`` once it ended."""
    recorded = {s.step for s in run.steps}
    status = "pending" if run.status == "running" else "not run"
    names = IMAGE_STEPS if IMAGE_STEPS[0] in recorded else STEPS
    return [
        {
            "step": name,
            "status": status,
            "seconds": None,
            "outcome": {},
            "error": None,
            "started_at": None,
            "finished_at": None,
        }
        for name in names
        if name not in recorded
    ]


def pipeline_run_dict(run: PipelineRunRow, *, every_step: bool = False) -> JsonDict:
    """A pipeline run as JSON, with its steps (``every_step``: the ones not reached too,
    so a page can draw all six from the start)."""
    when = _when

    return {
        "pipeline_run_id": run.pipeline_run_id,
        "pipeline": run.pipeline,
        "dataset": run.dataset,
        "trigger": run.trigger,
        "status": run.status,
        "outcome": run.outcome,
        "error": run.error,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "batch_ids": run.batch_ids,
        "run_ids": run.run_ids,
        "champion_run_id": run.champion_run_id,
        "challenger_run_id": run.challenger_run_id,
        "promoted": run.promoted,
        "steps": [
            {
                "step": s.step,
                "status": s.status,
                "seconds": s.seconds,
                "outcome": s.outcome,
                "error": s.error,
                "started_at": when(s.started_at),
                "finished_at": when(s.finished_at),
            }
            for s in run.steps
        ]
        + (_unrecorded(run) if every_step else []),
    }


def pipeline_summaries(
    ws: Workspace,
    configs: Mapping[str, PipelineConfig],
    now: datetime,
    *,
    every_step: bool = False,
) -> list[JsonDict]:
    """Each declared pipeline: its schedule, next fire time, and its last run and outcome."""
    last: dict[str, PipelineRunRow] = {}
    for run in store.list_runs(ws.warehouse, limit=1000):
        last.setdefault(run.pipeline, run)
    out: list[JsonDict] = []
    for name, config in sorted(configs.items()):
        fire = config.next_fire(now)
        latest = last.get(name)
        out.append(
            {
                "name": name,
                "dataset": config.dataset,
                "source": config.source,
                "kind": config.kind,
                "model": config.model_shown(),
                "schedule": config.schedule,
                "timezone": config.timezone,
                "on_new_data": config.on_new_data,
                "promote": config.promote if config.kind == "table" else "never",
                "next_fire": fire.isoformat() if fire else None,
                "last_run": pipeline_run_dict(latest, every_step=every_step) if latest else None,
            }
        )
    return out


def pipeline_history(ws: Workspace, name: str, *, limit: int = 50) -> list[PipelineRunRow]:
    """A pipeline's runs, newest first, with their steps."""
    return store.list_runs(ws.warehouse, name, limit=limit)


def pipeline_run(ws: Workspace, run_id: str) -> PipelineRunRow:
    """One pipeline run with its steps as recorded so far; `NotFound` for an unknown id."""
    return store.get_run(ws.warehouse, run_id)
