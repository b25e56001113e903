"""A full disk ends an ingest with one clear error, keeps nothing of it, and retries nothing.

The home folder (lake, staging and, on DuckDB, the warehouse file) is put on an 8 MB tmpfs of
its own. That needs root: in CI the suite runs as root, so these tests must run there.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from headwater.errors import DiskFull, StorageError
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.fetch import download
from headwater.storage.lake import Lake

SIZE = "8m"


def _unless_ci(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI runs as root and must run the disk-full tests")
    pytest.skip(reason)


@pytest.fixture
def small_home(settings: Settings) -> Iterator[Settings]:
    """The settings, with the home folder on a filesystem of its own, 8 MB in all."""
    if os.geteuid() != 0:
        _unless_ci("mounting a small filesystem needs root")
    settings.home.mkdir(parents=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(settings.home)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _unless_ci(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield settings
    finally:
        subprocess.run(["umount", "--lazy", str(settings.home)], check=True)


def _csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 1000, size=rows),
            "label": rng.integers(0, 3, size=rows),
        }
    )
    pacsv.write_csv(table, path)
    return path


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _assert_nothing_kept(workspace: Workspace) -> None:
    lake = workspace.lake.root
    assert _files(lake / "_staging") == []
    assert _files(lake / "curated") == []
    assert _files(lake / "raw") == []  # the raw copy this ingest made is gone too
    assert workspace.datasets() == []
    assert workspace.warehouse.fetch("SELECT batch_key FROM dim_batch") == []


def _ingest_fails_for_want_of_space(
    workspace: Workspace, path: Path, caplog: pytest.LogCaptureFixture
) -> DiskFull:
    with caplog.at_level(logging.INFO), pytest.raises(DiskFull) as failed:
        workspace.ingest(path)
    assert isinstance(failed.value, StorageError)
    assert str(failed.value).startswith(f"no space left on {workspace.settings.home}")
    assert "loading again" not in caplog.text  # a full disk is not a write conflict
    assert "kept committing" not in str(failed.value)
    return failed.value


def test_a_file_larger_than_the_disk_fails_cleanly(
    small_home: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = _csv(tmp_path / "big.csv", 400_000)  # 12.9 MB
    assert big.stat().st_size > 8 * 2**20
    with Workspace(small_home) as workspace:
        _ingest_fails_for_want_of_space(workspace, big, caplog)
        _assert_nothing_kept(workspace)
        report = workspace.ingest(_csv(tmp_path / "small.csv", 100))
        assert report.rows_loaded == 100 and workspace.dataset("small").rows == 100


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_a_commit_the_disk_cannot_hold_is_not_retried(
    small_home: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    medium = _csv(tmp_path / "medium.csv", 100_000)  # 3.1 MB: loads, then the WAL does not fit
    with Workspace(small_home) as workspace:
        _ingest_fails_for_want_of_space(workspace, medium, caplog)
        _assert_nothing_kept(workspace)
        assert workspace.ingest(_csv(tmp_path / "small.csv", 100)).rows_loaded == 100


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_the_cli_says_no_space_left_and_exits_5(small_home: Settings, tmp_path: Path) -> None:
    big = _csv(tmp_path / "big.csv", 400_000)
    env = dict(os.environ, HEADWATER_HOME=str(small_home.home))
    env.pop("HEADWATER_WAREHOUSE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "ingest", str(big)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 5, done.stderr
    assert "no space left on" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_an_upload_larger_than_the_disk_fails_cleanly(small_home: Settings, tmp_path: Path) -> None:
    big = _csv(tmp_path / "big.csv", 400_000)

    def chunks() -> Iterator[bytes]:
        with big.open("rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk

    with Workspace(small_home) as workspace:
        with pytest.raises(DiskFull, match=r"no space left on .*_staging/upload-"):
            workspace.ingest_stream(chunks(), "big.csv")
        _assert_nothing_kept(workspace)
        assert workspace.ingest(_csv(tmp_path / "small.csv", 100)).rows_loaded == 100


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_a_download_larger_than_the_disk_fails_cleanly(small_home: Settings) -> None:
    body = iter([b"x" * (1 << 20)] * 12)  # 12 MiB, streamed; the transport stands in for a server
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    staging = Lake(small_home.lake_root).staging
    with pytest.raises(DiskFull, match=r"no space left on .*_staging/download-"):
        download(
            "https://files.example/big.csv",
            staging,
            max_bytes=64 << 20,
            resolve=lambda host, port: ["93.184.216.34"],
            transport=transport,
        )
    assert list(staging.iterdir()) == []
