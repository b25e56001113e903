"""One error tree for everything Headwater raises on purpose.

Every message says what went wrong *and* what to do about it, and the data
errors name the file, the row and the field they are about, so a user never has
to guess which of a thousand rows broke a load.

    HeadwaterError                                                         exit  HTTP
    ├── ConfigError              bad settings or bad arguments                2    422
    │   └── TaskMismatch         a model (or task) that does not fit the      2    409
    │                            dataset's label: a regressor on classes
    ├── AccessDenied             credentials or a policy refuse access        6    403
    ├── NotFound                 a dataset, run, file or host that is not     3    404
    │   ├── DatasetNotFound      there
    │   ├── RunNotFound
    │   └── LocationNotFound     a local path, bucket, key or URL
    ├── DataError                a file or row that cannot be accepted        4    422
    │   ├── UnsafeInput          hostile names, code-running pickles, URLs
    │   │                        into the server's own network
    │   ├── FormatError          unreadable, truncated, empty, unknown format
    │   ├── UploadTooLarge       an upload or download past the size limit    4    413
    │   ├── SchemaError          wrong columns, wrong types, NaN labels
    │   └── QualityCheckFailed   a batch whose quality checks failed
    ├── WarehouseError           the database refused or could not be reached 5    503
    │   ├── WriteConflict        another writer changed the same rows; retry  5    409
    │   ├── WarehouseUnavailable the database is down or unreachable; retry   5    503
    │   └── WarehouseBusy        another process holds the (DuckDB) file      5    503
    ├── StorageError             object storage or a remote server failed     5    503
    │   └── DiskFull             a local disk ran out of space                5    503
    ├── QueueFull                too many runs waiting; retry later           5    429
    ├── ModelNotFitted           predict or save before fit                   2    409
    └── IntegrityError           stored bytes that no longer match their hash 5    409
        └── ArtifactTampered     a model file whose sha256 changed

Faces map this tree to exit codes and HTTP statuses in one place each
(``faces/cli/app.py`` ``EXIT_CODES``, ``faces/api/problems.py`` ``STATUS_BY_ERROR``); the
numbers above are the ones they use, and ``tests/test_errors.py`` checks that every class
here has both. `locate` builds the ``file:row field 'x': `` prefix every face shows.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AccessDenied",
    "ArtifactTampered",
    "ConfigError",
    "DataError",
    "DatasetNotFound",
    "DiskFull",
    "FormatError",
    "HeadwaterError",
    "IntegrityError",
    "LocationNotFound",
    "ModelNotFitted",
    "NotFound",
    "QualityCheckFailed",
    "QueueFull",
    "RunNotFound",
    "SchemaError",
    "StorageError",
    "TaskMismatch",
    "UnsafeInput",
    "UploadTooLarge",
    "WarehouseBusy",
    "WarehouseError",
    "WarehouseUnavailable",
    "WriteConflict",
    "locate",
]


_CREDENTIALS_HINT = (
    "check the credentials in the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID) "
    "and the bucket policy"
)


class HeadwaterError(Exception):
    """Base of every error Headwater raises on purpose."""


class ConfigError(HeadwaterError):
    """A setting or argument is invalid; the message says which and the allowed values."""


class TaskMismatch(ConfigError):
    """A classifier asked to learn a number, a regressor asked to learn classes (or a task
    the label cannot be): the request is sound, the dataset's label says otherwise."""


class NotFound(HeadwaterError):
    """Something named by the user does not exist."""


class DatasetNotFound(NotFound):
    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        self.known = known or []
        hint = f" Known datasets: {', '.join(self.known)}." if self.known else ""
        super().__init__(
            f"dataset {name!r} does not exist.{hint} Ingest a file first: headwater ingest PATH"
        )


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} does not exist; list runs with: headwater runs")


class LocationNotFound(NotFound):
    """A local path, an S3 bucket or an S3 key named by the user that does not exist."""

    def __init__(self, location: str, what: str, *, hint: str = "") -> None:
        self.location = location
        self.what = what
        super().__init__(f"{location}: {what} does not exist.{' ' + hint if hint else ''}")


class AccessDenied(HeadwaterError):
    """Credentials or a policy refuse an action; the fix is in the environment, not the command.

    Not a `ConfigError`: the arguments were right, and retrying them with other credentials
    can succeed (HTTP 403, exit 6).
    """

    def __init__(self, location: str, action: str, *, hint: str = _CREDENTIALS_HINT) -> None:
        self.location = location
        self.action = action
        super().__init__(f"{location}: access denied while trying to {action}; {hint}")


class DataError(HeadwaterError):
    """A file, or a row and field in it, cannot be accepted.

    The location comes first in the message (``file:row field 'x': ...``), the way
    compilers report errors, so it can be clicked in a terminal.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.field = field
        self.reason = message
        super().__init__(locate(self.path, row, field) + message)


def locate(path: str | None, row: int | None = None, field: str | None = None) -> str:
    """The ``file:row field 'x': `` prefix of a message, the way compilers report errors.

    Any part may be missing (``row 3 field 'x': ``, ``file: ``, or nothing at all); faces
    pass the file's name only, the core the whole path.
    """
    where = path or ""
    if row is not None:
        where += f":{row}" if where else f"row {row}"
    if field is not None:
        where += f" field {field!r}" if where else f"field {field!r}"
    return f"{where}: " if where else ""


class UnsafeInput(DataError):
    """Input that could escape a folder or run code; refused before anything is read."""


class FormatError(DataError):
    """A file that is empty, truncated, corrupt or of a format Headwater does not read."""


class SchemaError(DataError):
    """Columns or types that do not match what the dataset already holds."""


class UploadTooLarge(DataError):
    """An upload or download past the configured size limit; nothing of it was kept."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        super().__init__(
            f"is larger than the {limit:,}-byte limit (HEADWATER_MAX_UPLOAD_BYTES)", path=name
        )


class QualityCheckFailed(DataError):
    """A batch-level check failed (e.g. too many rows quarantined); nothing of it was loaded."""


class WarehouseError(HeadwaterError):
    """The warehouse could not be reached, or refused a statement."""


class WriteConflict(WarehouseError):
    """Another writer changed the same rows at the same time; doing the work again can succeed."""


class WarehouseUnavailable(WarehouseError):
    """The database could not be reached, or went away mid-statement; the same call can
    succeed once it is back, so the API answers 503 with a ``Retry-After`` hint."""


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (DuckDB lets one process open its file)
    past the time Headwater waits for it."""


class StorageError(HeadwaterError):
    """Object storage or a remote server failed, or could not be reached, for a reason other
    than access or absence (an HTTP 5xx, a refused connection, a redirect loop)."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}")


class DiskFull(StorageError):
    """A local disk (the home folder: lake, staging, a DuckDB file) ran out of space.

    Nothing is retried: no attempt can succeed until space is freed.
    """

    def __init__(self, path: Path | str, detail: str = "") -> None:
        self.location = str(path)
        HeadwaterError.__init__(
            self,
            f"no space left on {path}; free space on that disk and try again"
            + (f" ({detail})" if detail else ""),
        )


class QueueFull(HeadwaterError):
    """More runs waiting than the queue holds; the caller should retry later (HTTP 429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the training queue is full ({limit} runs waiting, HEADWATER_API_TRAINING_QUEUE); "
            "retry when a run has finished"
        )


class IntegrityError(HeadwaterError):
    """Stored bytes whose hash differs from the one recorded when they were written."""


class ModelNotFitted(HeadwaterError):
    """An estimator was asked to predict or be saved before it learned anything."""

    def __init__(self, estimator: str) -> None:
        self.estimator = estimator
        super().__init__(
            f"{estimator} is not fitted; call {estimator}.fit(X, y) before predicting or saving"
        )


class ArtifactTampered(IntegrityError):
    """A model artifact whose bytes no longer hash to the sha256 recorded when it was saved.

    It is refused before being parsed: a swapped model file must never reach a parser.
    """

    def __init__(
        self, path: Path | str, *, expected: str, actual: str, run_id: str | None = None
    ) -> None:
        self.path = str(path)
        self.expected = expected
        self.actual = actual
        self.run_id = run_id
        run = f" of run {run_id!r}" if run_id else ""
        super().__init__(
            f"{self.path}: artifact{run} has sha256 {actual[:12]}..., expected {expected[:12]}...; "
            "the file changed after it was saved. Retrain or restore it from the registry."
        )
