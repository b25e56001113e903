"""CSV, JSON (array of records or JSON Lines) and Parquet, streamed as Arrow record batches.

When the dataset already exists its Arrow schema is passed in, so a later batch
is parsed with the same types and a value that does not fit is reported with
its row and column, the way Arrow's CSV reader finds it.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO, cast

import ijson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers.base import RawFile, ReaderOptions, Source, open_decompressed
from headwater.storage.readers.guard import (
    GuardedText,
    JsonShape,
    ShapeExceeded,
    decoder,
    undecodable,
)

__all__ = ["conform", "read_csv", "read_json", "read_parquet", "sniff_text"]

_CSV_CELL = re.compile(r"column #(?P<col>\d+)", re.IGNORECASE)
_RAGGED = re.compile(r"Expected (?P<want>\d+) columns, got (?P<got>\d+)")
_NUMBER = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
log = logging.getLogger("headwater.readers")
_SNIFF_BYTES = 64 * 1024
_PICKLE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_DEFAULTS = ReaderOptions()


def open_text(path: Path, options: ReaderOptions, shape: JsonShape | None = None) -> BinaryIO:
    """The file as checked UTF-8 bytes (see `guard`), buffered for the parsers that read it."""
    raw = open_decompressed(path, options.max_decompressed_bytes)
    guarded = GuardedText(raw, path, encoding=options.encoding, shape=shape)
    return cast(BinaryIO, io.BufferedReader(guarded, buffer_size=1 << 20))


def sniff_text(path: Path, *, what: str, options: ReaderOptions = _DEFAULTS) -> bytes:
    """Refuse an empty file, or binary bytes (a pickle, a zip, a gzip) in a file named as text.

    Returns the head as UTF-8, decoded from ``options.encoding``.
    """
    try:
        with open_decompressed(path, options.max_decompressed_bytes) as handle:
            head = handle.read(_SNIFF_BYTES)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # a plain file's errors pass on
        raise FormatError(f"the gzip stream is truncated or corrupt ({exc})", path=path) from exc
    if not head.strip():
        raise FormatError(f"the file is empty; a {what} file needs a header and rows", path=path)
    if head.startswith(_PICKLE):
        raise UnsafeInput(
            f"the file is a Python pickle named as {what}; it was not read", path=path
        )
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"PAR1")):
        raise FormatError(f"the file holds binary data, not {what} text", path=path)
    try:  # a multibyte character cut at the sniff boundary is fine: final only at the end
        text = decoder(options.encoding).decode(head, len(head) < _SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise undecodable(exc, path=path, encoding=options.encoding, lines_before=0) from exc
    decoded = text.encode("utf-8")
    if b"\x00" in decoded:
        raise FormatError(f"the file holds binary data, not {what} text", path=path)
    return decoded


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


def read_csv(
    path: Path,
    *,
    chunk_rows: int,
    schema: pa.Schema | None,
    label: str | None,
    options: ReaderOptions = _DEFAULTS,
) -> Source:
    head = sniff_text(path, what="CSV", options=options)
    block_size = max(1 << 16, min(chunk_rows * 256, 64 << 20))
    csv_options = _CsvOptions(
        pacsv.ReadOptions(block_size=block_size),
        pacsv.ParseOptions(delimiter=sniff_delimiter(path, head)),
        options,
    )
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
        strings_can_be_null=True,
    )
    names = _header(path, csv_options)
    try:
        with csv_options.open(path, convert):
            pass  # opening reads the first block: a file that cannot start fails here
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise _csv_error(exc, path, names, schema, csv_options) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        typed = schema  # else the types Arrow took from the first block, to find a bad row by
        try:
            with csv_options.open(path, convert) as reader:
                for batch in reader:
                    if typed is None:
                        warn_mixed_columns(batch, path)
                        typed = batch.schema
                    yield conform(batch, schema, path=path)
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise _csv_error(exc, path, names, typed, csv_options) from exc

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
    text: ReaderOptions

    @contextmanager
    def open(self, path: Path, convert: pacsv.ConvertOptions) -> Iterator[pacsv.CSVStreamingReader]:
        """Arrow's streaming reader over the checked text (see `open_text`), closed after."""
        with open_text(path, self.text) as handle:
            yield pacsv.open_csv(
                handle, read_options=self.read, parse_options=self.parse, convert_options=convert
            )


def _media_type(path: Path, plain: str) -> str:
    return "application/gzip" if path.name.lower().endswith(".gz") else plain


def _header(path: Path, options: _CsvOptions) -> list[str]:
    with (
        open_text(path, options.text) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle,
    ):
        return next(csv.reader(handle, delimiter=options.parse.delimiter), [])


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
    if (m := _RAGGED.search(text)) and (found := _ragged_row(path, int(m["want"]), options)):
        row, line, got = found
        return FormatError(
            f"line {line}: expected {m['want']} fields as in the header, got {got} "
            f"({text.rsplit(': ', 1)[-1][:80]!r}); quote values that hold the delimiter",
            path=path,
            row=row,
        )
    if "Empty CSV file" in text:
        return FormatError("the file is empty; a CSV file needs a header and rows", path=path)
    if isinstance(exc, OSError | EOFError):
        return FormatError(f"the file is truncated or corrupt ({text})", path=path)
    return FormatError(f"not a readable CSV file ({text})", path=path)


def _ragged_row(path: Path, want: int, options: _CsvOptions) -> tuple[int, int, int] | None:
    """(data row, line, fields) of the first row whose field count differs from the header's.

    Arrow shows the row's text but not where it is; this runs only on that error.
    """
    with (
        open_text(path, options.text) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle,
    ):
        reader = csv.reader(handle, delimiter=options.parse.delimiter)
        row = -1  # the header
        for fields in reader:
            if not fields:
                continue  # Arrow skips empty lines too
            if row >= 0 and len(fields) != want:
                return row, reader.line_num, len(fields)
            row += 1
    return None


def warn_mixed_columns(batch: pa.RecordBatch, path: Path) -> None:
    """Warn about a column typed as text because a few of its values are not numbers.

    Arrow types a column from the first block; one stray cell (``n/a?``) there
    makes a numeric column text for good, which a user would only notice when a
    model ignores it. The warning names the column and the first such lines.
    """
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        odd = pc.invert(pc.match_substring_regex(column, _NUMBER))  # nulls stay null, uncounted
        count = pc.sum(odd).as_py() or 0
        valid = len(column) - column.null_count
        if not count or count > max(1, valid // 20) or count == valid:
            continue
        first = pc.indices_nonzero(odd)[:5].to_pylist()
        shown = ", ".join(f"line {r + 2} {column[r].as_py()!r}" for r in first)
        log.warning(
            "%s: column %r was read as text, not numbers, because %d of its first %d values "
            "are not numbers: %s%s; fix those cells (or leave them empty) to have it numeric",
            path,
            name,
            count,
            valid,
            shown,
            ", ..." if count > 5 else "",
        )


def _first_bad_row(path: Path, field: str, wanted: pa.DataType, options: _CsvOptions) -> int | None:
    """The 0-based data row of the first value in ``field`` that does not convert to ``wanted``.

    Arrow names the column but not the row; read that column as text and bisect
    the first block whose cast fails, so the search stays vectorised.
    """
    convert = pacsv.ConvertOptions(
        include_columns=[field], column_types={field: pa.string()}, strings_can_be_null=True
    )
    offset = 0
    with options.open(path, convert) as reader:
        for batch in reader:
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
    path: Path,
    *,
    chunk_rows: int,
    schema: pa.Schema | None,
    label: str | None,
    options: ReaderOptions = _DEFAULTS,
) -> Source:
    head = sniff_text(path, what="JSON", options=options)
    is_array = head.lstrip().startswith(b"[")

    def batches() -> Iterator[pa.RecordBatch]:
        shape = JsonShape(
            max_depth=options.json_max_depth, max_fields=options.json_max_fields, array=is_array
        )
        fixed = schema  # else the first chunk's types stand for the file, as in Arrow's reader
        try:
            with open_text(path, options, shape) as handle:
                for batch in (_json_array if is_array else _json_lines)(handle, path, chunk_rows):
                    _check_width(batch.schema, options.json_max_fields, path=path)
                    fixed = fixed or batch.schema
                    yield conform(batch, fixed, path=path)
        except ShapeExceeded as exc:
            raise _shape_error(exc, path, options) from exc

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


def _json_lines(handle: BinaryIO, path: Path, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        options = pajson.ReadOptions(block_size=max(1 << 16, min(chunk_rows * 256, 64 << 20)))
        yield from pajson.open_json(handle, read_options=options)
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(f"the file is truncated or corrupt ({exc})", path=path) from exc
    except pa.ArrowInvalid as exc:
        raise FormatError(f"not valid JSON Lines ({exc})", path=path) from exc


def _json_array(handle: BinaryIO, path: Path, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """A JSON array of records, parsed incrementally (ijson) so that it streams like JSON Lines.

    The first chunk's types stand for the whole file, as Arrow's JSON Lines reader does.
    """
    row = 0
    chunk: list[dict[str, object]] = []
    try:
        for record in ijson.items(handle, "item", use_float=True):
            if not isinstance(record, dict):
                raise SchemaError(
                    f"record is {type(record).__name__}, expected an object", path=path, row=row
                )
            chunk.append(record)
            row += 1
            if len(chunk) == chunk_rows:
                yield _records(chunk, path=path, first_row=row - len(chunk))
                chunk = []
    except (ijson.JSONError, OSError, EOFError, zlib.error) as exc:
        raise FormatError(f"not valid JSON ({exc})", path=path, row=row) from exc
    if chunk:
        yield _records(chunk, path=path, first_row=row - len(chunk))
    elif row == 0:
        raise FormatError("expected a non-empty JSON array of records", path=path)


def _check_width(schema: pa.Schema, limit: int, *, path: Path) -> None:
    """Records that each pass the per-record limit can still add up to too many columns."""
    count, todo = 0, list(schema)
    while todo:
        f = todo.pop()
        count += 1
        kind = f.type
        while pa.types.is_list(kind) or pa.types.is_large_list(kind):
            kind = kind.value_type
        if pa.types.is_struct(kind):
            todo.extend(kind.field(i) for i in range(kind.num_fields))
    if count > limit:
        raise FormatError(
            f"the records have {count:,} fields (nested ones counted), more than {limit:,} "
            "(HEADWATER_JSON_MAX_FIELDS); a key per value (ids as keys) is a likely cause",
            path=path,
        )


def _shape_error(exc: ShapeExceeded, path: Path, options: ReaderOptions) -> FormatError:
    where = f"line {exc.line}"
    if exc.what == "fields":
        return FormatError(
            f"the record has more than {options.json_max_fields:,} fields ({where}); "
            "raise HEADWATER_JSON_MAX_FIELDS if it is genuine",
            path=path,
            row=exc.record,
        )
    keys = _deep_path(path, options, exc.record_offset)
    return FormatError(
        f"the record nests deeper than {options.json_max_depth} levels at {keys} ({where}); "
        "flatten it, or raise HEADWATER_JSON_MAX_DEPTH if it is genuine",
        path=path,
        row=exc.record,
    )


def _deep_path(path: Path, options: ReaderOptions, offset: int) -> str:
    """The JSON path (``a.b[].c``) down to the container that passes the depth limit."""
    keys: list[str] = []
    with open_text(path, options) as handle:
        while offset > 0 and (skipped := len(handle.read(min(offset, 1 << 20)))):
            offset -= skipped
        try:
            # basic_parse: parse() would build every event's prefix, O(depth^2) bytes
            for event, value in ijson.basic_parse(handle, multiple_values=True, buf_size=4096):
                if event in ("start_map", "start_array"):
                    keys.append("[]" if event == "start_array" else "")
                    if len(keys) > options.json_max_depth:
                        break
                elif event == "map_key":
                    keys[-1] = str(value)
                elif event in ("end_map", "end_array"):
                    keys.pop()
        except ijson.JSONError:
            pass
    shown = [k if k == "[]" else f".{k}" for k in keys[:-1] if k]
    if len(shown) > 8:
        shown = [*shown[:6], ".…", shown[-1]]
    return "".join(shown).lstrip(".") or "the top"


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
