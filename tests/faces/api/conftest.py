"""A real uvicorn server on a free port, in a thread, per test and per warehouse backend.

`serve` builds one from the test's `settings` (tests/conftest.py: DuckDB and
PostgreSQL) plus `ApiConfig` overrides; `api` is the common case, with a token.
`snapshot` reads what the warehouse and lake hold, to prove a refusal wrote nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from headwater.faces.api import ApiConfig, create_app
from headwater.flows.workspace import Workspace
from headwater.settings import Settings

TOKEN = "test-token-0123456789"
UPLOAD_LIMIT = 512 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class LiveApi:
    url: str
    settings: Settings
    config: ApiConfig
    client: httpx.Client

    def upload(
        self,
        dataset: str,
        name: str,
        content: bytes,
        *,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> httpx.Response:
        return self.client.post(
            f"/datasets/{dataset}/files",
            files={"file": (name, content, "application/octet-stream")},
            headers=AUTH if headers is None else headers,
            params=params,
        )


@dataclass(frozen=True)
class Snapshot:
    """Datasets as (name, rows, batches by status), and every file under the lake."""

    datasets: tuple[tuple[str, int, tuple[tuple[int, str], ...]], ...]
    files: frozenset[str]


def snapshot(settings: Settings) -> Snapshot:
    with Workspace(settings) as workspace:
        found = []
        for summary in workspace.datasets():
            detail = workspace.dataset(summary.name)
            batches = tuple((b.batch_id, b.status) for b in detail.batches)
            found.append((detail.name, detail.rows, batches))
    root = settings.lake_root
    files = frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return Snapshot(tuple(found), files)


def start_server(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Run uvicorn in a thread on a port the OS picks; return once it accepts connections."""
    server = uvicorn.Server(
        # log_config=None: uvicorn's records go to the root logger, where pytest shows them.
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    exits: list[object] = []

    def run() -> None:
        try:
            server.run()
        except SystemExit as stop:  # uvicorn exits when the lifespan fails
            exits.append(stop.code)

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start (exit {exits}); see its log")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, int(port)


Serve = Callable[..., LiveApi]


@pytest.fixture
def serve(settings: Settings) -> Iterator[Serve]:
    """Start servers for this test's settings; each call may override `ApiConfig` fields."""
    settings = settings.model_copy(
        update={"api_token": SecretStr(TOKEN), "max_upload_bytes": UPLOAD_LIMIT}
    )
    with ExitStack() as stack:

        def start(**overrides: object) -> LiveApi:
            config = ApiConfig.from_settings(settings).model_copy(update=overrides)
            server, thread, port = start_server(create_app(settings, config=config))

            def stop() -> None:
                server.should_exit = True
                thread.join(timeout=15)

            stack.callback(stop)
            url = f"http://127.0.0.1:{port}"
            client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
            return LiveApi(url, settings, config, client)

        yield start


@pytest.fixture
def api(serve: Serve) -> LiveApi:
    return serve()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local http.server on a free port serving a fresh folder: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
