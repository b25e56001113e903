"""Ingest: a raw file into the lake and the warehouse, as one all-or-nothing batch.

One `Source` (a file, an IDX pair, an image folder) is one batch and one
warehouse transaction. In order:

1. hash the raw files; a batch with the same fingerprint already loaded into
   this dataset makes the whole thing a no-op, reported as ``unchanged``;
2. stream the reader's Arrow batches: hash each row, drop rows whose hash the
   dataset already holds (counted as duplicates), bulk-load the rest and write
   them to a staged curated Parquet file;
3. copy the raw files to their content address, record the manifest and the
   batch row, commit;
4. only then rename the staged curated file into ``curated/``.

A failure anywhere, a SIGKILL included, leaves no rows, no batch and no curated
file behind: the staged file lives under ``_staging``, which readers skip, and
the next ingest publishes it if its batch committed and removes it if not
(`_tidy_lake`). ``boundary`` marks the steps, so tests can kill at each one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.data.dedupe import SeenRows, hash_keys
from headwater.data.facts import curated_schema, fact_rows
from headwater.data.hashing import fingerprint, image_row_hashes, tabular_row_hashes
from headwater.data.quality import BatchGate, CheckOutcome, Contract, QualityReport, infer_contract
from headwater.errors import (
    ConfigError,
    DiskFull,
    FormatError,
    HeadwaterError,
    NotFound,
    QualityCheckFailed,
    SchemaError,
    WriteConflict,
)
from headwater.storage import lake as lake_module
from headwater.storage.lake import Lake, StagedParquet
from headwater.storage.readers import ReaderOptions, Source, open_sources
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import quality_store as qs

__all__ = [
    "DATASET_NAME_PATTERN",
    "AfterLoad",
    "BatchReport",
    "IngestReport",
    "ProgressFn",
    "boundary",
    "dataset_name_for",
    "ingest_path",
    "ingest_source",
    "validate_dataset_name",
]

log = logging.getLogger("headwater.ingest")

ProgressFn = Callable[[str, int, int | None], None]
"""Called as (what, rows done, rows in total or None) while a batch loads."""

_ATTEMPTS = 3
"""Loads of one source tried at most, when concurrent writers conflict (`WriteConflict`)."""

_PAUSE_AT = "HEADWATER_TEST_PAUSE_AT"
"""Kill tests name a step boundary here (see `boundary`); unset in normal use."""

DATASET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
"""What a dataset may be called, the one rule every face checks (and the web form shows)."""
_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)


@dataclass
class BatchReport:
    source: str
    batch_id: int | None
    status: Literal["loaded", "unchanged"]
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    quality: str = "passed"
    seconds: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        """The file's name alone: what every face shows (a path stays on the machine)."""
        return self.source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass
class IngestReport:
    dataset: str
    batches: list[BatchReport]
    seconds: float

    @property
    def rows_loaded(self) -> int:
        return sum(b.rows_loaded for b in self.batches)

    @property
    def rows_duplicate(self) -> int:
        return sum(b.rows_duplicate for b in self.batches)

    @property
    def rows_quarantined(self) -> int:
        return sum(b.rows_quarantined for b in self.batches)

    @property
    def unchanged(self) -> bool:
        return all(b.status == "unchanged" for b in self.batches)

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "status": "unchanged" if self.unchanged else "loaded",
            "rows_loaded": self.rows_loaded,
            "rows_duplicate": self.rows_duplicate,
            "rows_quarantined": self.rows_quarantined,
            "batch_ids": [b.batch_id for b in self.batches],
            "seconds": round(self.seconds, 3),
            "batches": [{**asdict(b), "file_name": b.file_name} for b in self.batches],
        }


def validate_dataset_name(name: str) -> str:
    if not _DATASET_NAME.match(name):
        raise ConfigError(
            f"dataset name {name!r} is not allowed: use 1-63 lowercase letters, digits and _, "
            "starting with a letter (e.g. mnist, orders_2024)"
        )
    return name


def dataset_name_for(path: Path) -> str:
    """A dataset name from a file or folder name: ``mnist.pkl.gz`` -> ``mnist``."""
    stem = path.name.split(".")[0].lower()
    stem = re.sub(r"-?(images|labels)-idx[13]-ubyte$", "", stem)
    name = re.sub(r"[^a-z0-9_]+", "_", stem).strip("_")
    if not name or not name[0].isalpha():
        name = f"d_{name}" if name else "dataset"
    return validate_dataset_name(name[:63])


def ingest_path(
    path: Path,
    *,
    warehouse: Warehouse,
    lake: Lake,
    dataset: str | None = None,
    label: str | None = None,
    origin: str | None = None,
    chunk_rows: int = 16384,
    progress: ProgressFn | None = None,
    options: ReaderOptions | None = None,
) -> IngestReport:
    """Load every batch a path holds into one dataset; see the module docstring for the steps.

    ``options``: the text encoding and the limits on hostile input the readers apply.
    """
    started = time.perf_counter()
    name = validate_dataset_name(dataset) if dataset else dataset_name_for(path)
    _tidy_lake(warehouse, lake)
    existing = cat.find_dataset(warehouse, name)
    schema = existing.schema if existing and existing.kind == "tabular" else None
    label = label or (existing.label_column if existing else None)
    sources = open_sources(path, chunk_rows=chunk_rows, schema=schema, label=label, options=options)
    reports = []
    for source in sources:
        reports.append(
            _ingest_source(
                source,
                name=name,
                warehouse=warehouse,
                lake=lake,
                origin=origin,
                progress=progress,
            )
        )
    return IngestReport(name, reports, time.perf_counter() - started)


AfterLoad = Callable[[Warehouse, cat.DatasetRow, int], list[CheckOutcome]]
"""Run in the batch's transaction once its rows are loaded (warehouse, dataset, batch key);
returns the checks it ran, added to the batch's quality report (`data.sequences`)."""


def ingest_source(
    source: Source,
    *,
    warehouse: Warehouse,
    lake: Lake,
    dataset: str,
    origin: str,
    progress: ProgressFn | None = None,
    after_load: AfterLoad | None = None,
) -> IngestReport:
    """Load one source a caller built (the pages of an API) as one batch, like `ingest_path`.

    ``after_load`` derives more from the loaded rows in the same transaction (the
    sequences of nested records), so the batch and what was derived commit together.
    """
    started = time.perf_counter()
    name = validate_dataset_name(dataset)
    _tidy_lake(warehouse, lake)
    report = _ingest_source(
        source,
        name=name,
        warehouse=warehouse,
        lake=lake,
        origin=origin,
        progress=progress,
        after_load=after_load,
    )
    return IngestReport(name, [report], time.perf_counter() - started)


def _tidy_lake(warehouse: Warehouse, lake: Lake) -> None:
    """Finish what killed ingests left, so ``curated/`` shows exactly the committed batches.

    A staged batch whose writer died is published when the warehouse committed it
    and removed when it did not; a curated batch folder the warehouse never
    committed (a kill under versions that published before committing) is removed;
    stale staging leftovers go. Best effort: a failure is logged, never fatal.
    """
    try:
        lake.sweep()
        for staged in lake.abandoned_batches():
            _settle(warehouse, lake, staged)
        # listed before the query: a batch published meanwhile was committed before it
        shown = lake.published_batches()
        committed = {
            (b.dataset, b.batch_id) for b in cat.list_batches(warehouse) if b.status == "succeeded"
        }
        for dataset, batch_id in sorted(shown - committed):
            log.warning("removing curated batch %d of %s: never committed", batch_id, dataset)
            lake.unpublish(dataset, batch_id)
    except (OSError, HeadwaterError) as exc:
        log.warning("could not tidy the lake at %s: %s", lake.root, exc)


def _settle(warehouse: Warehouse, lake: Lake, staged: StagedParquet) -> None:
    """Publish or remove one abandoned staged batch, by what the warehouse committed."""
    try:
        with warehouse.transaction():
            # a commit its dead writer sent may still be finishing on the server; the
            # writer's batch lock is released only once it has
            warehouse.hold_lock("batch", staged.batch_id)
            committed = _committed(warehouse, staged)
        what = f"{staged.part_name} of batch {staged.batch_id} of {staged.dataset}"
        if committed:
            log.info("publishing %s, committed by a process that died", what)
            lake.publish(staged)
        else:
            log.info("removing %s: its process died before committing", what)
            staged.discard()
    finally:
        staged.release()


def _committed(warehouse: Warehouse, staged: StagedParquet) -> bool:
    """Whether the warehouse holds what a staged file carries: its batch, or its released row."""
    if staged.quarantine_id is None:
        batches = cat.list_batches(warehouse, staged.dataset)
        return any(b.batch_id == staged.batch_id and b.status == "succeeded" for b in batches)
    dataset = cat.find_dataset(warehouse, staged.dataset)
    if dataset is None:
        return False
    try:
        row = qs.get_quarantined(warehouse, dataset.key, staged.quarantine_id)
    except NotFound:
        return False
    return row.status == "released"


def _ingest_source(
    source: Source,
    *,
    name: str,
    warehouse: Warehouse,
    lake: Lake,
    origin: str | None,
    progress: ProgressFn | None,
    after_load: AfterLoad | None = None,
) -> BatchReport:
    started = time.perf_counter()
    hashed = source.sha256s or [lake_module.sha256_file(f.path) for f in source.files]
    shas = [(f.role, sha) for f, sha in zip(source.files, hashed, strict=True)]
    print_ = fingerprint(shas)
    for attempt in range(1, _ATTEMPTS + 1):
        existing = cat.find_dataset(warehouse, name)
        if existing is not None:
            done = cat.succeeded_batch(warehouse, existing.key, print_)
            if done is not None:
                log.info("%s: unchanged, already loaded as batch %d", source.name, done)
                return BatchReport(
                    source.name, done, "unchanged", seconds=time.perf_counter() - started
                )
        loader = _BatchLoader(source, name, warehouse, lake, existing, progress)
        loader.after_load = after_load
        try:
            report = loader.run(shas, print_, origin or str(source.primary.path.resolve()))
        except Exception as conflict:
            full = lake_module.no_space_left(conflict, where=lake.root)
            if full is not None:  # no attempt can succeed until space is freed
                kept = f"nothing of {source.name} was kept"
                raise DiskFull(full.location, kept) from conflict
            if not isinstance(conflict, WriteConflict):
                raise
            # another ingest created the dataset or recorded a shared raw file first; it has
            # committed, so the next attempt sees its rows and counts them as duplicates
            if attempt == _ATTEMPTS:
                raise WriteConflict(
                    f"{source.name}: other ingests into dataset {name!r} kept committing "
                    f"the same rows first ({_ATTEMPTS} attempts); nothing of this file was "
                    "loaded, run the ingest again"
                ) from conflict
            log.info("%s: %s; loading again (attempt %d)", source.name, conflict, attempt + 1)
            continue
        report.seconds = time.perf_counter() - started
        return report
    raise AssertionError("unreachable: the last attempt returns or raises")


class _LoadedMeanwhile(Exception):
    """The same bytes were committed by another writer while this one waited for the lock."""

    def __init__(self, batch: int) -> None:
        super().__init__(batch)
        self.batch = batch


class _BatchLoader:
    """Loads one source as one batch; state lives here only for the length of `run`."""

    def __init__(
        self,
        source: Source,
        dataset: str,
        warehouse: Warehouse,
        lake: Lake,
        existing: cat.DatasetRow | None,
        progress: ProgressFn | None,
    ) -> None:
        self.source, self.dataset_name, self.wh, self.lake = source, dataset, warehouse, lake
        self.existing, self.progress = existing, progress
        self.now = datetime.now(UTC)
        self.gate: BatchGate
        self.verdict: QualityReport
        self.raw_made: list[str] = []
        self.read = self.loaded = self.duplicates = 0
        self.splits: dict[str, int] = {}
        self.after_load: AfterLoad | None = None

    def run(self, shas: list[tuple[str, str]], print_: str, origin: str) -> BatchReport:
        first, batches = self._first_batch()
        batch_key = cat.next_batch_key(self.wh)
        schema = curated_schema(self.source.kind, first.schema)
        staged = self.lake.stage_batch(self.dataset_name, batch_key, schema)
        try:
            with self.wh.transaction():
                report = self._load(first, batches, batch_key, staged, shas, print_, origin)
                log.info("batch %d: %d rows loaded, committing", batch_key, self.loaded)
        except _LoadedMeanwhile as loaded:
            staged.discard()
            log.info("%s: loaded by another writer as batch %d", self.source.name, loaded.batch)
            return BatchReport(self.source.name, loaded.batch, "unchanged")
        except BaseException as error:
            staged.discard()
            self._forget_raw_copies()
            if isinstance(error, QualityCheckFailed) and self.existing is not None:
                self._record_failure(self.existing, batch_key, print_, origin, error)
            raise
        boundary("committed")
        curated = self._publish(staged)
        boundary("published")
        log.info("batch %d committed to %s", batch_key, curated)
        return BatchReport(
            self.source.name,
            batch_key,
            "loaded",
            rows_read=self.read,
            rows_loaded=self.loaded,
            rows_duplicate=self.duplicates,
            rows_quarantined=report.rows_quarantined,
            quality=report.status,
            splits=self.splits,
        )

    def _first_batch(self) -> tuple[pa.RecordBatch, Iterator[pa.RecordBatch]]:
        batches = self.source.read()
        first = next(batches, None)
        if first is None:
            raise FormatError("the file holds no rows", path=self.source.primary.path)
        if self.existing is not None and self.existing.kind != self.source.kind:
            raise SchemaError(
                f"dataset {self.dataset_name!r} holds {self.existing.kind} data, this file holds "
                f"{self.source.kind} data; ingest it under another --dataset name",
                path=self.source.primary.path,
            )
        return first, batches

    def _load(
        self,
        first: pa.RecordBatch,
        batches: Iterator[pa.RecordBatch],
        batch_key: int,
        staged: StagedParquet,
        shas: list[tuple[str, str]],
        print_: str,
        origin: str,
    ) -> QualityReport:
        """Everything of the batch that commits as one transaction; the caller commits it."""
        # held until the commit is done, on the server too: `_settle` waits on it
        self.wh.hold_lock("batch", batch_key)
        dataset = self.existing or self._create_dataset(first.schema)
        # one writer per dataset from here on: the duplicate check below and the
        # load after it must see the same rows (there is no unique index to catch it)
        self.wh.hold_lock("dataset", dataset.key, on_wait=self._say_waiting)
        if self.existing is not None:
            done = cat.succeeded_batch(self.wh, dataset.key, print_)
            if done is not None:
                raise _LoadedMeanwhile(done)
        self.gate = self._gate(dataset, batch_key, first)
        seen = SeenRows()
        if self.existing is not None:
            for held in cat.existing_row_hashes(self.wh, dataset):
                seen.first_sightings(hash_keys(held))
        for batch in chain([first], batches):
            self._load_batch(batch, dataset, batch_key, seen, staged)
        if self.source.set_aside is not None:
            set_aside = self.source.set_aside()
            qs.add_quarantine(self.wh, dataset.key, batch_key, set_aside, now=self.now)
        staged.close()
        boundary("staging_written")
        self.verdict = report = self._verdict(dataset)
        if report.status == "failed":
            failed = "; ".join(c.detail or c.name for c in report.checks if c.outcome == "fail")
            raise QualityCheckFailed(
                f"batch {batch_key} failed its quality checks and was not loaded: {failed}. "
                f"See: headwater quality {self.dataset_name}",
                path=self.source.primary.path,
            )
        if self.after_load is not None:
            _add_checks(report, self.after_load(self.wh, dataset, batch_key))
        qs.save_report(self.wh, batch_key, dataset.key, report.status, report.to_json(), self.now)
        self._record(dataset, batch_key, shas, print_, origin)
        boundary("raw_stored")
        return report

    def _publish(self, staged: StagedParquet) -> Path | None:
        """After the commit: the batch's curated file goes into place under ``curated/``.

        A failure here cannot undo the commit; the file stays staged and the next
        ingest publishes it (`_settle`).
        """
        if not staged.rows:
            staged.discard()
            return None
        try:
            return self.lake.publish(staged)
        except OSError as exc:
            staged.release()
            log.warning(
                "batch %d is committed but its curated file stays at %s (%s); "
                "the next ingest publishes it",
                staged.batch_id,
                staged.path,
                exc,
            )
            return None

    def _forget_raw_copies(self) -> None:
        """Remove the raw copies this failed ingest made, unless a committed batch records them.

        Best effort: a copy left behind is reused by the next ingest of the same bytes.
        """
        if not self.raw_made:
            return
        try:
            with self.wh.transaction():
                self.wh.hold_lock("raw", 0)
                recorded = cat.recorded_raw(self.wh, self.raw_made)
                for sha in self.raw_made:
                    if sha not in recorded:
                        self.lake.remove_raw(sha)
        except (OSError, HeadwaterError) as exc:
            log.warning("could not remove the raw copies this ingest made: %s", exc)
        self.raw_made.clear()

    def _say_waiting(self) -> None:
        log.warning(
            "%s: another ingest into dataset %r is loading; waiting for it to commit",
            self.source.name,
            self.dataset_name,
        )

    def _gate(self, dataset: cat.DatasetRow, batch_key: int, first: pa.RecordBatch) -> BatchGate:
        """The dataset's contract, inferred from this batch and stored when it has none."""
        stored = qs.get_contract(self.wh, dataset.key)
        if stored is None:
            contract = infer_contract(
                dataset.kind,
                first,
                label_column=dataset.label_column,
                known_labels=self.source.labels,
            )
            qs.save_contract(self.wh, dataset.key, contract.to_json(), approved=False, now=self.now)
        else:
            contract = Contract.from_json(stored[0])
            contract.approved = stored[1]
        return BatchGate(contract, dataset=dataset.name, batch_id=batch_key)

    def _verdict(self, dataset: cat.DatasetRow) -> QualityReport:
        previous = cat.list_batches(self.wh, dataset.name)
        done = [b for b in previous if b.status == "succeeded"]
        return self.gate.verdict(
            rows_read=self.read,
            rows_loaded=self.loaded,
            rows_duplicate=self.duplicates,
            previous_rows=done[-1].rows_read if done else None,
        )

    def _record_failure(
        self,
        dataset: cat.DatasetRow,
        batch_key: int,
        print_: str,
        origin: str,
        error: QualityCheckFailed,
    ) -> None:
        """A batch that failed its checks is kept as a failed batch with its report, no rows."""
        with self.wh.transaction():
            cat.record_batch(
                self.wh,
                batch_key=batch_key,
                dataset_key=dataset.key,
                fingerprint=print_,
                raw_sha256=print_,
                source=origin,
                original_name=self.source.name,
                started_at=self.now,
                finished_at=datetime.now(UTC),
                rows_read=self.read,
                rows_loaded=0,
                rows_duplicate=self.duplicates,
                curated_path=None,
                status="failed",
                error=error.reason,
            )
            verdict = self.verdict.to_json()
            qs.save_report(self.wh, batch_key, dataset.key, "failed", verdict, self.now)

    def _create_dataset(self, schema: pa.Schema) -> cat.DatasetRow:
        kind = self.source.kind
        user_schema = None if kind == "image" else schema
        dataset = cat.create_dataset(
            self.wh,
            self.dataset_name,
            kind=kind,
            label_column=self.source.label_column,
            schema=user_schema,
            now=self.now,
        )
        if user_schema is not None:
            try:
                cat.create_tabular_fact_table(self.wh, dataset.fact_table, user_schema)
            except SchemaError as exc:  # the catalog knows the columns, not the file: name it
                where = self.source.primary.path
                raise SchemaError(exc.reason, path=where, field=exc.field) from exc
        return dataset

    def _load_batch(
        self,
        batch: pa.RecordBatch,
        dataset: cat.DatasetRow,
        batch_key: int,
        seen: SeenRows,
        staged: StagedParquet,
    ) -> None:
        first_row = self.read
        self.read += batch.num_rows
        source_rows = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
        if dataset.kind != "image":
            self._check_labels(batch, dataset, first_row)
        own = image_row_hashes if dataset.kind == "image" else tabular_row_hashes
        hashes = (self.source.row_hashes or own)(batch)
        keep = seen.first_sightings(hash_keys(hashes))
        self.duplicates += batch.num_rows - int(keep.sum())
        batch, hashes, source_rows = _take(batch, hashes, source_rows, keep)
        passed, quarantined = self.gate.split(batch, source_rows)
        qs.add_quarantine(self.wh, dataset.key, batch_key, quarantined, now=self.now)
        batch, hashes, source_rows = _take(batch, hashes, source_rows, passed)
        if batch.num_rows:
            rows = fact_rows(self.wh, dataset, batch, hashes, source_rows, batch_key, self.now)
            self._count_splits(rows.splits)
            fact, curated = rows.fact, rows.curated
            self.wh.load_arrow(dataset.fact_table, fact)
            staged.write(curated)
            self.loaded += batch.num_rows
            boundary("mid_load")
        log.info("batch %d: %d rows read, %d loaded", batch_key, self.read, self.loaded)
        if self.progress is not None:
            self.progress(self.source.name, self.read, self.source.total_rows)

    def _check_labels(self, batch: pa.RecordBatch, dataset: cat.DatasetRow, first_row: int) -> None:
        """NaN or a missing value where a label belongs is a schema error naming the row."""
        column_name = dataset.label_column
        if column_name is None:
            return
        column = batch.column(column_name)
        bad = pc.is_null(column, nan_is_null=True)
        if pc.any(bad).as_py():
            row = first_row + int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise SchemaError(
                "the label is missing (null or NaN); every row needs a label. Fix the row "
                "or ingest without --label",
                path=self.source.primary.path,
                row=row,
                field=column_name,
            )

    def _count_splits(self, splits: pa.Array) -> None:
        for item in pc.value_counts(splits).to_pylist():
            self.splits[item["values"]] = self.splits.get(item["values"], 0) + item["counts"]

    def _record(
        self,
        dataset: cat.DatasetRow,
        batch_key: int,
        shas: list[tuple[str, str]],
        print_: str,
        origin: str,
    ) -> None:
        manifest = [
            (
                sha,
                raw.path.name,
                raw.size if raw.size is not None else raw.path.stat().st_size,
                raw.media_type,
                origin,
                self.lake.raw_name(sha),
                role,
            )
            for raw, (role, sha) in zip(self.source.files, shas, strict=True)
        ]
        cat.record_batch(
            self.wh,
            batch_key=batch_key,
            dataset_key=dataset.key,
            fingerprint=print_,
            raw_sha256=shas[0][1],
            source=origin,
            original_name=self.source.name,
            started_at=self.now,
            finished_at=datetime.now(UTC),
            rows_read=self.read,
            rows_loaded=self.loaded,
            rows_duplicate=self.duplicates,
            curated_path=(
                str(self.lake.curated_path(self.dataset_name, batch_key)) if self.loaded else None
            ),
        )
        # Raw copies are content-addressed and immutable: one another ingest made is
        # reused. The raw lock, held to the commit, keeps `_forget_raw_copies` of a
        # failed ingest from removing a copy this one has recorded, and another writer
        # from recording the same file between the manifest's check and its load.
        self.wh.hold_lock("raw", 0)
        cat.record_raw_files(self.wh, batch_key, manifest, now=self.now)
        if self.source.raw_stored:
            return
        for raw, (_, sha) in zip(self.source.files, shas, strict=True):
            if not self.lake.has_raw(sha):
                self.raw_made.append(sha)
                self.lake.store_raw(raw.path, sha)


def boundary(step: str) -> None:
    """A step boundary of an ingest, where a kill must leave the lake and warehouse consistent.

    With ``HEADWATER_TEST_PAUSE_AT=<step>`` the process says so on stderr and sleeps here,
    so a test can SIGKILL it at exactly this boundary; the steps of an ingest, in order,
    are mid_load, staging_written, raw_stored, committed and published; a quarantine
    release has release_staged and release_committed; a pipeline run has
    ``pipeline_<step>`` (``pipeline_train``) once a step's work is done, before its
    success is recorded (`flows.pipelines`).
    """
    if os.environ.get(_PAUSE_AT) == step:
        print(f"headwater: paused at {step}", file=sys.stderr, flush=True)
        time.sleep(600)


def _add_checks(report: QualityReport, checks: list[CheckOutcome]) -> None:
    """Derived checks join the batch's report; one that warns makes a passed batch warned."""
    report.checks.extend(checks)
    if report.status == "passed" and any(c.outcome == "warn" for c in checks):
        report.status = "warned"


def _take(
    batch: pa.RecordBatch, hashes: pa.Array, rows: np.ndarray, keep: np.ndarray
) -> tuple[pa.RecordBatch, pa.Array, np.ndarray]:
    if keep.all():
        return batch, hashes, rows
    mask = pa.array(keep)
    return batch.filter(mask), hashes.filter(mask), rows[keep]
