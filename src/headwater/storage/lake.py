"""The lake: raw files kept immutable under their sha256, curated data as Parquet.

Layout (the contract Spark and every other reader rely on; keep it stable)::

    lake/
      raw/sha256/ab/cdef...            raw bytes, read-only, named by their sha256
      curated/<dataset>/batch_id=<N>/part-00000.parquet
      _staging/                         half-written files; readers skip names starting with _

A batch's curated file is written under ``_staging`` (``batch-<dataset>-<N>.parquet``,
locked by its writer) and renamed into ``curated/`` only after the warehouse has
committed the batch, so a reader sees whole committed batches and nothing else. A
batch whose writer died is finished or removed by the next ingest
(`Lake.abandoned_batches`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.errors import DataError, DiskFull, LocationNotFound

__all__ = [
    "Lake",
    "StagedParquet",
    "full_disk_said",
    "no_space_left",
    "parquet_parts",
    "part_order",
    "sha256_file",
    "uri_path",
]

_CHUNK = 1 << 20
PARTIAL_SUFFIX = ".partial"
"""Ends the name of a raw copy still being written (``raw/sha256/ab/.<name>.<tag>.partial``)."""
RAW_SWEEP_EVERY_S = 24 * 3600
"""Listing every raw folder for leftovers grows with the lake: done at most this often."""

log = logging.getLogger("headwater.lake")

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_WORDS = ("No space left on device", "Disk quota exceeded")

_DIGITS = re.compile(r"(\d+)")

_STAGED_BATCH = re.compile(
    r"^batch-(?P<dataset>[a-z][a-z0-9_]*)-(?P<batch>[0-9]+)(?:-q(?P<quarantine>[0-9]+))?\.parquet$"
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Every column but binary ones: an image's pixels never repeat, and trying a dictionary
    on 12 KB values cost a quarter of the curated file's write time."""
    return [f.name for f in schema if not pa.types.is_binary(f.type)]


def _write_whole(target: Path, data: bytes) -> None:
    """``data`` as the read-only file ``target``, which appears whole or not at all.

    The temporary sits beside the target (a dot name no reader asks for), so the rename
    stays inside one folder: Linux takes a filesystem-wide lock for a rename across
    folders, which parallel workers storing thousands of images would queue on. A
    temporary a killed writer left is removed by `Lake.sweep`.
    """
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.rename(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def sha256_stream(source: BinaryIO, sink: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` to ``sink`` while hashing it; return the sha256 and the byte count."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        sink.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def part_order(path: str) -> tuple[str | int, ...]:
    """How parts are ordered everywhere: path pieces compared with numbers as numbers.

    ``batch_id=2`` comes before ``batch_id=10``, as batches were committed.
    """
    pieces = _DIGITS.split(uri_path(path))  # text, digits, text, digits, ...
    return tuple(int(p) if i % 2 else p for i, p in enumerate(pieces))


def uri_path(name: str) -> str:
    """A local path for ``file:/x``, ``file:///x`` or ``/x``; other schemes keep their URI."""
    if "://" not in name and not name.startswith("file:"):
        return name
    parsed = urlparse(name)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}"


def parquet_parts(path: Path) -> list[Path]:
    """A Parquet file, or every Parquet file under a folder in `part_order` (hidden skipped)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise LocationNotFound(str(path), "a Parquet file or folder")
    found = [
        p
        for p in path.rglob("*.parquet")
        if p.is_file() and not any(s.startswith(("_", ".")) for s in p.relative_to(path).parts)
    ]
    return sorted(found, key=lambda p: part_order(str(p)))


class StagedParquet:
    """One batch's curated Parquet under ``_staging``, locked for as long as its writer lives.

    The writer holds an exclusive ``flock`` on the file from the moment it appears
    under its batch name until it is published or discarded. The kernel drops the
    lock when the process dies, SIGKILL included, so a sweeper that can take the
    lock knows the file was abandoned (`Lake.abandoned_batches`).
    """

    def __init__(
        self, path: Path, dataset: str, batch_id: int, lock: int, quarantine_id: int | None = None
    ) -> None:
        self.path, self.dataset, self.batch_id = path, dataset, batch_id
        self.quarantine_id = quarantine_id
        self._lock: int | None = lock
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    @property
    def part_name(self) -> str:
        """Its file name in the batch's curated folder: the batch, or one released row."""
        if self.quarantine_id is None:
            return "part-00000.parquet"
        return f"part-q{self.quarantine_id}.parquet"

    @classmethod
    def create(
        cls,
        staging: Path,
        dataset: str,
        batch_id: int,
        schema: pa.Schema,
        quarantine_id: int | None = None,
    ) -> StagedParquet:
        # locked under a name no sweeper adopts, then renamed: never seen unlocked
        hidden = staging / f"lock-{uuid.uuid4().hex}"
        fd = os.open(hidden, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        released = "" if quarantine_id is None else f"-q{quarantine_id}"
        path = staging / f"batch-{dataset}-{batch_id}{released}.parquet"
        staged = cls(path, dataset, batch_id, fd, quarantine_id)
        try:
            os.rename(hidden, path)
            staged._writer = pq.ParquetWriter(
                str(path), schema, compression="zstd", use_dictionary=_dictionary_columns(schema)
            )
        except BaseException:
            hidden.unlink(missing_ok=True)
            staged.discard()
            raise
        return staged

    @classmethod
    def adopt(cls, path: Path) -> StagedParquet | None:
        """Take over a staged batch whose writer is gone; None while its writer still holds it."""
        found = _STAGED_BATCH.match(path.name)
        if found is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise FileNotFoundError(path)  # published or discarded while we waited
        except OSError:  # BlockingIOError: a live writer holds it
            os.close(fd)
            return None
        released = int(found["quarantine"]) if found["quarantine"] else None
        return cls(path, found["dataset"], int(found["batch"]), fd, released)

    def write(self, table: pa.Table) -> None:
        if table.num_rows and self._writer is not None:
            with full_disk_said(self.path):
                self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file (footer written); it stays locked until published or discarded."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with full_disk_said(self.path):
                writer.close()

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def discard(self) -> None:
        """Remove the staged file whatever state it is in; never raises on a full disk."""
        try:
            self.close()
        except OSError as exc:
            log.debug("closing %s before removing it: %s", self.path, exc)
        finally:
            self.path.unlink(missing_ok=True)
            self.release()


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging(self) -> Path:
        path = self.root / "_staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def raw_path(self, sha256: str) -> Path:
        return self.root / self.raw_name(sha256)

    @staticmethod
    def raw_name(sha256: str) -> str:
        """A raw copy's place relative to the lake's root (one string, no path objects)."""
        return f"raw/sha256/{sha256[:2]}/{sha256[2:]}"

    def has_raw(self, sha256: str) -> bool:
        return self.raw_path(sha256).is_file()

    def store_raw(self, source: Path, sha256: str) -> Path:
        """Copy a file into its content address (once); the copy is made read-only."""
        target = self.raw_path(sha256)
        if target.is_file():
            return target
        temporary = self.staging / f"raw-{uuid.uuid4().hex}"
        try:
            with full_disk_said(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, temporary)
                temporary.chmod(0o444)
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target

    def store_raw_bytes(self, data: bytes, sha256: str) -> Path:
        """Write bytes already read (and hashed) into their content address (once).

        For many small files (an image folder): one read per file instead of a hash pass
        and a copy, written beside its target (`_write_whole`).
        """
        target = self.raw_path(sha256)
        if target.is_file():
            return target
        with full_disk_said(target):
            try:
                _write_whole(target, data)
            except FileNotFoundError:  # the first file of its shard: a syscall saved per file
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_whole(target, data)
        return target

    def remove_raw(self, sha256: str) -> None:
        """Remove a raw copy no committed batch refers to (one a failed ingest made)."""
        self.raw_path(sha256).unlink(missing_ok=True)

    def curated_dir(self, dataset: str) -> Path:
        return self.root / "curated" / dataset

    def curated_path(self, dataset: str, batch_id: int) -> Path:
        return self.curated_dir(dataset) / f"batch_id={batch_id}" / "part-00000.parquet"

    def stage_batch(
        self, dataset: str, batch_id: int, schema: pa.Schema, *, quarantine_id: int | None = None
    ) -> StagedParquet:
        """Start a batch's curated file under ``_staging``, locked; `publish` it once committed."""
        return StagedParquet.create(self.staging, dataset, batch_id, schema, quarantine_id)

    def publish(self, staged: StagedParquet) -> Path:
        """Rename a closed staged batch into ``curated/`` (atomic), then let go of its lock.

        Only a batch the warehouse has committed is published, so a reader of
        ``curated/`` never sees rows the warehouse does not hold.
        """
        folder = self.curated_dir(staged.dataset) / f"batch_id={staged.batch_id}"
        target = folder / staged.part_name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        staged.release()
        return target

    def abandoned_batches(self) -> Iterator[StagedParquet]:
        """Staged batches whose writer died (its lock is free), each handed over locked.

        The caller publishes the ones the warehouse committed and discards the rest.
        """
        for path in sorted(self.staging.glob("batch-*.parquet")):
            staged = StagedParquet.adopt(path)
            if staged is not None:
                yield staged

    def published_batches(self) -> set[tuple[str, int]]:
        """Every (dataset, batch_id) folder under ``curated/``, whatever it holds."""
        curated = self.root / "curated"
        if not curated.is_dir():
            return set()
        return {
            (folder.parent.name, int(folder.name.removeprefix("batch_id=")))
            for folder in curated.glob("*/batch_id=*")
            if folder.is_dir() and folder.name.removeprefix("batch_id=").isdigit()
        }

    def unpublish(self, dataset: str, batch_id: int) -> None:
        """Remove a curated batch folder the warehouse never committed (an older version's kill)."""
        shutil.rmtree(self.curated_dir(dataset) / f"batch_id={batch_id}", ignore_errors=True)

    def curated_batches(self, dataset: str) -> list[int]:
        return sorted(b for d, b in self.published_batches() if d == dataset)

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
            if _STAGED_BATCH.match(entry.name):
                continue  # a batch: published or discarded by `abandoned_batches`, never by age
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
        return removed + self._sweep_raw(cutoff)

    def _sweep_raw(self, cutoff: float) -> int:
        """Raw copies a killed writer left half-written (``.*.partial``), once a day at most.

        Listing every raw folder grows with the lake, so the modification time of
        ``raw/sha256`` keeps the clock (set after each sweep; a new shard folder moves it
        too, which only puts the next sweep off): no marker file among the lake's files.
        """
        folder = self.root / "raw" / "sha256"
        try:
            if not folder.is_dir() or folder.stat().st_mtime > time.time() - RAW_SWEEP_EVERY_S:
                return 0
            stale = [
                entry
                for shard in folder.glob("??")
                for entry in os.scandir(shard)
                if entry.name.endswith(PARTIAL_SUFFIX) and entry.stat().st_mtime < cutoff
            ]
            for entry in stale:
                Path(entry.path).unlink(missing_ok=True)
            os.utime(folder)
        except OSError as exc:
            log.warning("cannot sweep half-written raw copies under %s: %s", folder, exc)
            return 0
        return len(stale)


def no_space_left(error: BaseException, *, where: Path | str) -> DiskFull | None:
    """The `DiskFull` a failure amounts to, if a disk ran out of space anywhere in its chain.

    Python and Arrow say so with errno 28 (ENOSPC) or 122 (EDQUOT); DuckDB and
    PostgreSQL only in their message, which names the file they could not write.
    ``where`` names the place when the error itself does not.
    """
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return current
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return DiskFull(current.filename or where)
        text = "" if isinstance(current, DataError) else str(current)  # may quote a user's cell
        if any(words in text for words in _FULL_WORDS):
            named = re.search(r'"([^"]+)": (?:' + "|".join(_FULL_WORDS) + ")", text)
            if named is None:
                return DiskFull(where)
            path = named[1]
            return DiskFull(path if os.path.isabs(path) else f"the warehouse server ({path})")
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def full_disk_said(where: Path) -> Iterator[None]:
    """Turn a full disk met while writing ``where`` into `DiskFull`; other errors pass."""
    try:
        yield
    except OSError as exc:
        full = no_space_left(exc, where=where)
        if full is None:
            raise
        raise full from exc


def _newest_change(entry: Path) -> float:
    """The latest modification time of a staging entry, looking inside a folder."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for folder, dirs, files in os.walk(entry):
            for name in chain(dirs, files):
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest
