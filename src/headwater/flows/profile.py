"""`headwater profile NAME`: rows per label and per-column statistics, on either engine."""

from __future__ import annotations

from headwater.data.profile import ColumnStats, Profile, profile_frame, profile_parts
from headwater.errors import NotFound
from headwater.flows.engines import Engine, spark, spark_errors, spark_lake_path
from headwater.flows.workspace import Workspace
from headwater.storage.lake import parquet_parts
from headwater.storage.spark import read_parquet
from headwater.storage.warehouse import catalog as cat

__all__ = ["ColumnStats", "Profile", "profile"]


def profile(ws: Workspace, dataset: str, *, engine: Engine = "local") -> Profile:
    """Profile a dataset's curated Parquet in the lake: streamed here, or on Spark."""
    found = cat.get_dataset(ws.warehouse, dataset)
    folder = ws.lake.curated_dir(found.name)
    parts = parquet_parts(folder) if folder.is_dir() else []
    if not parts:
        raise NotFound(f"dataset {dataset!r} has no curated rows in the lake to profile")
    if engine == "local":
        return profile_parts(found.name, parts, label=found.label_column)
    with spark_errors():
        frame = read_parquet(spark(ws), [spark_lake_path(ws, found.name)], positions=False)
        return profile_frame(found.name, frame, label=found.label_column)
