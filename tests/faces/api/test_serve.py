"""`headwater serve` as a user runs it: a real process answering on the port it was given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from typer.testing import CliRunner

from headwater.faces.cli import serve_command

# Until the command is wired into `headwater`, a two-command app stands in for it.
LAUNCH = (
    "import typer\n"
    "from headwater.faces.cli import serve_command\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "serve_command.register(app)\n"
    "app()\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_has_help_with_an_example() -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    serve_command.register(app)
    done = CliRunner().invoke(app, ["serve", "--help"])
    assert done.exit_code == 0
    assert "Example: headwater serve" in done.output and "--port" in done.output


def test_serve_answers_on_its_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(tmp_path / "home")
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "headwater serve did not start in 30 s"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["warehouse"] == "duckdb"
        refused = httpx.post(
            f"http://127.0.0.1:{port}/datasets/x/sources", json={"url": "http://a.example/x.csv"}
        )
        # No HEADWATER_API_TOKEN on loopback: serve made a one-time token, so an anonymous write is 401.
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=15)
