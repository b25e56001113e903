"""Scored uploads kept for a short while, so "download all predictions" needs no second upload.

A split of a dataset can be scored again when its CSV is asked for; an uploaded
file cannot, because the server keeps no copy of it. So its predictions are held
here, in memory, under an unguessable id: at most `MAX_RESULTS` of them and
`MAX_BYTES` in all, oldest dropped first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["MAX_BYTES", "MAX_RESULTS", "ResultStore", "StoredResult"]

MAX_RESULTS = 8
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredResult:
    filename: str
    csv: bytes


class ResultStore:
    def __init__(self, *, max_results: int = MAX_RESULTS, max_bytes: int = MAX_BYTES) -> None:
        self._max_results, self._max_bytes = max_results, max_bytes
        self._items: OrderedDict[str, StoredResult] = OrderedDict()
        self._lock = threading.Lock()

    def fits(self, size: int) -> bool:
        return size <= self._max_bytes

    def put(self, result: StoredResult) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._items[key] = result
            while len(self._items) > self._max_results or self._size() > self._max_bytes:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> StoredResult | None:
        with self._lock:
            return self._items.get(key)

    def _size(self) -> int:
        return sum(len(item.csv) for item in self._items.values())
