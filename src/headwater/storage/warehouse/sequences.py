"""The warehouse side of sequence datasets: their spec, one row per sequence, one per event.

Storage only: what a sequence *is* (how events group, when one is valid) is the data
layer's (`headwater.data.sequences`); here are the tables of migration 8 and the
queries that read a sequence back whole and in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from headwater.storage.warehouse.base import Param, Warehouse

__all__ = [
    "batch_rows",
    "get_spec",
    "indexed_batches",
    "next_sequence_keys",
    "save_spec",
    "sequence_counts",
    "sequence_events",
    "sequence_rows",
    "write_sequences",
]

_EVENT_COLUMNS = (
    "dataset_key",
    "batch_key",
    "sequence_key",
    "position",
    "occurred_at",
    "interval_us",
    "symbol",
    "row_key",
)


def get_spec(wh: Warehouse, dataset_key: int) -> str | None:
    """The dataset's sequence spec as JSON, or None for a dataset that is not of sequences."""
    value = wh.fetch_value(
        "SELECT spec_json FROM dataset_sequence WHERE dataset_key = %s", [dataset_key]
    )
    return None if value is None else str(value)


def save_spec(wh: Warehouse, dataset_key: int, spec_json: str, *, now: datetime) -> None:
    """Declare (or restate) how the dataset's rows group into sequences."""
    wh.execute("DELETE FROM dataset_sequence WHERE dataset_key = %s", [dataset_key])
    wh.execute(
        "INSERT INTO dataset_sequence (dataset_key, spec_json, created_at) VALUES (%s, %s, %s)",
        [dataset_key, spec_json, now],
    )


def batch_rows(wh: Warehouse, fact_table: str, batch_key: int, columns: Sequence[str]) -> pa.Table:
    """One batch's rows of a dataset's fact table: ``hw_row_key`` and the stored ``columns``.

    Read on the caller's connection, so rows loaded in its open transaction are seen.
    """
    return wh.fetch_arrow(
        "SELECT hw_row_key, {cols} FROM {t} WHERE hw_batch_key = %s ORDER BY hw_row_key",
        [batch_key],
        t=fact_table,
        cols=list(columns),
    )


def indexed_batches(wh: Warehouse, dataset_key: int) -> set[int]:
    rows = wh.fetch(
        "SELECT DISTINCT batch_key FROM dim_sequence WHERE dataset_key = %s", [dataset_key]
    )
    return {int(str(r[0])) for r in rows}


def next_sequence_keys(wh: Warehouse, n: int) -> list[int]:
    """``n`` fresh sequence keys (one round trip), in increasing order."""
    if n == 0:
        return []
    rows = wh.fetch("SELECT nextval('seq_sequence') FROM generate_series(1, %s)", [n])
    return sorted(int(str(r[0])) for r in rows)


def write_sequences(wh: Warehouse, sequences: pa.Table, events: pa.Table) -> None:
    """Bulk-load one batch's sequences (``dim_sequence`` columns) and events (``fact_event``)."""
    if sequences.num_rows:
        wh.load_arrow("dim_sequence", sequences)
    if events.num_rows:
        wh.load_arrow("fact_event", events.select(list(_EVENT_COLUMNS)))


def sequence_rows(
    wh: Warehouse, dataset_key: int, *, status: str | None = None, limit: int | None = None
) -> pa.Table:
    """One row per sequence, oldest first, its label's name resolved."""
    where = "" if status is None else " AND s.status = %s"
    params: list[Param] = [dataset_key] + ([] if status is None else [status])
    return wh.fetch_arrow(
        "SELECT s.sequence_key, s.batch_key, l.label, s.group_id, s.events, s.started_at, "
        "s.duration_us, s.typed, s.status, s.reason FROM dim_sequence s "
        "LEFT JOIN dim_label l ON l.label_key = s.label_key "
        "WHERE s.dataset_key = %s" + where + " ORDER BY s.sequence_key LIMIT %s",
        [*params, limit if limit is not None else 2**62],
    )


def sequence_events(
    wh: Warehouse, dataset_key: int, *, status: str | None = "valid", limit: int | None = None
) -> pa.Table:
    """Every event of the dataset's sequences (``status`` ones; None: all), each in order.

    At most ``limit`` sequences, the oldest first; the sequence's label and status come along.
    """
    where = "" if status is None else " AND s.status = %s"
    params: list[Param] = [dataset_key] + ([] if status is None else [status])
    return wh.fetch_arrow(
        "SELECT e.sequence_key, e.batch_key, l.label, s.status, e.position, e.occurred_at, "
        "e.interval_us, e.symbol FROM fact_event e "
        "JOIN (SELECT * FROM dim_sequence s WHERE s.dataset_key = %s" + where + " "
        "ORDER BY s.sequence_key LIMIT %s) s ON s.sequence_key = e.sequence_key "
        "LEFT JOIN dim_label l ON l.label_key = s.label_key "
        "ORDER BY e.sequence_key, e.position",
        [*params, limit if limit is not None else 2**62],
    )


def sequence_counts(wh: Warehouse, dataset_key: int) -> dict[str, int]:
    """Sequences per status (``valid``, ``quarantined``)."""
    rows = wh.fetch(
        "SELECT status, count(*) FROM dim_sequence WHERE dataset_key = %s GROUP BY status",
        [dataset_key],
    )
    return {str(s): int(str(n)) for s, n in rows}
