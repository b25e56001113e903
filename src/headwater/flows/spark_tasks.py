"""What Spark's executors run for Headwater: scoring, numbering rows, storing parts.

Spark sends these functions by reference, so every executor's Python worker imports
this module: it stays light (numpy, Arrow, ONNX Runtime; no torch, scikit-learn or
warehouse; boto3 and the export code only where parts are stored). Under load, a
worker that imported the whole of Headwater spent longer importing than scoring.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.data.features import FeatureSpec
from headwater.errors import SchemaError
from headwater.flows.runs import ServedModel
from headwater.flows.served import score_batch
from headwater.learning.artifacts import ONNX_FILE, OnnxPredictor
from headwater.storage.lake import uri_path
from headwater.storage.spark import FILE_COLUMN, ROW_COLUMN

if TYPE_CHECKING:
    from headwater.data.export import Format
    from headwater.learning.embedding import FeatureModel
    from headwater.storage.sinks import Sink

__all__ = [
    "PART",
    "PIECES",
    "POSITION",
    "STORED",
    "VECTORS",
    "FeatureBytes",
    "ModelBytes",
    "embed_partition",
    "number_rows",
    "score_partition",
    "store_parts",
]

PART, POSITION = "hw_part", "hw_position"
PIECES = "rank int, first long, rows long, file string, start long, size long"
STORED = "number long, rows long, sha256 string, written boolean"
_SERVED: dict[str, ServedModel] = {}
"""Models this Python worker has loaded, by ONNX sha256: one ONNX Runtime session each."""


@dataclass(frozen=True)
class ModelBytes:
    """What an executor needs to rebuild a served model: verified bytes, not paths."""

    run_id: str
    onnx: bytes
    onnx_sha256: str
    features: str
    labels: str | None


def served(shipped: ModelBytes) -> ServedModel:
    """The worker's one model for these bytes, built (and checked) on first use."""
    model = _SERVED.get(shipped.onnx_sha256)
    if model is None:
        predictor = OnnxPredictor.from_bytes(
            shipped.onnx, shipped.onnx_sha256, name=ONNX_FILE, run_id=shipped.run_id
        )
        labels = json.loads(shipped.labels) if shipped.labels else None
        model = ServedModel(
            shipped.run_id, predictor, FeatureSpec.from_json(shipped.features), labels
        )
        _SERVED[shipped.onnx_sha256] = model
    return model


def _runs(batch: pa.RecordBatch) -> Iterator[tuple[str, int, pa.RecordBatch]]:
    """(file, first row, rows) for each run of consecutive rows of one file in a batch."""
    files = np.asarray(batch.column(FILE_COLUMN).to_pylist(), dtype=object)
    rows = batch.column(ROW_COLUMN).to_numpy()
    cuts = np.flatnonzero((files[1:] != files[:-1]) | (np.diff(rows) != 1)) + 1
    data = batch.drop_columns([FILE_COLUMN, ROW_COLUMN])
    for start, stop in zip([0, *cuts], [*cuts, batch.num_rows], strict=True):
        yield str(files[start]), int(rows[start]), data.slice(start, stop - start)


def score_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    shipped: ModelBytes,
    ranks: dict[str, int],
    offsets: list[int],
    name: str,
    spool: str,
) -> Iterator[pa.RecordBatch]:
    """Runs on an executor: each run of rows scored into CSV text appended to this task's
    spool file; what comes back is where each piece lies, not the piece."""
    model = served(shipped)
    target = Path(spool) / f"task-{uuid.uuid4().hex}.csv"
    with target.open("ab") as handle:
        for batch in batches:
            for file, first, rows in _runs(batch) if batch.num_rows else ():
                rank = ranks[uri_path(file)]
                scored = score_batch(
                    model, rows, kind="tabular", name=name, first=offsets[rank] + first
                )
                sink = io.StringIO()
                csv.writer(sink).writerows(scored)
                body = sink.getvalue().encode()
                start = handle.tell()
                handle.write(body)
                yield pa.RecordBatch.from_pydict(
                    {
                        "rank": [rank],
                        "first": [first],
                        "rows": [rows.num_rows],
                        "file": [target.name],
                        "start": [start],
                        "size": [len(body)],
                    },
                    schema=_PIECE,
                )


_PIECE = pa.schema(
    [
        ("rank", pa.int32()),
        ("first", pa.int64()),
        ("rows", pa.int64()),
        ("file", pa.string()),
        ("start", pa.int64()),
        ("size", pa.int64()),
    ]
)


def number_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    ranks: dict[str, int],
    offsets: list[int],
    part_rows: int,
    columns: list[str],
) -> Iterator[pa.RecordBatch]:
    """Runs on an executor: each row's position in the whole and the part it falls in."""
    for batch in batches:
        files = batch.column(FILE_COLUMN).to_pylist()
        starts = np.asarray([offsets[ranks[uri_path(f)]] for f in files], dtype=np.int64)
        positions = starts + batch.column(ROW_COLUMN).to_numpy()
        arrays = [batch.column(name) for name in columns]
        yield pa.RecordBatch.from_arrays(
            [*arrays, pa.array(positions // part_rows), pa.array(positions)],
            names=[*columns, PART, POSITION],
        )


def store_parts(
    batches: Iterator[pa.RecordBatch], *, dest: str, fmt: Format, schema: bytes
) -> Iterator[pa.RecordBatch]:
    """Runs on an executor: rows sorted by position, cut where the part changes, stored."""
    target = pa.ipc.read_schema(pa.py_buffer(schema))
    from headwater.storage.sinks import open_sink  # boto3: only where parts are stored

    sink = open_sink(dest)
    held: list[pa.RecordBatch] = []
    current = -1
    for batch in batches:
        parts = batch.column(PART).to_numpy()
        for start, stop in _part_runs(parts):
            number = int(parts[start])
            if number != current and held:
                yield _store(sink, current, held, target, fmt)
                held = []
            current = number
            held.append(batch.slice(start, stop - start))
    if held:
        yield _store(sink, current, held, target, fmt)


def _part_runs(values: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    cuts = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
    return list(pairwise(cuts))


def _store(
    sink: Sink, number: int, held: list[pa.RecordBatch], target: pa.Schema, fmt: Format
) -> pa.RecordBatch:
    from headwater.data.export import encode_part, part_name, store_part

    table = pa.Table.from_batches(held).select(target.names).cast(target)
    body, sha = encode_part(table, fmt)
    written = store_part(sink, part_name(number, fmt), body, sha)
    return pa.RecordBatch.from_pydict(
        {"number": [number], "rows": [table.num_rows], "sha256": [sha], "written": [written]}
    )


VECTORS = "image_key long, label string, vector binary"
_FEATURES: dict[tuple[str, str | None, bool], FeatureModel] = {}
"""Feature models this Python worker has loaded: one ONNX Runtime session each."""


@dataclass(frozen=True)
class FeatureBytes:
    """What an executor needs to rebuild the embed's feature model: bytes and the tensor."""

    onnx: bytes
    sha256: str
    output: str | None
    own: bool


def embed_partition(
    batches: Iterator[pa.RecordBatch], *, shipped: FeatureBytes
) -> Iterator[pa.RecordBatch]:
    """Runs on an executor: each batch of curated images scored by the local engine's
    `FeatureModel.features`; the vectors come back as float32 bytes beside their row key."""
    from headwater.learning.embedding import feature_model
    from headwater.storage.binary import pixel_array

    key = (shipped.sha256, shipped.output, shipped.own)
    model = _FEATURES.get(key)
    if model is None:
        model = feature_model(shipped.onnx, output=shipped.output, own=shipped.own)
        _FEATURES[key] = model
    for batch in batches:
        if batch.num_rows == 0:
            continue
        shape = {k: set(batch.column(k).to_pylist()) for k in _SHAPE}
        if any(len(values) != 1 for values in shape.values()):
            raise SchemaError(
                f"the images mix sizes or pixel types ({shape}); ingest them at one --size",
                field="pixels",
            )
        height, width, channels, dtype = (next(iter(shape[k])) for k in _SHAPE)
        pixels = pixel_array(
            batch.column("pixels"), np.dtype(str(dtype)), (height, width, channels)
        )
        vectors = model.features(pixels)
        yield pa.RecordBatch.from_pydict(
            {
                "image_key": batch.column("image_key"),
                "label": batch.column("label"),
                "vector": [row.tobytes() for row in vectors],
            },
            schema=_VECTOR,
        )


_SHAPE = ("height", "width", "channels", "pixel_dtype")
_VECTOR = pa.schema(
    [
        ("image_key", pa.int64()),
        ("label", pa.string()),
        ("vector", pa.binary()),
    ]
)
