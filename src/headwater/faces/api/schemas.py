"""Request and response bodies: what the OpenAPI document promises, field by field.

Built from the core's own summaries with ``from_core`` so routes stay one line.
Server-side paths never appear: a batch shows its file name, and its origin only
when that was a URL the client gave.
"""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal, Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, JsonValue

from headwater.data.ingest import BatchReport, IngestReport
from headwater.data.quality import QualityReport
from headwater.flows.workspace import BatchSummary, DatasetSummary

__all__ = [
    "BatchOut",
    "DatasetDetailOut",
    "DatasetListOut",
    "DatasetOut",
    "HealthOut",
    "IngestOut",
    "QualityCheckOut",
    "QualityReportOut",
    "QuarantineOut",
    "QuarantineRowOut",
    "QuarantineStatus",
    "RowsOut",
    "SourceIn",
]

QuarantineStatus = Literal["quarantined", "released", "dropped", "all"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class HealthOut(_Out):
    status: Literal["ok"] = "ok"
    version: str
    warehouse: Literal["duckdb", "postgres"]
    datasets: int = Field(ge=0, description="How many datasets the warehouse holds.")


class DatasetOut(_Out):
    name: str
    kind: str = Field(description="tabular or image.")
    rows: int = Field(ge=0)
    splits: dict[str, int] = Field(description="Rows per split (train, validation, test...).")
    label_column: str | None
    columns: dict[str, str] = Field(description="Column name to Arrow type, tabular data only.")
    last_batch_at: datetime | None

    @classmethod
    def from_core(cls, summary: DatasetSummary) -> Self:
        return cls(
            name=summary.name,
            kind=summary.kind,
            rows=summary.rows,
            splits=summary.splits,
            label_column=summary.label_column,
            columns=summary.columns,
            last_batch_at=summary.last_batch_at,
        )


class DatasetListOut(_Out):
    datasets: list[DatasetOut]


class BatchOut(_Out):
    batch_id: int
    file_name: str
    origin_url: str | None = Field(description="The URL it was fetched from, if any.")
    raw_sha256: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    status: str = Field(description="succeeded, or failed (a batch refused by its checks).")

    @classmethod
    def from_core(cls, batch: BatchSummary) -> Self:
        from_url = batch.source.startswith(("http://", "https://"))
        return cls(
            batch_id=batch.batch_id,
            file_name=batch.original_name,
            origin_url=batch.source if from_url else None,
            raw_sha256=batch.raw_sha256,
            started_at=batch.started_at,
            finished_at=batch.finished_at,
            rows_read=batch.rows_read,
            rows_loaded=batch.rows_loaded,
            rows_duplicate=batch.rows_duplicate,
            status=batch.status,
        )


class DatasetDetailOut(DatasetOut):
    labels: dict[str, dict[str, int]] = Field(description="Split to label to row count.")
    batches: list[BatchOut]

    @classmethod
    def from_core(cls, summary: DatasetSummary) -> Self:
        return cls(
            **DatasetOut.from_core(summary).model_dump(),
            labels=summary.labels,
            batches=[BatchOut.from_core(b) for b in summary.batches],
        )


class RowsOut(_Out):
    dataset: str
    limit: int
    offset: int
    rows: list[dict[str, JsonValue]] = Field(
        description="Rows as objects; binary values (pixels) as base64, timestamps ISO 8601."
    )

    @classmethod
    def from_core(
        cls, dataset: str, rows: list[dict[str, object]], *, limit: int, offset: int
    ) -> Self:
        return cls(
            dataset=dataset,
            limit=limit,
            offset=offset,
            rows=[{k: _json_value(v) for k, v in row.items()} for row in rows],
        )


def _json_value(value: object) -> JsonValue:
    """What JSON can carry: NaN and infinities become null, the rest text where needed."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="An http(s) URL ending in the file name.")
    label: str | None = Field(
        default=None, min_length=1, max_length=63, description="Label column of a tabular file."
    )


class BatchIngestOut(_Out):
    file_name: str
    batch_id: int | None
    status: Literal["loaded", "unchanged"]
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    quality: str = Field(description="passed or warned (a failed batch is refused).")
    seconds: float
    splits: dict[str, int]

    @classmethod
    def from_core(cls, report: BatchReport) -> Self:
        return cls(
            file_name=report.source.replace("\\", "/").rsplit("/", 1)[-1],
            batch_id=report.batch_id,
            status=report.status,
            rows_read=report.rows_read,
            rows_loaded=report.rows_loaded,
            rows_duplicate=report.rows_duplicate,
            rows_quarantined=report.rows_quarantined,
            quality=report.quality,
            seconds=round(report.seconds, 3),
            splits=report.splits,
        )


class IngestOut(_Out):
    dataset: str
    status: Literal["loaded", "unchanged"]
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    batch_ids: list[int | None]
    seconds: float
    batches: list[BatchIngestOut]

    @classmethod
    def from_core(cls, report: IngestReport) -> Self:
        return cls(
            dataset=report.dataset,
            status="unchanged" if report.unchanged else "loaded",
            rows_loaded=report.rows_loaded,
            rows_duplicate=report.rows_duplicate,
            rows_quarantined=report.rows_quarantined,
            batch_ids=[b.batch_id for b in report.batches],
            seconds=round(report.seconds, 3),
            batches=[BatchIngestOut.from_core(b) for b in report.batches],
        )


class QualityCheckOut(_Out):
    name: str
    level: Literal["row", "batch"]
    outcome: Literal["pass", "warn", "fail"]
    count: int
    detail: str


class QualityReportOut(_Out):
    dataset: str
    batch_id: int
    status: Literal["passed", "warned", "failed"]
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    contract_approved: bool
    checks: list[QualityCheckOut]

    @classmethod
    def from_core(cls, report: QualityReport) -> Self:
        return cls(
            dataset=report.dataset,
            batch_id=report.batch_id,
            status=report.status,
            rows_read=report.rows_read,
            rows_loaded=report.rows_loaded,
            rows_quarantined=report.rows_quarantined,
            rows_duplicate=report.rows_duplicate,
            contract_approved=report.contract_approved,
            checks=[
                QualityCheckOut(
                    name=c.name, level=c.level, outcome=c.outcome, count=c.count, detail=c.detail
                )
                for c in report.checks
            ],
        )


class QuarantineRowOut(_Out):
    id: int
    batch_id: int
    source_row: int
    check: str
    field: str | None
    value: str | None
    status: str
    quarantined_at: datetime
    decided_at: datetime | None
    note: str | None


class QuarantineOut(_Out):
    dataset: str
    status: QuarantineStatus
    rows: list[QuarantineRowOut]

    @classmethod
    def from_core(
        cls, dataset: str, status: QuarantineStatus, rows: list[dict[str, object]]
    ) -> Self:
        return cls(
            dataset=dataset,
            status=status,
            rows=[QuarantineRowOut.model_validate(r) for r in rows],
        )
