"""The gate a batch passes through: row checks per chunk, then the batch-level verdict."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from headwater.data.quality.checks import check_rows
from headwater.data.quality.contract import BatchRules, Contract
from headwater.data.quality.report import BatchStatus, CheckOutcome, QualityReport

__all__ = ["BatchGate"]

ROW_CHECKS = {
    "image": ["image_shape", "pixel_not_nan", "pixel_range", "label_allowed"],
    "tabular": ["not_null", "range", "allowed_values", "label_allowed"],
}


class BatchGate:
    """Collects what each chunk's checks found; `verdict` turns it into a report."""

    def __init__(self, contract: Contract, *, dataset: str, batch_id: int) -> None:
        self.contract, self.dataset, self.batch_id = contract, dataset, batch_id
        self.failed: Counter[str] = Counter()

    def split(self, batch: pa.RecordBatch, source_rows: np.ndarray) -> tuple[np.ndarray, pa.Table]:
        """(mask of rows that pass, the quarantined rows with their reasons)."""
        failures = check_rows(batch, self.contract)
        passed = np.ones(batch.num_rows, dtype=bool)
        pieces = []
        for failure in failures:
            passed &= ~failure.mask
            self.failed[failure.check] += int(failure.mask.sum())
            rows = np.flatnonzero(failure.mask)
            payloads = [_row_payload(batch.slice(int(i), 1)) for i in rows]
            pieces.append(
                pa.table(
                    {
                        "source_row": pa.array(source_rows[rows], pa.int64()),
                        "check_name": pa.repeat(pa.scalar(failure.check), len(rows)),
                        "field": pa.repeat(pa.scalar(failure.field), len(rows)),
                        "value_text": pa.array(failure.values, pa.string()),
                        "row_payload": pa.array(payloads, pa.binary()),
                    }
                )
            )
        quarantined = pa.concat_tables(pieces) if pieces else _QUARANTINE_SCHEMA.empty_table()
        return passed, quarantined

    def verdict(
        self,
        *,
        rows_read: int,
        rows_loaded: int,
        rows_duplicate: int,
        previous_rows: int | None,
    ) -> QualityReport:
        rules = self.contract.batch
        quarantined = sum(self.failed.values())
        checks = [
            CheckOutcome(name, "row", "fail" if self.failed[name] else "pass", self.failed[name])
            for name in ROW_CHECKS[self.contract.kind]
        ]
        checks += _batch_checks(rules, rows_read, quarantined, rows_duplicate, previous_rows)
        outcomes = {c.outcome for c in checks if c.level == "batch"}
        status: BatchStatus = (
            "failed" if "fail" in outcomes else "warned" if "warn" in outcomes else "passed"
        )
        return QualityReport(
            dataset=self.dataset,
            batch_id=self.batch_id,
            rows_read=rows_read,
            rows_loaded=rows_loaded,
            rows_quarantined=quarantined,
            rows_duplicate=rows_duplicate,
            status=status,
            checks=checks,
            contract_approved=self.contract.approved,
        )


def _batch_checks(
    rules: BatchRules,
    rows_read: int,
    quarantined: int,
    rows_duplicate: int,
    previous_rows: int | None,
) -> list[CheckOutcome]:
    """The checks of the batch as a whole: share quarantined, share duplicate, row-count drift."""
    checks: list[CheckOutcome] = []
    share = quarantined / rows_read if rows_read else 0.0
    if rules.max_quarantine_share is not None:
        over = share > rules.max_quarantine_share
        checks.append(
            CheckOutcome(
                "quarantine_share",
                "batch",
                "fail" if over else "pass",
                quarantined,
                f"{share:.1%} of rows quarantined (limit {rules.max_quarantine_share:.0%})",
            )
        )
    dup_share = rows_duplicate / rows_read if rows_read else 0.0
    dup_over = rules.max_duplicate_share is not None and dup_share > rules.max_duplicate_share
    checks.append(
        CheckOutcome(
            "duplicate_share",
            "batch",
            "warn" if dup_over else "pass",
            rows_duplicate,
            f"{dup_share:.1%} of rows already held or repeated",
        )
    )
    if previous_rows:
        change = rows_read / previous_rows - 1
        band = rules.row_count_band
        drift = band is not None and abs(change) > band
        checks.append(
            CheckOutcome(
                "row_count_drift",
                "batch",
                "warn" if drift else "pass",
                rows_read,
                f"{change:+.0%} rows against the previous batch ({previous_rows:,})",
            )
        )
    return checks


def _row_payload(row: pa.RecordBatch) -> bytes:
    """One row as Arrow IPC bytes: enough to release it later exactly as it arrived."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, row.schema) as writer:
        writer.write_batch(row)
    return bytes(sink.getvalue().to_pybytes())


_QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_row", pa.int64()),
        ("check_name", pa.string()),
        ("field", pa.string()),
        ("value_text", pa.string()),
        ("row_payload", pa.binary()),
    ]
)
