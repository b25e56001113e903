"""`headwater export`: a dataset's rows to a folder or S3 in parts, manifest last."""

from __future__ import annotations

from headwater.data.export import ExportReport, Format, export_dataset
from headwater.errors import ConfigError
from headwater.flows.engines import Engine
from headwater.flows.workspace import Workspace
from headwater.storage.sinks import open_sink

__all__ = ["ExportReport", "Format", "export"]


def export(
    workspace: Workspace,
    dataset: str,
    dest: str,
    *,
    fmt: Format,
    part_rows: int,
    engine: Engine = "local",
) -> ExportReport:
    """Export ``dataset`` to ``dest`` (a folder or ``s3://bucket/prefix/``); ``engine="spark"``
    has Spark's executors encode and store the same parts."""
    if part_rows < 1:
        raise ConfigError("--part-rows must be at least 1")
    if engine == "spark":
        from headwater.flows.spark_export import spark_export

        return spark_export(workspace, dataset, dest, fmt=fmt, part_rows=part_rows)
    return export_dataset(workspace.lake, dataset, open_sink(dest), fmt=fmt, part_rows=part_rows)
