"""Scoring a file: every row through a model, out as CSV rows ``row_id, predicted, p_<class>``
(a regressor: ``row_id, predicted`` and, where its model gives one, ``lower_90, upper_90``).

One path for every face: the CLI's ``predict`` writes a file, the API's ``/score``
streams the rows back, the web page shows the first ones and keeps the rest for
download. The file is read by the same readers (and the same sniffer) as an
ingest, batch by batch, so memory stays bounded and a pickle named ``.csv`` is
refused the same way everywhere. Cells a spreadsheet would run as formulas are
escaped (`prediction_rows`).

An upload is staged first (`stage`) in a private folder under its checked name,
because the readers go by name and Parquet keeps its schema at the end; the folder
goes when the `Staged` file is closed.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from headwater.errors import FormatError
from headwater.flows import sequences
from headwater.flows.engines import Engine
from headwater.flows.runs import ServedModel, load_model, prediction_header
from headwater.flows.served import score_batch
from headwater.flows.workspace import Workspace
from headwater.storage.readers import check_file_name, open_sources

__all__ = [
    "UPLOAD_TYPES",
    "ScoredFile",
    "Staged",
    "csv_chunks",
    "header",
    "predict_file",
    "predict_source",
    "score_preview",
    "scored_batches",
    "stage",
]

log = logging.getLogger("headwater.scoring")

UPLOAD_TYPES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq")
"""What an uploaded file to score may be (text ones also gzipped); by name, then by bytes."""


@dataclass
class Staged:
    """An uploaded file on disk under its own (checked) name, until `close` removes it."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def close(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def stage(chunks: Iterable[bytes], filename: str) -> Staged:
    """Write an upload to a private folder; refuse a name no reader takes before a byte lands."""
    name = check_file_name(filename)
    if not name.lower().removesuffix(".gz").endswith(UPLOAD_TYPES):
        raise FormatError(
            f"a file to score is CSV, TSV, JSON (Lines) or Parquet: {', '.join(UPLOAD_TYPES)}"
            " (text ones may be gzipped)",
            path=name,
        )
    folder = Path(tempfile.mkdtemp(prefix="headwater-score-"))
    staged = Staged(folder / name)
    try:
        with staged.path.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except BaseException:
        staged.close()
        raise
    return staged


def header(model: ServedModel) -> list[str]:
    """``row_id, predicted`` and one ``p_<class>`` per class (a regressor: the number, and
    ``lower_90, upper_90`` when its model gives an interval)."""
    return prediction_header(model)


def scored_batches(ws: Workspace, model: ServedModel, path: Path) -> Iterator[list[list[str]]]:
    """The rows of every batch of the file, scored; nothing is read before the first is asked."""
    written = 0
    sources = open_sources(
        path, chunk_rows=ws.settings.ingest_chunk_rows, options=ws.reader_options()
    )
    for source in sources:
        for batch in source.read():
            if batch.num_rows == 0:
                continue
            yield score_batch(model, batch, kind=source.kind, name=path.name, first=written)
            written += batch.num_rows


def predict_source(
    ws: Workspace,
    run: str,
    source: str,
    out: Path,
    *,
    records: str | None = None,
    label: str | None = None,
    paginate: str | None = None,
    max_pages: int | None = None,
    engine: Engine = "local",
) -> int:
    """Score a source with a run (its id or its name); write CSV; return the predictions.

    A model of sequences predicts one row per sequence of a URL's pages or a JSON page
    (`flows.sequences.predict_sequences`); any other scores every row of a file, on
    ``engine`` (Spark: Parquet only).
    """
    found = sequences.resolve_sequence_run(ws, run)
    if sequences.learns_sequences(ws, found):
        table = sequences.predict_sequences(
            ws, found.run_id, source, records=records, label=label, paginate=paginate,
            max_pages=max_pages, out=out,
        )  # fmt: skip
        return table.total
    return predict_file(ws, found.run_id, Path(source), out, engine=engine)


def predict_file(
    ws: Workspace, run_id: str, path: Path, out: Path, *, engine: Engine = "local"
) -> int:
    """Score every row of a file an ingest could read; write CSV whole or not at all.

    ``engine="spark"`` scores Parquet (a file, or a folder of parts such as a dataset's
    curated folder in the lake) on Spark's executors and writes the same file.
    """
    model = load_model(ws, run_id)
    written = 0
    temporary = out.with_name(f".{out.name}.partial")
    try:
        with temporary.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header(model))
            if engine == "spark":
                from headwater.flows.spark_scoring import spark_scored_text

                for text, count in spark_scored_text(ws, model, path, spool=out.parent):
                    handle.write(text)
                    written += count
            else:
                for rows in scored_batches(ws, model, path):
                    writer.writerows(rows)
                    written += len(rows)
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def csv_chunks(ws: Workspace, model: ServedModel, staged: Staged) -> Iterator[bytes]:
    """Header and first batch in the first chunk (so errors come before a status), then on.

    Closes the staged file when done, when it fails, or when the reader stops asking.
    """
    for chunk, _ in _pieces(ws, model, staged):
        if chunk:
            yield chunk


@dataclass(frozen=True)
class ScoredFile:
    """A scored file: its header, its first rows, how many in all, and all of it as CSV."""

    header: list[str]
    rows: list[list[str]]
    total: int
    csv: bytes


def score_preview(ws: Workspace, model: ServedModel, staged: Staged, *, rows: int) -> ScoredFile:
    """The whole file scored into CSV bytes, and its first ``rows`` rows kept to show."""
    first: list[list[str]] = []
    total = 0
    body = io.BytesIO()
    for chunk, batch in _pieces(ws, model, staged):
        body.write(chunk)
        first.extend(batch[: max(0, rows - len(first))])
        total += len(batch)
    return ScoredFile(header(model), first, total, body.getvalue())


def _pieces(
    ws: Workspace, model: ServedModel, staged: Staged
) -> Iterator[tuple[bytes, list[list[str]]]]:
    """(CSV bytes, rows) per batch, the header in the first; the staged file closed at the end."""
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(header(model))
    written = 0
    try:
        for rows in scored_batches(ws, model, staged.path):
            writer.writerows(rows)
            written += len(rows)
            yield sink.getvalue().encode(), rows
            sink.seek(0)
            sink.truncate()
        yield sink.getvalue().encode(), []
    except Exception:
        if written:  # a status may be sent: all a face can do is cut the stream short
            log.warning("scoring %s stopped after %d rows", staged.name, written, exc_info=True)
        raise
    finally:
        staged.close()
