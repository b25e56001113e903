"""What the two HTTP faces (the API and the web pages) share: statuses, refusals, path rules.

How a `HeadwaterError` becomes an HTTP status, how server paths are cut from a
message before a client sees it, and the path parameters both faces take. Kept
here, not in the API's package, so the web pages need nothing of the API's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Annotated, Final
from urllib.parse import urlparse

from fastapi import Path

from headwater.errors import (
    AccessDenied,
    ConfigError,
    DataError,
    FormatError,
    HeadwaterError,
    IntegrityError,
    ModelNotFitted,
    NotFound,
    QualityCheckFailed,
    QueueFull,
    SchemaError,
    StorageError,
    TaskMismatch,
    UnsafeInput,
    UploadTooLarge,
    WarehouseError,
    WriteConflict,
)
from headwater.flows.workspace import DATASET_NAME_PATTERN

__all__ = [
    "DATASET_NAME_PATTERN",
    "OPAQUE_STATUSES",
    "RETRY_AFTER_S",
    "RUN_ID_PATTERN",
    "STATUS_BY_ERROR",
    "DatasetName",
    "Problem",
    "RunId",
    "file_name",
    "scrub",
    "status_of",
]

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: Final[tuple[tuple[type[HeadwaterError], int, str], ...]] = (
    (UploadTooLarge, 413, "Upload too large"),
    (UnsafeInput, 422, "Unsafe input"),
    (SchemaError, 422, "Schema mismatch"),
    (FormatError, 422, "Unreadable input"),
    (QualityCheckFailed, 422, "Quality checks failed"),
    (DataError, 422, "Data refused"),
    (NotFound, 404, "Not found"),
    (AccessDenied, 403, "Access denied"),
    (QueueFull, 429, "Training queue full"),
    (TaskMismatch, 409, "Model does not fit the label"),
    (ConfigError, 422, "Invalid argument"),
    (WriteConflict, 409, "Concurrent write conflict"),
    (WarehouseError, 503, "Warehouse unavailable"),
    (StorageError, 503, "Storage unavailable"),
    (IntegrityError, 409, "Integrity check failed"),
    (ModelNotFitted, 409, "Model not fitted"),
)

# A dependency that is away (a restarting database) is usually back within seconds.
RETRY_AFTER_S: Final = "5"

# Statuses whose message could carry SQL, hosts or credentials: the detail stays generic.
OPAQUE_STATUSES: Final = frozenset({500, 503})

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"/]+/)+([^\s'\"/]+)")


class Problem(Exception):
    """An answer the API itself refuses with (auth, limits, malformed requests).

    Not part of `headwater.errors`: these are HTTP-level refusals with no meaning
    outside a face, so they carry their status with them.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        field: str | None = None,
        limit: int | None = None,
        setting: str | None = None,
    ) -> None:
        self.status, self.title, self.detail = status, title, detail
        self.headers = dict(headers or {})
        self.field, self.limit, self.setting = field, limit, setting
        super().__init__(detail)


def status_of(error: HeadwaterError) -> tuple[int, str]:
    for kind, status, title in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status, title
    return 500, "Internal error"


def file_name(path: str | None) -> str | None:
    """The last segment of a path or URL: the only part of a location a client may see."""
    if not path:
        return None
    if "://" in path:
        path = urlparse(path).path
    return PurePosixPath(path.replace("\\", "/")).name or None


def scrub(text: str) -> str:
    """Cut absolute server paths down to their last segment."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


DatasetName = Annotated[
    str,
    Path(
        pattern=DATASET_NAME_PATTERN,
        description="Dataset name: lowercase letters, digits and _, starting with a letter.",
        examples=["mnist"],
    ),
]
RunId = Annotated[
    str,
    Path(pattern=RUN_ID_PATTERN, description="Run id, as POST /runs or GET /runs gave it."),
]
