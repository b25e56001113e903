"""S3 objects as Python streams, through boto3, with errors that name the object.

Credentials and the endpoint come only from the environment or the default AWS
chain (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, instance roles, and
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, which boto3 reads natively), so
nothing secret is ever in code, arguments or logs.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.response import StreamingBody

from headwater.errors import (
    AccessDenied,
    ConfigError,
    HeadwaterError,
    LocationNotFound,
    StorageError,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from mypy_boto3_s3 import S3Client

__all__ = [
    "S3Location",
    "open_s3_reader",
    "parse_s3_url",
    "s3_client",
    "s3_error",
    "upload_to_s3",
]

log = logging.getLogger(__name__)

_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
}
_READ_BUFFER = 1024 * 1024
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key, parsed once from an ``s3://bucket/key`` URL."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Location:
    """Split ``s3://bucket/key``; a URL without a bucket or a key is a usage error.

    The bucket must follow S3's naming rules, so ``s3:/bucket/key`` or a bucket with a
    space or capitals is refused here with the reason, not later as a missing object.
    """
    rest = url[len("s3://") :] if url.startswith("s3://") else ""
    bucket, _, key = rest.partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ConfigError(f"{url!r} is not an S3 object URL; expected s3://bucket/path/file.csv")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(
            f"{url!r}: {bucket!r} is not a valid S3 bucket name (3-63 characters: lowercase "
            "letters, digits, dots and hyphens); expected s3://bucket/path/file.csv"
        )
    return S3Location(bucket=bucket, key=key)


def s3_client() -> S3Client:
    """A client configured only from the environment and the default credential chain."""
    return boto3.client("s3")


def s3_error(exc: Exception, location: S3Location, *, action: str) -> HeadwaterError:
    """Translate a boto3 failure into the error tree, naming the object and what was tried."""
    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            f"{location.url}: no AWS credentials found; set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return LocationNotFound(
                location.url,
                f"bucket {location.bucket!r}",
                hint="Check the bucket name and the endpoint (AWS_ENDPOINT_URL).",
            )
        if code in _NOT_FOUND_CODES or status == 404:
            return LocationNotFound(
                location.url,
                f"key {location.key!r} in bucket {location.bucket!r}",
                hint=f"List what is there with: aws s3 ls s3://{location.bucket}/",
            )
        if code in _DENIED_CODES or status == 403:
            return AccessDenied(location.url, action)
        return StorageError(location.url, f"S3 refused to {action}: {code or status}")
    if isinstance(exc, BotoCoreError):
        return StorageError(
            location.url, f"could not {action}: {exc}; check AWS_ENDPOINT_URL and the network"
        )
    return StorageError(location.url, f"could not {action}: {exc}")


class _BodyReader(io.RawIOBase):
    """A raw stream over a boto3 response body, so it can sit under `io.BufferedReader`."""

    def __init__(self, body: StreamingBody, location: S3Location) -> None:
        self._body = body
        self._location = location

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk = self._body.read(len(view))
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, self._location, action="read the object") from exc
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()


class _RangeReader(io.RawIOBase):
    """A seekable raw stream that fetches byte ranges, for formats read from the end (Parquet)."""

    def __init__(self, client: S3Client, location: S3Location, size: int) -> None:
        self._client = client
        self._location = location
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        end = min(self._size, self._pos + len(view)) - 1
        try:
            body = self._client.get_object(
                Bucket=self._location.bucket,
                Key=self._location.key,
                Range=f"bytes={self._pos}-{end}",
            )["Body"]
            chunk = body.read()
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, self._location, action="read the object") from exc
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def open_s3_reader(location: S3Location, *, seekable: bool = False) -> io.BufferedReader:
    """Open an object for reading: one streaming GET, or ranged GETs when `seekable`."""
    client = s3_client()
    try:
        if seekable:
            head = client.head_object(Bucket=location.bucket, Key=location.key)
            raw: io.RawIOBase = _RangeReader(client, location, int(head["ContentLength"]))
        else:
            response = client.get_object(Bucket=location.bucket, Key=location.key)
            raw = _BodyReader(response["Body"], location)
    except (BotoCoreError, ClientError) as exc:
        if seekable and isinstance(exc, ClientError) and _status(exc) == 404:
            _raise_missing_bucket_or_key(client, location, exc)
        raise s3_error(exc, location, action="read the object") from exc
    log.info("reading %s", location.url)
    return io.BufferedReader(raw, buffer_size=_READ_BUFFER)


def upload_to_s3(location: S3Location, data: bytes | IO[bytes]) -> None:
    """Write one object: `put_object` for bytes, a managed (multipart) upload for a stream."""
    client = s3_client()
    try:
        if isinstance(data, bytes):
            client.put_object(Bucket=location.bucket, Key=location.key, Body=data)
        else:
            client.upload_fileobj(data, location.bucket, location.key)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, location, action="write the object") from exc
    except boto3.exceptions.S3UploadFailedError as exc:
        cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
        raise s3_error(cause, location, action="write the object") from exc
    log.info("wrote %s", location.url)


def _status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _raise_missing_bucket_or_key(client: S3Client, location: S3Location, exc: ClientError) -> None:
    """HEAD answers 404 with no code; ask the bucket so the message says which is missing."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except ClientError as bucket_exc:
        if _status(bucket_exc) == 404:
            raise LocationNotFound(
                location.url,
                f"bucket {location.bucket!r}",
                hint="Check the bucket name and the endpoint (AWS_ENDPOINT_URL).",
            ) from exc
    raise s3_error(exc, location, action="read the object") from exc
