"""``headwater predict RUN PATH --engine spark``: Parquet scored by ONNX Runtime on executors.

The driver checks the model's files against their recorded sha256 and ships their
bytes; each executor's Python worker builds one ONNX Runtime session per model and
keeps it for every partition it scores (`spark_tasks.served`). Each Arrow batch Spark hands to
``mapInArrow`` is scored by the same `score_batch` the local engine uses and comes
as CSV text, one piece per run of consecutive rows of one file, written to a spool
folder and keyed by the file's place in `part_order` and the run's first row; the
driver sorts those few keys and copies the pieces in order, so the file is the local
engine's, byte for byte, while the rows never cross a shuffle or the driver's memory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from headwater.errors import FormatError
from headwater.flows.engines import spark, spark_errors
from headwater.flows.runs import ServedModel
from headwater.flows.spark_tasks import PIECES, ModelBytes, score_partition
from headwater.flows.workspace import Workspace
from headwater.learning.artifacts import FEATURES_FILE, ONNX_FILE, read_verified
from headwater.storage.spark import file_ranks, read_parquet, row_offsets
from headwater.storage.warehouse import runs as registry

__all__ = ["model_bytes", "spark_scored_text"]


def model_bytes(ws: Workspace, run_id: str) -> ModelBytes:
    """A run's model files read and checked against their recorded sha256 on the driver."""
    artifacts = {a.name: a for a in registry.run_artifacts(ws.warehouse, run_id)}
    onnx = artifacts[ONNX_FILE]
    data = read_verified(Path(onnx.path), onnx.sha256, run_id)
    features = artifacts[FEATURES_FILE]
    labels = artifacts.get("labels.json")
    return ModelBytes(
        run_id,
        data,
        onnx.sha256,
        read_verified(Path(features.path), features.sha256, run_id).decode(),
        read_verified(Path(labels.path), labels.sha256, run_id).decode() if labels else None,
    )


def spark_scored_text(
    ws: Workspace, model: ServedModel, path: Path, *, spool: Path
) -> Iterator[tuple[str, int]]:
    """The scored CSV text of a Parquet file or folder, in file order, and its row counts.

    The executors write the text under ``spool`` (a folder they and this process share;
    removed at the end) and the driver reads it back in order: one Spark job, no shuffle,
    and memory here holds one piece (a batch's rows) at a time.
    """
    if path.is_file() and not path.name.lower().endswith((".parquet", ".pq")):
        raise FormatError("--engine spark scores Parquet (a file or a folder of parts)", path=path)
    session = spark(ws)
    folder = Path(tempfile.mkdtemp(prefix=".headwater-spark-", dir=spool))
    try:
        with spark_errors():
            frame = read_parquet(session, [str(path.resolve())])
            ranks = file_ranks(frame.inputFiles())
            job = partial(
                score_partition,
                shipped=model_bytes(ws, model.run_id),
                ranks=ranks,
                offsets=row_offsets(frame, ranks),
                name=path.name,
                spool=str(folder),
            )
            pieces = sorted(frame.mapInArrow(job, PIECES).collect(), key=lambda p: (p[0], p[1]))
        for piece in pieces:
            with (folder / piece["file"]).open("rb") as handle:
                handle.seek(piece["start"])
                yield handle.read(piece["size"]).decode(), int(piece["rows"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
