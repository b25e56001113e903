"""Leftovers of crashed uploads and downloads in ``_staging`` never break a later ingest."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from headwater.flows.workspace import Workspace
from tests.builders import write_csv

OLD = 1_000_000_000  # 2001: far past the hour a staging leftover is given


def _dead_folder(staging: Path, name: str) -> Path:
    """A folder a crashed upload left behind, with a file and a subfolder, made old."""
    folder = staging / name
    (folder / "inner").mkdir(parents=True)
    (folder / "orders.csv").write_text("id\n1\n")
    (folder / "inner" / "part").write_bytes(b"half")
    for path in [folder / "inner" / "part", folder / "inner", folder / "orders.csv", folder]:
        os.utime(path, (OLD, OLD))
    return folder


def test_stale_staging_folders_are_removed_and_ingest_succeeds(
    workspace: Workspace, tmp_path: Path
) -> None:
    staging = workspace.lake.staging
    dead = [_dead_folder(staging, "upload-dead"), _dead_folder(staging, "download-dead")]
    live = staging / "upload-live"  # an upload in progress right now: young, so it stays
    live.mkdir()
    report = workspace.ingest(write_csv(tmp_path / "orders.csv"))
    assert report.rows_loaded == 20
    assert not any(folder.exists() for folder in dead)
    assert live.is_dir()
    assert workspace.ingest(write_csv(tmp_path / "more.csv", start=20), dataset="orders")
    assert workspace.dataset("orders").rows == 40


def test_a_sweep_that_fails_never_breaks_the_ingest(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = _dead_folder(workspace.lake.staging, "upload-stuck")

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)  # a folder the process may not remove
    with caplog.at_level(logging.WARNING):
        report = workspace.ingest(write_csv(tmp_path / "orders.csv"))
    assert report.rows_loaded == 20 and workspace.dataset("orders").rows == 20
    assert folder.exists()
    assert "upload-stuck" in caplog.text
