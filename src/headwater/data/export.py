"""A dataset's curated rows written in parts, with a manifest written last.

A reader lists the manifest first: it names every part with its rows and sha256, and
it appears only once every part is in place, so nobody reads half an export. An
export that fails midway leaves no manifest (an older one is removed before the
first part changes); a re-run writes only the parts whose bytes differ, and nothing
at all when the data has not changed. Parts are built one at a time from the lake's
Parquet read by record batches and uploaded by a few threads (S3 is slow per request,
not per byte), so memory holds a few parts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from headwater.data.ingest import boundary
from headwater.errors import NotFound
from headwater.storage.lake import Lake, parquet_parts
from headwater.storage.sinks import Sink

__all__ = [
    "MANIFEST",
    "ExportReport",
    "Format",
    "encode_part",
    "export_columns",
    "export_dataset",
    "part_name",
    "store_part",
    "write_manifest",
]

Format = Literal["csv", "parquet"]
MANIFEST = "manifest.json"


@dataclass
class ExportReport:
    dataset: str
    where: str
    parts: list[dict[str, object]] = field(default_factory=list)
    written: int = 0
    rows: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "to": self.where,
            "rows": self.rows,
            "parts": self.parts,
            "parts_written": self.written,
            "manifest": MANIFEST,
        }


def _batches(lake: Lake, dataset: str) -> Iterator[pa.RecordBatch]:
    """The dataset's own columns; the lake's ``hw_`` lineage columns (split, source row,
    row hash) stay home, so a table of id, label and 512 features exports 514 columns."""
    batches = lake.curated_batches(dataset)
    if not batches:
        raise NotFound(f"dataset {dataset!r} has no curated rows in the lake to export")
    for path in parquet_parts(lake.curated_dir(dataset)):  # batch order, as Spark's engine
        source = pq.ParquetFile(path)
        yield from source.iter_batches(batch_size=8192, columns=export_columns(source))


def export_columns(source: pq.ParquetFile) -> list[str]:
    """What an export writes of a curated file: all but the lake's ``hw_`` lineage columns."""
    return [n for n in source.schema_arrow.names if not n.startswith("hw_")]


def _parts(batches: Iterator[pa.RecordBatch], part_rows: int) -> Iterator[pa.Table]:
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= part_rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, part_rows)
            rest = table.slice(part_rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held)


def _text_safe(table: pa.Table) -> pa.Table:
    """CSV holds text: binary columns (pixels) go as base64."""
    for i, column in enumerate(table.schema):
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            values = [
                None if v is None else base64.b64encode(v).decode()
                for v in table.column(i).to_pylist()
            ]
            table = table.set_column(i, column.name, pa.array(values, pa.string()))
    return table


def _encode(table: pa.Table, fmt: Format) -> bytes:
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    else:
        pcsv.write_csv(_text_safe(table), sink)
    return sink.getvalue()


class _Uploads:
    """Parts going up on a thread pool; the old manifest goes before the first one changes.

    At most ``2 x threads`` encoded parts are held at once, so memory stays a few parts
    whatever the dataset's size. The first failure is raised once the parts already
    started are done; the manifest is then never written.
    """

    def __init__(self, sink: Sink, threads: int) -> None:
        self.sink, self.threads = sink, threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="export")
        self.pending: set[Future[bool]] = set()
        self.lock = threading.Lock()
        self.manifest_dropped = False
        self.written = 0

    def submit(self, name: str, body: bytes, sha: str) -> None:
        if len(self.pending) >= 2 * self.threads:
            done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            self.written += sum(future.result() for future in done)
        self.pending.add(self.pool.submit(self._put_if_changed, name, body, sha))

    def _put_if_changed(self, name: str, body: bytes, sha: str) -> bool:
        if self.sink.sha256(name) == sha:
            return False
        with self.lock:
            if not self.manifest_dropped:  # from here on the old manifest would lie
                self.sink.remove(MANIFEST)
                self.manifest_dropped = True
        self.sink.put(name, body, sha)
        boundary("export_part_stored")
        return True

    def finish(self) -> int:
        """Every part in place (or the first failure raised); the count of parts written."""
        try:
            done, _ = wait(self.pending)
            self.written += sum(future.result() for future in done)
        finally:
            self.pool.shutdown(cancel_futures=True)
        return self.written

    def abandon(self) -> None:
        """After a failure here: parts not started are cancelled, started ones finish."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def export_dataset(
    lake: Lake, dataset: str, sink: Sink, *, fmt: Format, part_rows: int, threads: int = 4
) -> ExportReport:
    """Write ``dataset``'s rows to ``sink`` as parts of ``part_rows`` rows, then the manifest.

    Parts are encoded here one at a time and uploaded by ``threads`` threads.
    """
    report = ExportReport(dataset, sink.where)
    uploads = _Uploads(sink, threads)
    try:
        for number, table in enumerate(_parts(_batches(lake, dataset), part_rows)):
            body, sha = encode_part(table, fmt)
            name = part_name(number, fmt)
            uploads.submit(name, body, sha)
            report.parts.append({"file": name, "rows": table.num_rows, "sha256": sha})
            report.rows += table.num_rows
    except BaseException:
        uploads.abandon()
        raise
    report.written = uploads.finish()
    write_manifest(sink, report, fmt)
    return report


def write_manifest(sink: Sink, report: ExportReport, fmt: Format) -> None:
    """The manifest, last and only if it changed: every part it names is in place."""
    manifest = json.dumps(
        {"dataset": report.dataset, "format": fmt, "rows": report.rows, "parts": report.parts},
        indent=1,
    ).encode()
    if sink.read(MANIFEST) != manifest:
        sink.put(MANIFEST, manifest, hashlib.sha256(manifest).hexdigest())
        report.written += 1


def store_part(sink: Sink, name: str, body: bytes, sha: str) -> bool:
    """Put a part unless the sink holds these bytes; the manifest goes first (Spark's
    executors store parts side by side, each drops the manifest before its first change)."""
    if sink.sha256(name) == sha:
        return False
    sink.remove(MANIFEST)
    sink.put(name, body, sha)
    return True


def part_name(number: int, fmt: Format) -> str:
    return f"part-{number:05d}.{fmt}"


def encode_part(table: pa.Table, fmt: Format) -> tuple[bytes, str]:
    """A part's bytes and their sha256: the same bytes from either engine."""
    body = _encode(table, fmt)
    return body, hashlib.sha256(body).hexdigest()
