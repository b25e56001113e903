"""Obfuscate the PII fields of a file, streaming it batch by batch into a sink.

The same code serves a Lambda handing bytes to ``put_object`` (`obfuscate`) and a
job streaming a file larger than memory (`obfuscate_to`): memory is bounded by
one batch, and every check that can fail before the data (the request, the
format, the key, the fields) runs before the first byte is written.
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from headwater.data.privacy.formats import (
    CsvWriter,
    Format,
    ParquetWriter,
    format_of,
    gzipped,
    open_csv,
    open_parquet,
)
from headwater.data.privacy.json_records import (
    JsonArrayWriter,
    JsonLinesWriter,
    obfuscate_records,
    open_json,
    record_chunks,
)
from headwater.data.privacy.modes import obfuscate_batch, output_schema, pseudonym_key
from headwater.data.privacy.request import Mode, ObfuscationRequest, parse_request
from headwater.data.privacy.sources import open_source
from headwater.errors import ConfigError, FormatError, SchemaError
from headwater.settings import Settings

__all__ = ["ObfuscationReport", "RowsDone", "obfuscate", "obfuscate_to"]

RowsDone = Callable[[int], None]
"""Told the rows written so far, after every batch."""

log = logging.getLogger(__name__)

RequestLike = str | Mapping[str, object] | ObfuscationRequest


@dataclass(frozen=True)
class ObfuscationReport:
    """What was done: to which file, how many rows, and the mode of each field."""

    source: str
    format: Format
    rows: int
    modes: Mapping[str, Mode]

    def summary(self) -> str:
        fields = ", ".join(f"{name}: {mode}" for name, mode in self.modes.items())
        return f"{self.source}: {self.rows:,} rows obfuscated as {self.format} ({fields})"


def _as_request(request: RequestLike) -> ObfuscationRequest:
    return request if isinstance(request, ObfuscationRequest) else parse_request(request)


def _require_fields(columns: list[str], request: ObfuscationRequest) -> None:
    missing = [name for name in request.pii_fields if name not in columns]
    if missing:
        raise SchemaError(
            f"PII field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"not in the file; its fields are: {', '.join(columns)}",
            path=request.source,
            field=missing[0],
        )
    if all(request.plan().get(name) == "drop" for name in columns):
        raise ConfigError(f"{request.source}: dropping every field would leave nothing to hand out")


def obfuscate_to(
    request: RequestLike,
    sink: BinaryIO,
    *,
    settings: Settings | None = None,
    progress: RowsDone | None = None,
) -> ObfuscationReport:
    """Stream the obfuscated file into `sink`, batch by batch, in the source's format.

    `progress(rows)` is called after each batch with the rows written so far. The
    source is only read. Errors found while streaming (a malformed row half way)
    leave what was already written in `sink`; for all-or-nothing output use
    `headwater.data.privacy.write_to` / `open_destination` or `obfuscate`.
    """
    parsed = _as_request(request)
    kind = format_of(parsed.source)
    key = pseudonym_key(settings) if "pseudonym" in parsed.plan().values() else None
    with _same_compression(parsed.source, sink) as out:
        try:
            if kind == "csv":
                rows = _csv_to(parsed, out, key, progress)
            elif kind == "parquet":
                rows = _parquet_to(parsed, out, key, progress)
            else:
                rows = _json_to(parsed, out, key, progress, lines=kind == "jsonl")
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise FormatError(
                f"the gzip stream is truncated or corrupt ({exc})", path=parsed.source
            ) from exc
    report = ObfuscationReport(source=parsed.source, format=kind, rows=rows, modes=parsed.plan())
    log.info("%s", report.summary())
    return report


@contextmanager
def _same_compression(source: str, sink: BinaryIO) -> Iterator[BinaryIO]:
    """Gzip the output of a gzipped source (closing the gzip stream leaves `sink` open)."""
    if not gzipped(source):
        yield sink
        return
    with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) as zipped:
        yield zipped  # type: ignore[misc]  # GzipFile writes bytes like any BinaryIO


def obfuscate(request: RequestLike, *, settings: Settings | None = None) -> bytes:
    """The obfuscated file's bytes, in the source's format, ready for ``put_object``.

    Example::

        obfuscate('{"file_to_obfuscate": "s3://bucket/new_data/file1.csv",'
                  ' "pii_fields": ["name", "email_address"]}')
    """
    sink = io.BytesIO()
    obfuscate_to(request, sink, settings=settings)
    return sink.getvalue()


def _csv_to(
    request: ObfuscationRequest, sink: BinaryIO, key: bytes | None, progress: RowsDone | None
) -> int:
    with open_source(request.source) as stream:
        source = open_csv(stream, request.source)
        _require_fields(source.header, request)
        plan = request.plan()
        schema = output_schema(source.schema, plan)
        writer = CsvWriter(
            sink, schema.names, line_terminator=source.line_terminator, delimiter=source.delimiter
        )
        rows = 0
        for batch in source.batches():
            writer.write_batch(obfuscate_batch(batch, plan, key=key, schema=schema))
            rows += batch.num_rows
            if progress is not None:
                progress(rows)
    return rows


def _parquet_to(
    request: ObfuscationRequest, sink: BinaryIO, key: bytes | None, progress: RowsDone | None
) -> int:
    with open_source(request.source, seekable=True) as stream:
        source = open_parquet(stream, request.source)
        _require_fields(source.schema.names, request)
        plan = request.plan()
        schema = output_schema(source.schema, plan)
        writer = ParquetWriter(sink, schema, compression=source.compression)
        rows = 0
        try:
            for batch in source.batches():
                writer.write_batch(obfuscate_batch(batch, plan, key=key, schema=schema))
                rows += batch.num_rows
                if progress is not None:
                    progress(rows)
        finally:
            writer.close()
    return rows


def _json_to(
    request: ObfuscationRequest,
    sink: BinaryIO,
    key: bytes | None,
    progress: RowsDone | None,
    *,
    lines: bool,
) -> int:
    plan = request.plan()
    seen: set[str] = set()
    rows = 0
    with open_source(request.source) as stream:
        layout, records_stream = open_json(stream, request.source, lines=lines)
        writer = JsonLinesWriter(sink) if layout == "lines" else JsonArrayWriter(sink)
        for records in record_chunks(records_stream, request.source, layout):
            obfuscate_records(records, plan, key=key, seen=seen)
            writer.write(records)
            rows += len(records)
            if progress is not None:
                progress(rows)
        writer.close()
    missing = [name for name in request.pii_fields if name not in seen]
    if missing:
        raise SchemaError(
            f"PII field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"in no record of the file ({rows:,} records); check the spelling (a top-level "
            "key, or a dotted path such as customer.email)",
            path=request.source,
            field=missing[0],
        )
    return rows
