"""A load killed with SIGKILL mid-batch leaves nothing behind, and a rerun completes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from headwater.flows.workspace import Workspace
from headwater.settings import Settings

ROWS = 400_000
CHUNK = 2_000


def _big_csv(path: Path) -> Path:
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


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["HEADWATER_HOME"] = str(settings.home)
    env["HEADWATER_INGEST_CHUNK_ROWS"] = str(CHUNK)
    env.pop("HEADWATER_WAREHOUSE_URL", None)
    env.pop("HEADWATER_WAREHOUSE_SCHEMA", None)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return env


def test_sigkill_mid_load_leaves_nothing_and_rerun_completes(
    settings: Settings, tmp_path: Path
) -> None:
    path = _big_csv(tmp_path / "big.csv")
    child = subprocess.Popen(
        [sys.executable, "-m", "headwater", "-v", "ingest", str(path)],
        env=_env(settings),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert child.stderr is not None
    seen = []
    for line in child.stderr:
        seen.append(line)
        read = re.search(r"batch \d+: (\d+) rows read", line)
        if read and 0 < int(read[1]) < ROWS // 2:  # rows are in the open transaction
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, "".join(seen[-5:])

    with Workspace(settings) as workspace:
        assert workspace.datasets() == []
        batches = workspace.warehouse.fetch("SELECT status FROM dim_batch")
        assert batches == [] or {b[0] for b in batches} == {"failed"}
        assert not workspace.warehouse.table_exists("fact_big")
        curated = workspace.lake.root / "curated"
        assert not curated.exists() or not any(curated.rglob("*.parquet"))

        report = workspace.ingest(path)
        assert report.rows_loaded == ROWS and not report.unchanged
        assert workspace.dataset("big").rows == ROWS
        assert len(list(curated.rglob("*.parquet"))) == 1
