"""A newcomer's path, `make run` then click train: `headwater serve` with no token, a real
process on a free port, its printed login URL opened in Chromium, a model trained from the
train page."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import write_small_digits
from tests.faces.web.conftest import shoot

LOGIN_URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+")
START_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """`headwater serve` in its own process; what it prints is collected as it comes."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env["HEADWATER_HOME"] = str(home)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str]) -> str:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            found = pattern.search("".join(self.lines))
            if found:
                return found.group(0)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"headwater serve printed no {pattern.pattern}:\n{self.output}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def digits_home(tmp_path: Path) -> Path:
    """A home folder holding the small digits dataset, ingested before the server starts."""
    home = tmp_path / "home"
    with Workspace(Settings(home=home)) as workspace:
        workspace.ingest(write_small_digits(tmp_path / "digits.npz"), dataset="digits")
    return home


@pytest.fixture
def served(digits_home: Path) -> Iterator[tuple[Served, str]]:
    server = Served(digits_home, "--host", "127.0.0.1", "--port", str(_free_port()))
    try:
        yield server, server.wait_for(LOGIN_URL)
    finally:
        server.stop()


def test_the_printed_login_url_signs_in_and_a_model_trains_from_the_page(
    served: tuple[Served, str], page: Any
) -> None:
    server, url = served
    base = url.split("/?", 1)[0]
    assert server.output.rstrip().endswith(url), "the login URL is the last thing shown"
    anonymous = httpx.post(f"{base}/ui/train", data={"dataset": "digits"}, headers={"Origin": base})
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]

    page.goto(url)
    expect(page).to_have_url(f"{base}/")  # the token is taken out of the address bar
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.get_by_role("link", name="Train", exact=True).first.click()
    expect(page.get_by_label("Dataset")).to_have_value("digits")
    expect(page.get_by_label("Model type")).to_have_value("mlp")
    page.locator("#mlp-density-slider").fill("20")
    expect(page.locator("#mlp-density")).to_have_value("20")
    page.locator("#mlp-epochs").fill("3")
    page.locator("#mlp-batch_size").fill("64")
    shoot(page, "newcomer-train-form")
    page.get_by_role("button", name="Start training").click()

    page.wait_for_url(re.compile(r"/ui/runs/[0-9a-f]+$"))
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#metrics")).to_be_visible()
    shoot(page, "newcomer-run")
    run_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("link", name="Leaderboard").first.click()
    expect(page.locator(f"tr[data-run='{run_id}']")).to_contain_text("density=20")


def test_a_wrong_token_in_the_url_signs_nobody_in(served: tuple[Served, str], page: Any) -> None:
    _, url = served
    base = url.split("/?", 1)[0]
    page.goto(f"{base}/ui/leaderboard?token=not-the-token-of-this-run")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fleaderboard&failed=token$"))
    expect(page.get_by_role("alert")).to_contain_text("does not match this server's")
    assert "not-the-token" not in page.url
