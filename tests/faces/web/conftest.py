"""A real server on a free port and Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here, so the browser is
``/usr/bin/chromium`` (Debian's chromium package). Without it the browser tests
skip, except in CI, where a missing browser fails the run.

`site` starts a server per test on the test's backend (tests/conftest.py);
`mnist_site` is one server per session holding real MNIST (data/mnist.pkl.gz)
and an MLP trained on it through the core, for the predict and draw tests.
Every browser test leaves screenshots under test-artifacts/web/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from headwater.faces.api import ApiConfig, create_app
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.faces.api.conftest import TOKEN, start_server

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPO_MNIST = ROOT / "data" / "mnist.pkl.gz"
MNIST_MLP = {"epochs": 4, "batch_size": 128, "n_threads": 1}
"""Real MNIST, 4 epochs: 96% test accuracy in a few seconds. One thread: torch threads spin
and crawl when the other core is busy (2 threads took 45 s instead of 3 there)."""


@dataclass
class Site:
    url: str
    settings: Settings

    def client(self) -> httpx.Client:
        """An HTTP client that sends this site's Origin, as a browser's form post would."""
        return httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=60)


def _serve(settings: Settings, **overrides: object) -> Iterator[Site]:
    config = ApiConfig.from_settings(settings).model_copy(update=overrides)
    server, thread, port = start_server(create_app(settings, config=config))
    try:
        yield Site(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def site(settings: Settings) -> Iterator[Site]:
    """A server with a token on this test's backend (DuckDB and PostgreSQL)."""
    yield from _serve(settings.model_copy(update={"api_token": SecretStr(TOKEN)}))


@pytest.fixture(scope="session")
def mnist_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Real MNIST ingested and an MLP trained through the core, then a server over them."""
    settings = Settings(
        home=tmp_path_factory.mktemp("mnist-site") / "home", api_token=SecretStr(TOKEN)
    )
    with Workspace(settings) as workspace:
        workspace.ingest(REPO_MNIST, dataset="mnist")
        train(workspace, TrainRequest("mnist", "mlp", MNIST_MLP))
    yield from _serve(settings)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing at /usr/bin/chromium; install chromium in CI")
        pytest.skip("install Debian's chromium (apt-get install chromium) for the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


def _artifact_name(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node).strip("_")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page (desktop width); its last state is saved as a screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        shoot(opened, _artifact_name(request.node.name) + "-final")
        context.close()


def shoot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/web/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Any, site: Site, *, next_path: str = "/") -> None:
    page.goto(f"{site.url}/ui/login?next={next_path}")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}{next_path}")
