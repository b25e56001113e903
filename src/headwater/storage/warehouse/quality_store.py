"""The quality tables' SQL: contracts, per-batch reports, and the quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from headwater.errors import NotFound
from headwater.storage.warehouse.base import Warehouse, as_time, as_time_or_none

__all__ = [
    "QuarantinedRow",
    "add_quarantine",
    "decide",
    "get_contract",
    "get_quarantined",
    "get_report",
    "list_quarantine",
    "list_reports",
    "replace_report",
    "save_contract",
    "save_report",
]


@dataclass(frozen=True)
class QuarantinedRow:
    quarantine_id: int
    batch_id: int
    source_row: int
    check: str
    field: str
    value: str | None
    status: str
    quarantined_at: datetime
    decided_at: datetime | None
    note: str | None
    payload: bytes


def save_contract(
    wh: Warehouse, dataset_key: int, contract_json: str, *, approved: bool, now: datetime
) -> None:
    wh.execute("DELETE FROM dataset_contract WHERE dataset_key = %s", [dataset_key])
    wh.execute(
        "INSERT INTO dataset_contract (dataset_key, contract_json, approved, updated_at) "
        "VALUES (%s, %s, %s, %s)",
        [dataset_key, contract_json, approved, now],
    )


def get_contract(wh: Warehouse, dataset_key: int) -> tuple[str, bool] | None:
    row = wh.fetch_one(
        "SELECT contract_json, approved FROM dataset_contract WHERE dataset_key = %s",
        [dataset_key],
    )
    return None if row is None else (str(row[0]), bool(row[1]))


def save_report(
    wh: Warehouse, batch_key: int, dataset_key: int, status: str, report_json: str, now: datetime
) -> None:
    wh.execute(
        "INSERT INTO quality_report (batch_key, dataset_key, status, report_json, created_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        [batch_key, dataset_key, status, report_json, now],
    )


def replace_report(
    wh: Warehouse, batch_key: int, dataset_key: int, status: str, report_json: str
) -> None:
    """Restate a checked batch's report; one UPDATE keeps its ``created_at`` and is atomic."""
    wh.execute(
        "UPDATE quality_report SET status = %s, report_json = %s "
        "WHERE batch_key = %s AND dataset_key = %s",
        [status, report_json, batch_key, dataset_key],
    )


def get_report(wh: Warehouse, batch_key: int) -> str | None:
    value = wh.fetch_value(
        "SELECT report_json FROM quality_report WHERE batch_key = %s", [batch_key]
    )
    return None if value is None else str(value)


def list_reports(wh: Warehouse, dataset_key: int) -> list[tuple[int, str, str]]:
    """(batch id, status, report JSON) for every checked batch of a dataset, oldest first."""
    rows = wh.fetch(
        "SELECT batch_key, status, report_json FROM quality_report WHERE dataset_key = %s "
        "ORDER BY batch_key",
        [dataset_key],
    )
    return [(int(str(b)), str(s), str(r)) for b, s, r in rows]


def add_quarantine(
    wh: Warehouse, dataset_key: int, batch_key: int, rows: pa.Table, *, now: datetime
) -> None:
    n = rows.num_rows
    if n == 0:
        return
    table = (
        rows.append_column("dataset_key", pa.repeat(pa.scalar(dataset_key, pa.int64()), n))
        .append_column("batch_key", pa.repeat(pa.scalar(batch_key, pa.int64()), n))
        .append_column("status", pa.repeat(pa.scalar("quarantined"), n))
        .append_column("quarantined_at", pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), n))
    )
    wh.load_arrow("quarantine", table)


_COLUMNS = (
    "quarantine_key, batch_key, source_row, check_name, field, value_text, status, "
    "quarantined_at, decided_at, decision_note, row_payload"
)


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes from the warehouse, got {type(value).__name__}")
    return bytes(value)


def _row(r: tuple[object, ...]) -> QuarantinedRow:
    return QuarantinedRow(
        int(str(r[0])),
        int(str(r[1])),
        int(str(r[2])),
        str(r[3]),
        str(r[4]),
        None if r[5] is None else str(r[5]),
        str(r[6]),
        as_time(r[7]),
        as_time_or_none(r[8]),
        None if r[9] is None else str(r[9]),
        _bytes(r[10]),
    )


def list_quarantine(
    wh: Warehouse, dataset_key: int, *, status: str | None = "quarantined", limit: int = 1000
) -> list[QuarantinedRow]:
    rows = wh.fetch(
        "SELECT " + _COLUMNS + " FROM quarantine WHERE dataset_key = %s "
        "AND (CAST(%s AS TEXT) IS NULL OR status = %s) ORDER BY quarantine_key LIMIT %s",
        [dataset_key, status, status, limit],
    )
    return [_row(r) for r in rows]


def get_quarantined(wh: Warehouse, dataset_key: int, quarantine_id: int) -> QuarantinedRow:
    row = wh.fetch_one(
        "SELECT " + _COLUMNS + " FROM quarantine WHERE dataset_key = %s AND quarantine_key = %s",
        [dataset_key, quarantine_id],
    )
    if row is None:
        raise NotFound(
            f"quarantined row {quarantine_id} does not exist in this dataset; "
            "list them with: headwater quarantine DATASET"
        )
    return _row(row)


def decide(
    wh: Warehouse, quarantine_id: int, status: str, *, note: str | None, now: datetime
) -> None:
    wh.execute(
        "UPDATE quarantine SET status = %s, decided_at = %s, decision_note = %s "
        "WHERE quarantine_key = %s",
        [status, now, note, quarantine_id],
    )
