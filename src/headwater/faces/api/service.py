"""The one `Workspace` of an API process, and the lock that makes it safe to share.

DuckDB lets one process hold its file and a connection must not be used by two
threads at once; sync endpoints run in a thread pool. So the app opens one
workspace in its lifespan and every call on it goes through `WarehouseService`,
which holds a lock for the length of the call. A request that cannot get the
lock within ``warehouse_wait_s`` is answered 503 with ``Retry-After`` instead of
piling up threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from headwater.data.ingest import IngestReport
from headwater.data.quality import QualityReport
from headwater.faces.api.problems import Problem
from headwater.flows.workspace import DatasetSummary, Workspace

__all__ = ["WarehouseService"]


class WarehouseService:
    """Serialises every call on one workspace; owns it and closes it."""

    def __init__(self, workspace: Workspace, *, wait_s: float) -> None:
        self._workspace = workspace
        self._wait_s = wait_s
        self._lock = threading.Lock()

    @contextmanager
    def _held(self) -> Iterator[Workspace]:
        if not self._lock.acquire(timeout=self._wait_s):
            raise Problem(
                503,
                "Warehouse busy",
                f"the warehouse was busy for {self._wait_s:g} s (HEADWATER_API_WAREHOUSE_WAIT_S); "
                "another load is running. Retry after it finishes.",
                headers={"Retry-After": str(max(1, round(self._wait_s)))},
                setting="HEADWATER_API_WAREHOUSE_WAIT_S",
            )
        try:
            yield self._workspace
        finally:
            self._lock.release()

    def open(self) -> int:
        """Connect (and migrate) now, so a wrong URL stops the server at start; returns datasets."""
        return self.dataset_count()

    def close(self) -> None:
        with self._lock:
            self._workspace.close()

    @property
    def dialect(self) -> str:
        return self._workspace.settings.dialect

    def dataset_count(self) -> int:
        with self._held() as workspace:
            return len(workspace.datasets())

    def datasets(self) -> list[DatasetSummary]:
        with self._held() as workspace:
            return workspace.datasets()

    def dataset(self, name: str) -> DatasetSummary:
        with self._held() as workspace:
            return workspace.dataset(name)

    def rows(self, name: str, *, limit: int, offset: int) -> list[dict[str, object]]:
        with self._held() as workspace:
            return workspace.rows(name, limit=limit, offset=offset)

    def ingest_url(self, url: str, *, dataset: str, label: str | None) -> IngestReport:
        with self._held() as workspace:
            return workspace.ingest(url, dataset=dataset, label=label)

    def ingest_stream(
        self, chunks: Iterable[bytes], filename: str, *, dataset: str, label: str | None
    ) -> IngestReport:
        """Held for the whole upload, not only the load: the core stages and loads in one call.

        A slow client therefore delays other requests by up to the idle timeout per
        chunk; a core method that stages without the warehouse would remove that.
        """
        with self._held() as workspace:
            return workspace.ingest_stream(chunks, filename, dataset=dataset, label=label)

    def quality(self, dataset: str, batch_id: int) -> QualityReport:
        with self._held() as workspace:
            return workspace.quality(dataset, batch_id)[0]

    def quarantine(
        self, dataset: str, *, status: str | None, limit: int
    ) -> list[dict[str, object]]:
        with self._held() as workspace:
            return workspace.quarantine(dataset, status=status, limit=limit)
