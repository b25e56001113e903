"""Synthesis as a run: read a dataset, fit a synthesizer, sample, report, ingest the rows.

``synthesize`` checks the request before anything is registered (an unknown method, no
rows, too many rows asked for, a target name that is taken), then, inside one run
lifecycle: holds 20% of the rows out (stratified by the label, seeded), fits the
synthesizer on the rest, samples through the privacy guard, measures the report
against the holdout, saves the synthesizer (safetensors + JSON), the report (JSON, PNG,
HTML) and ingests the synthetic rows as a new dataset whose batch's source is
``synthesis:<run id>``. The run keeps the method, its settings, the seed and the exact
source rows and batches it learned from (``run_data``), so a model trained on the
synthetic dataset traces back to the real batches.

Columns the feature chooser calls identifiers or free text (and others no model reads)
are left out of synthesis, never copied, and the report says which and why.
"""

from __future__ import annotations

import html
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.model_selection import train_test_split

from headwater.data.features import ColumnChoice
from headwater.data.ingest import ingest_path, validate_dataset_name
from headwater.errors import ConfigError, DataError, NotFound, SchemaError
from headwater.flows.lifecycle import (
    Run,
    RunSpec,
    check_seed,
    register,
    release,
    run_lifecycle,
)
from headwater.flows.synthesis_images import SAMPLES_FILE, synthesize_images
from headwater.flows.training_data import SPLITS, feature_choices
from headwater.flows.workspace import Workspace
from headwater.learning.synth import METHODS, Synthesizer, make_synthesizer
from headwater.learning.synth.codec import column_kind
from headwater.learning.synth.guard import guarded_sample
from headwater.learning.synth.report import plot_worst_columns, synthesis_report
from headwater.storage.lake import sha256_file
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = [
    "SOURCE_PREFIX",
    "SynthesisRequest",
    "queue_synthesis",
    "run_queued",
    "synthesis_report_of",
    "synthesize",
]

SOURCE_PREFIX = "synthesis:"
"""A synthetic batch's ``dim_batch.source``: this, then the id of the run that made it."""
MAX_FACTOR = 10
"""More rows than this many times the source's need ``force``."""
HOLDOUT = 0.2
REPORT_FILE, PLOT_FILE, HTML_FILE = "report.json", "worst_columns.png", "report.html"
_KEPT_REASONS = ("the same value in every row", "no values: every row is missing")

ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class SynthesisRequest:
    dataset: str
    method: str
    rows: int
    into: str
    seed: int = 0
    force: bool = False
    settings: dict[str, object] | None = None


def check_request(ws: Workspace, request: SynthesisRequest) -> cat.DatasetRow:
    """Everything that can be refused before a run is registered; the source dataset."""
    if request.method not in METHODS:
        known = ", ".join(METHODS)
        raise ConfigError(f"unknown synthesis method {request.method!r}; choose one of: {known}")
    if request.rows < 1:
        raise ConfigError(f"--rows must be 1 or more, got {request.rows}")
    check_seed(request.seed)
    validate_dataset_name(request.into)
    if cat.find_dataset(ws.warehouse, request.into) is not None:
        raise ConfigError(
            f"dataset {request.into!r} already exists; choose a new name for the synthetic rows"
        )
    return cat.get_dataset(ws.warehouse, request.dataset)  # DatasetNotFound


def adopt(ws: Workspace, spec: RunSpec, run_id: str | None) -> RunSpec | None:
    """None (take the queued run over) when ``run_id`` was registered; else the spec."""
    return None if run_id is not None and registry.run_exists(ws.warehouse, run_id) else spec


def queue_synthesis(ws: Workspace, request: SynthesisRequest, run_id: str) -> SynthesisRequest:
    """Check what needs no fitting and register the run as ``queued``; the request to run.

    An empty ``into`` becomes ``<dataset>_<method>_<run id>``. Too many rows is refused
    here against the dataset's row count (the worker checks again against what it learns
    from), so a client is told at once rather than by a failed run.
    """
    if not request.into:
        into = f"{request.dataset}_{request.method}_{run_id}"[-63:].lstrip("_0123456789")
        request = replace(request, into=into or f"synth_{run_id}")
    source = check_request(ws, request)
    have = ws.dataset(source.name).rows
    if request.rows > MAX_FACTOR * have and not request.force:
        raise ConfigError(
            f"{request.rows:,} rows is more than {MAX_FACTOR}x the {have:,} rows of "
            f"{source.name!r}; pass force if you mean it"
        )
    params: dict[str, object] = {
        "method": request.method,
        "rows": request.rows,
        "into": request.into,
        **(request.settings or {}),
    }
    evaluation = "test split" if source.kind == "image" else f"holdout {HOLDOUT}"
    register(
        ws, RunSpec(source, f"synth-{request.method}", params, request.seed, evaluation), run_id
    )
    return request


def run_queued(
    ws: Workspace,
    request: SynthesisRequest,
    run_id: str,
    *,
    on_epoch: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> dict[str, object]:
    """`synthesize` for a queued run: a refusal before its lifecycle began (the dataset gone,
    the name taken meanwhile) is recorded on the run as failed, not left queued."""
    try:
        return synthesize(ws, request, on_epoch=on_epoch, stop=stop, run_id=run_id)
    except BaseException as error:
        if registry.get_run(ws.warehouse, run_id).status == "queued":
            registry.finish_run(
                ws.warehouse,
                run_id,
                status="failed",
                now=datetime.now(UTC),
                error=str(error) or type(error).__name__,
            )
        release(run_id)
        raise


def synthesize(
    ws: Workspace,
    request: SynthesisRequest,
    *,
    on_epoch: ProgressFn | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> dict[str, object]:
    """Fit, sample, report and ingest; returns the report (see the module docstring).

    ``run_id``: a run `queue_synthesis` registered as queued, which this takes over (a
    refusal is then recorded on it as failed, since a client is following it).
    """
    source = check_request(ws, request)
    if source.kind == "image":
        return synthesize_images(
            ws,
            source,
            method=request.method,
            rows=request.rows,
            into=request.into,
            seed=request.seed,
            force=request.force,
            ingest=lambda images, labels, run_id: _ingest_images(
                ws, images, labels, request.into, run_id
            ),
            write=_write_image_report,
            on_epoch=on_epoch,
            stop=stop,
            run_id=run_id,
        )
    data = _prepare(ws, request, source)
    synth = make_synthesizer(request.method, seed=request.seed, **(request.settings or {}))
    synth.check_params()
    params: dict[str, object] = {
        "method": request.method,
        **synth.get_params(),
        "rows": request.rows,
        "into": request.into,
        "left_out": data.left_out,
    }
    spec = RunSpec(source, f"synth-{request.method}", params, request.seed, f"holdout {HOLDOUT}")
    started = time.perf_counter()
    with run_lifecycle(
        ws, adopt(ws, spec, run_id), run_id=run_id, on_epoch=on_epoch, stop=stop
    ) as run:
        train, held = _holdout(data.table, data.label, request.seed)
        report, made = _fit_and_measure(run, synth, data, train, held, request)
        report |= {"params": params, "source": source.name}
        hashes = synth.save(run.folder)
        hashes |= _write_report(run.folder, report, data.table.take(train), made)
        report["html"] = str(run.folder / HTML_FILE)
        run.stage("ingesting")
        _ingest(ws, made, request.into, data.label, run.run_id)
        run.succeed(
            rows={role: data.role(rows) for role, rows in (("train", train), ("holdout", held))},
            hashes=hashes,
            metrics=_headline(report),
            seconds=time.perf_counter() - started,
        )
    return report


@dataclass(frozen=True)
class _Table:
    """A tabular source as synthesis reads it: the kept columns, row and batch keys."""

    table: pa.Table
    keys: npt.NDArray[np.int64]
    batches: npt.NDArray[np.int64]
    columns: list[str]
    left_out: dict[str, str]
    label: str | None

    def role(self, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], list[int]]:
        return self.keys[rows], sorted({int(b) for b in self.batches[rows]})


def _prepare(ws: Workspace, request: SynthesisRequest, source: cat.DatasetRow) -> _Table:
    """Read and check the source: enough rows, not too many asked for, the columns to make."""
    table, keys, batches = _read(ws, source)
    if table.num_rows < 2:
        raise DataError(f"dataset {source.name!r} has {table.num_rows} rows: nothing to learn")
    if request.rows > MAX_FACTOR * table.num_rows and not request.force:
        raise ConfigError(
            f"{request.rows:,} rows is more than {MAX_FACTOR}x the {table.num_rows:,} rows of "
            f"{source.name!r}; pass --force if you mean it"
        )
    columns, left_out = _columns(ws, source, table)
    label = source.label_column if source.label_column in columns else None
    table = _dates_from_text(table.select(columns), ws, source)
    return _Table(table, keys, batches, columns, left_out, label)


def _fit_and_measure(
    run: Run,
    synth: Synthesizer,
    data: _Table,
    train: npt.NDArray[np.int64],
    held: npt.NDArray[np.int64],
    request: SynthesisRequest,
) -> tuple[dict[str, object], pa.Table]:
    """Fit on the training rows, sample through the guard, measure against the holdout."""
    run.stage("fitting")
    real = data.table.take(train)
    epochs = int(str(synth.get_params().get("epochs", 1)))
    synth.fit(real, label=data.label, on_epoch=run.epoch_fn(epochs))
    run.stage("sampling and measuring")
    made, guard = guarded_sample(synth, real, request.rows, seed=request.seed, columns=data.columns)
    report = synthesis_report(
        real, data.table.take(held), made, columns=data.columns, label=data.label, seed=request.seed
    )
    report |= {
        "dataset": request.into,
        "method": request.method,
        "rows": request.rows,
        "run_id": run.run_id,
        "seed": request.seed,
        "left_out": data.left_out,
        "privacy_guard": guard,
        "source_batches": sorted({int(b) for b in data.batches}),
    }
    return report, made


def _read(
    ws: Workspace, source: cat.DatasetRow
) -> tuple[pa.Table, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every row of every split, with its row key and batch key."""
    parts = [cat.tabular_rows(ws.warehouse, source, split) for split in SPLITS]
    table = pa.concat_tables(parts)
    keys = np.asarray(table.column("hw_row_key").to_numpy(), dtype=np.int64)
    batches = np.asarray(table.column("hw_batch_key").to_numpy(), dtype=np.int64)
    return table.drop_columns(["hw_row_key", "hw_batch_key"]), keys, batches


def _columns(
    ws: Workspace, source: cat.DatasetRow, table: pa.Table
) -> tuple[list[str], dict[str, str]]:
    """The columns synthesized, and those left out with the chooser's reason."""
    keep, left_out = [], {}
    for choice in feature_choices(ws, source):
        if _kept(choice, table):
            keep.append(choice.column)
        else:
            left_out[choice.column] = choice.reason
    if not keep:
        raise SchemaError(f"dataset {source.name!r} has no column synthesis can make")
    return keep, left_out


def _kept(choice: ColumnChoice, table: pa.Table) -> bool:
    if choice.used_as in ("label", "number", "category", "date parts"):
        return column_kind(table.column(choice.column).type) is not None
    return choice.reason in _KEPT_REASONS


def _dates_from_text(table: pa.Table, ws: Workspace, source: cat.DatasetRow) -> pa.Table:
    """ISO date text (a column the chooser reads as dates) becomes real dates to synthesize."""
    for choice in feature_choices(ws, source):
        name = choice.column
        if choice.used_as == "date parts" and name in table.column_names:
            column = table.column(name)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                stamps = pc.cast(column, pa.timestamp("s"))
                index = table.column_names.index(name)
                table = table.set_column(index, name, pc.cast(stamps, pa.date32()))
    return table


def _holdout(
    table: pa.Table, label: str | None, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    rows = np.arange(table.num_rows)
    strata = None
    if label is not None:
        values = np.array([str(v) for v in table.column(label).to_pylist()])
        _, counts = np.unique(values, return_counts=True)
        strata = values if counts.min() >= 2 else None
    train, held = train_test_split(rows, test_size=HOLDOUT, random_state=seed, stratify=strata)
    return np.sort(train), np.sort(held)


def _ingest(ws: Workspace, made: pa.Table, into: str, label: str | None, run_id: str) -> None:
    folder = ws.lake.staging / f"synth-{run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = folder / f"{into}.parquet"
        pq.write_table(made, path)
        ingest_path(
            path,
            warehouse=ws.warehouse,
            lake=ws.lake,
            dataset=into,
            label=label,
            origin=f"{SOURCE_PREFIX}{run_id}",
            chunk_rows=ws.settings.ingest_chunk_rows,
            options=ws.reader_options(),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ingest_images(
    ws: Workspace, images: npt.NDArray[np.uint8], labels: list[str], into: str, run_id: str
) -> None:
    """The synthetic images as the train split of a new image dataset (an .npz, ingested)."""
    folder = ws.lake.staging / f"synth-{run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = folder / f"{into}.npz"
        numeric = all(t.lstrip("-").isdigit() for t in labels)
        y = np.array([int(t) for t in labels] if numeric else labels)
        np.savez(path, x_train=images, y_train=y)
        ingest_path(
            path,
            warehouse=ws.warehouse,
            lake=ws.lake,
            dataset=into,
            origin=f"{SOURCE_PREFIX}{run_id}",
            chunk_rows=ws.settings.ingest_chunk_rows,
            options=ws.reader_options(),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_image_report(folder: object, report: dict[str, object]) -> dict[str, str]:
    assert isinstance(folder, Path)
    report["html"] = str(folder / HTML_FILE)
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
    (folder / HTML_FILE).write_text(_html(report, picture=SAMPLES_FILE))
    return {name: sha256_file(folder / name) for name in (REPORT_FILE, SAMPLES_FILE, HTML_FILE)}


def _headline(report: dict[str, object]) -> dict[str, object]:
    """What the run's metrics keep: every section but the per-column detail."""
    fidelity = report["fidelity"]
    assert isinstance(fidelity, dict)
    return {
        "fidelity": {k: fidelity[k] for k in ("overall", "column_shapes", "column_pair_trends")},
        "utility": report["utility"],
        "detectability": report["detectability"],
        "privacy": report["privacy"],
        "rows": report["rows"],
        "into": report["dataset"],
    }


def _write_report(
    folder: Path, report: dict[str, object], train: pa.Table, made: pa.Table
) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    fidelity = report["fidelity"]
    assert isinstance(fidelity, dict)
    plot_worst_columns(train, made, fidelity["columns"], folder / PLOT_FILE)
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
    (folder / HTML_FILE).write_text(_html(report))
    return {name: sha256_file(folder / name) for name in (REPORT_FILE, PLOT_FILE, HTML_FILE)}


def _html(report: dict[str, object], *, picture: str = PLOT_FILE) -> str:
    """A page a data owner can read: the headline figures, every score, the picture."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td><pre>{html.escape(json.dumps(v, indent=1))}"
        "</pre></td></tr>"
        for k, v in report.items()
        if k not in ("params",)
    )
    title = html.escape(f"Synthetic dataset {report['dataset']} from {report['source']}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><img src='{picture}' alt='{picture}'>"
        f"<table>{rows}</table></body></html>"
    )


def synthesis_report_of(ws: Workspace, name: str) -> dict[str, object]:
    """The report of the run that made dataset ``name``; NotFound if no synthesis made it."""
    dataset = cat.get_dataset(ws.warehouse, name)
    for batch in cat.list_batches(ws.warehouse, dataset.name):
        if batch.source.startswith(SOURCE_PREFIX):
            run_id = batch.source[len(SOURCE_PREFIX) :]
            run = registry.get_run(ws.warehouse, run_id)
            paths = {a.name: a.path for a in registry.run_artifacts(ws.warehouse, run_id)}
            report = json.loads(Path(paths[REPORT_FILE]).read_text())
            report["html"] = paths.get(HTML_FILE)
            report["plot"] = paths.get(PLOT_FILE) or paths.get(SAMPLES_FILE)
            report["lineage"] = {
                "run_id": run.run_id,
                "source": run.dataset,
                "method": run.params.get("method"),
                "seed": run.seed,
                "batches": {d.role: d.batch_ids for d in registry.run_data(ws.warehouse, run_id)},
            }
            return dict(report)
    raise NotFound(f"dataset {name!r} was not made by synthesis; it has no synthesis report")
