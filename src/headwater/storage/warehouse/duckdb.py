"""The embedded default: one DuckDB file, loaded through Arrow."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pyarrow as pa
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from headwater.errors import WarehouseBusy, WarehouseError, WriteConflict
from headwater.storage.warehouse.base import Idents, Param, Row, Warehouse, arrow_sql_type

__all__ = ["DuckDBWarehouse", "quote_identifier"]

_PARAM = re.compile(r"%s")
_HOLDER = re.compile(r"\(PID (\d+)\)")

log = logging.getLogger("headwater.warehouse")


def quote_identifier(name: str) -> str:
    """Quote an identifier the way DuckDB's own ``quote_ident`` does: double quotes, doubled."""
    if "\x00" in name:
        raise WarehouseError(f"identifier {name!r} contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def render(template: str, idents: dict[str, Idents]) -> str:
    """Fill ``{name}`` holes with quoted identifiers and turn ``%s`` into DuckDB's ``?``."""
    quoted = {
        key: quote_identifier(value)
        if isinstance(value, str)
        else ", ".join(quote_identifier(v) for v in value)
        for key, value in idents.items()
    }
    return _PARAM.sub("?", template.format_map(quoted))


def _refused(what: str, exc: duckdb.Error) -> WarehouseError:
    """A conflict between concurrent transactions is a `WriteConflict`: the caller may retry."""
    kind = (
        WriteConflict
        if isinstance(exc, duckdb.TransactionException | duckdb.ConstraintException)
        else WarehouseError
    )
    return kind(f"DuckDB refused {what}: {exc}")


def _locked(exc: BaseException | None) -> bool:
    """DuckDB's refusal to open a file another process holds."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def _holder(exc: BaseException | None) -> str:
    found = _HOLDER.search(str(exc))
    return f" (PID {found.group(1)})" if found else ""


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(
        self, path: Path | str, *, memory_limit: str = "1GB", lock_wait_s: float = 60.0
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._root = self._open(memory_limit, lock_wait_s)
        # DuckDB 2's dictionary-FSST string compression took 11 of the 25 s of a 30,000-image
        # ingest (the commit's checkpoint compressing pixel blobs) and made the file larger,
        # not smaller (158 MB against 93 MB): left out. A global setting, so every cursor's.
        self._root.execute("SET disabled_compression_methods = 'dict_fsst'")
        self._loads = 0
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._guard = threading.Lock()
        self._named_locks: dict[tuple[str, int], threading.Lock] = {}

    def _open(self, memory_limit: str, lock_wait_s: float) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting (bounded, and saying so once) while another process holds it.

        DuckDB lets one process open a file for writing; a second ``headwater`` command
        started at the same time would otherwise fail at once with DuckDB's lock error.
        """
        said: list[str] = []

        def say_waiting(state: RetryCallState) -> None:
            if not said and state.outcome is not None:
                said.append(_holder(state.outcome.exception()))
                log.warning(
                    "%s: another Headwater process%s holds the warehouse; waiting up to %.0f s "
                    "for it to finish (HEADWATER_DUCKDB_LOCK_WAIT_S)",
                    self.path,
                    said[0],
                    lock_wait_s,
                )

        retrying = Retrying(
            retry=retry_if_exception(_locked),
            stop=stop_after_delay(lock_wait_s),
            wait=wait_exponential(multiplier=0.05, max=0.5) + wait_random(0, 0.05),
            before_sleep=say_waiting,
            reraise=True,
        )
        try:
            return retrying(duckdb.connect, self.path, config={"memory_limit": memory_limit})
        except duckdb.Error as exc:
            if _locked(exc):
                raise WarehouseBusy(
                    f"{self.path}: another Headwater process{_holder(exc)} has held the DuckDB "
                    f"warehouse for over {lock_wait_s:.0f} s (DuckDB allows one process at a "
                    "time); stop it (or wait for it), or raise HEADWATER_DUCKDB_LOCK_WAIT_S"
                ) from exc
            raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from exc

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor: DuckDB connections are not shared between threads.

        Cursors of one database see each other's commits (MVCC), so an API thread can
        read while a training thread records its epochs.
        """
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._guard:
                cursor = self._root.cursor()
                self._cursors.append(cursor)
            self._local.cursor = cursor
        return cursor

    def execute(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> None:
        self.fetch(template, params, **idents)

    def fetch(self, template: str, params: Sequence[Param] = (), **idents: Idents) -> list[Row]:
        query = render(template, idents)
        try:
            return self._con.execute(query, list(params)).fetchall()
        except duckdb.Error as exc:
            raise _refused("a statement", exc) from exc

    def fetch_arrow(
        self, template: str, params: Sequence[Param] = (), **idents: Idents
    ) -> pa.Table:
        query = render(template, idents)
        try:
            relation = self._con.sql(query, params=list(params) or None)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB refused a query: {exc}") from exc

    def stream_arrow(
        self, template: str, params: Sequence[Param] = (), *, batch_rows: int, **idents: Idents
    ) -> Iterator[pa.RecordBatch]:
        query = render(template, idents)
        with self._guard:
            cursor = self._root.cursor()
        try:
            relation = cursor.sql(query, params=list(params) or None)
            if relation is not None:
                yield from relation.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB refused a query: {exc}") from exc
        finally:
            cursor.close()

    def load_arrow(self, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        with self._guard:
            self._loads += 1
            view = f"_hw_load_{self._loads}"
        self._con.register(view, data)
        try:
            self.execute(
                "INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}",
                table=table,
                cols=data.column_names,
                view=view,
            )
        finally:
            # an aborted transaction refuses this too; its error must not hide the real one
            with suppress(duckdb.Error):
                self._con.unregister(view)
        return int(data.num_rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._con.begin()
        self._local.held = []
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        else:
            try:
                self._con.commit()
            except duckdb.Error as exc:
                raise _refused("the commit", exc) from exc
        finally:
            for lock in self._local.held:
                lock.release()
            self._local.held = None

    def hold_lock(self, scope: str, key: int, *, on_wait: Callable[[], None] | None = None) -> None:
        # DuckDB lets one process write a file, so a lock within this process suffices
        held: list[threading.Lock] | None = getattr(self._local, "held", None)
        if held is None:
            raise WarehouseError("hold_lock needs an open transaction: it ends with it")
        with self._guard:
            lock = self._named_locks.setdefault((scope, key), threading.Lock())
        if lock in held:
            return
        if not lock.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            lock.acquire()
        held.append(lock)

    def column_type(self, arrow_type: pa.DataType) -> str:
        return arrow_sql_type(arrow_type, blob="BLOB", double="DOUBLE", nested="JSON")

    def table_exists(self, table: str) -> bool:
        return bool(
            self.fetch(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = %s",
                [table],
            )
        )

    def close(self) -> None:
        with self._guard:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
            self._root.close()
