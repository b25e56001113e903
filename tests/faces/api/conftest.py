"""A real uvicorn server on a free port, in a thread, per test and per warehouse backend.

`serve` builds one from the test's `settings` (tests/conftest.py: DuckDB and
PostgreSQL) plus `ApiConfig` overrides; `api` is the common case, with a token.
`snapshot` reads what the warehouse and lake hold, to prove a refusal wrote nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from headwater.faces.api import ApiConfig, create_app
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import write_csv, write_mnist_pickle
from tests.conftest import BACKENDS, _postgres_or_skip

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


# -- a server with trained models, shared by the run and model tests of one backend ------------

RUN_DONE = {"succeeded", "failed"}
FAST_MLP = {"epochs": 2, "batch_size": 32, "density": 16}


def wait_for_run(client: httpx.Client, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll GET /runs/{id} until it succeeded or failed; return its detail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail: dict[str, Any] = client.get(f"/runs/{run_id}").raise_for_status().json()
        if detail["status"] in RUN_DONE:
            return detail
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


def train_run(client: httpx.Client, **body: object) -> dict[str, Any]:
    submitted = client.post("/runs", json=body, headers=AUTH)
    assert submitted.status_code == 202, submitted.text
    detail = wait_for_run(client, submitted.json()["run_id"])
    assert detail["status"] == "succeeded", detail
    return detail


@dataclass
class Trained:
    """A live API per backend holding 'mnist' (28x28 images) and 'orders' (a table), each with
    a succeeded run: an MLP and a logistic regression."""

    api: LiveApi
    image_run: str
    table_run: str


def _backend_settings(backend: str, home: Path) -> Iterator[Settings]:
    if backend == "duckdb":
        yield Settings(home=home, api_token=SecretStr(TOKEN), max_upload_bytes=64 * 1024**2)
        return
    url = _postgres_or_skip()
    schema = f"hw_test_{uuid.uuid4().hex[:12]}"
    yield Settings(
        home=home,
        warehouse_url=url,
        warehouse_schema=schema,
        api_token=SecretStr(TOKEN),
        max_upload_bytes=64 * 1024**2,
    )
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(schema)
            )
        )


@pytest.fixture(scope="package", params=BACKENDS, ids=str)
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trained]:
    folder = tmp_path_factory.mktemp(f"trained-{request.param}")
    for settings in _backend_settings(str(request.param), folder / "home"):
        config = ApiConfig.from_settings(settings).model_copy(update={"training_queue": 1})
        server, thread, port = start_server(create_app(settings, config=config))
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                api = LiveApi(url, settings, config, client)
                mnist = write_mnist_pickle(folder / "mnist.pkl.gz", (300, 50, 50))
                assert api.upload("mnist", "mnist.pkl.gz", mnist.read_bytes()).status_code == 201
                orders = write_csv(folder / "orders.csv", 200).read_bytes()
                assert api.upload("orders", "orders.csv", orders, label="label").status_code == 201
                image_run = train_run(client, dataset="mnist", model="mlp", **FAST_MLP)
                table_run = train_run(client, dataset="orders", model="logistic")
                yield Trained(api, image_run["run_id"], table_run["run_id"])
        finally:
            server.should_exit = True
            thread.join(timeout=30)
