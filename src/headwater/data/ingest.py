"""Ingest: a raw file into the lake and the warehouse, as one all-or-nothing batch.

One `Source` (a file, an IDX pair, an image folder) is one batch and one
warehouse transaction. In order:

1. hash the raw files; a batch with the same fingerprint already loaded into
   this dataset makes the whole thing a no-op, reported as ``unchanged``;
2. stream the reader's Arrow batches: hash each row, drop rows whose hash the
   dataset already holds (counted as duplicates), bulk-load the rest and write
   them to a staged curated Parquet file;
3. copy the raw files to their content address, record the manifest and the
   batch row, rename the curated file into place, commit.

A failure anywhere, a SIGKILL included, leaves no rows, no batch and no curated
file behind (the staged file lives under ``_staging``, which readers skip).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
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
from headwater.data.quality import BatchGate, Contract, QualityReport, infer_contract
from headwater.errors import (
    ConfigError,
    FormatError,
    HeadwaterError,
    QualityCheckFailed,
    SchemaError,
    WriteConflict,
)
from headwater.storage import lake as lake_module
from headwater.storage.lake import Lake, StagedParquet
from headwater.storage.readers import Source, open_sources
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import quality_store as qs

__all__ = [
    "BatchReport",
    "IngestReport",
    "ProgressFn",
    "dataset_name_for",
    "ingest_path",
    "validate_dataset_name",
]

log = logging.getLogger("headwater.ingest")

ProgressFn = Callable[[str, int, int | None], None]
"""Called as (what, rows done, rows in total or None) while a batch loads."""

_ATTEMPTS = 3
"""Loads of one source tried at most, when concurrent writers conflict (`WriteConflict`)."""

_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


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
            "batches": [asdict(b) for b in self.batches],
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
) -> IngestReport:
    """Load every batch a path holds into one dataset; see the module docstring for the steps."""
    started = time.perf_counter()
    name = validate_dataset_name(dataset) if dataset else dataset_name_for(path)
    _tidy_lake(warehouse, lake)
    existing = cat.find_dataset(warehouse, name)
    schema = existing.schema if existing and existing.kind == "tabular" else None
    label = label or (existing.label_column if existing else None)
    sources = open_sources(path, chunk_rows=chunk_rows, schema=schema, label=label)
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


def _tidy_lake(warehouse: Warehouse, lake: Lake) -> None:
    """Clear what killed ingests left; a failure here is logged, never fatal to the ingest."""
    try:
        lake.sweep()
        committed = [(b.dataset, b.batch_id) for b in cat.list_batches(warehouse)]
        lake.sweep_curated(committed=committed)
    except (OSError, HeadwaterError) as exc:
        log.warning("could not tidy the lake at %s: %s", lake.root, exc)


def _ingest_source(
    source: Source,
    *,
    name: str,
    warehouse: Warehouse,
    lake: Lake,
    origin: str | None,
    progress: ProgressFn | None,
) -> BatchReport:
    started = time.perf_counter()
    shas = [(f.role, lake_module.sha256_file(f.path)) for f in source.files]
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
        try:
            report = loader.run(shas, print_, origin or str(source.primary.path.resolve()))
        except WriteConflict as conflict:
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
        self.read = self.loaded = self.duplicates = 0
        self.splits: dict[str, int] = {}

    def run(self, shas: list[tuple[str, str]], print_: str, origin: str) -> BatchReport:
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
        batch_key = cat.next_batch_key(self.wh)
        staged = self.lake.stage_parquet(curated_schema(self.source.kind, first.schema))
        published = False
        try:
            with self.wh.transaction():
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
                report = self._verdict(dataset)
                if report.status == "failed":
                    raise QualityCheckFailed(
                        f"batch {batch_key} failed its quality checks and was not loaded: "
                        + "; ".join(
                            c.detail or c.name for c in report.checks if c.outcome == "fail"
                        )
                        + ". See: headwater quality "
                        + self.dataset_name,
                        path=self.source.primary.path,
                    )
                qs.save_report(
                    self.wh, batch_key, dataset.key, report.status, report.to_json(), self.now
                )
                self._record(dataset, batch_key, shas, print_, origin)
                staged.close()
                curated = None
                if staged.rows:
                    curated = self.lake.publish(staged, self.dataset_name, batch_key)
                    published = True
                else:
                    staged.discard()
                log.info("batch %d: %d rows loaded, committing", batch_key, self.loaded)
        except _LoadedMeanwhile as loaded:
            staged.discard()
            log.info("%s: loaded by another writer as batch %d", self.source.name, loaded.batch)
            return BatchReport(self.source.name, loaded.batch, "unchanged")
        except BaseException as error:
            staged.discard()
            if published:
                self.lake.unpublish(self.dataset_name, batch_key)
            if isinstance(error, QualityCheckFailed) and self.existing is not None:
                self._record_failure(self.existing, batch_key, print_, origin, report, error)
            raise
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
            contract = infer_contract(dataset.kind, first, label_column=dataset.label_column)
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
        report: QualityReport,
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
            qs.save_report(self.wh, batch_key, dataset.key, "failed", report.to_json(), self.now)

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
            cat.create_tabular_fact_table(self.wh, dataset.fact_table, user_schema)
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
        if dataset.kind == "image":
            hashes = image_row_hashes(batch)
        else:
            self._check_labels(batch, dataset, first_row)
            hashes = tabular_row_hashes(batch)
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
                raw.path.stat().st_size,
                raw.media_type,
                origin,
                str(self.lake.raw_path(sha).relative_to(self.lake.root)),
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
        cat.record_raw_files(self.wh, batch_key, manifest, now=self.now)
        # Raw copies are content-addressed and immutable: one left by a failed commit is
        # simply found and reused by the next attempt.
        for raw, (_, sha) in zip(self.source.files, shas, strict=True):
            self.lake.store_raw(raw.path, sha)


def _take(
    batch: pa.RecordBatch, hashes: pa.Array, rows: np.ndarray, keep: np.ndarray
) -> tuple[pa.RecordBatch, pa.Array, np.ndarray]:
    if keep.all():
        return batch, hashes, rows
    mask = pa.array(keep)
    return batch.filter(mask), hashes.filter(mask), rows[keep]
