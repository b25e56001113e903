"""The one entry point of the long-running faces (API, web pages): a workspace and its services.

The warehouse gives each thread its own connection (a DuckDB cursor, a psycopg
connection), so reads need no lock: they run while a run trains in the training
thread and while an upload loads. Only loads are serialised, by a write lock: two
batches landing at once would race on the same dataset's dedupe keys, and a load
queued behind a slow upload is told to come back (`WarehouseBusy`, 503 with
``Retry-After`` in the API) rather than hold a thread for minutes.

`WarehouseService.open` also starts the process's one `TrainingQueue` and
`ModelCache` (as `runs` and `models`): one worker thread trains, and a finished
run or a moved alias makes the cache look its aliases up again.

The faces take the names of the models from here too (`ESTIMATORS`), so no face
reaches below the flows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from headwater.errors import ConfigError, NotFound, WarehouseBusy
from headwater.flows import named_runs
from headwater.flows import runs as run_flows
from headwater.flows import sequences as sequence_flows
from headwater.flows.background import PipelineRuns, Suggestions
from headwater.flows.jobs import TrainingQueue
from headwater.flows.reports import IngestReport, QualityReport
from headwater.flows.runs import RunDetail, RunRow
from headwater.flows.serving import ModelCache
from headwater.flows.synthesis import SynthesisRequest
from headwater.flows.synthesis_status import SynthesisStatus, synthesis_file, synthesis_status
from headwater.flows.training import TrainRequest
from headwater.flows.workspace import DatasetSummary, Workspace
from headwater.learning import ESTIMATORS

__all__ = ["ESTIMATORS", "PageSource", "RunService", "WarehouseService"]


@dataclass(frozen=True)
class PageSource:
    """Pages of sequences as a face names them: the first page's URL and how to read them."""

    url: str
    records: str | None = None
    label: str | None = None
    paginate: str | None = None
    max_pages: int | None = None


class RunService:
    """Training runs: submitted to the queue, read back from the registry, served by alias."""

    def __init__(
        self, workspace: Workspace, models: ModelCache, *, queue_limit: int, threads: int
    ) -> None:
        self._workspace = workspace
        self._models = models
        self._threads = threads
        self._queue = TrainingQueue(
            workspace, limit=queue_limit, on_done=lambda _run_id: models.invalidate()
        )

    def close(self, timeout_s: float = 5.0) -> None:
        """Let the run in progress finish for up to ``timeout_s``; queued runs stay queued."""
        self._queue.close(timeout_s)

    def submit(self, request: TrainRequest) -> str:
        """Registered as ``queued`` before this returns; `QueueFull` (429) when the queue is.

        A neural net trains on ``threads`` threads unless the request says otherwise: on
        a small machine, torch on every core starves the event loop that answers
        predictions (its OpenMP threads spin), and the run itself gets slower too.
        """
        return self._queue.submit(_with_threads(request, self._threads))

    def submit_synthesis(self, request: SynthesisRequest) -> str:
        """A synthesis queued behind (or before) training runs; the same worker runs it."""
        return self._queue.submit_synthesis(request)

    def synthesis(self, run_id: str) -> SynthesisStatus:
        return synthesis_status(self._workspace, run_id)

    def synthesis_file(self, run_id: str, name: str) -> Path:
        return synthesis_file(self._workspace, run_id, name)

    def runs(self, dataset: str | None) -> list[RunRow]:
        return run_flows.list_runs(self._workspace, dataset)

    def detail(self, run_id: str) -> RunDetail:
        return run_flows.run_detail(self._workspace, run_id)

    def plot(self, run_id: str, file_name: str) -> Path:
        """The file of a PNG the run registered; any other name is 404, whatever is on disk."""
        plots = run_flows.run_detail(self._workspace, run_id).plots()
        if file_name not in plots:
            known = ", ".join(sorted(plots)) or "none yet"
            raise NotFound(f"run {run_id} has no plot {file_name!r}; it has: {known}")
        path = Path(plots[file_name])
        if not path.is_file():
            raise NotFound(f"run {run_id}: the plot {file_name!r} is registered but missing")
        return path

    def leaderboard(self, dataset: str, metric: str | None) -> tuple[str, list[RunRow]]:
        """The metric ranked by (a regression's test RMSE unless given) and the runs, best first."""
        chosen = metric or run_flows.default_metric(self._workspace, dataset)
        return chosen, run_flows.leaderboard(self._workspace, dataset, metric=chosen)

    def set_alias(self, dataset: str, alias: str, run_id: str) -> None:
        """Pin a run of this dataset as the alias; models served by it switch at once."""
        run = run_flows.run_detail(self._workspace, run_id).run
        if run.dataset != dataset:
            raise ConfigError(
                f"run {run_id} was trained on {run.dataset!r}, not {dataset!r}; "
                f"pin it on {run.dataset!r} instead"
            )
        run_flows.set_alias(self._workspace, run_id, alias)
        self._models.invalidate()


def _with_threads(request: TrainRequest, threads: int) -> TrainRequest:
    kind = ESTIMATORS.get(request.model)
    if kind is None or "n_threads" in request.params or "n_threads" not in kind().get_params():
        return request
    return replace(request, params={**request.params, "n_threads": threads})


class WarehouseService:
    """Owns the workspace; reads go straight through, loads take turns behind a lock."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        wait_s: float,
        training_queue: int = 4,
        training_threads: int = 1,
        alias_ttl_s: float = 2.0,
    ) -> None:
        self.workspace = workspace
        self._wait_s = wait_s
        self._write_lock = threading.Lock()
        self._training_queue = training_queue
        self._training_threads = training_threads
        self._alias_ttl_s = alias_ttl_s
        self._runs: RunService | None = None
        self._models: ModelCache | None = None
        self._pipelines: PipelineRuns | None = None
        self._suggestions: Suggestions | None = None

    @contextmanager
    def _writing(self) -> Iterator[Workspace]:
        if not self._write_lock.acquire(timeout=self._wait_s):
            raise WarehouseBusy(
                f"another load held the warehouse for {self._wait_s:g} s "
                "(HEADWATER_API_WAREHOUSE_WAIT_S); retry after it finishes. Reads are not "
                "affected."
            )
        try:
            yield self.workspace
        finally:
            self._write_lock.release()

    def open(self) -> int:
        """Connect (and migrate) now, so a wrong URL stops the server at start; returns datasets.

        The training worker and the model cache start only once the warehouse answered.
        """
        count = self.dataset_count()
        self._models = ModelCache(self.workspace, alias_ttl_s=self._alias_ttl_s)
        self._runs = RunService(
            self.workspace,
            self._models,
            queue_limit=self._training_queue,
            threads=self._training_threads,
        )
        self._pipelines = PipelineRuns(self.workspace, on_end=self._models.invalidate)
        self._suggestions = Suggestions(self.workspace, on_end=self._models.invalidate)
        return count

    def close(self) -> None:
        for background in (self._pipelines, self._suggestions):
            if background is not None:
                background.close()
        if self._runs is not None:
            self._runs.close()
        self.workspace.close()

    @property
    def runs(self) -> RunService:
        if self._runs is None:
            raise RuntimeError("WarehouseService.open() has not run")
        return self._runs

    @property
    def models(self) -> ModelCache:
        if self._models is None:
            raise RuntimeError("WarehouseService.open() has not run")
        return self._models

    @property
    def pipelines(self) -> PipelineRuns:
        """Declared pipelines: listed, started in the background, followed, their history."""
        if self._pipelines is None:
            raise RuntimeError("WarehouseService.open() has not run")
        return self._pipelines

    @property
    def suggestions(self) -> Suggestions:
        """The train form's "Suggest": best parameters so far, or a short search."""
        if self._suggestions is None:
            raise RuntimeError("WarehouseService.open() has not run")
        return self._suggestions

    @property
    def dialect(self) -> str:
        return self.workspace.settings.dialect

    def dataset_count(self) -> int:
        return len(self.workspace.datasets())

    def datasets(self) -> list[DatasetSummary]:
        return self.workspace.datasets()

    def dataset(self, name: str) -> DatasetSummary:
        return self.workspace.dataset(name)

    def rows(self, name: str, *, limit: int, offset: int) -> list[dict[str, object]]:
        return self.workspace.rows(name, limit=limit, offset=offset)

    def ingest_url(
        self,
        url: str,
        *,
        dataset: str,
        label: str | None,
        records: str | None = None,
        paginate: str | None = None,
        max_pages: int | None = None,
    ) -> IngestReport:
        """One file, or with a page option every page of a JSON API (`Workspace.ingest_from`)."""
        with self._writing() as workspace:
            return workspace.ingest_from(
                url, dataset=dataset, label=label, records=records, paginate=paginate,
                max_pages=max_pages,
            )  # fmt: skip

    def ingest_stream(
        self, chunks: Iterable[bytes], filename: str, *, dataset: str, label: str | None
    ) -> IngestReport:
        """Held for the whole upload, not only the load: the core stages and loads in one call.

        A slow client therefore delays other loads (never reads) by up to the idle
        timeout per chunk; a core method that stages without the warehouse would remove that.
        """
        with self._writing() as workspace:
            return workspace.ingest_stream(chunks, filename, dataset=dataset, label=label)

    def quality(self, dataset: str, batch_id: int) -> QualityReport:
        return self.workspace.quality(dataset, batch_id)[0]

    def quarantine(
        self, dataset: str, *, status: str | None, limit: int
    ) -> list[dict[str, object]]:
        return self.workspace.quarantine(dataset, status=status, limit=limit)

    # -- sequences, URL first (`flows.sequences`) ------------------------------------------

    def analyze(
        self,
        source: PageSource,
        *,
        dataset: str | None = None,
        expect: str | None = None,
        first: int = 100,
        refresh: bool = False,
    ) -> sequence_flows.Analysis:
        """Behind the write lock: a URL analyzed for the first time is loaded."""
        with self._writing() as workspace:
            return sequence_flows.analyze_source(
                workspace, source.url, records=source.records, label=source.label,
                paginate=source.paginate, max_pages=source.max_pages, dataset=dataset,
                expect=expect, first=first, refresh=refresh,
            )  # fmt: skip

    def train_sequences(self, request: TrainRequest, source: PageSource | None) -> str:
        """Queue a run on ``request.dataset``, or on the dataset a URL's pages load into
        (``request.dataset`` names it when not empty; a URL loaded before is not fetched)."""
        if source is not None:
            found = self.analyze(source, dataset=request.dataset or None, first=1)
            request = replace(request, dataset=found.dataset)
        return self.runs.submit(request)

    def predict_sequences(
        self, run: str, source: PageSource, *, first: int, as_csv: bool = False
    ) -> sequence_flows.PredictionTable:
        """Who made each sequence of a URL's pages; read, never loaded, so no lock."""
        return sequence_flows.predict_sequences(
            self.workspace, run, source.url, records=source.records, label=source.label,
            paginate=source.paginate, max_pages=source.max_pages, first=first, as_csv=as_csv,
        )  # fmt: skip

    def sequence_datasets(self) -> list[str]:
        return named_runs.sequence_datasets(self.workspace)

    def sequence_runs(self) -> list[named_runs.NamedRun]:
        return named_runs.sequence_runs(self.workspace)

    def compare_runs(self, dataset: str) -> list[named_runs.NamedRun]:
        return named_runs.compare_runs(self.workspace, dataset)
