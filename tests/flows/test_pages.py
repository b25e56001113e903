"""Paginated JSON ingest against a real HTTP server on 127.0.0.1, on both warehouse backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from headwater.errors import FormatError, LocationNotFound, UnsafeInput
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.pages import PageOptions, fetch_pages, retry_after_s

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[[str, dict[str, list[str]]], Answer]


class Api:
    """A loopback server whose pages a test writes; counts the requests each path got."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlparse(self.path)
                api.hits[parts.path] = api.hits.get(parts.path, 0) + 1
                route = api.routes.get(parts.path)
                status, headers, body = (
                    route(parts.path, parse_qs(parts.query)) if route else (404, {}, b"{}")
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, path: str, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.routes[path] = lambda _p, _q: (200, headers or {}, data)


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    fast = settings.model_copy(update={"fetch_allow_private": True, "fetch_retry_wait_s": 0.01})
    with Workspace(fast) as workspace:
        yield workspace


def _user(label: str, attempts: int, nxt: str | None) -> dict[str, object]:
    events = [
        [{"character": c, "typed_at": f"2019-01-16T15:06:2{a}.{i:06d}"} for i, c in enumerate("Be")]
        for a in range(attempts)
    ]
    return {"user_label": label, "user_data": events, "next": nxt}


def _rows(ws: Workspace, dataset: str) -> list[dict[str, object]]:
    return ws.rows(dataset, limit=1000)


def test_relative_and_absolute_next_become_one_batch_of_events(api: Api, ws: Workspace) -> None:
    api.page("/users/a.json", _user("alice", 2, "b.json"))
    api.page("/users/b.json", _user("bob", 1, f"{api.base}/other/c.json"))
    api.page("/other/c.json", _user("carol", 1, None))
    report = ws.ingest_pages(
        f"{api.base}/users/a.json", records="user_data", label="user_label", dataset="typing"
    )
    assert report.rows_loaded == 8 and len(report.batches) == 1
    rows = _rows(ws, "typing")
    alice = sorted(
        (r["attempt"], r["position"], r["character"]) for r in rows if r["user_label"] == "alice"
    )
    assert alice == [(0, 0, "B"), (0, 1, "e"), (1, 0, "B"), (1, 1, "e")]
    assert {r["user_label"] for r in rows} == {"alice", "bob", "carol"}
    assert ws.dataset("typing").label_column == "user_label"
    again = ws.ingest_pages(
        f"{api.base}/users/a.json", records="user_data", label="user_label", dataset="typing"
    )
    assert again.unchanged and again.rows_loaded == 0
    raws = list((ws.lake.root / "raw").rglob("*"))
    assert sum(p.is_file() for p in raws) == 3  # each page kept once, by its content


def test_link_header_is_followed_by_itself(api: Api, ws: Workspace) -> None:
    api.page("/items", [{"id": 1}, {"id": 2}], {"Link": '</items2>; rel="next"'})
    api.page("/items2", [{"id": 3}], {"Link": '</items>; rel="prev"'})
    report = ws.ingest_pages(
        f"{api.base}/items", records=None, paginate=None, dataset="items", max_pages=5
    )
    assert report.rows_loaded == 3


def test_cursor_and_page_number(api: Api, ws: Workspace) -> None:
    def by_cursor(_path: str, query: dict[str, list[str]]) -> Answer:
        at = int(query.get("cursor", ["0"])[0])
        body = {"data": [{"n": at}], "meta": {"cursor": str(at + 1) if at < 2 else None}}
        return 200, {}, json.dumps(body).encode()

    def by_page(_path: str, query: dict[str, list[str]]) -> Answer:
        page = int(query.get("p", ["1"])[0])
        return 200, {}, json.dumps({"results": [{"n": page}] if page <= 3 else []}).encode()

    api.routes["/c"] = by_cursor
    api.routes["/p"] = by_page
    cursor = ws.ingest_pages(f"{api.base}/c", paginate="cursor:meta.cursor=cursor", dataset="cur")
    assert sorted(r["n"] for r in _rows(ws, "cur")) == [0, 1, 2] and cursor.rows_loaded == 3
    ws.ingest_pages(f"{api.base}/p?p=1", paginate="page:p", dataset="num")
    assert sorted(r["n"] for r in _rows(ws, "num")) == [1, 2, 3]


def test_a_loop_is_refused_and_nothing_is_loaded(api: Api, ws: Workspace) -> None:
    api.page("/a", {"data": [{"n": 1}], "next": "b"})
    api.page("/b", {"data": [{"n": 2}], "next": "a"})
    with pytest.raises(FormatError, match="loop"):
        ws.ingest_pages(f"{api.base}/a", dataset="loop")
    assert api.hits == {"/a": 1, "/b": 1}
    assert not any(d.name == "loop" for d in ws.datasets())


def test_a_page_answering_503_twice_is_asked_again(api: Api, ws: Workspace) -> None:
    answers = iter([(503, {"Retry-After": "0"}, b""), (503, {}, b"")])
    good = json.dumps({"data": [{"n": 1}]}).encode()
    api.routes["/busy"] = lambda _p, _q: next(answers, (200, {}, good))
    assert ws.ingest_pages(f"{api.base}/busy", dataset="busy").rows_loaded == 1
    assert api.hits["/busy"] == 3


def test_a_404_midway_commits_nothing(api: Api, ws: Workspace) -> None:
    api.page("/one", {"data": [{"n": 1}], "next": "two"})
    api.page("/two", {"data": [{"n": 2}], "next": "gone"})
    with pytest.raises(LocationNotFound):
        ws.ingest_pages(f"{api.base}/one", dataset="half")
    assert not any(d.name == "half" for d in ws.datasets())
    assert not any(p.is_file() for p in (ws.lake.root / "raw").rglob("*"))
    assert not list(ws.lake.staging.glob("pages-*"))


def test_the_page_cap(api: Api, ws: Workspace) -> None:
    for n in range(5):
        api.page(f"/{n}", {"data": [{"n": n}], "next": str(n + 1)})
    with pytest.raises(FormatError, match="more than 3 pages"):
        ws.ingest_pages(f"{api.base}/0", dataset="capped", max_pages=3)
    assert api.hits == {"/0": 1, "/1": 1, "/2": 1}


def test_a_redirect_to_cloud_metadata_is_refused_before_connecting(api: Api, ws: Workspace) -> None:
    api.page("/a", {"data": [{"n": 1}], "next": "b"})
    api.routes["/b"] = lambda _p, _q: (302, {"Location": "http://169.254.169.254/latest/"}, b"")
    with pytest.raises(UnsafeInput, match="link-local"):
        ws.ingest_pages(f"{api.base}/a", dataset="meta")


def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    """allow-private off: a public host (stub resolver, stub transport) redirecting to 10.0.0.1."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://10.0.0.1/admin"})

    options = PageOptions(max_bytes=1 << 20, retry_wait_s=0)
    with pytest.raises(UnsafeInput, match=r"private address 10\.0\.0\.1"):
        fetch_pages(
            "http://api.example.org/users",
            tmp_path,
            options,
            resolve=lambda _h, _p: ["93.184.216.34"],
            transport=httpx.MockTransport(answer),
        )
    assert asked == ["http://93.184.216.34/users"]  # the private address was never asked


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_s(httpx.Headers({"Retry-After": "7"})) == 7.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = httpx.Headers({"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"})
    assert retry_after_s(later, now=now) == 30.0
    assert retry_after_s(httpx.Headers()) is None


def test_when_one_page_changed_only_its_new_rows_load(api: Api, ws: Workspace) -> None:
    api.page("/u/a", _user("alice", 1, "b"))
    api.page("/u/b", _user("bob", 1, None))
    url = f"{api.base}/u/a"
    assert ws.ingest_pages(url, records="user_data", label="user_label").rows_loaded == 4
    api.page("/u/b", _user("bob", 2, None))  # bob typed once more
    again = ws.ingest_pages(url, records="user_data", label="user_label")
    assert again.rows_loaded == 2 and again.rows_duplicate == 4
    assert again.dataset == "a" and len(ws.rows("a", limit=100)) == 6


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env |= {"HEADWATER_HOME": str(settings.home), "HEADWATER_FETCH_ALLOW_PRIVATE": "true"}
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    command = [sys.executable, "-m", "headwater", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def test_the_cli_follows_pages_and_says_why_it_stopped(api: Api, settings: Settings) -> None:
    api.page("/users/a.json", _user("alice", 2, "b.json"))
    api.page("/users/b.json", _user("bob", 1, "gone.json"))
    url = f"{api.base}/users/a.json"
    args = ("ingest", url, "--records", "user_data", "--label", "user_label", "--json")
    missing = _cli(settings, *args, "--dataset", "typing")
    assert missing.returncode == 3 and "HTTP 404" in missing.stderr
    api.page("/users/b.json", _user("bob", 1, None))
    done = _cli(settings, *args, "--dataset", "typing")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows_loaded"] == 6 and summary["batch_ids"] == [1]
    unnamed = _cli(settings, "ingest", url, "--paginate", "link")
    assert unnamed.returncode == 4 and "name it with --records" in unnamed.stderr
    one = _cli(settings, "ingest", url, "--paginate", "link", "--records", "user_data", "--json")
    assert json.loads(one.stdout)["rows_loaded"] == 4  # no Link header: one page only
    bad = _cli(settings, "ingest", url, "--paginate", "sideways")
    assert bad.returncode == 2 and "--paginate 'sideways'" in bad.stderr


def test_retry_after_is_honoured_over_the_backoff(api: Api, tmp_path: Path) -> None:
    """Backoff would wait 30 s; the server asks for 0 s twice, so the pages come at once."""
    answers = iter([(429, {"Retry-After": "0"}, b""), (503, {"Retry-After": "0"}, b"")])
    good = json.dumps({"data": [{"n": 1}]}).encode()
    api.routes["/slow"] = lambda _p, _q: next(answers, (200, {}, good))
    options = PageOptions(max_bytes=1 << 20, allow_private=True, retry_wait_s=30)
    started = time.perf_counter()
    pages = fetch_pages(f"{api.base}/slow", tmp_path, options)
    assert time.perf_counter() - started < 5
    assert len(pages) == 1 and api.hits["/slow"] == 3
