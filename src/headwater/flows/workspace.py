"""A workspace: the lake and the warehouse the settings point at, and what faces ask of them.

Faces (CLI, API, web) hold a `Workspace` and call its methods; they never open a
connection or a file themselves.
"""

from __future__ import annotations

import base64
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

from headwater.data import quarantine
from headwater.data.ingest import (
    DATASET_NAME_PATTERN,
    IngestReport,
    ProgressFn,
    dataset_name_for,
    ingest_path,
    ingest_source,
)
from headwater.data.quality import Contract, QualityReport
from headwater.data.sequences import find_spec, sequence_step
from headwater.data.task import TaskChoice, dataset_task
from headwater.errors import ConfigError, NotFound, UploadTooLarge
from headwater.settings import Settings
from headwater.storage.fetch import download, is_url
from headwater.storage.lake import Lake, full_disk_said
from headwater.storage.pages import PageOptions, Paging, fetch_pages, pages_source
from headwater.storage.readers import ReaderOptions, check_file_name
from headwater.storage.warehouse import Warehouse, open_warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import quality_store as qs

__all__ = ["DATASET_NAME_PATTERN", "BatchSummary", "DatasetSummary", "Workspace"]


@dataclass(frozen=True)
class BatchSummary:
    """One batch, under the names every face shows (CLI ``--json``, API, web page)."""

    batch_id: int
    source: str
    file_name: str
    raw_sha256: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    status: str

    @property
    def origin_url(self) -> str | None:
        """The URL the batch was fetched from; None for a local file or an upload."""
        return self.source if self.source.startswith(("http://", "https://")) else None

    def to_dict(self) -> dict[str, object]:
        return {
            **self.__dict__,
            "origin_url": self.origin_url,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


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
    task: TaskChoice | None = None

    def to_dict(self, *, with_batches: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "splits": self.splits,
            "label_column": self.label_column,
            "task": self.task.task if self.task else None,
            "task_reason": self.task.reason if self.task else None,
            "columns": self.columns,
            "last_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
        }
        if with_batches:
            out["labels"] = self.labels
            out["batches"] = [b.to_dict() for b in self.batches]
        return out


class Workspace:
    """Opened once per command or per API process; closes its connection on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake_root)
        self._warehouse: Warehouse | None = None
        self._opening = threading.Lock()

    @property
    def warehouse(self) -> Warehouse:
        """Opened (and migrated) on first use, once, however many threads ask at the same time."""
        if self._warehouse is None:
            with self._opening:
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

    def reader_options(self, encoding: str | None = None) -> ReaderOptions:
        """How the readers decode text, and the settings' limits on hostile input."""
        return ReaderOptions(
            encoding=encoding or "utf-8",
            json_max_depth=self.settings.json_max_depth,
            json_max_fields=self.settings.json_max_fields,
            max_decompressed_bytes=self.settings.max_decompressed_bytes,
        )

    def ingest(
        self,
        source: str | Path,
        *,
        dataset: str | None = None,
        label: str | None = None,
        progress: ProgressFn | None = None,
        encoding: str | None = None,
    ) -> IngestReport:
        """Ingest a local file or folder, or an http(s) URL (downloaded first, then removed).

        ``encoding`` names the text encoding of a CSV or JSON file (default UTF-8).
        """
        text = str(source)
        downloaded: Path | None = None
        if is_url(text):
            downloaded = download(
                text,
                self.lake.staging,
                max_bytes=self.settings.max_upload_bytes,
                allow_private=self.settings.fetch_allow_private,
            )
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
                options=self.reader_options(encoding),
            )
        finally:
            if downloaded is not None:
                shutil.rmtree(downloaded.parent, ignore_errors=True)

    def ingest_from(
        self,
        source: str,
        *,
        dataset: str | None = None,
        label: str | None = None,
        paginate: str | None = None,
        records: str | None = None,
        max_pages: int | None = None,
        expect: str | None = None,
        progress: ProgressFn | None = None,
        encoding: str | None = None,
    ) -> IngestReport:
        """A file, folder or URL (`ingest`), or with any page option every page of a JSON API.

        The one rule every face follows (the CLI's ingest, the API's sources endpoint, the
        web's URL form): ``paginate``, ``records``, ``max_pages`` or ``expect`` mean pages.
        """
        if paginate or records or max_pages or expect:
            return self.ingest_pages(
                source, paginate=paginate, records=records, label=label, max_pages=max_pages,
                dataset=dataset, progress=progress, expect=expect,
            )  # fmt: skip
        return self.ingest(
            source, dataset=dataset, label=label, progress=progress, encoding=encoding
        )

    def ingest_pages(
        self,
        url: str,
        *,
        paginate: str | None = None,
        records: str | None = None,
        label: str | None = None,
        max_pages: int | None = None,
        dataset: str | None = None,
        progress: ProgressFn | None = None,
        expect: str | None = None,
    ) -> IngestReport:
        """Ingest every page of a paginated JSON API as one batch (see `headwater.storage.pages`).

        All pages are fetched before anything loads, so a page failing mid-way commits nothing.
        Records that are lists of events (attempts) make a sequence dataset, each sequence
        checked against ``expect`` (or the text most of the first batch's spell); see
        `headwater.data.sequences`.
        """
        options = self.page_options(paginate, records=records, label=label, max_pages=max_pages)
        name = dataset or dataset_name_for(Path(_url_stem(url)))
        folder = self.lake.staging / f"pages-{uuid.uuid4().hex}"
        try:
            pages = fetch_pages(url, folder, options)
            existing = cat.find_dataset(self.warehouse, name)
            schema = existing.schema if existing and existing.kind == "tabular" else None
            source = pages_source(
                pages, options, chunk_rows=self.settings.ingest_chunk_rows, schema=schema
            )
            return ingest_source(
                source,
                warehouse=self.warehouse,
                lake=self.lake,
                dataset=name,
                origin=url,
                progress=progress,
                after_load=sequence_step(label=source.label_column, expected=expect),
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def page_options(
        self,
        paginate: str | None,
        *,
        records: str | None = None,
        label: str | None = None,
        max_pages: int | None = None,
    ) -> PageOptions:
        """How pages are followed: the caller's choices within this workspace's settings."""
        s = self.settings
        return PageOptions(
            max_bytes=s.max_upload_bytes,
            paging=Paging.parse(paginate),
            records=records,
            label=label,
            max_pages=max_pages or s.fetch_max_pages,
            allow_private=s.fetch_allow_private,
            retries=s.fetch_retries,
            retry_wait_s=s.fetch_retry_wait_s,
        )

    def ingest_stream(
        self,
        chunks: Iterable[bytes],
        filename: str,
        *,
        dataset: str | None = None,
        label: str | None = None,
        encoding: str | None = None,
    ) -> IngestReport:
        """Ingest an upload: streamed to the lake's staging folder under its checked name.

        The name is checked before a byte is written (no ``../``, no shell
        characters), the size limit is enforced while streaming, and the staged
        copy is removed afterwards whatever happens.
        """
        folder = self.lake.staging / f"upload-{uuid.uuid4().hex}"
        name = check_file_name(filename)
        folder.mkdir(parents=True)
        try:
            path = folder / name
            size = 0
            with full_disk_said(path), path.open("wb") as sink:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.settings.max_upload_bytes:
                        raise UploadTooLarge(self.settings.max_upload_bytes, filename)
                    sink.write(chunk)
            return self.ingest(
                path,
                dataset=dataset or dataset_name_for(Path(name)),
                label=label,
                encoding=encoding,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def contract(self, dataset: str) -> Contract:
        found = cat.get_dataset(self.warehouse, dataset)
        stored = qs.get_contract(self.warehouse, found.key)
        if stored is None:
            raise NotFound(f"dataset {dataset!r} has no contract yet; ingest a batch first")
        contract = Contract.from_json(stored[0])
        contract.approved = stored[1]
        return contract

    def approve_contract(self, dataset: str, contract: Contract | None = None) -> Contract:
        """Approve the stored contract, or replace it with an edited one and approve that."""
        found = cat.get_dataset(self.warehouse, dataset)
        chosen = contract or self.contract(dataset)
        chosen.approved = True
        qs.save_contract(
            self.warehouse, found.key, chosen.to_json(), approved=True, now=datetime.now(UTC)
        )
        return chosen

    def quality(self, dataset: str, batch_id: int | None = None) -> list[QualityReport]:
        found = cat.get_dataset(self.warehouse, dataset)
        reports = [
            QualityReport.from_json(text)
            for batch, _, text in qs.list_reports(self.warehouse, found.key)
            if batch_id is None or batch == batch_id
        ]
        if batch_id is not None and not reports:
            raise NotFound(f"dataset {dataset!r} has no quality report for batch {batch_id}")
        return reports

    def quarantine(
        self, dataset: str, *, status: str | None = "quarantined", limit: int = 1000
    ) -> list[dict[str, object]]:
        found = cat.get_dataset(self.warehouse, dataset)
        rows = qs.list_quarantine(self.warehouse, found.key, status=status, limit=limit)
        return [
            {
                "id": r.quarantine_id,
                "batch_id": r.batch_id,
                "source_row": r.source_row,
                "check": r.check,
                "field": r.field,
                "value": r.value,
                "status": r.status,
                "quarantined_at": r.quarantined_at.isoformat(),
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "note": r.note,
            }
            for r in rows
        ]

    def release(self, dataset: str, quarantine_id: int, *, force: bool = False) -> None:
        found = cat.get_dataset(self.warehouse, dataset)
        quarantine.release(self.warehouse, self.lake, found, quarantine_id, force=force)

    def drop(self, dataset: str, quarantine_id: int, *, note: str | None = None) -> None:
        found = cat.get_dataset(self.warehouse, dataset)
        quarantine.drop(self.warehouse, found, quarantine_id, note=note)

    def datasets(self) -> list[DatasetSummary]:
        return [self._summary(d, with_batches=False) for d in cat.list_datasets(self.warehouse)]

    def dataset(self, name: str) -> DatasetSummary:
        return self._summary(cat.get_dataset(self.warehouse, name), with_batches=True)

    def rows(
        self, name: str, *, limit: int, offset: int = 0, columns: Sequence[str] | None = None
    ) -> list[dict[str, object]]:
        """The first rows as JSON-ready dicts: pixels base64, Headwater columns left out.

        ``columns`` keeps only those, in that order; a name the dataset lacks is refused
        with the names it has.
        """
        if not 1 <= limit <= self.settings.max_show_rows:
            raise ConfigError(
                f"limit must be between 1 and {self.settings.max_show_rows}, got {limit}"
            )
        if offset < 0:
            raise ConfigError(f"offset must be 0 or more, got {offset}")
        dataset = cat.get_dataset(self.warehouse, name)
        table = cat.sample_rows(self.warehouse, dataset, limit=limit, offset=offset)
        keep = [c for c in table.column_names if not c.startswith("hw_")]
        if columns:
            unknown = [c for c in columns if c not in keep]
            if unknown:
                raise ConfigError(
                    f"{name} has no column {', '.join(map(repr, unknown))}; "
                    f"its columns: {', '.join(keep)}"
                )
            keep = list(dict.fromkeys(columns))
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
        sequences = find_spec(self.warehouse, dataset) is not None
        return DatasetSummary(
            name=dataset.name,
            kind="sequence" if sequences else dataset.kind,
            rows=sum(splits.values()),
            splits=splits,
            labels=cat.label_counts(self.warehouse, dataset) if with_batches else {},
            label_column=dataset.label_column,
            columns={f.name: str(f.type) for f in dataset.schema} if dataset.schema else {},
            batches=[_batch(b) for b in batches] if with_batches else [],
            last_batch_at=max((b.finished_at or b.started_at for b in batches), default=None),
            task=dataset_task(self.warehouse, dataset),
        )


def _url_stem(url: str) -> str:
    """The last named part of a URL's path (``/api/users/`` -> ``users``), for a dataset name."""
    parts = [p for p in urlparse(url).path.split("/") if p]
    return parts[-1] if parts else (urlparse(url).hostname or "pages")


def _batch(row: cat.BatchRow) -> BatchSummary:
    fields = {k: v for k, v in row.__dict__.items() if k not in {"dataset", "original_name"}}
    return BatchSummary(file_name=row.original_name, **fields)
