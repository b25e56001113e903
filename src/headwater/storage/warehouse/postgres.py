"""PostgreSQL through psycopg 3, loaded with COPY."""

from __future__ import annotations

import io
import json
import select
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from headwater.errors import WarehouseError, WarehouseUnavailable, WriteConflict
from headwater.storage.warehouse.base import Idents, Param, Row, Warehouse, arrow_sql_type
from headwater.storage.warehouse.pg_copy import HEADER, TRAILER, encode_fixed_width

__all__ = ["PostgresWarehouse"]

_SLICE_S = 0.5
"""How long one wait for a pooled connection lasts before asking whether the server is down."""
_RECONNECT_S = 5.0
"""How long the pool keeps retrying (backing off) before a new request starts afresh; this
bounds how long after a restart the first connection can take."""


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
    """PostgreSQL through a connection pool, so a restarted server costs 503s, not a restart.

    Statements outside a transaction borrow a pooled connection for their own length;
    a transaction keeps one for this thread until it ends. The pool checks a connection
    before lending it (`_check`), so connections a server restart killed are replaced
    instead of failing every later call, and a server that is down makes every call
    fail with `WarehouseUnavailable`: within half a second once a check or a statement
    has found it gone, within ``wait_s`` seconds otherwise.
    """

    dialect = "postgres"
    max_columns = 1600

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 32,
        wait_s: float = 5.0,
    ) -> None:
        self.schema = schema or "public"
        self._url = url
        self._local = threading.local()
        self._types: dict[str, dict[str, str]] = {}
        self._wait_s = wait_s
        self._down = False
        self._create_schema()
        self._pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            url,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=pool_size,
            check=self._check,
            configure=self._configure,
            reconnect_timeout=_RECONNECT_S,
            name=f"headwater-{self.schema}",
            open=False,
        )
        self._pool.open(wait=False)

    def _create_schema(self) -> None:
        """Connect once, directly, so a wrong URL or a stopped server fails at once and clearly."""
        try:
            with psycopg.connect(self._url, autocommit=True) as con:
                con.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=sql.Identifier(self.schema))
                )
        except psycopg.errors.UniqueViolation:
            pass  # another process created it between the check and the insert: it exists
        except psycopg.Error as exc:
            raise WarehouseUnavailable(
                f"cannot connect to PostgreSQL at {_redact(self._url)}: {exc}. "
                "Check HEADWATER_WAREHOUSE_URL and that the server is running (pg_isready)."
            ) from exc

    def _configure(self, con: psycopg.Connection[tuple[object, ...]]) -> None:
        """Every new connection: the warehouse schema on its path; the server is up again."""
        con.execute(sql.SQL("SET search_path TO {s}").format(s=sql.Identifier(self.schema)))
        set_json_loads(_json_text, con)  # jsonb reads back as its text, as DuckDB's JSON does
        self._down = False

    def _check(self, con: psycopg.Connection[tuple[object, ...]]) -> None:
        """The pool's health check before lending; a dead connection means the server may be.

        An idle connection has nothing to read: a server that shut down or terminated
        it has sent a notice or closed the socket, which makes it readable. Only then is
        it asked round-trip (``check_connection``); a quiet one is lent at once, which
        keeps the check at microseconds instead of a round trip per statement.
        """
        if not con.closed and not select.select([con.fileno()], [], [], 0)[0]:
            self._down = False
            return
        try:
            ConnectionPool.check_connection(con)
        except Exception:
            self._down = True
            raise
        self._down = False

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A connection from the pool, or `WarehouseUnavailable` once the server looks down.

        The wait is cut in slices: a client waits out ``wait_s`` only while the pool is
        merely busy; once a health check or a statement has found the server gone, it
        gives up at the end of its slice instead of holding a request for the whole wait.
        """
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                con = self._pool.getconn(timeout=_SLICE_S)
                break
            except PoolTimeout as exc:
                if self._down or time.monotonic() >= deadline:
                    raise WarehouseUnavailable(
                        f"PostgreSQL at {_redact(self._url)} did not answer: {exc}. "
                        "It may be restarting; try again shortly."
                    ) from exc
        try:
            yield con
        finally:
            self._pool.putconn(con)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """This thread's transaction connection, or a pooled one for the length of a statement."""
        held: psycopg.Connection[tuple[object, ...]] | None = getattr(self._local, "con", None)
        if held is not None:
            yield held
            return
        with self._pooled() as con:
            try:
                yield con
            except WarehouseUnavailable:
                self._down = True
                raise

    def execute(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> None:
        with self._connection() as con, con.cursor() as cur:
            self._run(cur, template, params, idents)

    def fetch(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> list[Row]:
        with self._connection() as con, con.cursor() as cur:
            self._run(cur, template, params, idents)
            return _guarded("failed while reading rows", cur.fetchall)

    def fetch_arrow(
        self, template: str, params: Sequence[Param] = (), **idents: Idents
    ) -> pa.Table:
        # binary: bytea arrives raw, not hex-encoded
        with self._connection() as con, con.cursor(binary=True) as cur:
            self._run(cur, template, params, idents)
            names = [d.name for d in cur.description or []]
            rows = _guarded("failed while reading rows", cur.fetchall)
            return pa.table(_columns(names, rows))

    def stream_arrow(
        self, template: str, params: Sequence[Param] = (), *, batch_rows: int, **idents: Idents
    ) -> Iterator[pa.RecordBatch]:
        # a server-side cursor lives in a transaction: give it a pooled connection of its own
        try:
            with (
                self._pooled() as con,
                con.transaction(),
                con.cursor(name=f"hw_stream_{uuid.uuid4().hex[:12]}", binary=True) as cur,
            ):
                self._run(cur, template, params, idents)
                while rows := cur.fetchmany(batch_rows):
                    names = [d.name for d in cur.description or []]
                    yield pa.RecordBatch.from_pydict(_columns(names, rows))
        except psycopg.Error as exc:
            raise _refused("refused a query", exc) from exc

    def load_arrow(self, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        types = self._column_types(table)
        pg_types = [types[name] for name in data.column_names]
        binary = encode_fixed_width(data, pg_types)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in data.column_names)
        try:
            with self._connection() as con, con.cursor() as cur:
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
            raise _refused(f"refused the bulk load into {table}", exc) from exc
        return int(data.num_rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        outer = getattr(self._local, "con", None)
        with self._connection() as con:
            self._local.con = con
            try:
                with con.transaction():  # a nested one is a savepoint on the same connection
                    yield
            except psycopg.Error as exc:
                raise _refused("could not commit", exc) from exc
            finally:
                self._local.con = outer

    def hold_lock(self, scope: str, key: int, *, on_wait: Callable[[], None] | None = None) -> None:
        con = getattr(self._local, "con", None)
        if con is None or con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
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
        return arrow_sql_type(arrow_type, blob="BYTEA", double="DOUBLE PRECISION", nested="JSONB")

    def table_exists(self, table: str) -> bool:
        return bool(
            self.fetch(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                [self.schema, table],
            )
        )

    def close(self) -> None:
        self._pool.close()

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
_SHUTDOWNS = (
    psycopg.errors.AdminShutdown,
    psycopg.errors.CrashShutdown,
    psycopg.errors.CannotConnectNow,
)


def _unreachable(exc: psycopg.Error) -> bool:
    """A lost connection or a server going down, as opposed to a statement it refused."""
    if isinstance(exc, _SHUTDOWNS):
        return True
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (state is None or state.startswith("08"))


def _refused(what: str, exc: psycopg.Error) -> WarehouseError:
    """Sort a driver error: a conflict may be retried at once, a lost server after a while."""
    if _unreachable(exc):
        return WarehouseUnavailable(f"PostgreSQL went away ({what}): {exc}; try again shortly")
    kind = WriteConflict if isinstance(exc, _CONFLICTS) else WarehouseError
    return kind(f"PostgreSQL {what}: {exc}")


def _guarded(what: str, read: Callable[[], list[tuple[object, ...]]]) -> list[tuple[object, ...]]:
    try:
        return read()
    except psycopg.Error as exc:
        raise _refused(what, exc) from exc


def _columns(names: list[str], rows: list[tuple[object, ...]]) -> dict[str, pa.Array]:
    """Rows from the driver, turned into Arrow columns."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: pa.array(list(col)) for name, col in zip(names, columns, strict=True)}


def _json_text(data: str | bytes) -> str:
    """A json or jsonb value as its text: nested values read back as JSON text on both backends."""
    return data if isinstance(data, str) else bytes(data).decode()


def _as_json(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Objects and lists as JSON text for a jsonb column, a chunk at a time.

    Arrow can neither cast nor write nested values as JSON, so each chunk goes through
    Python; a map becomes an object, as DuckDB's cast to JSON makes it.
    """
    as_object = pa.types.is_map(column.type)
    chunks = [
        pa.array(
            [
                None if v is None else json.dumps(dict(v) if as_object else v, default=str)
                for v in chunk.to_pylist()
            ],
            pa.string(),
        )
        for chunk in column.chunks
    ]
    return pa.chunked_array(chunks, pa.string())


def _as_csv(data: pa.Table) -> bytes:
    """Arrow's vectorised CSV writer; bytes columns become PostgreSQL's hex bytea literals."""
    columns = []
    for column in data.columns:
        if pa.types.is_nested(column.type):
            column = _as_json(column)
        elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
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
