"""Open a local path or an ``s3://`` URL as a stream, and write one all-or-nothing.

Every writer here commits only when the work succeeded: a local file goes
through a temporary file and a rename, an S3 object is uploaded from a spooled
temporary file at the end. A failure half way leaves nothing behind, so a
consumer never picks up half an obfuscated file.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from headwater.data.privacy.s3 import open_s3_reader, parse_s3_url, upload_to_s3
from headwater.errors import AccessDenied, ConfigError, LocationNotFound

__all__ = ["is_s3", "open_destination", "open_source", "same_location", "write_to"]

_SPOOL_BYTES = 64 * 1024 * 1024


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def _local_path(location: str) -> Path:
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise ConfigError(
            f"{location!r}: scheme {scheme!r} is not supported; use s3://bucket/key or a local path"
        )
    return Path(location).expanduser()


def same_location(first: str, second: str) -> bool:
    """Whether two locations name the same object, so a source is never overwritten."""
    if is_s3(first) or is_s3(second):
        return first == second
    return _local_path(first).resolve() == _local_path(second).resolve()


@contextmanager
def open_source(location: str, *, seekable: bool = False) -> Iterator[BinaryIO]:
    """Open a source for reading, gunzipped when its name ends in ``.gz``.

    `seekable` asks for random access (Parquet footers).
    """
    if is_s3(location):
        stream: IO[bytes] = open_s3_reader(parse_s3_url(location), seekable=seekable)
    else:
        path = _local_path(location)
        try:
            stream = path.open("rb")
        except FileNotFoundError as exc:
            raise LocationNotFound(location, f"file {path.name!r}") from exc
        except PermissionError as exc:
            raise AccessDenied(location, "read the file") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"{location}: is a folder; name a file inside it") from exc
    with stream:
        if location.split("?", 1)[0].lower().endswith(".gz"):
            if seekable:
                raise ConfigError(f"{location}: a gzip stream cannot be read at random")
            with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]  # GzipFile reads bytes like any BinaryIO
            return
        yield stream  # type: ignore[misc]  # BufferedReader and IO[bytes] both satisfy BinaryIO


@contextmanager
def open_destination(location: str) -> Iterator[BinaryIO]:
    """A writable stream that becomes `location` only if the `with` block succeeds."""
    if is_s3(location):
        target = parse_s3_url(location)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            yield spool  # type: ignore[misc]  # SpooledTemporaryFile is a binary file object
            spool.seek(0)
            upload_to_s3(target, spool)
        return
    path = _local_path(location)
    if not path.parent.is_dir():
        raise LocationNotFound(location, f"folder {str(path.parent)!r}", hint="Create it first.")
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115  # closed below, renamed on success
            dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
        )
    except PermissionError as exc:
        raise AccessDenied(location, "write the file") from exc
    committed = False
    try:
        with handle:
            yield handle  # type: ignore[misc]  # a binary file object
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
        committed = True
    finally:
        if not committed:
            Path(handle.name).unlink(missing_ok=True)


def write_to(destination: str, data: bytes | IO[bytes]) -> int:
    """Write bytes or a readable stream to a local path or ``s3://`` URL; returns bytes written.

    Used by the CLI's ``--out`` and by callers holding `obfuscate()`'s bytes. Bytes go
    to S3 in one `put_object`; a stream goes through a managed multipart upload.
    """
    if is_s3(destination) and isinstance(data, bytes):
        upload_to_s3(parse_s3_url(destination), data)
        return len(data)
    with open_destination(destination) as sink:
        if isinstance(data, bytes):
            sink.write(data)
        else:
            shutil.copyfileobj(data, sink, length=1024 * 1024)
        return sink.tell()
