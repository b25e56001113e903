"""Scoring an uploaded CSV or Parquet file, streamed back as CSV one Arrow batch at a time.

The upload is staged in a spooled temporary file (memory up to 32 MiB, then an
anonymous file the OS removes), because Parquet keeps its schema at the end.
Nothing touches the lake or the warehouse: the file is read with pyarrow, batch
by batch, and each batch goes through the flows' `prediction_rows`, which
escapes cells a spreadsheet would run as formulas.

The first batch is read and scored before the response starts, so a file that
is not CSV or Parquet (a pickle renamed to .csv), or whose columns do not fit
the model, is an ordinary 422. A problem found further down the file can no
longer change the status: the stream is cut short, and the client sees a
truncated chunked response rather than a silently short CSV.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.faces.api.serving import (
    ModelInput,
    image_shape,
    scaled_pixels,
    table_columns,
)
from headwater.flows.runs import ServedModel, prediction_rows

__all__ = ["Staged", "score_chunks", "stage_upload"]

log = logging.getLogger("headwater.api")

SPOOL_MEMORY_BYTES = 32 * 1024 * 1024
CSV_BLOCK_BYTES = 4 * 1024 * 1024
PARQUET_BATCH_ROWS = 8192
SNIFF_BYTES = 64 * 1024
ROW_ID = "row_id"
IGNORED = frozenset({"label"})


@dataclass
class Staged:
    """An uploaded file, by its name as sent, held until the response is done."""

    name: str
    file: IO[bytes]

    def close(self) -> None:
        self.file.close()


def stage_upload(chunks: Iterator[bytes], filename: str) -> Staged:
    """Collect the upload (called in a worker thread by `stream_file_part`)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    try:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Staged(filename, spool)


def _kind(staged: Staged) -> str:
    """``parquet`` or ``csv`` from the bytes; refuse what is neither, saying what it looks like."""
    head = staged.file.read(SNIFF_BYTES)
    staged.file.seek(0)
    name = staged.name
    if not head:
        raise FormatError("the file is empty; send a CSV with a header row, or Parquet", path=name)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x80":
        raise UnsafeInput(
            "this looks like a Python pickle; pickles are never loaded (they can run code). "
            "Send CSV or Parquet",
            path=name,
        )
    if head.startswith(b"\x1f\x8b"):
        raise FormatError(
            "the file is gzip-compressed (a pickle or an archive?); send plain CSV or Parquet",
            path=name,
        )
    if head.startswith(b"PK\x03\x04"):
        raise FormatError("the file is a zip archive (npz?); send plain CSV or Parquet", path=name)
    if name.lower().endswith((".parquet", ".pq")):
        raise FormatError("the file is named Parquet but is not (no PAR1 magic)", path=name)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"not CSV text (not UTF-8 at byte {exc.start}); send CSV or Parquet", path=name
        ) from exc
    if b"\x00" in head:
        raise FormatError("not CSV text (it holds NUL bytes); send CSV or Parquet", path=name)
    return "csv"


def _batches(served: ServedModel, staged: Staged) -> Iterator[pa.RecordBatch]:
    name = staged.name
    try:
        if _kind(staged) == "parquet":
            yield from pq.ParquetFile(staged.file).iter_batches(batch_size=PARQUET_BATCH_ROWS)
            return
        types = {k: v for k, v in table_columns(served).items() if v is not None}
        reader = pa_csv.open_csv(
            staged.file,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pa_csv.ConvertOptions(column_types=types),
        )
        yield from reader
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise FormatError(f"cannot read the file as CSV or Parquet: {exc}", path=name) from exc


def _row_ids(batch: pa.RecordBatch, first: int) -> list[object]:
    if ROW_ID in batch.schema.names:
        ids: list[object] = batch.column(ROW_ID).to_pylist()
        return ids
    return list(range(first, first + batch.num_rows))


def _model_input(
    batch: pa.RecordBatch, shape: tuple[int, ...] | None, name: str, first: int
) -> ModelInput:
    """An image batch: every column but row_id and label is a pixel, in file order."""
    if shape is None:
        return pa.Table.from_batches([batch])
    pixels = [i for i, f in enumerate(batch.schema) if f.name != ROW_ID and f.name not in IGNORED]
    width = math.prod(shape)
    if len(pixels) != width:
        raise SchemaError(
            f"the file has {len(pixels)} pixel columns; this model takes {width} "
            f"({'x'.join(map(str, shape))}, row-major), plus optional row_id and label columns",
            path=name,
        )
    columns = []
    for i in pixels:
        column = batch.column(i)
        field = batch.schema.field(i)
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            raise SchemaError(
                f"pixels must be numbers, got {field.type}", path=name, field=field.name
            )
        if column.null_count:
            raise SchemaError("a pixel is empty", path=name, field=field.name, row=first)
        columns.append(column.to_numpy(zero_copy_only=False))
    matrix = np.column_stack(columns) if columns else np.empty((0, width))
    if len(matrix) == 0:
        return matrix.reshape(0, *shape)
    return scaled_pixels(matrix, field="pixels").reshape(len(matrix), *shape)


def score_chunks(served: ServedModel, staged: Staged) -> Iterator[bytes]:
    """Header and first batch in the first chunk (so errors come before the status), then on.

    Closes the staged file when done, when it fails, or when the client goes away.
    """
    shape = image_shape(served)
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow([ROW_ID, "predicted", *(f"p_{c}" for c in served.classes)])
    written = 0
    try:
        for batch in _batches(served, staged):
            if batch.num_rows == 0:
                continue
            data = _model_input(batch, shape, staged.name, written)
            writer.writerows(prediction_rows(served, data, _row_ids(batch, written)))
            written += batch.num_rows
            yield sink.getvalue().encode()
            sink.seek(0)
            sink.truncate()
        if written == 0:
            yield sink.getvalue().encode()
    except Exception:
        if written:  # the status is sent: all that is left is to cut the stream short
            log.warning("scoring %s stopped after %d rows", staged.name, written, exc_info=True)
        raise
    finally:
        staged.close()
