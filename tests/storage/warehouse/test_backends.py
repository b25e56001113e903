"""Warehouse backends: the same behaviour on DuckDB and PostgreSQL over real connections."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from headwater.errors import WarehouseError
from headwater.settings import Settings
from headwater.storage.warehouse import Warehouse, open_warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse.migrations import MIGRATIONS, migrate


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    with open_warehouse(settings) as wh:
        yield wh


def test_migrations_are_recorded_and_run_once(warehouse: Warehouse) -> None:
    versions = [r[0] for r in warehouse.fetch("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in MIGRATIONS]
    assert migrate(warehouse) == []
    names = {r[0] for r in warehouse.fetch("SELECT name FROM dim_split")}
    assert names == {"train", "validation", "test", "unassigned"}


def test_transaction_rolls_back_on_error(warehouse: Warehouse) -> None:
    warehouse.execute("CREATE TABLE t (k BIGINT PRIMARY KEY)")
    with pytest.raises(WarehouseError), warehouse.transaction():
        warehouse.execute("INSERT INTO t VALUES (%s)", [1])
        warehouse.execute("INSERT INTO t VALUES (%s)", [1])
    assert warehouse.fetch_value("SELECT count(*) FROM t") == 0


def _typed(n: int, *, with_nulls: bool) -> pa.Table:
    def maybe(values: list[object]) -> list[object]:
        return [None if with_nulls and i == 1 else v for i, v in enumerate(values)]

    return pa.table(
        {
            "i": pa.array(maybe(list(range(n))), pa.int64()),
            "s": pa.array(maybe([f's{i}, "quoted"' for i in range(n)]), pa.string()),
            "f": pa.array(maybe([i / 3 for i in range(n)]), pa.float64()),
            "b": pa.array(maybe([bytes([i % 256]) * 4 for i in range(n)]), pa.binary()),
            "t": pa.array(
                maybe([datetime(2024, 1, 1, 0, 0, i % 60, tzinfo=UTC) for i in range(n)]),
                pa.timestamp("us", tz="UTC"),
            ),
            "ok": pa.array(maybe([i % 2 == 0 for i in range(n)]), pa.bool_()),
        }
    )


@pytest.mark.parametrize("with_nulls", [False, True], ids=["fixed-width", "with-nulls"])
def test_load_arrow_round_trips_every_type(warehouse: Warehouse, with_nulls: bool) -> None:
    blob = "BLOB" if warehouse.dialect == "duckdb" else "BYTEA"
    warehouse.execute(
        "CREATE TABLE typed (i BIGINT, s TEXT, f DOUBLE PRECISION, b "
        + blob
        + ", t TIMESTAMPTZ, ok BOOLEAN)"
    )
    data = _typed(50, with_nulls=with_nulls)
    assert warehouse.load_arrow("typed", data) == 50
    back = warehouse.fetch("SELECT i, s, f, b, t, ok FROM typed ORDER BY f NULLS FIRST, i")
    expected = sorted(
        zip(*[data.column(c).to_pylist() for c in data.column_names], strict=True),
        key=lambda r: (r[2] is not None, r[2] or 0, r[0] or 0),
    )
    assert [
        (r[0], r[1], r[2], bytes(r[3]) if r[3] is not None else None, r[4], r[5]) for r in back
    ] == expected


def test_identifiers_are_quoted_by_the_backend(warehouse: Warehouse) -> None:
    hostile = 'x"; DROP TABLE dim_split; --'
    warehouse.execute("CREATE TABLE {t} ({c} BIGINT)", t=hostile, c="select")
    warehouse.load_arrow(hostile, pa.table({"select": [1, 2]}))
    assert warehouse.fetch_value("SELECT sum({c}) FROM {t}", t=hostile, c="select") == 3
    assert warehouse.table_exists("dim_split")


def test_values_are_bound_parameters(warehouse: Warehouse) -> None:
    hostile = "'); DROP TABLE dim_split; --"
    assert warehouse.fetch_value("SELECT %s", [hostile]) == hostile
    assert warehouse.table_exists("dim_split")


def test_threads_each_get_their_own_connection(warehouse: Warehouse) -> None:
    """A writer thread inside a transaction does not block or leak into readers."""
    import threading

    warehouse.execute("CREATE TABLE counter (k BIGINT)")
    inside, release = threading.Event(), threading.Event()

    def writer() -> None:
        with warehouse.transaction():
            warehouse.execute("INSERT INTO counter VALUES (%s)", [1])
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    seen = [warehouse.fetch_value("SELECT count(*) FROM counter") for _ in range(3)]
    release.set()
    thread.join(10)
    assert seen == [0, 0, 0]
    assert warehouse.fetch_value("SELECT count(*) FROM counter") == 1


def test_hold_lock_makes_a_second_writer_wait_for_the_first_to_commit(
    warehouse: Warehouse,
) -> None:
    import threading

    first_holds, second_waits, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with warehouse.transaction():
            warehouse.hold_lock("dataset", 7)
            first_holds.set()
            second_waits.wait(10)  # hold on until the second writer has found the lock taken
            order.append("first commits")

    def waiting() -> None:
        order.append("second waits")
        second_waits.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(10)
    with warehouse.transaction():
        warehouse.hold_lock("dataset", 7, on_wait=waiting)
        order.append("second holds")
    thread.join(10)
    assert order == ["second waits", "first commits", "second holds"]


def test_hold_lock_on_another_key_does_not_wait(warehouse: Warehouse) -> None:
    import threading

    first_holds, release, committed = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with warehouse.transaction():
            warehouse.hold_lock("dataset", 1)
            first_holds.set()
            release.wait(10)  # a second writer that waited for key 1 would only go on after this
        committed.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(10)
    try:
        with warehouse.transaction():
            waited: list[bool] = []
            warehouse.hold_lock("dataset", 2, on_wait=lambda: waited.append(True))
            warehouse.hold_lock("dataset", 2)  # taking it twice in one transaction is fine
            assert waited == []  # another key: no waiting
            # Taken while the first writer still holds key 1 in its open transaction:
            assert not committed.is_set() and thread.is_alive()
    finally:
        release.set()
        thread.join(10)
    assert committed.is_set()


def test_hold_lock_outside_a_transaction_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="needs an open transaction"):
        warehouse.hold_lock("dataset", 1)


def test_migration_4_drops_the_row_hash_unique_index_and_keeps_the_rows(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.storage.warehouse import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:3])
    fact = (
        "INSERT INTO fact_image (dataset_key, batch_key, split_key, label_key, source_row, "
        "height, width, channels, pixel_dtype, pixels, row_hash, ingested_at) "
        "VALUES (1, 1, 0, 1, %s, 1, 1, 1, 'uint8', %s, 'same', now())"
    )
    orders = pa.schema([("id", pa.int64()), ("price", pa.float64())])
    with open_warehouse(settings) as wh:
        wh.execute(fact, [0, b"\x01"])
        with pytest.raises(WarehouseError):  # version 3 refuses the second copy
            wh.execute(fact, [1, b"\x01"])
        now = datetime.now(UTC)
        dataset = cat.create_dataset(
            wh, "orders", kind="tabular", label_column=None, schema=orders, now=now
        )
        cat.create_tabular_fact_table(wh, dataset.fact_table, orders)
        wh.load_arrow(dataset.fact_table, _order_rows(now))
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
    with open_warehouse(settings) as wh:
        assert (
            wh.fetch_value("SELECT max(version) FROM schema_migrations") == MIGRATIONS[-1].version
        )
        assert wh.fetch("SELECT source_row, pixels FROM fact_image") == [(0, b"\x01")]
        wh.execute(fact, [1, b"\x01"])  # the loader, not an index, keeps duplicates out now
        keys = [r[0] for r in wh.fetch("SELECT image_key FROM fact_image ORDER BY image_key")]
        assert len(keys) == 2 and keys[0] < keys[1]  # the key default survived the rebuild
        rows = wh.fetch("SELECT id, price, hw_row_key FROM fact_orders ORDER BY id")
        assert [r[:2] for r in rows] == [(1, 2.5), (2, 4.0)]
        wh.load_arrow("fact_orders", _order_rows(datetime.now(UTC)))  # defaults still work
        assert wh.fetch_value("SELECT count(DISTINCT hw_row_key) FROM fact_orders") == 4


def _order_rows(now: datetime) -> pa.Table:
    return pa.table(
        {
            "hw_batch_key": [1, 1],
            "hw_split_key": pa.array([0, 0], pa.int16()),
            "hw_source_row": [0, 1],
            "hw_row_hash": ["a", "b"],
            "hw_ingested_at": pa.array([now, now], pa.timestamp("us", tz="UTC")),
            "id": [1, 2],
            "price": [2.5, 4.0],
        }
    )


def test_stream_arrow_hands_rows_over_in_batches(warehouse: Warehouse) -> None:
    warehouse.execute(
        "CREATE TABLE numbers (k BIGINT, b BLOB_OR_BYTEA)".replace(
            "BLOB_OR_BYTEA", "BYTEA" if warehouse.dialect == "postgres" else "BLOB"
        )
    )
    warehouse.load_arrow(
        "numbers",
        pa.table({"k": list(range(2500)), "b": [bytes([i % 256]) * 3 for i in range(2500)]}),
    )
    batches = list(
        warehouse.stream_arrow(
            "SELECT k, b FROM {t} WHERE k >= %s ORDER BY k", [100], batch_rows=1000, t="numbers"
        )
    )
    assert all(b.num_rows <= 1000 for b in batches) and len(batches) >= 3
    keys = [k for b in batches for k in b.column("k").to_pylist()]
    assert keys == list(range(100, 2500))
    assert batches[0].column("b")[0].as_py() == bytes([100]) * 3
    # the stream has a connection of its own: the warehouse stays usable mid-read
    stream = warehouse.stream_arrow("SELECT k FROM numbers", batch_rows=10)
    next(stream)
    assert warehouse.fetch_value("SELECT count(*) FROM numbers") == 2500
    stream.close()


def test_stream_arrow_names_a_bad_query(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="refused"):
        list(warehouse.stream_arrow("SELECT * FROM no_such_table", batch_rows=10))
