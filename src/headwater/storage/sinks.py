"""Where an export's files go: a local folder or ``s3://bucket/prefix/``.

Each file is written whole (a folder: to a temporary name, then renamed; S3: one PUT,
or a multipart upload for a large file, which S3 makes visible only once complete) and
carries its sha256 (S3: object metadata), so a re-run can tell a file already there
from one to write again. A sink is used from several threads at once (boto3's client
is thread-safe; the folder sink's temporary names are per file).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from headwater.errors import StorageError

__all__ = ["FolderSink", "S3Sink", "Sink", "open_sink"]

S3_RETRIES = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=32)
"""botocore's standard mode: exponential backoff with jitter on 5xx, throttling, timeouts;
enough pooled connections for parallel parts each uploading its chunks in parallel."""

MULTIPART_BYTES = 8 * 1024 * 1024
"""A file this large or larger goes up as a multipart upload in chunks of this size."""


class Sink(Protocol):
    where: str

    def sha256(self, name: str) -> str | None: ...
    def put(self, name: str, body: bytes, sha256: str) -> None: ...
    def read(self, name: str) -> bytes | None: ...
    def remove(self, name: str) -> None: ...


class FolderSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        folder.mkdir(parents=True, exist_ok=True)

    def sha256(self, name: str) -> str | None:
        path = self.folder / name
        if not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def put(self, name: str, body: bytes, sha256: str) -> None:
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(body)
        os.replace(partial, self.folder / name)

    def read(self, name: str) -> bytes | None:
        path = self.folder / name
        return path.read_bytes() if path.is_file() else None

    def remove(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)


class S3Sink:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.where = f"s3://{bucket}/{self.prefix}/"
        self.client: Any = boto3.client("s3", config=S3_RETRIES)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, what)(Bucket=self.bucket, Key=self._key(name), **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(f"{self.where}{name}", f"S3 {what} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self.where}{name}", f"S3 {what} failed: {exc}") from exc

    def sha256(self, name: str) -> str | None:
        head = self._call("head_object", name)
        return None if head is None else head.get("Metadata", {}).get("sha256")

    def put(self, name: str, body: bytes, sha256: str) -> None:
        """One PUT, or a multipart upload (4 chunks at a time) from ``MULTIPART_BYTES`` on."""
        config = TransferConfig(
            multipart_threshold=MULTIPART_BYTES,
            multipart_chunksize=MULTIPART_BYTES,
            max_concurrency=4,
        )
        try:
            self.client.upload_fileobj(
                io.BytesIO(body),
                self.bucket,
                self._key(name),
                ExtraArgs={"Metadata": {"sha256": sha256}},
                Config=config,
            )
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise StorageError(f"{self.where}{name}", f"S3 upload failed: {exc}") from exc

    def read(self, name: str) -> bytes | None:
        got = self._call("get_object", name)
        return None if got is None else bytes(got["Body"].read())

    def remove(self, name: str) -> None:
        self._call("delete_object", name)


def open_sink(dest: str) -> Sink:
    """``s3://bucket/prefix/`` (credentials and endpoint from the environment) or a folder."""
    if dest.startswith("s3://"):
        parsed = urlparse(dest)
        if not parsed.netloc:
            raise StorageError(dest, "names no bucket; give s3://bucket/prefix/")
        return S3Sink(parsed.netloc, parsed.path)
    return FolderSink(Path(dest))
