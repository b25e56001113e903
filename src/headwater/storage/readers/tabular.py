"""CSV, JSON (array of records or JSON Lines) and Parquet, streamed as Arrow record batches.

When the dataset already exists its Arrow schema is passed in, so a later batch
is parsed with the same types and a value that does not fit is reported with
its row and column, the way Arrow's CSV reader finds it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import ijson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers.base import RawFile, Source, open_decompressed

__all__ = ["conform", "read_csv", "read_json", "read_parquet", "sniff_text"]

_CSV_CELL = re.compile(r"column #(?P<col>\d+)", re.IGNORECASE)
_SNIFF_BYTES = 64 * 1024
_PICKLE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def sniff_text(path: Path, *, what: str) -> bytes:
    """Refuse an empty file, or binary bytes (a pickle, a zip, a gzip) in a file named as text."""
    try:
        with open_decompressed(path) as handle:
            head = handle.read(_SNIFF_BYTES)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # a plain file's errors pass on
        raise FormatError(f"the gzip stream is truncated or corrupt ({exc})", path=path) from exc
    if not head.strip():
        raise FormatError(f"the file is empty; a {what} file needs a header and rows", path=path)
    if head.startswith(_PICKLE):
        raise UnsafeInput(
            f"the file is a Python pickle named as {what}; it was not read", path=path
        )
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"PAR1")) or b"\x00" in head:
        raise FormatError(f"the file holds binary data, not {what} text", path=path)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multibyte character cut at the sniff boundary is fine
            raise FormatError(f"the file is not UTF-8 text (byte {exc.start})", path=path) from exc
    return head


def sniff_delimiter(path: PurePath, head: bytes) -> str:
    """``\\t`` for .tsv; else the one of , ; | tab that splits the first lines alike and most.

    A semicolon file read as comma-separated would load as one wide text column
    without a word of complaint, so the delimiter is never just assumed.
    """
    stem = path.name.lower().removesuffix(".gz")
    if stem.endswith(".tsv"):
        return "\t"
    lines = head.decode("utf-8", errors="replace").splitlines()
    if len(lines) > 1 and not head.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the sniffed head may end mid-line
    sample = lines[:20]
    best, best_fields = ",", 1
    for delimiter in (",", "\t", ";", "|"):
        counts = {len(row) for row in csv.reader(sample, delimiter=delimiter) if row}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = delimiter, fields
    return best


def conform(batch: pa.RecordBatch, schema: pa.Schema | None, *, path: Path) -> pa.RecordBatch:
    """Check a batch against the dataset's schema: same column names, values castable."""
    if schema is None:
        return batch
    check_columns(batch.schema.names, schema, path=path)
    columns = []
    for f in schema:
        column = batch.column(f.name)
        try:
            columns.append(column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"values of type {column.type} do not fit the dataset's type {f.type} ({exc})",
                path=path,
                field=f.name,
            ) from exc
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def check_columns(have: list[str], schema: pa.Schema | None, *, path: Path) -> None:
    """A later batch must bring exactly the dataset's columns (in any order)."""
    if schema is None:
        return
    want = schema.names
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing or extra:
        raise SchemaError(
            f"columns differ from the dataset's: missing {missing}, unexpected {extra}. "
            "Ingest it under another --dataset name, or fix the file",
            path=path,
            field=(missing or extra)[0],
        )


def read_csv(path: Path, *, chunk_rows: int, schema: pa.Schema | None, label: str | None) -> Source:
    head = sniff_text(path, what="CSV")
    block_size = max(1 << 16, min(chunk_rows * 256, 64 << 20))
    read_options = pacsv.ReadOptions(block_size=block_size)
    parse_options = pacsv.ParseOptions(delimiter=sniff_delimiter(path, head))
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
        strings_can_be_null=True,
    )
    options = _CsvOptions(read_options, parse_options)
    names = _header(path, parse_options.delimiter)
    try:
        pacsv.open_csv(
            path, read_options=read_options, parse_options=parse_options, convert_options=convert
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise _csv_error(exc, path, names, schema, options) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            reader = pacsv.open_csv(
                path,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert,
            )
            for batch in reader:
                yield conform(batch, schema, path=path)
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise _csv_error(exc, path, names, schema, options) from exc

    return Source(
        name=path.name,
        kind="tabular",
        files=[RawFile(path, "data", _media_type(path, "text/csv"))],
        read=batches,
        label_column=_label(label, names, path, schema),
    )


@dataclass(frozen=True)
class _CsvOptions:
    read: pacsv.ReadOptions
    parse: pacsv.ParseOptions


def _media_type(path: Path, plain: str) -> str:
    return "application/gzip" if path.name.lower().endswith(".gz") else plain


def _header(path: Path, delimiter: str) -> list[str]:
    with (
        open_decompressed(path) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as handle,
    ):
        return next(csv.reader(handle, delimiter=delimiter), [])


def _csv_error(
    exc: Exception,
    path: Path,
    names: list[str],
    schema: pa.Schema | None,
    options: _CsvOptions,
) -> Exception:
    text = str(exc)
    if m := _CSV_CELL.search(text):
        col = int(m["col"])
        field = names[col] if col < len(names) else f"#{col}"
        wanted = schema.field(field).type if schema is not None and field in schema.names else None
        row = _first_bad_row(path, field, wanted, options) if wanted is not None else None
        detail = text.split(":", 1)[-1].strip()
        where = f" (line {row + 2} of the file)" if row is not None else ""
        return SchemaError(
            f"{detail}{where}; fix the value, or ingest under a new --dataset name",
            path=path,
            row=row,
            field=field,
        )
    if "Empty CSV file" in text:
        return FormatError("the file is empty; a CSV file needs a header and rows", path=path)
    if isinstance(exc, OSError | EOFError):
        return FormatError(f"the file is truncated or corrupt ({text})", path=path)
    return FormatError(f"not a readable CSV file ({text})", path=path)


def _first_bad_row(path: Path, field: str, wanted: pa.DataType, options: _CsvOptions) -> int | None:
    """The 0-based data row of the first value in ``field`` that does not convert to ``wanted``.

    Arrow names the column but not the row; read that column as text and bisect
    the first block whose cast fails, so the search stays vectorised.
    """
    convert = pacsv.ConvertOptions(
        include_columns=[field], column_types={field: pa.string()}, strings_can_be_null=True
    )
    offset = 0
    for batch in pacsv.open_csv(
        path, read_options=options.read, parse_options=options.parse, convert_options=convert
    ):
        column = batch.column(0)
        if not _casts(column, wanted):
            low, high = 0, len(column)  # invariant: the first bad value lies in [low, high)
            while high - low > 1:
                mid = (low + high) // 2
                if _casts(column.slice(low, mid - low), wanted):
                    low = mid
                else:
                    high = mid
            return offset + low
        offset += len(column)
    return None


def _casts(column: pa.Array, wanted: pa.DataType) -> bool:
    try:
        column.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def read_json(
    path: Path, *, chunk_rows: int, schema: pa.Schema | None, label: str | None
) -> Source:
    head = sniff_text(path, what="JSON")
    is_array = head.lstrip().startswith(b"[")

    def batches() -> Iterator[pa.RecordBatch]:
        if is_array:
            yield from _json_array(path, chunk_rows, schema)
            return
        try:
            options = pajson.ReadOptions(block_size=max(1 << 16, min(chunk_rows * 256, 64 << 20)))
            for batch in pajson.open_json(path, read_options=options):
                yield conform(batch, schema, path=path)
        except (OSError, EOFError) as exc:
            raise FormatError(f"the file is truncated or corrupt ({exc})", path=path) from exc
        except pa.ArrowInvalid as exc:
            raise FormatError(f"not valid JSON Lines ({exc})", path=path) from exc

    first = next(batches(), None)
    if first is None:
        raise FormatError("the file holds no records", path=path)
    return Source(
        name=path.name,
        kind="tabular",
        files=[RawFile(path, "data", _media_type(path, "application/json"))],
        read=batches,
        label_column=_label(label, first.schema.names, path, schema),
    )


def _json_array(path: Path, chunk_rows: int, schema: pa.Schema | None) -> Iterator[pa.RecordBatch]:
    """A JSON array of records, parsed incrementally (ijson) so that it streams like JSON Lines.

    The first chunk's types stand for the whole file, as Arrow's JSON Lines reader does.
    """
    row = 0
    chunk: list[dict[str, object]] = []
    with open_decompressed(path) as handle:
        try:
            for record in ijson.items(handle, "item", use_float=True):
                if not isinstance(record, dict):
                    raise SchemaError(
                        f"record is {type(record).__name__}, expected an object",
                        path=path,
                        row=row,
                    )
                chunk.append(record)
                row += 1
                if len(chunk) == chunk_rows:
                    batch = _records(chunk, path=path, first_row=row - len(chunk))
                    schema = schema or batch.schema
                    yield conform(batch, schema, path=path)
                    chunk = []
        except (ijson.JSONError, OSError, EOFError, zlib.error) as exc:
            raise FormatError(f"not valid JSON ({exc})", path=path, row=row) from exc
    if chunk:
        batch = _records(chunk, path=path, first_row=row - len(chunk))
        yield conform(batch, schema, path=path)
    elif row == 0:
        raise FormatError("expected a non-empty JSON array of records", path=path)


def _records(records: list[dict[str, object]], *, path: Path, first_row: int) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(
            f"records do not share one type per field ({exc})", path=path, row=first_row
        ) from exc


def read_parquet(
    path: Path, *, chunk_rows: int, schema: pa.Schema | None, label: str | None
) -> Source:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FormatError(f"not a readable Parquet file ({exc})", path=path) from exc
    names = parquet.schema_arrow.names

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield conform(batch, schema, path=path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FormatError(
                f"the Parquet file is truncated or corrupt ({exc})", path=path
            ) from exc

    return Source(
        name=path.name,
        kind="tabular",
        files=[RawFile(path, "data", "application/vnd.apache.parquet")],
        read=batches,
        total_rows=parquet.metadata.num_rows,
        label_column=_label(label, names, path, schema),
    )


def _label(label: str | None, names: list[str], path: Path, schema: pa.Schema | None) -> str | None:
    check_columns(names, schema, path=path)
    if label is not None and label not in names:
        raise SchemaError(f"label column not found; columns are {names}", path=path, field=label)
    if label is None and "label" in names:
        return "label"
    return label
