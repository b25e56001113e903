"""Paginated JSON APIs: fetch every page through the SSRF-guarded fetcher, then read its records.

A web service often hands out data a page at a time. `fetch_pages` follows the pages
(`Paging`: a ``next`` field in the body, a ``Link: rel="next"`` header, a cursor or a page
number), each through `headwater.storage.fetch.fetch`, so every hop of every page is checked;
it retries 429 and 5xx answers with tenacity (honouring ``Retry-After``), refuses a ``next``
it has already visited (a loop) and stops with an error past the page cap. Every page is
written whole to a staging folder before anything is loaded, so a page that fails mid-way
leaves nothing behind but that folder.

`pages_source` turns the fetched pages into one `Source`: one batch, its raw files the pages
(kept content-addressed in the lake by the loader, their hashes the batch's fingerprint, so
the same pages again are a no-op). Records sit at a path in each page (``--records``); a
page-level value (``--label user_label``) is copied onto each of its rows; a record that is
itself a list of records (an attempt made of events) becomes one row per event with its
``page``, ``attempt`` and ``position``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import pyarrow as pa
import tenacity

from headwater.errors import ConfigError, FormatError, LocationNotFound, SchemaError, StorageError
from headwater.storage.fetch import Fetched, Resolver, fetch, system_resolver
from headwater.storage.readers.base import RawFile, Source
from headwater.storage.readers.tabular import conform

__all__ = ["Page", "PageOptions", "Paging", "fetch_pages", "pages_source", "retry_after_s"]

Mode = Literal["auto", "next", "link", "cursor", "page"]
_RECORD_KEYS = ("data", "items", "results", "records")
_MISSING = object()


@dataclass(frozen=True)
class Paging:
    """How one page names the next: ``mode`` and, per mode, a body path or a parameter."""

    mode: Mode = "auto"
    path: str = "next"
    param: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Paging:
        """``next[:PATH]``, ``link``, ``cursor:PATH[=PARAM]``, ``page:PARAM`` or None (auto)."""
        if not text or text == "auto":
            return cls()
        mode, _, rest = text.partition(":")
        if mode == "link" and not rest:
            return cls("link")
        if mode == "next":
            return cls("next", rest or "next")
        if mode == "cursor" and rest:
            path, _, param = rest.partition("=")
            return cls("cursor", path, param or path.rsplit(".", 1)[-1])
        if mode == "page" and rest:
            return cls("page", param=rest)
        raise ConfigError(
            f"--paginate {text!r} is not understood; use next, next:PATH, link, "
            "cursor:FIELD, cursor:FIELD=PARAM or page:PARAM"
        )


@dataclass(frozen=True)
class PageOptions:
    """Where records sit in a page and the limits a paginated fetch keeps to."""

    max_bytes: int
    paging: Paging = Paging()
    records: str | None = None
    label: str | None = None
    max_pages: int = 1000
    allow_private: bool = False
    timeout_s: float = 30.0
    retries: int = 4
    retry_wait_s: float = 1.0
    retry_max_wait_s: float = 60.0


@dataclass(frozen=True)
class Page:
    number: int
    url: str
    path: Path
    label: object = None
    """The value at the label path, read while fetching (the contract allows every page's)."""


class _Busy(Exception):
    """A 429 or 5xx answer: worth asking again after a wait."""

    def __init__(self, answer: Fetched) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


def retry_after_s(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def fetch_pages(
    url: str,
    folder: Path,
    options: PageOptions,
    *,
    resolve: Resolver = system_resolver,
    transport: httpx.BaseTransport | None = None,
) -> list[Page]:
    """Every page from ``url`` on, each written to ``folder``; see the module docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    client = httpx.Client(
        transport=transport, timeout=options.timeout_s, follow_redirects=False, trust_env=False
    )
    pages: list[Page] = []
    visited: dict[str, int] = {}
    current: str | None = url
    with client:
        while current is not None:
            if current in visited:
                raise FormatError(
                    f"page {len(pages)} names {current} as the next page, already fetched as "
                    f"page {visited[current]}: the pages loop",
                    path=url,
                )
            if len(pages) == options.max_pages:
                raise FormatError(
                    f"more than {options.max_pages} pages; nothing was loaded. Raise "
                    "--max-pages if the API is really that long",
                    path=url,
                )
            visited[current] = len(pages) + 1
            answer = _get(client, current, options, resolve)
            document = _parse(answer.content, answer.url)
            label = _at(document, options.label) if options.label else None
            page = Page(
                len(pages) + 1, answer.url, folder / f"page-{len(pages) + 1:05d}.json", label
            )
            page.path.write_bytes(answer.content)
            pages.append(page)
            current = _next_url(answer, document, options.paging)
    return pages


def _get(client: httpx.Client, url: str, options: PageOptions, resolve: Resolver) -> Fetched:
    """One page, asked again on 429/5xx and dropped connections, with backoff."""

    def once() -> Fetched:
        answer = fetch(
            client, url, max_bytes=options.max_bytes, allow_private=options.allow_private,
            resolve=resolve,
        )  # fmt: skip
        if answer.status == 429 or answer.status >= 500:
            raise _Busy(answer)
        return answer

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(error.answer.headers) if isinstance(error, _Busy) else None
        backoff = options.retry_wait_s * 2 ** (state.attempt_number - 1)
        return min(asked if asked is not None else backoff, options.retry_max_wait_s)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(options.retries + 1),
        wait=wait,
        retry=tenacity.retry_if_exception_type((_Busy, httpx.TransportError)),
        sleep=time.sleep,
        reraise=True,
    )
    try:
        answer = retrying(once)
    except _Busy as busy:
        raise StorageError(
            url, f"the server answered HTTP {busy.answer.status} {options.retries + 1} times; "
            "nothing was loaded, try again later",
        ) from busy  # fmt: skip
    except httpx.HTTPError as exc:
        raise StorageError(url, f"could not fetch the page ({exc}); nothing was loaded") from exc
    if answer.status >= 400:
        raise LocationNotFound(
            url, "the page", hint=f"The server answered HTTP {answer.status}; nothing was loaded."
        )
    return answer


def _parse(content: bytes, url: str) -> object:
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"the page is not valid JSON ({exc})", path=url) from exc


def _at(document: object, path: str) -> object:
    for key in path.split("."):
        if not isinstance(document, dict) or key not in document:
            return _MISSING
        document = document[key]
    return document


def _next_url(answer: Fetched, document: object, paging: Paging) -> str | None:
    """The next page's absolute URL, or None on the last page."""
    here = httpx.URL(answer.url)
    link = _link_next(answer.headers)
    mode = paging.mode
    if mode == "auto":
        mode = "link" if link else "next"
    if mode == "link":
        return str(here.join(link)) if link else None
    if mode == "next":
        found = _at(document, paging.path)
        if found is _MISSING or found is None or found == "":
            return None
        return str(here.join(str(found)))
    if mode == "cursor":
        cursor = _at(document, paging.path)
        if cursor is _MISSING or cursor is None or cursor == "":
            return None
        return str(here.copy_set_param(paging.param, str(cursor)))
    if not _records_of(document, None, answer.url, quiet=True):
        return None  # page numbers end with an empty page
    number = here.params.get(paging.param, "1")
    if not number.isdigit():
        raise FormatError(f"the page parameter {paging.param!r} is {number!r}", path=answer.url)
    return str(here.copy_set_param(paging.param, str(int(number) + 1)))


def _link_next(headers: httpx.Headers) -> str | None:
    for value in headers.get_list("link"):
        for link in httpx.Response(200, headers={"link": value}).links.values():
            if "next" in link.get("rel", "").split():
                return link.get("url")
    return None


def _records_of(
    document: object, path: str | None, url: str, *, quiet: bool = False
) -> list[object]:
    """The list of records a page holds, at ``path`` or where APIs usually put it."""
    if path is not None:
        found = _at(document, path)
    elif isinstance(document, list):
        found = document
    else:
        found = next(
            (_at(document, k) for k in _RECORD_KEYS if isinstance(_at(document, k), list)), _MISSING
        )
    if isinstance(found, list):
        return found
    if quiet:
        return []
    keys = sorted(document) if isinstance(document, dict) else []
    raise FormatError(
        f"no list of records at {path or 'the top'!r}; name it with --records (keys: {keys})",
        path=url,
    )


def pages_source(
    pages: list[Page],
    options: PageOptions,
    *,
    chunk_rows: int,
    schema: pa.Schema | None = None,
) -> Source:
    """The fetched pages as one batch to load: their rows, streamed a chunk at a time."""
    label = options.label.rsplit(".", 1)[-1] if options.label else None

    def batches() -> Iterator[pa.RecordBatch]:
        fixed = schema
        chunk: list[dict[str, object]] = []
        for page in pages:
            chunk.extend(_page_rows(page, options))
            if len(chunk) >= chunk_rows:
                batch = _batch(chunk, page, fixed)
                fixed = fixed or batch.schema
                yield batch
                chunk = []
        if chunk:
            yield _batch(chunk, pages[-1], fixed)

    name = Path(httpx.URL(pages[0].url).path).name or httpx.URL(pages[0].url).host
    return Source(
        name=f"{name} ({len(pages)} pages)" if len(pages) > 1 else name,
        kind="tabular",
        files=[RawFile(p.path, f"page-{p.number}", "application/json") for p in pages],
        read=batches,
        label_column=label,
        labels=_labels(pages) if label else None,
    )


def _labels(pages: list[Page]) -> list[str] | None:
    """The pages' labels as the warehouse writes them, when every one is a plain value."""
    values = [p.label for p in pages]
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        return None  # missing or odd: reading the page names the problem
    return sorted({str(v) for v in values})


def _page_rows(page: Page, options: PageOptions) -> Iterator[dict[str, object]]:
    document = _parse(page.path.read_bytes(), page.url)
    extra: dict[str, object] = {}
    if options.label:
        value = _at(document, options.label)
        if value is _MISSING or isinstance(value, dict | list):
            raise SchemaError(
                "the page holds no single value there", path=page.url, field=options.label
            )
        extra[options.label.rsplit(".", 1)[-1]] = value
    for index, record in enumerate(_records_of(document, options.records, page.url)):
        if isinstance(record, dict):
            yield {**record, **extra}
        elif isinstance(record, list):
            for position, event in enumerate(record):
                if not isinstance(event, dict):
                    raise SchemaError(
                        f"record {index} holds a {type(event).__name__}, expected an object",
                        path=page.url, row=position,
                    )  # fmt: skip
                yield {
                    **event,
                    **extra,
                    "page": page.number,
                    "attempt": index,
                    "position": position,
                }
        else:
            raise SchemaError(
                f"record is {type(record).__name__}, expected an object or a list of objects",
                path=page.url, row=index,
            )  # fmt: skip


def _batch(rows: list[dict[str, object]], page: Page, schema: pa.Schema | None) -> pa.RecordBatch:
    try:
        batch = pa.RecordBatch.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(
            f"records do not share one type per field ({exc})", path=page.url
        ) from exc
    return conform(batch, schema, path=Path(page.path))
