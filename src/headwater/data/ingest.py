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

from headwater.data.hashing import fingerprint, image_row_hashes, tabular_row_hashes
from headwater.errors import ConfigError, FormatError, SchemaError
from headwater.storage import lake as lake_module
from headwater.storage.lake import Lake, StagedParquet
from headwater.storage.readers import IMAGE_SCHEMA, Source, open_sources
from headwater.storage.readers.base import SPLITS
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat

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

_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CURATED_IMAGE_SCHEMA = IMAGE_SCHEMA.append(pa.field("row_hash", pa.string(), nullable=False))


@dataclass
class BatchReport:
    source: str
    batch_id: int | None
    status: Literal["loaded", "unchanged"]
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
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
    def unchanged(self) -> bool:
        return all(b.status == "unchanged" for b in self.batches)

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "status": "unchanged" if self.unchanged else "loaded",
            "rows_loaded": self.rows_loaded,
            "rows_duplicate": self.rows_duplicate,
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
    committed = [(b.dataset, b.batch_id) for b in cat.list_batches(warehouse)]
    lake.sweep(committed=committed)
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
    existing = cat.find_dataset(warehouse, name)
    if existing is not None:
        done = cat.succeeded_batch(warehouse, existing.key, print_)
        if done is not None:
            log.info("%s: unchanged, already loaded as batch %d", source.name, done)
            return BatchReport(
                source.name, done, "unchanged", seconds=time.perf_counter() - started
            )
    loader = _BatchLoader(source, name, warehouse, lake, existing, progress)
    report = loader.run(shas, print_, origin or str(source.primary.path.resolve()))
    report.seconds = time.perf_counter() - started
    return report


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
        staged = self.lake.stage_parquet(self._curated_schema(first.schema))
        published = False
        try:
            with self.wh.transaction():
                dataset = self.existing or self._create_dataset(first.schema)
                seen = cat.existing_row_hashes(self.wh, dataset) if self.existing else set()
                for batch in chain([first], batches):
                    self._load_batch(batch, dataset, batch_key, seen, staged)
                self._record(dataset, batch_key, shas, print_, origin)
                staged.close()
                curated = None
                if staged.rows:
                    curated = self.lake.publish(staged, self.dataset_name, batch_key)
                    published = True
                else:
                    staged.discard()
                log.info("batch %d: %d rows loaded, committing", batch_key, self.loaded)
        except BaseException:
            staged.discard()
            if published:
                self.lake.unpublish(self.dataset_name, batch_key)
            raise
        log.info("batch %d committed to %s", batch_key, curated)
        return BatchReport(
            self.source.name,
            batch_key,
            "loaded",
            rows_read=self.read,
            rows_loaded=self.loaded,
            rows_duplicate=self.duplicates,
            splits=self.splits,
        )

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

    def _curated_schema(self, schema: pa.Schema) -> pa.Schema:
        if self.source.kind == "image":
            return CURATED_IMAGE_SCHEMA
        return (
            schema.append(pa.field("hw_split", pa.string()))
            .append(pa.field("hw_source_row", pa.int64()))
            .append(pa.field("hw_row_hash", pa.string()))
        )

    def _load_batch(
        self,
        batch: pa.RecordBatch,
        dataset: cat.DatasetRow,
        batch_key: int,
        seen: set[str],
        staged: StagedParquet,
    ) -> None:
        first_row = self.read
        self.read += batch.num_rows
        if dataset.kind == "image":
            hashes = image_row_hashes(batch)
        else:
            self._check_labels(batch, dataset, first_row)
            hashes = tabular_row_hashes(batch)
        keep = _first_sightings(hashes, seen)
        kept = int(keep.sum())
        self.duplicates += batch.num_rows - kept
        if kept:
            mask = pa.array(keep)
            batch, hashes = batch.filter(mask), hashes.filter(mask)
            if dataset.kind == "image":
                fact, curated = self._image_rows(batch, hashes, dataset, batch_key)
            else:
                fact, curated = self._tabular_rows(batch, hashes, first_row, keep, batch_key)
            self.wh.load_arrow(dataset.fact_table, fact)
            staged.write(curated)
            self.loaded += kept
        log.info("batch %d: %d rows read, %d loaded", batch_key, self.read, self.loaded)
        if self.progress is not None:
            self.progress(self.source.name, self.read, self.source.total_rows)

    def _image_rows(
        self, batch: pa.RecordBatch, hashes: pa.Array, dataset: cat.DatasetRow, batch_key: int
    ) -> tuple[pa.Table, pa.Table]:
        n = batch.num_rows
        splits = batch.column("split")
        labels = batch.column("label")
        keys = cat.label_keys(self.wh, dataset.key, pc.unique(labels.drop_null()).to_pylist())
        label_values = pa.array(list(keys), pa.string())
        label_keys = pc.take(
            pa.array(list(keys.values()), pa.int64()), pc.index_in(labels, label_values)
        )
        self._count_splits(splits)
        fact = pa.table(
            {
                "dataset_key": _constant(n, dataset.key, pa.int64()),
                "batch_key": _constant(n, batch_key, pa.int64()),
                "split_key": _split_keys(splits),
                "label_key": label_keys,
                "source_row": batch.column("source_row"),
                "height": batch.column("height"),
                "width": batch.column("width"),
                "channels": batch.column("channels"),
                "pixel_dtype": batch.column("pixel_dtype"),
                "pixels": batch.column("pixels"),
                "row_hash": hashes,
                "ingested_at": _constant(n, self.now, pa.timestamp("us", tz="UTC")),
            }
        )
        curated = pa.Table.from_batches([batch]).append_column("row_hash", hashes)
        return fact, curated.cast(CURATED_IMAGE_SCHEMA)

    def _tabular_rows(
        self,
        batch: pa.RecordBatch,
        hashes: pa.Array,
        first_row: int,
        keep: np.ndarray,
        batch_key: int,
    ) -> tuple[pa.Table, pa.Table]:
        n = batch.num_rows
        source_rows = pa.array(first_row + np.flatnonzero(keep), pa.int64())
        splits = _tabular_splits(batch)
        self._count_splits(splits)
        system = {
            "hw_batch_key": _constant(n, batch_key, pa.int64()),
            "hw_split_key": _split_keys(splits),
            "hw_source_row": source_rows,
            "hw_row_hash": hashes,
            "hw_ingested_at": _constant(n, self.now, pa.timestamp("us", tz="UTC")),
        }
        user = pa.Table.from_batches([batch])
        fact = user
        for key, column in system.items():
            fact = fact.append_column(key, column)
        curated = (
            user.append_column("hw_split", splits)
            .append_column("hw_source_row", source_rows)
            .append_column("hw_row_hash", hashes)
        )
        return fact, curated

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


def _first_sightings(hashes: pa.Array, seen: set[str]) -> np.ndarray:
    """True for each row whose hash neither the dataset nor an earlier row of this batch holds."""
    keep = np.zeros(len(hashes), dtype=bool)
    for i, digest in enumerate(hashes.to_pylist()):
        if digest not in seen:
            seen.add(digest)
            keep[i] = True
    return keep


def _constant(n: int, value: object, kind: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), n)


def _split_keys(splits: pa.Array) -> pa.Array:
    index = pc.index_in(splits, pa.array(list(SPLITS)))
    return pc.add(index, 1).cast(pa.int16())


def _tabular_splits(batch: pa.RecordBatch) -> pa.Array:
    """A user column named ``split`` holding only train/validation/test decides the split."""
    n = batch.num_rows
    if "split" in batch.schema.names:
        column = batch.column("split")
        if (
            pa.types.is_string(column.type)
            and column.null_count == 0
            and pc.all(pc.is_in(column, pa.array(list(SPLITS)))).as_py()
        ):
            return column
    return pa.repeat(pa.scalar("unassigned"), n)
