"""Apache Spark over the lake: one session per process, and curated Parquet read as it lies.

Spark reads the lake's files directly, so the layout in `headwater.storage.lake` is the
contract: every ``*.parquet`` under a dataset's folder (names starting with ``_`` or ``.``
are skipped, as Spark skips them), read with partition discovery off so a row holds the
file's own columns and no ``batch_id`` column the files do not have. Each row also
carries where it came from (``hw_file``, ``hw_row``: the file and the row's index in it)
so a job can put rows back in the order the local engine reads them (`part_order`).

pyspark is imported on first use only: nothing else in Headwater needs a JVM.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from headwater.errors import ConfigError
from headwater.storage.lake import part_order, uri_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "FILE_COLUMN",
    "ROW_COLUMN",
    "file_ranks",
    "read_parquet",
    "row_offsets",
    "spark_session",
]

FILE_COLUMN = "hw_file"
"""The file a row was read from, as Spark names it (a URI)."""
ROW_COLUMN = "hw_row"
"""The row's index within its file."""

_lock = threading.Lock()


def file_ranks(files: Iterable[str]) -> dict[str, int]:
    """Each file (by `uri_path`) and its place in `part_order`."""
    ordered = sorted({uri_path(f) for f in files}, key=part_order)
    return {name: rank for rank, name in enumerate(ordered)}


def spark_session(master: str, *, app_name: str = "headwater") -> SparkSession:
    """The process's one Spark session, started on ``master`` the first time it is asked.

    In local mode the Python workers are this interpreter (so they import the same
    Headwater), Spark binds to loopback, and the web UI stays off.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a dependency
        raise ConfigError("--engine spark needs pyspark: pip install pyspark") from exc
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "8192")
            .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
        )
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session


def row_offsets(frame: DataFrame, ranks: dict[str, int]) -> list[int]:
    """Where each file's rows start in the whole, by rank, then the total: footers read here
    for local files, counted by Spark for others (s3a://)."""
    import pyarrow.parquet as pq

    ordered = sorted(ranks, key=ranks.__getitem__)
    if all(Path(f).is_file() for f in ordered):
        counts = [pq.ParquetFile(f).metadata.num_rows for f in ordered]
    else:
        rows = frame.groupBy(FILE_COLUMN).count().collect()
        counted = {uri_path(r[0]): int(r[1]) for r in rows}
        counts = [counted.get(f, 0) for f in ordered]
    return [int(x) for x in np.cumsum([0, *counts])]


def read_parquet(spark: SparkSession, paths: Sequence[str], *, positions: bool = True) -> DataFrame:
    """Parquet files (or folders of them), each row with its ``hw_file`` and ``hw_row``."""
    from pyspark.sql import functions as F

    frame = (
        spark.read.option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.parquet")
        .parquet(*paths)
    )
    if not positions:
        return frame
    return frame.select(
        "*",
        F.col("_metadata.file_path").alias(FILE_COLUMN),
        F.col("_metadata.row_index").alias(ROW_COLUMN),
    )
