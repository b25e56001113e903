"""Work the long-running faces start and then follow: pipeline runs and short searches.

The API and the web pages must answer at once, so `PipelineRuns.start` records the
run (under the pipeline's lease, in the request's thread: a pipeline already running
is refused there, `WriteConflict`, 409) and hands its steps to a thread of its own;
the run id it answers with can be read straight away, step by step, from the
warehouse (`flows.pipelines.pipeline_run`). `Suggestions` does the same for the short
search the train form's "Suggest" starts when a dataset has no tuning trials yet.

Both call ``on_end`` when their work ends (a promotion moves ``best``, so the model
cache looks its aliases up again). `close` waits a bounded time for the threads; a
pipeline run still going then stays ``running`` under a lease whose process is gone,
and the next scheduler marks it abandoned, as after a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from headwater.errors import DatasetNotFound, HeadwaterError, NotFound
from headwater.flows.lifecycle import Interrupted
from headwater.flows.monitoring import MonitorData, monitor_data
from headwater.flows.pipeline_config import PipelineConfig, load_pipelines, pipeline_config
from headwater.flows.pipelines import (
    PipelineRunRow,
    begin_pipeline,
    finish_pipeline,
    pipeline_history,
    pipeline_run,
    pipeline_summaries,
)
from headwater.flows.tuning import Suggestion, quick_search, suggestion, tune
from headwater.flows.workspace import Workspace

__all__ = ["PipelineRuns", "PipelineView", "Suggestions"]

log = logging.getLogger("headwater.background")
JsonDict = dict[str, object]


class _Threads:
    """Named daemon threads, remembered until they end, joined (bounded) on close."""

    def __init__(self, on_end: Callable[[], None] | None) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._on_end = on_end
        self.stop = threading.Event()
        """Set by `close`: the work that takes it (a search's trials) ends at its next check."""

    def start(self, key: str, work: Callable[[], object]) -> bool:
        """Run ``work`` in a thread named ``key``; False (nothing started) while one runs."""

        def run() -> None:
            try:
                work()
            except Interrupted as stopped:  # the server is shutting down; the run says so
                log.info("%s stopped: %s", key, stopped)
            except HeadwaterError as error:  # recorded by the work itself; keep serving
                log.warning("%s failed: %s", key, error)
            except Exception:  # a bug must not pass silently; the run is marked failed
                log.exception("%s crashed", key)
            finally:
                with self._lock:
                    self._threads.pop(key, None)
                if self._on_end is not None:
                    self._on_end()

        thread = threading.Thread(target=run, name=key, daemon=True)
        with self._lock:
            if key in self._threads:
                return False
            self._threads[key] = thread
        thread.start()
        return True

    def running(self, key: str) -> bool:
        with self._lock:
            return key in self._threads

    def close(self, timeout_s: float) -> None:
        self.stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s still running at shutdown; left to the next scheduler", thread.name)


@dataclass(frozen=True)
class PipelineView:
    """What the web's Pipelines page shows of one pipeline."""

    summary: JsonDict
    """`flows.pipelines.pipeline_summaries`' entry: schedule, next fire, last run (every step)."""
    history: list[PipelineRunRow]
    monitor: MonitorData | None
    """Its dataset's monitoring data; None until the dataset holds a batch."""


class PipelineRuns:
    """The declared pipelines of ``headwater.toml`` as the server sees them; see the docstring."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        on_end: Callable[[], None] | None = None,
        lease_s: float = 300.0,
    ) -> None:
        self._workspace = workspace
        self._threads = _Threads(on_end)
        self._lease_s = lease_s

    def summaries(self) -> list[JsonDict]:
        """Each pipeline: schedule, time zone, next fire time, last run and its outcome.

        The file is read at every call, so an edit shows without a restart.
        """
        return pipeline_summaries(
            self._workspace, load_pipelines(), datetime.now(UTC), every_step=True
        )

    def overview(self, *, history: int = 10) -> list[PipelineView]:
        """Every pipeline with its last ``history`` runs and its dataset's monitoring data."""
        views = []
        for summary in self.summaries():
            name, dataset = str(summary["name"]), str(summary["dataset"])
            try:
                monitor: MonitorData | None = monitor_data(self._workspace, dataset)
            except DatasetNotFound:
                monitor = None
            runs = pipeline_history(self._workspace, name, limit=history)
            views.append(PipelineView(summary, runs, monitor))
        return views

    def config(self, name: str) -> PipelineConfig:
        """One declared pipeline; `NotFound` (404) naming the declared ones."""
        return pipeline_config(name)

    def start(self, name: str, *, force: bool = False) -> PipelineRunRow:
        """Record a run of the pipeline now and work its steps in a thread; return the run.

        `WriteConflict` (409) while it runs already, here or in a scheduler.
        """
        config = pipeline_config(name)
        run = begin_pipeline(self._workspace, config, trigger="manual", lease_s=self._lease_s)
        assert run is not None  # a manual run claims no fire, so it is never "already fired"

        def work() -> None:
            finish_pipeline(self._workspace, config, run, lease_s=self._lease_s, force=force)

        self._threads.start(f"pipeline-{run.pipeline_run_id}", work)
        return run

    def run(self, name: str, run_id: str) -> PipelineRunRow:
        """A run of this pipeline with its steps so far; `NotFound` if it is another's."""
        found = pipeline_run(self._workspace, run_id)
        if found.pipeline != name:
            raise NotFound(
                f"pipeline {name!r} has no run {run_id!r}; it is a run of {found.pipeline!r}"
            )
        return found

    def history(self, name: str, *, limit: int = 50) -> list[PipelineRunRow]:
        """A pipeline's runs, newest first; `NotFound` when it is neither declared nor ever ran."""
        runs = pipeline_history(self._workspace, name, limit=limit)
        if not runs:
            pipeline_config(name)
        return runs

    def close(self, timeout_s: float = 10.0) -> None:
        self._threads.close(timeout_s)


class Suggestions:
    """The train form's "Suggest": the best parameters so far, or a short search to find some."""

    def __init__(self, workspace: Workspace, *, on_end: Callable[[], None] | None = None) -> None:
        self._workspace = workspace
        self._threads = _Threads(on_end)

    def get(self, dataset: str, model: str) -> Suggestion:
        """`flows.tuning.suggestion`, saying too whether a short search is going on now."""
        found = suggestion(self._workspace, dataset, model)
        return replace(found, searching=self._threads.running(f"search-{dataset}-{model}"))

    def search(self, dataset: str, model: str) -> Suggestion:
        """Start a short search (`flows.tuning.QUICK_SEARCH`) unless one runs; answer at once."""
        request = quick_search(dataset, model)
        request.check()
        found = suggestion(self._workspace, dataset, model)
        self._threads.start(
            f"search-{dataset}-{model}",
            lambda: tune(self._workspace, request, stop=self._threads.stop),
        )
        return replace(found, searching=True)

    def close(self, timeout_s: float = 10.0) -> None:
        self._threads.close(timeout_s)
