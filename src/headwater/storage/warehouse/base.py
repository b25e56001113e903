"""What every warehouse backend offers, and the one way SQL is written against it.

SQL in Headwater is a template with ``{name}`` holes for identifiers and ``%s``
for values. Identifiers are quoted by the backend (psycopg's ``sql.Identifier``
on PostgreSQL), values are always bound parameters, so nothing from a user's
file is ever pasted into a statement.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TypeAlias

import pyarrow as pa

from headwater.settings import Dialect

__all__ = ["Idents", "Param", "Row", "Warehouse"]

Param: TypeAlias = str | int | float | bool | bytes | datetime | date | None
Row: TypeAlias = tuple[object, ...]
Idents: TypeAlias = str | Sequence[str]


class Warehouse(ABC):
    """One open connection to a warehouse, with explicit transactions.

    A backend holds one connection; work that must be all-or-nothing runs inside
    ``with warehouse.transaction():``. Outside a transaction each statement
    commits on its own.
    """

    dialect: Dialect
    max_columns: int | None = None
    """The most columns one table may have, where the database has a limit."""

    @abstractmethod
    def execute(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> None:
        """Run a statement that returns nothing worth reading."""

    @abstractmethod
    def fetch(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> list[Row]:
        """Run a query and return all its rows as tuples."""

    @abstractmethod
    def fetch_arrow(
        self, template: str, params: Sequence[Param] = (), **idents: Idents
    ) -> pa.Table:
        """Run a query and return its rows as an Arrow table."""

    @abstractmethod
    def stream_arrow(
        self, template: str, params: Sequence[Param] = (), *, batch_rows: int, **idents: Idents
    ) -> Iterator[pa.RecordBatch]:
        """Run a query and hand its rows over in record batches, never all at once.

        The query runs on a connection of its own, so the caller may use the warehouse
        while it reads; it sees what was committed when the query started.
        """

    @abstractmethod
    def load_arrow(self, table: str, data: pa.Table) -> int:
        """Append ``data`` to ``table`` in bulk (columns matched by name); return rows written."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything inside on success; roll all of it back on any exception."""

    @abstractmethod
    def hold_lock(self, scope: str, key: int, *, on_wait: Callable[[], None] | None = None) -> None:
        """Wait for, then hold until the current transaction ends, the one lock on (scope, key).

        Writers of one dataset take it so that the duplicate check and the load that
        follows it see the same rows, across threads and (on PostgreSQL) processes.
        ``on_wait`` is called once, before blocking, when another writer holds it.
        """

    @abstractmethod
    def column_type(self, arrow_type: pa.DataType) -> str:
        """The SQL type this backend stores an Arrow type as."""

    @abstractmethod
    def table_exists(self, table: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def fetch_one(
        self, template: str, params: Sequence[Param] = (), **idents: Idents
    ) -> Row | None:
        rows = self.fetch(template, params, **idents)
        return rows[0] if rows else None

    def fetch_value(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> object:
        row = self.fetch_one(template, params, **idents)
        return None if row is None else row[0]

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_time(value: object) -> datetime:
    """A timestamp column's value, checked: drivers hand back `object` as far as typing knows."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp from the warehouse, got {value!r}")
    return value


def as_time_or_none(value: object) -> datetime | None:
    return None if value is None else as_time(value)


def arrow_sql_type(arrow_type: pa.DataType, *, blob: str, double: str, nested: str) -> str:
    """Map an Arrow type to a SQL type both backends understand.

    ``blob``, ``double`` and ``nested`` differ: objects and lists (struct, list, map)
    are kept as JSON, whose text reads back the same on both backends.
    """
    t = arrow_type
    if pa.types.is_nested(t):
        return nested
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "SMALLINT"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "INTEGER"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "BIGINT"
    if pa.types.is_uint64(t):
        return "NUMERIC(20, 0)"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "REAL"
    if pa.types.is_float64(t):
        return double
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return blob
    return "TEXT"
