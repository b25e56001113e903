"""``headwater export NAME --engine spark``: the same parts, encoded and stored by executors.

Every row's place in the whole (its file's place in `part_order`, then its row in
the file) decides its part, ``position // part_rows``, as the local engine cuts
them. Rows are shuffled by part and sorted within it, and each executor encodes a
part from the very columns and Arrow types of the lake's files (cast back from
Spark's), so a part's bytes and sha256 are the local engine's. An executor stores a
part only when the sink does not hold those bytes, dropping the manifest before it
does; the driver writes the manifest last, once every part is in place. A failed
export leaves no manifest, and a re-run writes only what differs.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.data.export import ExportReport, Format, export_columns, part_name, write_manifest
from headwater.errors import NotFound
from headwater.flows.engines import spark, spark_errors, spark_lake_path
from headwater.flows.spark_tasks import PART, POSITION, STORED, number_rows, store_parts
from headwater.flows.workspace import Workspace
from headwater.storage.lake import parquet_parts
from headwater.storage.sinks import open_sink
from headwater.storage.spark import file_ranks, read_parquet, row_offsets

__all__ = ["spark_export"]


def spark_export(
    ws: Workspace, dataset: str, dest: str, *, fmt: Format, part_rows: int
) -> ExportReport:
    """Export ``dataset`` to ``dest`` with Spark's executors encoding and storing the parts."""
    parts = parquet_parts(ws.lake.curated_dir(dataset)) if ws.lake.curated_batches(dataset) else []
    if not parts:
        raise NotFound(f"dataset {dataset!r} has no curated rows in the lake to export")
    first = pq.ParquetFile(parts[0])
    columns = export_columns(first)
    schema = pa.schema([first.schema_arrow.field(n) for n in columns], first.schema_arrow.metadata)
    sink = open_sink(dest)
    report = ExportReport(dataset, sink.where)
    with spark_errors():
        frame = read_parquet(spark(ws), [spark_lake_path(ws, dataset)])
        ranks = file_ranks(frame.inputFiles())
        offsets = row_offsets(frame, ranks)
        total = offsets[-1]
        numbered = frame.mapInArrow(
            partial(
                number_rows, ranks=ranks, offsets=offsets, part_rows=part_rows, columns=columns
            ),
            frame.select(*columns).schema.add(PART, "long").add(POSITION, "long"),
        )
        count = max(1, -(-total // part_rows))
        stored = (
            numbered.repartition(min(count, 64), PART)
            .sortWithinPartitions(POSITION)
            .mapInArrow(
                partial(store_parts, dest=dest, fmt=fmt, schema=schema.serialize().to_pybytes()),
                STORED,
            )
            .collect()
        )
    for row in sorted(stored, key=lambda r: int(r["number"])):
        name = part_name(int(row["number"]), fmt)
        report.parts.append({"file": name, "rows": int(row["rows"]), "sha256": row["sha256"]})
        report.rows += int(row["rows"])
        report.written += bool(row["written"])
    write_manifest(sink, report, fmt)
    return report
