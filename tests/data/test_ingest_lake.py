"""At ingest start the lake is made to show exactly the warehouse's committed batches."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from headwater.flows.workspace import Workspace
from tests.builders import write_csv


def test_curated_batches_nobody_committed_are_removed(workspace: Workspace, tmp_path: Path) -> None:
    first = workspace.ingest(write_csv(tmp_path / "orders.csv")).batches[0].batch_id
    assert first is not None
    # what a kill between publish and commit left under an older version: rows, no batch row
    orphan = workspace.lake.curated_path("orders", 999)
    orphan.parent.mkdir(parents=True)
    pq.write_table(pq.read_table(workspace.lake.curated_path("orders", first)), orphan)
    curated = workspace.lake.curated_dir("orders")
    assert pads.dataset(curated, partitioning="hive").count_rows() == 40

    workspace.ingest(write_csv(tmp_path / "more.csv", start=20), dataset="orders")
    assert not orphan.parent.exists()
    assert pads.dataset(curated, partitioning="hive").count_rows() == 40
    assert workspace.dataset("orders").rows == 40


def test_a_live_writers_staged_batch_is_left_alone(workspace: Workspace, tmp_path: Path) -> None:
    live = workspace.lake.stage_batch("other", 998, pa.schema([("x", pa.int64())]))
    live.write(pa.table({"x": [1, 2]}))
    workspace.ingest(write_csv(tmp_path / "orders.csv"))
    assert live.path.exists()  # another ingest is still writing it
    live.release()  # its writer dies before committing
    workspace.ingest(write_csv(tmp_path / "more.csv", start=20), dataset="orders")
    assert not live.path.exists()
    assert list(workspace.lake.staging.iterdir()) == []
