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
    removed = lake.sweep(committed=[("d", 1)])
    assert removed == 2
    assert lake.curated_batches("d") == [1] and not leftover.exists()
