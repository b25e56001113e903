"""The lake: raw files kept immutable under their sha256, curated data as Parquet.

Layout (the contract Spark and every other reader rely on; keep it stable)::

    lake/
      raw/sha256/ab/cdef...            raw bytes, read-only, named by their sha256
      curated/<dataset>/batch_id=<N>/part-00000.parquet
      _staging/                         half-written files; readers skip names starting with _

A curated file is written under ``_staging`` and renamed into place, so a reader
sees a whole file or none.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Lake", "StagedParquet", "sha256_file"]

_CHUNK = 1 << 20

log = logging.getLogger("headwater.lake")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_stream(source: BinaryIO, sink: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` to ``sink`` while hashing it; return the sha256 and the byte count."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        sink.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class StagedParquet:
    """A Parquet file being written batch by batch under ``_staging``; published by rename."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self._open = True
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        if self._open:
            self._writer.close()
            self._open = False

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging(self) -> Path:
        path = self.root / "_staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def raw_path(self, sha256: str) -> Path:
        return self.root / "raw" / "sha256" / sha256[:2] / sha256[2:]

    def has_raw(self, sha256: str) -> bool:
        return self.raw_path(sha256).is_file()

    def store_raw(self, source: Path, sha256: str) -> Path:
        """Copy a file into its content address (once); the copy is made read-only."""
        target = self.raw_path(sha256)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.staging / f"raw-{uuid.uuid4().hex}"
        try:
            shutil.copyfile(source, temporary)
            temporary.chmod(0o444)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target

    def curated_dir(self, dataset: str) -> Path:
        return self.root / "curated" / dataset

    def curated_path(self, dataset: str, batch_id: int) -> Path:
        return self.curated_dir(dataset) / f"batch_id={batch_id}" / "part-00000.parquet"

    def stage_parquet(self, schema: pa.Schema) -> StagedParquet:
        return StagedParquet(self.staging / f"curated-{uuid.uuid4().hex}.parquet", schema)

    def publish(self, staged: StagedParquet, dataset: str, batch_id: int) -> Path:
        target = self.curated_path(dataset, batch_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        return target

    def unpublish(self, dataset: str, batch_id: int) -> None:
        """Remove a curated batch whose warehouse transaction did not commit."""
        path = self.curated_path(dataset, batch_id)
        path.unlink(missing_ok=True)
        if path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()

    def curated_batches(self, dataset: str) -> list[int]:
        folder = self.curated_dir(dataset)
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name.removeprefix("batch_id="))
            for p in folder.iterdir()
            if p.name.startswith("batch_id=") and (p / "part-00000.parquet").is_file()
        )

    def sweep(self, *, older_than_s: float = 3600) -> int:
        """Remove what killed processes left in ``_staging``: files and folders, once stale.

        An entry counts as stale when nothing in it changed for ``older_than_s``
        (an upload still streaming keeps its folder young). Best effort by design:
        an entry that cannot be removed is logged and left, never raised, so one
        stuck leftover cannot break every later ingest.
        """
        cutoff = time.time() - older_than_s
        try:
            entries = list(self.staging.iterdir())
        except OSError as exc:
            log.warning("cannot list %s to sweep it: %s", self.root / "_staging", exc)
            return 0
        removed = 0
        for entry in entries:
            try:
                if _newest_change(entry) >= cutoff:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except FileNotFoundError:
                continue  # another process swept it first
            except OSError as exc:
                log.warning(
                    "cannot remove the staging leftover %s (%s); remove it by hand", entry, exc
                )
                continue
            removed += 1
        return removed

    def sweep_curated(
        self, *, committed: Iterable[tuple[str, int]], older_than_s: float = 3600
    ) -> int:
        """Delete curated batches nobody committed.

        Curated files are renamed into place just before the warehouse commits; a
        process killed between the two leaves a curated batch without a warehouse
        row. ``committed`` lists the (dataset, batch_id) pairs the warehouse knows.
        """
        removed = 0
        cutoff = time.time() - older_than_s
        known = set(committed)
        curated = self.root / "curated"
        if curated.is_dir():
            for dataset_dir in curated.iterdir():
                for batch_id in self.curated_batches(dataset_dir.name):
                    path = self.curated_path(dataset_dir.name, batch_id)
                    if (dataset_dir.name, batch_id) not in known and path.stat().st_mtime < cutoff:
                        self.unpublish(dataset_dir.name, batch_id)
                        removed += 1
        return removed


def _newest_change(entry: Path) -> float:
    """The latest modification time of a staging entry, looking inside a folder."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for folder, dirs, files in os.walk(entry):
            for name in chain(dirs, files):
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest
