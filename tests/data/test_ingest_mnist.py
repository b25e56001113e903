"""The real MNIST: the bundled pickle and the official IDX files, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.flows.workspace import Workspace

REPO_PICKLE = Path(__file__).resolve().parents[2] / "data" / "mnist.pkl.gz"

# Published per-digit counts (see ../shared/datasets/mnist/SOURCES.md).
PICKLE_LABELS = {
    "train": [4932, 5678, 4968, 5101, 4859, 4506, 4951, 5175, 4842, 4988],
    "validation": [991, 1064, 990, 1030, 983, 915, 967, 1090, 1009, 961],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
IDX_TRAIN_LABELS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.slow
def test_bundled_pickle_loads_70000_with_published_label_counts(workspace: Workspace) -> None:
    report = workspace.ingest(REPO_PICKLE, dataset="mnist")
    assert report.rows_loaded == 70_000 and report.rows_duplicate == 0
    summary = workspace.dataset("mnist")
    assert summary.splits == {"train": 50_000, "validation": 10_000, "test": 10_000}
    for split, counts in PICKLE_LABELS.items():
        assert [summary.labels[split][str(d)] for d in range(10)] == counts

    again = workspace.ingest(REPO_PICKLE, dataset="mnist")  # timed in bench/ingest.py
    assert again.unchanged and again.rows_loaded == 0


@pytest.mark.slow
@pytest.mark.shared_data
def test_official_idx_folder_loads_60000_and_10000(
    workspace: Workspace, shared_mnist: Path
) -> None:
    report = workspace.ingest(shared_mnist, dataset="mnist_idx")
    assert report.rows_loaded == 70_000 and len(report.batches) == 2
    summary = workspace.dataset("mnist_idx")
    assert summary.splits == {"train": 60_000, "test": 10_000}
    assert [summary.labels["train"][str(d)] for d in range(10)] == IDX_TRAIN_LABELS
