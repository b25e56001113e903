"""A quarantine release killed at either side of its commit never shows an uncommitted row.

A released row is written as an extra part of its batch's curated folder; that part must
appear only once the warehouse holds the row, and the next ingest finishes or removes what
a killed release left in ``_staging``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import digits
from tests.data.kill import kill_at


def _npz(path: Path, rows: int, seed: int, *, bad_label: bool = False) -> Path:
    images, labels = digits(rows, seed=seed)
    if bad_label:
        labels = labels.copy()
        labels[-1] = 11  # not among the labels the first batch's contract allows
    np.savez(path, x=images, y=labels)
    return path


def _counts(workspace: Workspace) -> tuple[int, int]:
    """Rows of dataset ``digits`` in the lake (as other engines read it) and in the warehouse."""
    curated = workspace.lake.curated_dir("digits")
    return pads.dataset(curated, partitioning="hive").count_rows(), workspace.dataset("digits").rows


@pytest.mark.parametrize("step", ["release_staged", "release_committed"])
def test_a_killed_release_never_shows_an_uncommitted_row(
    settings: Settings, tmp_path: Path, step: str
) -> None:
    with Workspace(settings) as workspace:
        workspace.ingest(_npz(tmp_path / "first.npz", 40, 1), dataset="digits")
        workspace.ingest(_npz(tmp_path / "second.npz", 10, 2, bad_label=True), dataset="digits")
        [held] = workspace.quarantine("digits")
        assert _counts(workspace) == (49, 49)

    kill_at(step, ["quarantine", "digits", "--release", str(held["id"]), "--force"], settings)

    with Workspace(settings) as workspace:
        lake, warehouse = _counts(workspace)
        released = warehouse == 50
        assert lake in {49, warehouse}, "the lake shows a row the warehouse does not hold"
        assert released == (step == "release_committed")
        workspace.ingest(_npz(tmp_path / "third.npz", 5, 3), dataset="digits")
        if not released:
            workspace.release("digits", int(str(held["id"])), force=True)
        assert _counts(workspace) == (55, 55)
        assert list(workspace.lake.staging.iterdir()) == []
