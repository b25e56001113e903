"""PostgreSQL through psycopg 3, loaded with COPY."""

from __future__ import annotations

import io
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from headwater.errors import WarehouseError, WriteConflict
from headwater.storage.warehouse.base import Idents, Param, Row, Warehouse, arrow_sql_type
from headwater.storage.warehouse.pg_copy import HEADER, TRAILER, encode_fixed_width

__all__ = ["PostgresWarehouse"]


def compose(template: str, idents: dict[str, Idents]) -> sql.Composed:
    """Fill ``{name}`` holes with identifiers quoted by psycopg itself."""
    parts: dict[str, sql.Composable] = {
        key: sql.Identifier(value)
        if isinstance(value, str)
        else sql.SQL(", ").join(sql.Identifier(v) for v in value)
        for key, value in idents.items()
    }
    return sql.SQL(template).format(**parts)


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.schema = schema or "public"
        self._url = url
        self._local = threading.local()
        self._connections: list[psycopg.Connection[tuple[object, ...]]] = []
        self._guard = threading.Lock()
        self._types: dict[str, dict[str, str]] = {}
        self.execute("CREATE SCHEMA IF NOT EXISTS {s}", s=self.schema)

    @property
    def _con(self) -> psycopg.Connection[tuple[object, ...]]:
        """This thread's own connection, opened on first use with the schema on its path."""
        con: psycopg.Connection[tuple[object, ...]] | None = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            with self._guard:
                self._connections.append(con)
            self._local.con = con
        return con

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit connection with the warehouse schema on its search path."""
        try:
            con = psycopg.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise WarehouseError(
                f"cannot connect to PostgreSQL at {_redact(self._url)}: {exc}. "
                "Check HEADWATER_WAREHOUSE_URL and that the server is running (pg_isready)."
            ) from exc
        con.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}").format(
                s=sql.Identifier(self.schema)
            )
        )
        return con

    def execute(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> None:
        with self._cursor() as cur:
            self._run(cur, template, params, idents)

    def fetch(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> list[Row]:
        with self._cursor() as cur:
            self._run(cur, template, params, idents)
            return cur.fetchall()

    def fetch_arrow(
        self, template: str, params: Sequence[Param] = (), **idents: Idents
    ) -> pa.Table:
        with self._con.cursor(binary=True) as cur:  # bytea arrives raw, not hex-encoded
            self._run(cur, template, params, idents)
            names = [d.name for d in cur.description or []]
            return pa.table(_columns(names, cur.fetchall()))

    def stream_arrow(
        self, template: str, params: Sequence[Param] = (), *, batch_rows: int, **idents: Idents
    ) -> Iterator[pa.RecordBatch]:
        # a server-side cursor lives in a transaction: give it a connection of its own
        con = self._connect()
        try:
            with (
                con.transaction(),
                con.cursor(name=f"hw_stream_{uuid.uuid4().hex[:12]}", binary=True) as cur,
            ):
                self._run(cur, template, params, idents)
                while rows := cur.fetchmany(batch_rows):
                    names = [d.name for d in cur.description or []]
                    yield pa.RecordBatch.from_pydict(_columns(names, rows))
        except psycopg.Error as exc:
            raise WarehouseError(f"PostgreSQL refused a query: {exc}") from exc
        finally:
            con.close()

    def load_arrow(self, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        types = self._column_types(table)
        pg_types = [types[name] for name in data.column_names]
        binary = encode_fixed_width(data, pg_types)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in data.column_names)
        try:
            with self._cursor() as cur:
                if binary is not None:
                    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)")
                    with cur.copy(statement.format(sql.Identifier(table), columns)) as copy:
                        copy.write(HEADER)
                        copy.write(binary)
                        copy.write(TRAILER)
                else:
                    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT CSV, NULL '')")
                    with cur.copy(statement.format(sql.Identifier(table), columns)) as copy:
                        copy.write(_as_csv(data))
        except psycopg.Error as exc:
            raise WarehouseError(f"PostgreSQL refused the bulk load into {table}: {exc}") from exc
        return int(data.num_rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._con.transaction():
                yield
        except psycopg.Error as exc:
            raise _refused("could not commit", exc) from exc

    def hold_lock(self, scope: str, key: int, *, on_wait: Callable[[], None] | None = None) -> None:
        if self._con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            raise WarehouseError("hold_lock needs an open transaction: it ends with it")
        # advisory locks take two int4 ids and are shared by the whole database: the first id
        # names the schema and the scope, so warehouses in other schemas never contend
        scope_id = zlib.crc32(f"{self.schema}\0{scope}".encode()) - 2**31
        ids = [scope_id, (key % 2**32) - 2**31]
        if self.fetch_value("SELECT pg_try_advisory_xact_lock(%s::int4, %s::int4)", ids):
            return
        if on_wait is not None:
            on_wait()
        self.execute("SELECT pg_advisory_xact_lock(%s::int4, %s::int4)", ids)

    def column_type(self, arrow_type: pa.DataType) -> str:
        return arrow_sql_type(arrow_type, blob="BYTEA", double="DOUBLE PRECISION")

    def table_exists(self, table: str) -> bool:
        return bool(
            self.fetch(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                [self.schema, table],
            )
        )

    def close(self) -> None:
        with self._guard:
            for con in self._connections:
                con.close()
            self._connections.clear()

    def _column_types(self, table: str) -> dict[str, str]:
        if table in self._types:
            return self._types[table]
        rows = self.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [self.schema, table],
        )
        types = {str(name): str(kind) for name, kind in rows}
        if types:
            self._types[table] = types
        return types

    def _cursor(self) -> psycopg.Cursor[tuple[object, ...]]:
        return self._con.cursor()

    @staticmethod
    def _run(
        cur: psycopg.Cursor[tuple[object, ...]],
        template: str,
        params: Sequence[Param],
        idents: dict[str, Idents],
    ) -> None:
        try:
            cur.execute(compose(template, idents), list(params) or None)
        except psycopg.Error as exc:
            raise _refused("refused a statement", exc) from exc


_CONFLICTS = (
    psycopg.errors.UniqueViolation,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


def _refused(what: str, exc: psycopg.Error) -> WarehouseError:
    """A conflict between concurrent transactions is a `WriteConflict`: the caller may retry."""
    kind = WriteConflict if isinstance(exc, _CONFLICTS) else WarehouseError
    return kind(f"PostgreSQL {what}: {exc}")


def _columns(names: list[str], rows: list[tuple[object, ...]]) -> dict[str, pa.Array]:
    """Rows from the driver, turned into Arrow columns."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: pa.array(list(col)) for name, col in zip(names, columns, strict=True)}


def _as_csv(data: pa.Table) -> bytes:
    """Arrow's vectorised CSV writer; bytes columns become PostgreSQL's hex bytea literals."""
    columns = []
    for column in data.columns:
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            column = pa.chunked_array(
                [pa.array([None if v is None else "\\x" + v.hex() for v in column.to_pylist()])]
            )
        elif pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.timestamp("us", tz=column.type.tz))
        columns.append(column)
    sink = io.BytesIO()
    pacsv.write_csv(
        pa.table(columns, names=data.column_names),
        sink,
        write_options=pacsv.WriteOptions(include_header=False),
    )
    return sink.getvalue()


def _redact(url: str) -> str:
    """Drop the password from a URL before it goes into a message or a log."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
