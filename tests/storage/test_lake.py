"""The lake: content-addressed raw files, atomic curated Parquet, sweeping leftovers."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.errors import FormatError, WarehouseError
from headwater.storage.lake import Lake, no_space_left, sha256_file


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
    staged = lake.stage_batch("d", 7, pa.schema([("x", pa.int64())]))
    staged.write(pa.table({"x": [1, 2, 3]}))
    staged.close()
    assert staged.path.parent == lake.staging
    assert lake.curated_batches("d") == []
    path = lake.publish(staged)
    assert lake.curated_batches("d") == [7]
    assert pq.read_table(path).column("x").to_pylist() == [1, 2, 3]
    assert list(lake.staging.iterdir()) == []


def test_a_staged_batch_is_adopted_only_once_its_writer_lets_go(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    live = lake.stage_batch("d", 3, pa.schema([("x", pa.int64())]))
    live.write(pa.table({"x": [1]}))
    live.close()
    os.utime(live.path, (1_000_000_000, 1_000_000_000))
    assert list(lake.abandoned_batches()) == []  # its writer holds the lock
    assert lake.sweep() == 0 and live.path.exists()  # age never removes a staged batch
    live.release()  # what the kernel does when the writer dies
    [dead] = lake.abandoned_batches()
    assert (dead.dataset, dead.batch_id, dead.path) == ("d", 3, live.path)
    assert list(lake.abandoned_batches()) == []  # one sweeper at a time
    lake.publish(dead)
    assert lake.curated_batches("d") == [3] and list(lake.staging.iterdir()) == []


def test_unpublish_removes_the_whole_batch_folder(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    folder = lake.curated_dir("d") / "batch_id=4"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"x")
    (folder / "part-q9.parquet").write_bytes(b"y")
    assert lake.published_batches() == {("d", 4)}
    lake.unpublish("d", 4)
    assert lake.published_batches() == set() and not folder.exists()


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


def test_bytes_stored_whole_beside_their_address_and_leftovers_swept_daily(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "lake")
    data = b"\x89PNG not really"
    sha = hashlib.sha256(data).hexdigest()
    stored = lake.store_raw_bytes(data, sha)
    assert stored == lake.raw_path(sha) and stored.read_bytes() == data
    assert not os.access(stored, os.W_OK) or os.geteuid() == 0
    assert lake.store_raw_bytes(b"ignored: the address is taken", sha) == stored
    assert stored.read_bytes() == data and os.listdir(stored.parent) == [stored.name]
    # what a writer killed between its write and its rename leaves
    dead = stored.with_name(f".{'0' * 62}.1a2b3c4d.partial")
    dead.write_bytes(b"half")
    young = stored.with_name(f".{'1' * 62}.5e6f7a8b.partial")
    young.write_bytes(b"still being written")
    os.utime(dead, (1_000_000_000, 1_000_000_000))
    raw = lake.root / "raw" / "sha256"
    assert lake.sweep() == 0 and dead.exists()  # the raw folders are listed once a day
    os.utime(raw, (1_000_000_000, 1_000_000_000))
    assert lake.sweep() == 1 and not dead.exists() and young.exists()
    os.utime(young, (1_000_000_000, 1_000_000_000))
    assert lake.sweep() == 0 and young.exists()  # swept a moment ago
    os.utime(raw, (1_000_000_000, 1_000_000_000))
    assert lake.sweep() == 1 and os.listdir(stored.parent) == [stored.name]


def test_no_space_left_is_found_anywhere_in_the_chain() -> None:
    errno_28 = OSError(errno.ENOSPC, "No space left on device", "/home/lake/x.parquet")
    found = no_space_left(errno_28, where="/home")
    assert found is not None and found.location == "/home/lake/x.parquet"
    duck = WarehouseError(
        'IO Error: Could not write file "/home/w.duckdb.wal": No space left on device'
    )
    masked = RuntimeError("Current transaction is aborted")  # what DuckDB raised next
    masked.__context__ = duck
    found = no_space_left(masked, where="/home")
    assert found is not None and str(found).startswith("no space left on /home/w.duckdb.wal")
    quoted = FormatError("cell says No space left on device", path="a.csv", row=3)
    assert no_space_left(quoted, where="/home") is None
    assert no_space_left(OSError(errno.EACCES, "Permission denied"), where="/home") is None
