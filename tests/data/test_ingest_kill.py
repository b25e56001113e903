"""A SIGKILL at any step boundary of an ingest: the lake never shows an uncommitted batch.

The ingest process is told to pause at one boundary (``HEADWATER_TEST_PAUSE_AT``), says so,
and is killed right there. Before anything tidies up, every batch under ``curated/`` must be
one the warehouse committed; after a rerun the lake, read as other engines read it
(``pyarrow.dataset``, hive partitioning), and the warehouse both hold the file's rows exactly
once, and ``_staging`` is empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pytest

from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import open_warehouse
from tests.data.kill import kill_at

ROWS = 3_000
CHUNK = 500
STEPS = ["mid_load", "staging_written", "raw_stored", "committed", "published"]


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": np.arange(ROWS),
            "x": rng.normal(size=ROWS),
            "y": rng.integers(0, 1000, size=ROWS),
            "label": rng.integers(0, 3, size=ROWS),
        }
    )
    pacsv.write_csv(table, path)
    return path


def _lake_rows(curated: Path) -> int:
    if not curated.is_dir():
        return 0
    return int(pads.dataset(curated, partitioning="hive").count_rows())


def _warehouse_state(settings: Settings) -> tuple[set[int], int]:
    """Committed batch ids of dataset ``big`` and the rows its fact table holds."""
    with open_warehouse(settings) as wh:
        batches = wh.fetch(
            "SELECT b.batch_key FROM dim_batch b JOIN dim_dataset d USING (dataset_key) "
            "WHERE d.name = 'big' AND b.status = 'succeeded'"
        )
        rows = wh.fetch_value("SELECT count(*) FROM fact_big") if wh.table_exists("fact_big") else 0
    return {int(str(b[0])) for b in batches}, int(str(rows))


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_never_shows_an_uncommitted_batch(
    settings: Settings, tmp_path: Path, step: str
) -> None:
    path = _csv(tmp_path / "big.csv")
    curated = settings.lake_root / "curated" / "big"
    kill_at(step, ["ingest", str(path)], settings, CHUNK)

    committed, held = _warehouse_state(settings)
    shown = {int(p.name.removeprefix("batch_id=")) for p in curated.glob("batch_id=*")}
    assert shown <= committed, f"the lake shows batches {shown - committed} nobody committed"
    assert _lake_rows(curated) in {0, held}
    assert held in {0, ROWS}

    with Workspace(settings) as workspace:
        report = workspace.ingest(path)
        assert report.unchanged == (held == ROWS)
        assert workspace.dataset("big").rows == ROWS
    committed, held = _warehouse_state(settings)
    assert held == ROWS and len(committed) == 1
    assert _lake_rows(curated) == ROWS
    assert {p.name for p in curated.iterdir()} == {f"batch_id={committed.pop()}"}
    assert list((settings.lake_root / "_staging").iterdir()) == []
