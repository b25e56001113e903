"""Rows as the warehouse's fact tables and the lake's curated files want them.

Shared by ingest and by releasing rows from the quarantine, so a row lands the
same way whichever door it came in by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.storage.readers import IMAGE_SCHEMA
from headwater.storage.readers.base import SPLITS
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat

__all__ = ["CURATED_IMAGE_SCHEMA", "FactRows", "curated_schema", "fact_rows"]

CURATED_IMAGE_SCHEMA = IMAGE_SCHEMA.append(pa.field("row_hash", pa.string(), nullable=False))


@dataclass(frozen=True)
class FactRows:
    fact: pa.Table
    curated: pa.Table
    splits: pa.Array


def curated_schema(kind: str, schema: pa.Schema) -> pa.Schema:
    if kind == "image":
        return CURATED_IMAGE_SCHEMA
    return (
        schema.append(pa.field("hw_split", pa.string()))
        .append(pa.field("hw_source_row", pa.int64()))
        .append(pa.field("hw_row_hash", pa.string()))
    )


def fact_rows(
    wh: Warehouse,
    dataset: cat.DatasetRow,
    batch: pa.RecordBatch,
    hashes: pa.Array,
    source_rows: np.ndarray,
    batch_key: int,
    now: datetime,
) -> FactRows:
    if dataset.kind == "image":
        return _image_rows(wh, dataset, batch, hashes, batch_key, now)
    rows = _tabular_rows(batch, hashes, source_rows, batch_key, now)
    return FactRows(cat.as_fact_columns(dataset, rows.fact), rows.curated, rows.splits)


def _image_rows(
    wh: Warehouse,
    dataset: cat.DatasetRow,
    batch: pa.RecordBatch,
    hashes: pa.Array,
    batch_key: int,
    now: datetime,
) -> FactRows:
    n = batch.num_rows
    splits = batch.column("split")
    labels = batch.column("label")
    keys = cat.label_keys(wh, dataset.key, pc.unique(labels.drop_null()).to_pylist())
    label_values = pa.array(list(keys), pa.string())
    label_keys = pc.take(
        pa.array(list(keys.values()), pa.int64()), pc.index_in(labels, label_values)
    )
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
            "ingested_at": _constant(n, now, pa.timestamp("us", tz="UTC")),
        }
    )
    curated = pa.Table.from_batches([batch]).append_column("row_hash", hashes)
    return FactRows(fact, curated.cast(CURATED_IMAGE_SCHEMA), splits)


def _tabular_rows(
    batch: pa.RecordBatch, hashes: pa.Array, rows: np.ndarray, batch_key: int, now: datetime
) -> FactRows:
    n = batch.num_rows
    source_rows = pa.array(rows, pa.int64())
    splits = _tabular_splits(batch)
    system = {
        "hw_batch_key": _constant(n, batch_key, pa.int64()),
        "hw_split_key": _split_keys(splits),
        "hw_source_row": source_rows,
        "hw_row_hash": hashes,
        "hw_ingested_at": _constant(n, now, pa.timestamp("us", tz="UTC")),
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
    return FactRows(fact, curated, splits)


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
