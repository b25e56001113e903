"""A workspace: the lake and the warehouse the settings point at, and what faces ask of them.

Faces (CLI, API, web) hold a `Workspace` and call its methods; they never open a
connection or a file themselves.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from headwater.data.ingest import IngestReport, ProgressFn, ingest_path
from headwater.errors import ConfigError
from headwater.settings import Settings
from headwater.storage.fetch import download, is_url
from headwater.storage.lake import Lake
from headwater.storage.warehouse import Warehouse, open_warehouse
from headwater.storage.warehouse import catalog as cat

__all__ = ["BatchSummary", "DatasetSummary", "Workspace"]


@dataclass(frozen=True)
class BatchSummary:
    batch_id: int
    source: str
    original_name: str
    raw_sha256: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    status: str


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    kind: str
    rows: int
    splits: dict[str, int]
    labels: dict[str, dict[str, int]]
    label_column: str | None
    columns: dict[str, str]
    batches: list[BatchSummary]
    last_batch_at: datetime | None

    def to_dict(self, *, with_batches: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "splits": self.splits,
            "label_column": self.label_column,
            "columns": self.columns,
            "last_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
        }
        if with_batches:
            out["labels"] = self.labels
            out["batches"] = [
                {
                    **b.__dict__,
                    "started_at": b.started_at.isoformat(),
                    "finished_at": b.finished_at.isoformat() if b.finished_at else None,
                }
                for b in self.batches
            ]
        return out


class Workspace:
    """Opened once per command or per API process; closes its connection on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_root)
        self._warehouse: Warehouse | None = None

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = open_warehouse(self.settings)
        return self._warehouse

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def ingest(
        self,
        source: str | Path,
        *,
        dataset: str | None = None,
        label: str | None = None,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        """Ingest a local file or folder, or an http(s) URL (downloaded first, then removed)."""
        text = str(source)
        downloaded: Path | None = None
        if is_url(text):
            downloaded = download(text, self.lake.staging, max_bytes=self.settings.max_upload_bytes)
            path = downloaded
        else:
            path = Path(text)
        try:
            return ingest_path(
                path,
                warehouse=self.warehouse,
                lake=self.lake,
                dataset=dataset,
                label=label,
                origin=text if downloaded else None,
                chunk_rows=self.settings.ingest_chunk_rows,
                progress=progress,
            )
        finally:
            if downloaded is not None:
                shutil.rmtree(downloaded.parent, ignore_errors=True)

    def datasets(self) -> list[DatasetSummary]:
        return [self._summary(d, with_batches=False) for d in cat.list_datasets(self.warehouse)]

    def dataset(self, name: str) -> DatasetSummary:
        return self._summary(cat.get_dataset(self.warehouse, name), with_batches=True)

    def rows(self, name: str, *, limit: int, offset: int = 0) -> list[dict[str, object]]:
        """The first rows as JSON-ready dicts: pixels base64, Headwater columns left out."""
        if not 1 <= limit <= self.settings.max_show_rows:
            raise ConfigError(
                f"limit must be between 1 and {self.settings.max_show_rows}, got {limit}"
            )
        if offset < 0:
            raise ConfigError(f"offset must be 0 or more, got {offset}")
        dataset = cat.get_dataset(self.warehouse, name)
        table = cat.sample_rows(self.warehouse, dataset, limit=limit, offset=offset)
        keep = [c for c in table.column_names if not c.startswith("hw_")]
        rows: list[dict[str, object]] = table.select(keep).to_pylist()
        for row in rows:
            for key, value in row.items():
                if isinstance(value, bytes | bytearray | memoryview):
                    row[key] = base64.b64encode(bytes(value)).decode()
                elif isinstance(value, datetime):
                    row[key] = value.isoformat()
        return rows

    def _summary(self, dataset: cat.DatasetRow, *, with_batches: bool) -> DatasetSummary:
        splits = cat.split_counts(self.warehouse, dataset)
        batches = cat.list_batches(self.warehouse, dataset.name)
        return DatasetSummary(
            name=dataset.name,
            kind=dataset.kind,
            rows=sum(splits.values()),
            splits=splits,
            labels=cat.label_counts(self.warehouse, dataset) if with_batches else {},
            label_column=dataset.label_column,
            columns={f.name: str(f.type) for f in dataset.schema} if dataset.schema else {},
            batches=[_batch(b) for b in batches] if with_batches else [],
            last_batch_at=max((b.finished_at or b.started_at for b in batches), default=None),
        )


def _batch(row: cat.BatchRow) -> BatchSummary:
    fields = {k: v for k, v in row.__dict__.items() if k != "dataset"}
    return BatchSummary(**fields)
