"""The lake: content-addressed raw files, atomic curated Parquet, sweeping leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.storage.lake import Lake, sha256_file


def test_raw_file_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    source = tmp_path / "a.bin"
    source.write_bytes(b"hello")
    sha = sha256_file(source)
    stored = lake.store_raw(source, sha)
    assert stored == tmp_path / "lake" / "raw" / "sha256" / sha[:2] / sha[2:]
    assert (stored.read_bytes() == b"hello" and not os.access(stored, os.W_OK)) or os.geteuid() == 0
    assert lake.store_raw(source, sha) == stored
    assert list((tmp_path / "lake" / "_staging").iterdir()) == []


def test_curated_file_appears_only_when_published(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    staged = lake.stage_parquet(pa.schema([("x", pa.int64())]))
    staged.write(pa.table({"x": [1, 2, 3]}))
    staged.close()
    assert lake.curated_batches("d") == []
    path = lake.publish(staged, "d", 7)
    assert lake.curated_batches("d") == [7]
    assert pq.read_table(path).column("x").to_pylist() == [1, 2, 3]


def test_sweep_removes_stale_staging_and_uncommitted_batches(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for batch_id in (1, 2):
        staged = lake.stage_parquet(pa.schema([("x", pa.int64())]))
        staged.write(pa.table({"x": [batch_id]}))
        staged.close()
        lake.publish(staged, "d", batch_id)
    leftover = lake.staging / "curated-dead.parquet"
    leftover.write_bytes(b"half")
    old = 1_000_000_000
    for path in [leftover, lake.curated_path("d", 1), lake.curated_path("d", 2)]:
        os.utime(path, (old, old))
    assert lake.sweep() == 1
    removed = lake.sweep_curated(committed=[("d", 1)])
    assert removed == 1
    assert lake.curated_batches("d") == [1] and not leftover.exists()


def test_sweep_removes_stale_folders_as_well_as_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    old_file = lake.staging / "raw-dead"
    old_file.write_bytes(b"x")
    old_folder = lake.staging / "download-dead"
    (old_folder / "deep").mkdir(parents=True)
    (old_folder / "deep" / "file.csv").write_text("a\n1\n")
    young_folder = lake.staging / "upload-live"
    young_folder.mkdir()
    old = 1_000_000_000
    for path in [old_file, old_folder / "deep" / "file.csv", old_folder / "deep", old_folder]:
        os.utime(path, (old, old))
    assert lake.sweep() == 2
    assert [p.name for p in lake.staging.iterdir()] == ["upload-live"]
