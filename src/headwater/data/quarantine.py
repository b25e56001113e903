"""Deciding about quarantined rows: release one into the dataset, or drop it; both recorded.

A released row is checked again against the dataset's current contract (fix the
contract or pass ``force``), loaded with the batch it arrived in, and written to
the lake as an extra part of that batch's curated folder, renamed there only once
the warehouse has committed it (as an ingest publishes its batch).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from headwater.data.facts import fact_rows
from headwater.data.hashing import image_row_hashes, tabular_row_hashes
from headwater.data.images import IMAGE_FILE_CHECK
from headwater.data.ingest import boundary
from headwater.data.quality import Contract, check_rows
from headwater.errors import ConfigError, DataError
from headwater.storage.lake import Lake
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import quality_store as qs

__all__ = ["drop", "release"]


def _pending(wh: Warehouse, dataset: cat.DatasetRow, quarantine_id: int) -> qs.QuarantinedRow:
    row = qs.get_quarantined(wh, dataset.key, quarantine_id)
    if row.status != "quarantined":
        raise ConfigError(
            f"quarantined row {quarantine_id} was already {row.status} at {row.decided_at}"
        )
    return row


def drop(wh: Warehouse, dataset: cat.DatasetRow, quarantine_id: int, *, note: str | None) -> None:
    _pending(wh, dataset, quarantine_id)
    qs.decide(wh, quarantine_id, "dropped", note=note, now=datetime.now(UTC))


def release(
    wh: Warehouse,
    lake: Lake,
    dataset: cat.DatasetRow,
    quarantine_id: int,
    *,
    force: bool = False,
    note: str | None = None,
) -> None:
    row = _pending(wh, dataset, quarantine_id)
    if row.check == IMAGE_FILE_CHECK:
        raise ConfigError(
            f"quarantined row {quarantine_id} is a file that did not decode ({row.field}: "
            f"{row.value}); there is no image to release. Replace the file and ingest the "
            "folder again, or drop the row"
        )
    batch = pa.ipc.open_stream(row.payload).read_next_batch()
    stored = qs.get_contract(wh, dataset.key)
    if stored is not None and not force:
        failures = check_rows(batch, Contract.from_json(stored[0]))
        if failures:
            first = failures[0]
            raise DataError(
                f"still fails {first.check} ({first.values[0]}); fix the contract "
                "(headwater contract DATASET) or release with --force",
                row=row.source_row,
                field=first.field,
            )
    hashes = image_row_hashes(batch) if dataset.kind == "image" else tabular_row_hashes(batch)
    now = datetime.now(UTC)
    rows = fact_rows(
        wh, dataset, batch, hashes, np.array([row.source_row], np.int64), row.batch_id, now
    )
    staged = lake.stage_batch(
        dataset.name, row.batch_id, rows.curated.schema, quarantine_id=quarantine_id
    )
    try:
        with wh.transaction():
            wh.hold_lock("dataset", dataset.key)
            wh.hold_lock("batch", row.batch_id)  # what `_settle` waits on after a kill
            if cat.holds_row(wh, dataset, str(hashes[0].as_py())):
                raise ConfigError(
                    f"quarantined row {quarantine_id} is already in the dataset; drop it"
                )
            staged.write(rows.curated)
            staged.close()
            wh.load_arrow(dataset.fact_table, rows.fact)
            qs.decide(
                wh, quarantine_id, "released", note=note or ("forced" if force else None), now=now
            )
            boundary("release_staged")
    except BaseException:
        staged.discard()
        raise
    boundary("release_committed")
    lake.publish(staged)  # only now: a reader of the lake never sees an uncommitted row
