"""``headwater images embed NAME --engine spark``: images scored into vectors on executors.

Spark reads the dataset's curated Parquet from the lake (the layout is the contract:
each file's ``batch_id=N`` folder and its ``source_row`` name the image), keeps the
rows the driver asks for (loaded, not yet embedded: a broadcast of row keys, never
pixels), and each executor's Python worker builds the embed's ONNX Runtime session
once and scores every Arrow batch with the local engine's `FeatureModel.features`, so
the preprocessing rule lives in one place. The vectors come back ordered by row key,
a partition at a time, and load exactly as the local engine's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.flows.engines import spark, spark_errors, spark_lake_path
from headwater.flows.spark_tasks import VECTORS, FeatureBytes, embed_partition
from headwater.flows.workspace import Workspace
from headwater.storage.spark import FILE_COLUMN, read_parquet

__all__ = ["spark_vectors"]

Scored = tuple[int, list[str], list[str], npt.NDArray[np.int64], npt.NDArray[np.float32]]
"""(images passed, their fresh ids, labels, row keys, vectors): one chunk of an embed."""


def spark_vectors(
    ws: Workspace,
    dataset: str,
    shipped: FeatureBytes,
    wanted: pa.Table,
    ids: dict[int, str],
    *,
    chunk_rows: int,
) -> Iterator[Scored]:
    """The vectors of the images in ``wanted`` (``batch_key``, ``source_row``,
    ``image_key``), ``chunk_rows`` at a time in row-key order; ``ids`` names each key."""
    from pyspark.sql import functions as F

    session = spark(ws)
    with spark_errors():
        frame = read_parquet(session, [spark_lake_path(ws, dataset)])
        batch = F.regexp_extract(F.col(FILE_COLUMN), r"batch_id=(\d+)", 1).cast("long")
        keys = session.createDataFrame(wanted.to_pandas())
        rows = (
            frame.withColumn("batch_key", batch)
            .join(F.broadcast(keys), ["batch_key", "source_row"])
            .select(
                "image_key",
                F.coalesce(F.col("label"), F.lit("")).alias("label"),
                "height",
                "width",
                "channels",
                "pixel_dtype",
                "pixels",
            )
        )
        scored = rows.mapInArrow(partial(embed_partition, shipped=shipped), VECTORS)
        held: list[tuple[int, str, bytes]] = []
        for row in scored.orderBy("image_key").toLocalIterator():
            held.append((int(row[0]), str(row[1]), bytes(row[2])))
            if len(held) == chunk_rows:
                yield _chunk(held, ids)
                held = []
        if held:
            yield _chunk(held, ids)


def _chunk(held: list[tuple[int, str, bytes]], ids: dict[int, str]) -> Scored:
    keys = np.array([h[0] for h in held], np.int64)
    vectors = np.frombuffer(b"".join(h[2] for h in held), np.float32).reshape(len(held), -1)
    return len(held), [ids[int(k)] for k in keys], [h[1] for h in held], keys, vectors
