"""Quality on every batch: bad rows to the quarantine with their reason, a report that adds up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from headwater.errors import ConfigError, DataError, QualityCheckFailed
from headwater.flows.workspace import Workspace
from tests.builders import digits


def _npz(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, x=images, y=labels)
    return path


@pytest.fixture
def mnist_like(workspace: Workspace, tmp_path: Path) -> Workspace:
    images, labels = digits(40, seed=1)
    workspace.ingest(_npz(tmp_path / "first.npz", images, labels), dataset="digits")
    return workspace


def _injected(tmp_path: Path) -> Path:
    """30 new good rows, then: label 11, a NaN pixel, a pixel of 300, a duplicate of row 0."""
    images, labels = digits(34, seed=2)
    pixels = images.astype(np.float32)
    labels = labels.copy()
    labels[30] = 11
    pixels[31, 5, 5] = np.nan
    pixels[32, 0, 3] = 300.0
    pixels[33], labels[33] = pixels[0], labels[0]
    return _npz(tmp_path / "second.npz", pixels, labels)


def test_bad_rows_are_quarantined_with_their_reason(mnist_like: Workspace, tmp_path: Path) -> None:
    report = mnist_like.ingest(_injected(tmp_path), dataset="digits")
    batch = report.batches[0]
    assert (batch.rows_read, batch.rows_loaded, batch.rows_quarantined, batch.rows_duplicate) == (
        34,
        30,
        3,
        1,
    )
    held = {r["source_row"]: (r["check"], r["field"]) for r in mnist_like.quarantine("digits")}
    assert held == {
        30: ("label_allowed", "label"),
        31: ("pixel_not_nan", "pixels"),
        32: ("pixel_range", "pixels"),
    }
    values = {r["source_row"]: r["value"] for r in mnist_like.quarantine("digits")}
    assert values[30] == "11" and "300" in str(values[32]) and "NaN" in str(values[31])
    assert mnist_like.dataset("digits").rows == 70

    (quality,) = mnist_like.quality("digits", batch.batch_id)
    counts = {c.name: (c.outcome, c.count) for c in quality.checks}
    assert counts["label_allowed"] == ("fail", 1)
    assert counts["pixel_not_nan"] == ("fail", 1)
    assert counts["pixel_range"] == ("fail", 1)
    assert counts["image_shape"] == ("pass", 0)
    assert counts["duplicate_share"][1] == 1
    assert (quality.rows_loaded, quality.rows_quarantined, quality.rows_duplicate) == (30, 3, 1)
    assert quality.status == "passed"
    assert "pixel_range" in quality.to_html()


def test_first_batch_infers_an_unapproved_contract(mnist_like: Workspace) -> None:
    contract = mnist_like.contract("digits")
    assert contract.labels == [str(d) for d in range(10)]
    assert (contract.pixel_min, contract.pixel_max, contract.image_shape) == (0, 255, [28, 28, 1])
    assert not contract.approved
    assert mnist_like.approve_contract("digits").approved
    assert mnist_like.contract("digits").approved


def test_release_after_fixing_the_contract_and_drop(mnist_like: Workspace, tmp_path: Path) -> None:
    mnist_like.ingest(_injected(tmp_path), dataset="digits")
    held = {r["source_row"]: r["id"] for r in mnist_like.quarantine("digits")}
    with pytest.raises(DataError, match="still fails label_allowed"):
        mnist_like.release("digits", held[30])
    contract = mnist_like.contract("digits")
    assert contract.labels is not None
    contract.labels.append("11")
    mnist_like.approve_contract("digits", contract)
    mnist_like.release("digits", held[30])
    mnist_like.drop("digits", held[31], note="sensor glitch")
    with pytest.raises(ConfigError, match="already dropped"):
        mnist_like.drop("digits", held[31])
    assert mnist_like.dataset("digits").rows == 71
    assert mnist_like.dataset("digits").labels["unassigned"]["11"] == 1
    decided = {
        r["id"]: (r["status"], r["note"]) for r in mnist_like.quarantine("digits", status=None)
    }
    assert decided[held[30]][0] == "released"
    assert decided[held[31]] == ("dropped", "sensor glitch")
    curated = pads.dataset(mnist_like.lake.curated_dir("digits"), partitioning="hive").to_table()
    assert curated.num_rows == 71


def test_too_many_bad_rows_fail_the_whole_batch(mnist_like: Workspace, tmp_path: Path) -> None:
    images, labels = digits(10, seed=5)
    labels[:5] = 42
    with pytest.raises(QualityCheckFailed, match=r"50\.0% of rows quarantined"):
        mnist_like.ingest(_npz(tmp_path / "junk.npz", images, labels), dataset="digits")
    summary = mnist_like.dataset("digits")
    assert summary.rows == 40
    assert [b.status for b in summary.batches] == ["succeeded", "failed"]
    assert mnist_like.quarantine("digits") == []
    (report,) = mnist_like.quality("digits", summary.batches[1].batch_id)
    assert report.status == "failed" and report.rows_quarantined == 5


def test_a_chunk_of_only_duplicates_passes_the_gate(mnist_like: Workspace, tmp_path: Path) -> None:
    images, labels = digits(40, seed=1)
    np.savez(tmp_path / "again.npz", images=images, labels=labels)  # other bytes, same rows
    report = mnist_like.ingest(tmp_path / "again.npz", dataset="digits")
    assert (report.rows_loaded, report.rows_duplicate, report.rows_quarantined) == (0, 40, 0)
