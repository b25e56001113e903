"""The star schema's questions and answers: every SQL statement about datasets and batches.

Upper layers call these functions and never write SQL. Tabular datasets get a
fact table of their own (``fact_<dataset>``) whose user columns come from the
file's Arrow schema; Headwater's own columns there start with ``hw_``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import DatasetNotFound, SchemaError
from headwater.storage.binary import pixel_array
from headwater.storage.readers.base import Kind
from headwater.storage.warehouse.base import Warehouse, as_time, as_time_or_none

__all__ = [
    "SPLIT_KEYS",
    "BatchRow",
    "DatasetRow",
    "as_fact_columns",
    "batch_images",
    "create_dataset",
    "create_tabular_fact_table",
    "existing_row_hashes",
    "fact_column_names",
    "fact_columns",
    "find_dataset",
    "get_dataset",
    "holds_row",
    "image_by_key",
    "image_chunks",
    "image_sources",
    "label_keys",
    "list_batches",
    "list_datasets",
    "next_batch_key",
    "record_batch",
    "record_raw_files",
    "sample_rows",
    "sourced_image_chunks",
    "split_counts",
    "split_index",
    "succeeded_batch",
    "tabular_chunks",
]

SPLIT_KEYS = {"train": 1, "validation": 2, "test": 3, "unassigned": 4}
HW_COLUMNS = (
    "hw_row_key",
    "hw_batch_key",
    "hw_split_key",
    "hw_source_row",
    "hw_row_hash",
    "hw_ingested_at",
)

_DIALECTS = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class DatasetRow:
    key: int
    name: str
    kind: Kind
    fact_table: str
    label_column: str | None
    schema: pa.Schema | None
    created_at: datetime


@dataclass(frozen=True)
class BatchRow:
    batch_id: int
    dataset: str
    source: str
    original_name: str
    raw_sha256: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    status: str


def _schema_text(schema: pa.Schema | None) -> str | None:
    return None if schema is None else base64.b64encode(schema.serialize().to_pybytes()).decode()


def _schema_of(text: object) -> pa.Schema | None:
    if not text:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(str(text))))


_DATASET_COLUMNS = "dataset_key, name, kind, fact_table, label_column, arrow_schema, created_at"


def _int(value: object) -> int:
    return int(str(value))


def _kind(value: object) -> Kind:
    if value == "image":
        return "image"
    if value == "tabular":
        return "tabular"
    raise ValueError(f"unknown dataset kind {value!r} in dim_dataset")


def _dataset(row: tuple[object, ...]) -> DatasetRow:
    key, name, kind, fact, label, schema, created = row
    return DatasetRow(
        _int(key),
        str(name),
        _kind(kind),
        str(fact),
        None if label is None else str(label),
        _schema_of(schema),
        as_time(created),
    )


def find_dataset(wh: Warehouse, name: str) -> DatasetRow | None:
    row = wh.fetch_one("SELECT " + _DATASET_COLUMNS + " FROM dim_dataset WHERE name = %s", [name])
    return None if row is None else _dataset(row)


def get_dataset(wh: Warehouse, name: str) -> DatasetRow:
    found = find_dataset(wh, name)
    if found is None:
        raise DatasetNotFound(name, [d.name for d in list_datasets(wh)])
    return found


def list_datasets(wh: Warehouse) -> list[DatasetRow]:
    rows = wh.fetch("SELECT " + _DATASET_COLUMNS + " FROM dim_dataset ORDER BY name")
    return [_dataset(r) for r in rows]


def create_dataset(
    wh: Warehouse,
    name: str,
    *,
    kind: Kind,
    label_column: str | None,
    schema: pa.Schema | None,
    now: datetime,
) -> DatasetRow:
    fact = "fact_image" if kind == "image" else f"fact_{name}"
    wh.execute(
        "INSERT INTO dim_dataset (name, kind, fact_table, label_column, arrow_schema, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [name, kind, fact, label_column, _schema_text(schema), now],
    )
    return get_dataset(wh, name)


MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL cuts longer identifiers; every backend gets names that fit, so both agree."""


def fact_column_names(names: Sequence[str]) -> list[str]:
    """The names a tabular fact table stores a file's columns under, in the file's order.

    DuckDB compares identifiers without regard to case and PostgreSQL cuts them at 63
    bytes, so ``Name`` and ``name``, or two long headers alike in their first 63 bytes,
    cannot both be columns as they are. A name that fits and is the first of its
    case-folded spelling is kept; the others get the first free ``_2``, ``_3``... and
    a long name is cut to fit with a short hash of the whole name, so the answer
    depends on the names alone. The file's own names stay in the dataset's schema.
    """
    taken = {h.lower() for h in HW_COLUMNS}
    stored: list[str | None] = []
    for name in names:
        fits = len(name.encode()) <= MAX_IDENTIFIER_BYTES and name.lower() not in taken
        stored.append(name if fits else None)
        if fits:
            taken.add(name.lower())
    for i, name in enumerate(names):
        if stored[i] is None:
            candidate, n = _shortened(name, ""), 1
            while candidate.lower() in taken:
                n += 1
                candidate = _shortened(name, f"_{n}")
            taken.add(candidate.lower())
            stored[i] = candidate
    return [s for s in stored if s is not None]


def _shortened(name: str, suffix: str) -> str:
    """``name + suffix`` if it fits in 63 bytes, else its head, a hash of it, and the suffix."""
    if len((name + suffix).encode()) <= MAX_IDENTIFIER_BYTES:
        return name + suffix
    tail = "_" + hashlib.sha256(name.encode()).hexdigest()[:8] + suffix
    head = name.encode()[: MAX_IDENTIFIER_BYTES - len(tail.encode())]
    return head.decode(errors="ignore") + tail


def fact_columns(dataset: DatasetRow) -> dict[str, str]:
    """A tabular dataset's column names, as the file has them, to the fact table's names."""
    if dataset.schema is None:
        return {}
    names = dataset.schema.names
    return dict(zip(names, fact_column_names(names), strict=True))


def as_fact_columns(dataset: DatasetRow, table: pa.Table) -> pa.Table:
    """Rows named as the file names them, renamed for the dataset's fact table."""
    stored = fact_columns(dataset)
    return table.rename_columns([stored.get(n, n) for n in table.column_names])


def _as_file_columns(dataset: DatasetRow, names: Sequence[str]) -> list[str]:
    original = {v: k for k, v in fact_columns(dataset).items()}
    return [original.get(n, n) for n in names]


def create_tabular_fact_table(wh: Warehouse, table: str, schema: pa.Schema) -> None:
    """One fact table per tabular dataset, its user columns under `fact_column_names`."""
    clash = [n for n in schema.names if n.lower() in HW_COLUMNS]
    if clash:
        raise SchemaError(
            "column names starting with hw_ are Headwater's own; rename the column",
            field=clash[0],
        )
    room = None if wh.max_columns is None else wh.max_columns - len(HW_COLUMNS)
    if room is not None and len(schema) > room:
        engine = _DIALECTS[wh.dialect]
        raise SchemaError(
            f"has {len(schema):,} fields, more than the {room:,} a {engine} fact table can "
            f"hold (its limit is {wh.max_columns:,} columns, {len(HW_COLUMNS)} of them "
            "Headwater's); keep fewer fields (or nest some under one object, kept as JSON) "
            "or use the DuckDB warehouse"
        )
    holes = {f"c{i}": name for i, name in enumerate(fact_column_names(schema.names))}
    user = "".join(f", {{c{i}}} {wh.column_type(f.type)}" for i, f in enumerate(schema))
    wh.execute(
        "CREATE TABLE {table} ("
        "hw_row_key BIGINT PRIMARY KEY DEFAULT nextval('seq_row'), "
        "hw_batch_key BIGINT NOT NULL, hw_split_key SMALLINT NOT NULL, "
        'hw_source_row BIGINT NOT NULL, hw_row_hash TEXT COLLATE "C" NOT NULL, '
        "hw_ingested_at TIMESTAMPTZ NOT NULL" + user + ")",
        table=table,
        **holes,
    )


def next_batch_key(wh: Warehouse) -> int:
    return int(str(wh.fetch_value("SELECT nextval('seq_batch')")))


def succeeded_batch(wh: Warehouse, dataset_key: int, fingerprint: str) -> int | None:
    value = wh.fetch_value(
        "SELECT batch_key FROM dim_batch WHERE dataset_key = %s AND fingerprint = %s "
        "AND status = 'succeeded'",
        [dataset_key, fingerprint],
    )
    return None if value is None else int(str(value))


def existing_row_hashes(
    wh: Warehouse, dataset: DatasetRow, *, chunk_rows: int = 262_144
) -> Iterator[pa.Array]:
    """Every row hash the dataset holds (hex strings), a bounded chunk at a time."""
    if dataset.kind == "image":
        batches = wh.stream_arrow(
            "SELECT row_hash FROM fact_image WHERE dataset_key = %s",
            [dataset.key],
            batch_rows=chunk_rows,
        )
    else:
        batches = wh.stream_arrow(
            "SELECT hw_row_hash FROM {t}", batch_rows=chunk_rows, t=dataset.fact_table
        )
    for batch in batches:
        if batch.num_rows:
            yield batch.column(0)


def holds_row(wh: Warehouse, dataset: DatasetRow, row_hash: str) -> bool:
    if dataset.kind == "image":
        found = wh.fetch_value(
            "SELECT 1 FROM fact_image WHERE dataset_key = %s AND row_hash = %s LIMIT 1",
            [dataset.key, row_hash],
        )
    else:
        found = wh.fetch_value(
            "SELECT 1 FROM {t} WHERE hw_row_hash = %s LIMIT 1", [row_hash], t=dataset.fact_table
        )
    return found is not None


def label_keys(wh: Warehouse, dataset_key: int, labels: Iterable[str]) -> dict[str, int]:
    """Keys of these labels in `dim_label`, adding the ones seen for the first time."""
    wanted = sorted(set(labels))
    known = {
        str(label): int(str(key))
        for key, label in wh.fetch(
            "SELECT label_key, label FROM dim_label WHERE dataset_key = %s", [dataset_key]
        )
    }
    for label in wanted:
        if label not in known:
            key = int(str(wh.fetch_value("SELECT nextval('seq_label')")))
            wh.execute(
                "INSERT INTO dim_label (label_key, dataset_key, label) VALUES (%s, %s, %s)",
                [key, dataset_key, label],
            )
            known[label] = key
    return known


def dataset_labels(wh: Warehouse, dataset_key: int) -> list[str]:
    """Every label the dataset's dimension holds, whichever split it was seen in."""
    rows = wh.fetch("SELECT label FROM dim_label WHERE dataset_key = %s", [dataset_key])
    return [str(r[0]) for r in rows]


def record_raw_files(
    wh: Warehouse,
    batch_key: int,
    files: Iterable[tuple[str, str, int, str, str, str, str]],
    *,
    now: datetime,
) -> None:
    """Manifest rows (sha, name, size, media type, source, lake path, role) and batch links.

    Two bulk loads, not two statements a file: an image folder is 30,000 files, and a
    statement each kept the whole load waiting on the warehouse. A file the manifest
    already records (another batch's) is linked, not added again; the caller holds the
    raw lock, so no other writer adds the same file meanwhile.
    """
    rows: dict[str, tuple[str, str, int, str, str, str, str]] = {}
    for row in files:
        rows.setdefault(row[0], row)  # the same bytes twice in one batch: one entry
    known = recorded_raw(wh, list(rows))
    new = [row for sha, row in rows.items() if sha not in known]
    if new:
        names = ("sha256", "original_name", "size_bytes", "media_type", "source", "lake_path")
        columns = {n: [r[i] for r in new] for i, n in enumerate(names)}
        manifest = pa.table(
            {
                **columns,
                "size_bytes": pa.array(columns["size_bytes"], pa.int64()),
                "added_at": pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), len(new)),
            }
        )
        wh.load_arrow("lake_manifest", manifest)
    links = pa.table(
        {
            "batch_key": pa.repeat(pa.scalar(batch_key, pa.int64()), len(rows)),
            "sha256": pa.array(list(rows), pa.string()),
            "role": pa.array([r[6] for r in rows.values()], pa.string()),
        }
    )
    wh.load_arrow("batch_file", links)


def recorded_raw(wh: Warehouse, shas: Sequence[str], *, chunk: int = 500) -> set[str]:
    """The raw files among ``shas`` that the lake manifest records (committed batches)."""
    found: set[str] = set()
    for start in range(0, len(shas), chunk):
        part = list(shas[start : start + chunk])
        holes = ", ".join(["%s"] * len(part))
        rows = wh.fetch(f"SELECT sha256 FROM lake_manifest WHERE sha256 IN ({holes})", part)
        found.update(str(r[0]) for r in rows)
    return found


def record_batch(
    wh: Warehouse,
    *,
    batch_key: int,
    dataset_key: int,
    fingerprint: str,
    raw_sha256: str,
    source: str,
    original_name: str,
    started_at: datetime,
    finished_at: datetime,
    rows_read: int,
    rows_loaded: int,
    rows_duplicate: int,
    curated_path: str | None,
    status: str = "succeeded",
    error: str | None = None,
) -> None:
    wh.execute(
        "INSERT INTO dim_batch (batch_key, dataset_key, fingerprint, raw_sha256, source, "
        "original_name, started_at, finished_at, rows_read, rows_loaded, rows_duplicate, "
        "status, error, curated_path) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            batch_key,
            dataset_key,
            fingerprint,
            raw_sha256,
            source,
            original_name,
            started_at,
            finished_at,
            rows_read,
            rows_loaded,
            rows_duplicate,
            status,
            error,
            curated_path,
        ],
    )


def list_batches(wh: Warehouse, dataset: str | None = None) -> list[BatchRow]:
    rows = wh.fetch(
        "SELECT b.batch_key, d.name, b.source, b.original_name, b.raw_sha256, b.started_at, "
        "b.finished_at, b.rows_read, b.rows_loaded, b.rows_duplicate, b.status "
        "FROM dim_batch b JOIN dim_dataset d ON d.dataset_key = b.dataset_key "
        "WHERE CAST(%s AS TEXT) IS NULL OR d.name = %s ORDER BY b.batch_key",
        [dataset, dataset],
    )
    return [
        BatchRow(
            int(str(r[0])),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            str(r[4]),
            as_time(r[5]),
            as_time_or_none(r[6]),
            int(str(r[7])),
            int(str(r[8])),
            int(str(r[9])),
            str(r[10]),
        )
        for r in rows
    ]


def split_counts(wh: Warehouse, dataset: DatasetRow) -> dict[str, int]:
    if dataset.kind == "image":
        rows = wh.fetch(
            "SELECT s.name, count(*) FROM fact_image f JOIN dim_split s "
            "ON s.split_key = f.split_key WHERE f.dataset_key = %s GROUP BY s.name",
            [dataset.key],
        )
    else:
        rows = wh.fetch(
            "SELECT s.name, count(*) FROM {t} f JOIN dim_split s "
            "ON s.split_key = f.hw_split_key GROUP BY s.name",
            t=dataset.fact_table,
        )
    counts = {str(name): int(str(n)) for name, n in rows}
    return {s: counts[s] for s in SPLIT_KEYS if s in counts}


def label_counts(wh: Warehouse, dataset: DatasetRow) -> dict[str, dict[str, int]]:
    """Rows per label per split, for image datasets (tabular labels live in their own column)."""
    if dataset.kind != "image":
        return {}
    rows = wh.fetch(
        "SELECT s.name, l.label, count(*) FROM fact_image f "
        "JOIN dim_split s ON s.split_key = f.split_key "
        "LEFT JOIN dim_label l ON l.label_key = f.label_key "
        "WHERE f.dataset_key = %s GROUP BY s.name, l.label ORDER BY s.name, l.label",
        [dataset.key],
    )
    out: dict[str, dict[str, int]] = {}
    for split, label, n in rows:
        out.setdefault(str(split), {})[str(label)] = int(str(n))
    return out


_SHAPE_COLUMNS = ("height", "width", "channels", "pixel_dtype")


@dataclass(frozen=True)
class ImageArrays:
    """Images of one split: row keys, pixels (n, h, w, c) and labels, in row-key order."""

    row_keys: np.ndarray
    pixels: np.ndarray
    labels: list[str | None]


def image_arrays(wh: Warehouse, dataset: DatasetRow, split: str) -> ImageArrays:
    """All images of one split as one array (n, h, w, c), in row-key order."""
    chunks = list(image_chunks(wh, dataset, split, chunk_rows=65536))
    if not chunks:
        return ImageArrays(np.zeros(0, np.int64), np.zeros((0, 0, 0, 0), np.uint8), [])
    return ImageArrays(
        row_keys=np.concatenate([c.row_keys for c in chunks]),
        pixels=np.concatenate([c.pixels for c in chunks]) if len(chunks) > 1 else chunks[0].pixels,
        labels=[label for c in chunks for label in c.labels],
    )


def image_chunks(
    wh: Warehouse, dataset: DatasetRow, split: str, *, chunk_rows: int
) -> Iterator[ImageArrays]:
    """The images of one split in row-key order, a bounded chunk at a time.

    Pixel bytes are viewed straight out of Arrow's buffer, so the only copy is the
    one the database driver makes. Every chunk must share the first one's shape.
    """
    shape: dict[str, object] | None = None
    for batch in wh.stream_arrow(
        "SELECT f.image_key, l.label, f.height, f.width, f.channels, "
        "f.pixel_dtype, f.pixels FROM fact_image f "
        "LEFT JOIN dim_label l ON l.label_key = f.label_key "
        "WHERE f.dataset_key = %s AND f.split_key = %s ORDER BY f.image_key",
        [dataset.key, SPLIT_KEYS[split]],
        batch_rows=chunk_rows,
    ):
        if batch.num_rows == 0:
            continue
        distinct = {k: pc.unique(batch.column(k)).to_pylist() for k in _SHAPE_COLUMNS}
        if any(len(values) != 1 for values in distinct.values()) or (
            shape is not None and {k: v[0] for k, v in distinct.items()} != shape
        ):
            raise SchemaError(
                f"split {split!r} of {dataset.name!r} mixes image sizes or pixel types "
                f"({distinct}); train on images of one size",
                field="pixels",
            )
        shape = {k: v[0] for k, v in distinct.items()}
        yield _image_chunk(batch, shape)


def _image_chunk(batch: pa.RecordBatch, shape: dict[str, object]) -> ImageArrays:
    height, width, channels = (int(str(shape[k])) for k in ("height", "width", "channels"))
    dtype = np.dtype(str(shape["pixel_dtype"]))
    pixels = pixel_array(batch.column("pixels"), dtype, (height, width, channels))
    return ImageArrays(
        row_keys=batch.column("image_key").to_numpy(zero_copy_only=False).astype(np.int64),
        pixels=pixels,
        labels=batch.column("label").to_pylist(),
    )


@dataclass(frozen=True)
class SourcedImages:
    """A chunk of a dataset's images with where each came from: its batch and source row."""

    images: ImageArrays
    batch_keys: np.ndarray
    source_rows: np.ndarray


def sourced_image_chunks(
    wh: Warehouse, dataset: DatasetRow, *, chunk_rows: int
) -> Iterator[SourcedImages]:
    """Every image of every split in row-key order, a bounded chunk at a time, with the
    batch and source row that name it (an image folder's index maps those to file ids)."""
    shape: dict[str, object] | None = None
    for batch in wh.stream_arrow(
        "SELECT f.image_key, f.batch_key, f.source_row, l.label, f.height, f.width, "
        "f.channels, f.pixel_dtype, f.pixels FROM fact_image f "
        "LEFT JOIN dim_label l ON l.label_key = f.label_key "
        "WHERE f.dataset_key = %s ORDER BY f.image_key",
        [dataset.key],
        batch_rows=chunk_rows,
    ):
        if batch.num_rows == 0:
            continue
        distinct = {k: pc.unique(batch.column(k)).to_pylist() for k in _SHAPE_COLUMNS}
        if any(len(values) != 1 for values in distinct.values()) or (
            shape is not None and {k: v[0] for k, v in distinct.items()} != shape
        ):
            raise SchemaError(
                f"dataset {dataset.name!r} mixes image sizes or pixel types ({distinct}); "
                "ingest its images at one --size",
                field="pixels",
            )
        shape = {k: v[0] for k, v in distinct.items()}
        yield SourcedImages(
            _image_chunk(batch, shape),
            batch.column("batch_key").to_numpy(zero_copy_only=False).astype(np.int64),
            batch.column("source_row").to_numpy(zero_copy_only=False).astype(np.int64),
        )


def image_sources(wh: Warehouse, dataset: DatasetRow) -> pa.Table:
    """Every loaded image's row key with its batch and source row, in row-key order (no
    pixels): what names an image read from the lake's curated files rather than from here."""
    return wh.fetch_arrow(
        "SELECT image_key, batch_key, source_row FROM fact_image "
        "WHERE dataset_key = %s ORDER BY image_key",
        [dataset.key],
    )


def image_by_key(wh: Warehouse, dataset: DatasetRow, image_key: int) -> ImageArrays | None:
    """One image (``pixels`` shaped (1, h, w, c)) by its row key, or None when there is none."""
    table = wh.fetch_arrow(
        "SELECT f.image_key, l.label, f.height, f.width, f.channels, f.pixel_dtype, f.pixels "
        "FROM fact_image f LEFT JOIN dim_label l ON l.label_key = f.label_key "
        "WHERE f.dataset_key = %s AND f.image_key = %s",
        [dataset.key, image_key],
    )
    if table.num_rows == 0:
        return None
    (batch,) = table.combine_chunks().to_batches()
    shape = {k: batch.column(k)[0].as_py() for k in _SHAPE_COLUMNS}
    return _image_chunk(batch, shape)


def batch_images(wh: Warehouse, dataset: DatasetRow, batch_key: int) -> pa.Table:
    """Every loaded image of one batch, whatever its split, with its row in the source file."""
    return wh.fetch_arrow(
        "SELECT image_key, source_row, height, width, channels, pixel_dtype, pixels "
        "FROM fact_image WHERE dataset_key = %s AND batch_key = %s ORDER BY image_key",
        [dataset.key, batch_key],
    )


@dataclass(frozen=True)
class SplitIndex:
    """Which rows one split holds, without their features: keys, labels and batches."""

    row_keys: np.ndarray
    labels: pa.Array
    batch_keys: np.ndarray


def split_index(wh: Warehouse, dataset: DatasetRow, split: str) -> SplitIndex:
    """Row keys (ascending), labels as text and batch keys of one split; no features."""
    if dataset.kind == "image":
        table = wh.fetch_arrow(
            "SELECT f.image_key AS row_key, f.batch_key, l.label FROM fact_image f "
            "LEFT JOIN dim_label l ON l.label_key = f.label_key "
            "WHERE f.dataset_key = %s AND f.split_key = %s ORDER BY f.image_key",
            [dataset.key, SPLIT_KEYS[split]],
        )
    elif dataset.label_column is None:
        raise SchemaError(
            f"dataset {dataset.name!r} has no label column; ingest it with --label COLUMN",
            field="label",
        )
    else:
        table = wh.fetch_arrow(
            "SELECT hw_row_key AS row_key, hw_batch_key AS batch_key, {label} AS label FROM {t} "
            "WHERE hw_split_key = %s ORDER BY hw_row_key",
            [SPLIT_KEYS[split]],
            t=dataset.fact_table,
            label=fact_columns(dataset).get(dataset.label_column, dataset.label_column),
        )
    if table.num_rows == 0:
        return SplitIndex(np.zeros(0, np.int64), pa.array([], pa.string()), np.zeros(0, np.int64))
    return SplitIndex(
        row_keys=table.column("row_key").to_numpy().astype(np.int64),
        labels=pc.cast(table.column("label"), pa.string()).combine_chunks(),
        batch_keys=table.column("batch_key").to_numpy().astype(np.int64),
    )


def tabular_rows(wh: Warehouse, dataset: DatasetRow, split: str) -> pa.Table:
    """One split of a tabular dataset: its user columns plus ``hw_row_key`` and ``hw_batch_key``."""
    batches = list(tabular_chunks(wh, dataset, split, chunk_rows=65536))
    if not batches:
        return _tabular_empty(dataset)
    return pa.Table.from_batches(batches)


def tabular_chunks(
    wh: Warehouse, dataset: DatasetRow, split: str, *, chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """The rows of one split of a tabular dataset in row-key order, a bounded chunk at a time."""
    if dataset.schema is None:
        raise SchemaError(f"dataset {dataset.name!r} is not tabular")
    for batch in wh.stream_arrow(
        "SELECT hw_row_key, hw_batch_key, {cols} FROM {t} WHERE hw_split_key = %s "
        "ORDER BY hw_row_key",
        [SPLIT_KEYS[split]],
        batch_rows=chunk_rows,
        t=dataset.fact_table,
        cols=fact_column_names(dataset.schema.names),
    ):
        if batch.num_rows:
            yield batch.rename_columns(["hw_row_key", "hw_batch_key", *dataset.schema.names])


def _tabular_empty(dataset: DatasetRow) -> pa.Table:
    assert dataset.schema is not None
    system = pa.schema([("hw_row_key", pa.int64()), ("hw_batch_key", pa.int64())])
    return pa.schema(list(system) + list(dataset.schema)).empty_table()


def sample_rows(wh: Warehouse, dataset: DatasetRow, *, limit: int, offset: int = 0) -> pa.Table:
    """The first rows of a dataset in load order, with split and label names resolved."""
    if dataset.kind == "image":
        return wh.fetch_arrow(
            "SELECT f.image_key AS row_id, f.batch_key AS batch_id, s.name AS split, "
            "l.label, f.height, f.width, f.channels, f.pixel_dtype, f.pixels, f.row_hash "
            "FROM fact_image f JOIN dim_split s ON s.split_key = f.split_key "
            "LEFT JOIN dim_label l ON l.label_key = f.label_key "
            "WHERE f.dataset_key = %s ORDER BY f.image_key LIMIT %s OFFSET %s",
            [dataset.key, limit, offset],
        )
    table = wh.fetch_arrow(
        "SELECT f.hw_row_key AS row_id, f.hw_batch_key AS batch_id, s.name AS split, f.* "
        "FROM {t} f JOIN dim_split s ON s.split_key = f.hw_split_key "
        "ORDER BY f.hw_row_key LIMIT %s OFFSET %s",
        [limit, offset],
        t=dataset.fact_table,
    )
    names = table.column_names
    return table.rename_columns(names[:3] + _as_file_columns(dataset, names[3:]))
