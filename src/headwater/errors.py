"""One error tree for everything Headwater raises on purpose.

Every message says what went wrong *and* what to do about it, and the data
errors name the file, the row and the field they are about, so a user never has
to guess which of a thousand rows broke a load.

    HeadwaterError
    ├── ConfigError              bad settings or bad arguments
    ├── NotFound                 a dataset, batch, run or artifact that does not exist
    │   ├── DatasetNotFound
    │   └── RunNotFound
    ├── DataError                a file or row that cannot be accepted (path, row, field)
    │   ├── UnsafeInput          hostile names, code-running pickles
    │   ├── FormatError          unreadable, truncated, empty, unknown format
    │   └── SchemaError          wrong columns, wrong types, NaN where a label belongs
    ├── WarehouseError           the database refused or could not be reached
    └── IntegrityError           stored bytes that no longer match their recorded hash

Faces map this tree to exit codes and HTTP statuses in one place each.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "DataError",
    "DatasetNotFound",
    "FormatError",
    "HeadwaterError",
    "IntegrityError",
    "NotFound",
    "RunNotFound",
    "SchemaError",
    "UnsafeInput",
    "WarehouseError",
]


class HeadwaterError(Exception):
    """Base of every error Headwater raises on purpose."""


class ConfigError(HeadwaterError):
    """A setting or argument is invalid; the message says which and the allowed values."""


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
        super().__init__(_locate(self.path, row, field) + message)


def _locate(path: str | None, row: int | None, field: str | None) -> str:
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


class WarehouseError(HeadwaterError):
    """The warehouse could not be reached, or refused a statement."""


class IntegrityError(HeadwaterError):
    """Stored bytes whose hash differs from the one recorded when they were written."""
