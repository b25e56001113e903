"""Warehouse backends (DuckDB embedded, PostgreSQL by URL) and the star schema on them."""

from __future__ import annotations

from headwater.settings import Settings
from headwater.storage.warehouse.base import Warehouse
from headwater.storage.warehouse.migrations import migrate

__all__ = ["Warehouse", "open_warehouse"]


def open_warehouse(settings: Settings) -> Warehouse:
    """Connect to the warehouse the settings name and bring its schema up to date."""
    url = settings.resolved_warehouse_url
    warehouse: Warehouse
    if url.startswith("duckdb://"):
        from headwater.storage.warehouse.duckdb import DuckDBWarehouse

        warehouse = DuckDBWarehouse(
            url.removeprefix("duckdb://") or ":memory:",
            memory_limit=settings.duckdb_memory_limit,
            lock_wait_s=settings.duckdb_lock_wait_s,
        )
    else:
        from headwater.storage.warehouse.postgres import PostgresWarehouse

        warehouse = PostgresWarehouse(url, schema=settings.warehouse_schema)
    try:
        migrate(warehouse)
    except BaseException:
        warehouse.close()  # a failed first use leaves no pool or file lock behind
        raise
    return warehouse
