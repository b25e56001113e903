"""Ingest into lake and warehouse, on DuckDB and PostgreSQL."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from tests.builders import (
    digits,
    write_csv,
    write_idx_pair,
    write_image_folder,
    write_mnist_pickle,
)


def test_pickle_loads_splits_and_labels(workspace: Workspace, tmp_path: Path) -> None:
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (30, 10, 10))
    report = workspace.ingest(path)
    assert report.dataset == "mnist"
    assert report.rows_loaded == 50 and report.rows_duplicate == 0
    summary = workspace.dataset("mnist")
    assert summary.splits == {"train": 30, "validation": 10, "test": 10}
    train_labels = {k: v for k, v in summary.labels["train"].items()}
    assert train_labels == {str(d): 3 for d in range(10)}
    assert summary.batches[0].rows_loaded == 50 and summary.batches[0].status == "succeeded"


def test_pixels_round_trip_exactly(workspace: Workspace, tmp_path: Path) -> None:
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (5, 1, 1))
    workspace.ingest(path)
    rows = workspace.rows("mnist", limit=1)
    import base64

    stored = np.frombuffer(base64.b64decode(str(rows[0]["pixels"])), dtype=np.uint8)
    expected, _ = digits(5, seed=0)
    assert rows[0]["pixel_dtype"] == "uint8"
    assert np.array_equal(stored, expected[0].reshape(-1))


def test_same_bytes_again_is_unchanged(workspace: Workspace, tmp_path: Path) -> None:
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz")
    first = workspace.ingest(path)
    again = workspace.ingest(path)
    assert again.unchanged and again.rows_loaded == 0
    assert again.batches[0].batch_id == first.batches[0].batch_id
    assert len(workspace.dataset("mnist").batches) == 1
    assert workspace.dataset("mnist").rows == 50


def test_rows_already_held_count_as_duplicates(workspace: Workspace, tmp_path: Path) -> None:
    write_idx_pair(tmp_path, "train", 20, seed=1)
    more = tmp_path / "more"
    more.mkdir()
    write_idx_pair(more, "train", 25, seed=1)  # the same 20 images first, then 5 new ones
    workspace.ingest(tmp_path / "train-images-idx3-ubyte.gz", dataset="digits")
    report = workspace.ingest(more / "train-images-idx3-ubyte.gz", dataset="digits")
    assert (report.rows_loaded, report.rows_duplicate) == (5, 20)
    assert workspace.dataset("digits").rows == 25


def test_duplicates_within_one_file(workspace: Workspace, tmp_path: Path) -> None:
    images, labels = digits(10)
    images[7], labels[7] = images[2], labels[2]
    np.savez(tmp_path / "twice.npz", x=images, y=labels)
    report = workspace.ingest(tmp_path / "twice.npz")
    assert (report.rows_loaded, report.rows_duplicate) == (9, 1)


def test_idx_folder_loads_every_pair(workspace: Workspace, tmp_path: Path) -> None:
    write_idx_pair(tmp_path, "train", 30, seed=1)
    write_idx_pair(tmp_path, "t10k", 10, seed=2, gz=False)
    report = workspace.ingest(tmp_path, dataset="mnist_idx")
    assert len(report.batches) == 2
    assert workspace.dataset("mnist_idx").splits == {"train": 30, "test": 10}


def test_image_folder(workspace: Workspace, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "shapes", per_label=4)
    workspace.ingest(root)
    summary = workspace.dataset("shapes")
    assert summary.splits == {"unassigned": 12}
    assert summary.labels["unassigned"] == {"0": 4, "1": 4, "2": 4}
    assert len(workspace.warehouse.fetch("SELECT sha256 FROM lake_manifest")) == 12


def test_curated_parquet_is_the_hive_layout(workspace: Workspace, tmp_path: Path) -> None:
    report = workspace.ingest(write_mnist_pickle(tmp_path / "mnist.pkl.gz"))
    batch_id = report.batches[0].batch_id
    part = workspace.lake.root / "curated" / "mnist" / f"batch_id={batch_id}" / "part-00000.parquet"
    assert pq.read_metadata(part).num_rows == 50
    table = pads.dataset(workspace.lake.root / "curated" / "mnist", partitioning="hive").to_table()
    assert table.num_rows == 50
    assert set(table.column("split").to_pylist()) == {"train", "validation", "test"}
    assert not list((workspace.lake.root / "_staging").iterdir())


def test_raw_file_is_content_addressed_and_read_only(workspace: Workspace, tmp_path: Path) -> None:
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz")
    workspace.ingest(path)
    from headwater.storage.lake import sha256_file

    sha = sha256_file(path)
    stored = workspace.lake.root / "raw" / "sha256" / sha[:2] / sha[2:]
    assert stored.read_bytes() == path.read_bytes()
    assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    row = workspace.warehouse.fetch_one(
        "SELECT original_name, size_bytes, source FROM lake_manifest WHERE sha256 = %s", [sha]
    )
    assert row == ("mnist.pkl.gz", path.stat().st_size, str(path.resolve()))


def test_csv_is_typed_tabular_and_appends(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 20))
    second = write_csv(
        tmp_path / "more" / "orders.csv" if False else tmp_path / "orders2.csv", 10, start=15
    )
    report = workspace.ingest(second, dataset="orders")
    assert (report.rows_loaded, report.rows_duplicate) == (5, 5)
    summary = workspace.dataset("orders")
    assert summary.kind == "tabular" and summary.rows == 25 and summary.label_column == "label"
    assert summary.columns["price"] == "double" and summary.columns["id"] == "int64"
    assert summary.columns["when"].startswith("timestamp")
    rows = workspace.rows("orders", limit=3)
    assert [r["id"] for r in rows] == [0, 1, 2] and rows[1]["name"] == "item 1"


def test_json_array_jsonl_and_parquet(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "people.json").write_text('[{"a": 1, "b": "x"}, {"a": 2, "b": null}]')
    (tmp_path / "events.jsonl").write_text('{"a": 1, "b": "x"}\n{"a": 3, "b": "z"}\n')
    workspace.ingest(tmp_path / "people.json")
    workspace.ingest(tmp_path / "events.jsonl")
    csv = write_csv(tmp_path / "orders.csv", 7)
    import pyarrow.csv as pacsv

    pq.write_table(pacsv.read_csv(csv), tmp_path / "orders.parquet")
    workspace.ingest(tmp_path / "orders.parquet")
    counts = {d.name: d.rows for d in workspace.datasets()}
    assert counts == {"people": 2, "events": 2, "orders": 7}
    assert workspace.rows("people", limit=5)[1]["b"] is None


def test_hostile_column_names_are_quoted(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "weird.csv"
    path.write_text('"a""; DROP TABLE dim_dataset; --",select,"b c"\n1,2,3\n4,5,6\n')
    workspace.ingest(path)
    rows = workspace.rows("weird", limit=5)
    assert rows[0]['a"; DROP TABLE dim_dataset; --'] == 1 and rows[1]["b c"] == 6
    assert [d.name for d in cat.list_datasets(workspace.warehouse)] == ["weird"]


@pytest.mark.parametrize("limit", [0, 1001])
def test_show_limit_is_bounded(workspace: Workspace, tmp_path: Path, limit: int) -> None:
    from headwater.errors import ConfigError

    workspace.ingest(write_csv(tmp_path / "orders.csv", 3))
    with pytest.raises(ConfigError, match="limit must be between 1 and 1000"):
        workspace.rows("orders", limit=limit)


def test_concurrent_ingests_of_overlapping_files_load_each_row_once(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Two writers race on one dataset; the per-dataset lock keeps the duplicate check honest."""
    from concurrent.futures import ThreadPoolExecutor

    write_idx_pair(tmp_path, "train", 10, seed=3)
    workspace.ingest(tmp_path / "train-images-idx3-ubyte.gz", dataset="digits")
    paths = []
    for name, n in (("a", 3000), ("b", 3500)):  # both start with the same 3,000 images
        folder = tmp_path / name
        folder.mkdir()
        paths.append(write_idx_pair(folder, "train", n, seed=3)[0])
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda p: workspace.ingest(p, dataset="digits"), paths))
    loaded = sorted(r.rows_loaded for r in reports)
    assert sum(loaded) == 3490  # 3,500 distinct images, 10 of them already there
    assert workspace.dataset("digits").rows == 3500
    distinct = workspace.warehouse.fetch_value("SELECT count(DISTINCT row_hash) FROM fact_image")
    assert distinct == 3500


def test_the_same_file_ingested_twice_at_once_loads_once(
    workspace: Workspace, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    write_idx_pair(tmp_path, "train", 10, seed=4)
    workspace.ingest(tmp_path / "train-images-idx3-ubyte.gz", dataset="digits")
    folder = tmp_path / "more"
    folder.mkdir()
    path = write_idx_pair(folder, "train", 3000, seed=5)[0]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: workspace.ingest(path, dataset="digits"), range(2)))
    assert sorted(r.unchanged for r in reports) == [False, True]
    assert len({r.batches[0].batch_id for r in reports}) == 1
    assert workspace.dataset("digits").rows == 3010


def test_two_ingests_that_create_one_new_dataset_at_once_both_land(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Both race to create the dataset; the one that loses adds its file to the winner's."""
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for name, seed in (("a", 6), ("b", 7)):
        folder = tmp_path / name
        folder.mkdir()
        paths.append(write_idx_pair(folder, "train", 2000, seed=seed)[0])
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda p: workspace.ingest(p, dataset="digits"), paths))
    assert sorted(r.rows_loaded for r in reports) == [2000, 2000]
    summary = workspace.dataset("digits")
    assert summary.rows == 4000 and len(summary.batches) == 2
