"""Runs whose process dies or is told to stop, tried with real processes on both backends.

A SIGKILLed `headwater train` leaves its run ``running``; the next read of the registry
marks it ``abandoned`` with the reason. SIGTERM stops `headwater serve` (with a run
training and a browser watching its live stream) and `headwater ingest` in bounded time:
the run ends ``interrupted``, the ingest leaves no batch, no curated file, no staging file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from headwater.flows import runs as run_flows
from headwater.flows.lifecycle import RunSpec, reap_abandoned, run_lifecycle
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry
from tests.builders import write_small_digits

TOKEN = "run-faults-token-0123456789"
EXIT_S = 15
_LATER: list[str] = []


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(settings.home)
    env["HEADWATER_CONFIG"] = str(settings.home / "no-such-config.toml")
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return {**env, **extra}


@pytest.fixture
def digits(settings: Settings, tmp_path: Path) -> Settings:
    """The small digits dataset, ingested; the warehouse closed again for the child process."""
    with Workspace(settings) as ws:
        ws.ingest(write_small_digits(tmp_path / "digits.npz"))
    return settings


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


def _start(
    children: list[subprocess.Popen[str]], args: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "headwater", "-v", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    return child


def _wait_for_line(child: subprocess.Popen[str], needle: str, timeout_s: float = 120) -> str:
    """Read the child's stderr until a line holds ``needle``; keep draining it afterwards."""
    assert child.stderr is not None
    watchdog = threading.Timer(timeout_s, child.kill)  # a child that never says it fails
    watchdog.start()
    seen: list[str] = []
    try:
        for line in child.stderr:
            seen.append(line)
            if needle in line:
                rest = threading.Thread(target=lambda: _LATER.append(child.stderr.read()))
                rest.start()  # drained, so a chatty child never blocks on a full pipe
                return line
    finally:
        watchdog.cancel()
    raise AssertionError(f"the child never logged {needle!r}; it said:\n{''.join(seen)}")


def test_a_sigkilled_training_run_is_abandoned_when_runs_are_listed(
    digits: Settings, children: list[subprocess.Popen[str]]
) -> None:
    child = _start(
        children,
        ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "500", "--batch-size", "8"],
        _env(digits),
    )
    _wait_for_line(child, "started (pid")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=EXIT_S)
    with Workspace(digits) as ws:
        (before,) = registry.list_runs(ws.warehouse)
    assert before.status == "running" and before.worker_pid == child.pid
    listed = subprocess.run(
        [sys.executable, "-m", "headwater", "runs", "--json"],
        env=_env(digits),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (run,) = json.loads(listed.stdout)
    assert run["status"] == "abandoned" and run["finished_at"] is not None
    assert f"pid {child.pid}" in str(run["error"]) and "is gone" in str(run["error"])


def test_sigterm_interrupts_headwater_train(
    digits: Settings, children: list[subprocess.Popen[str]]
) -> None:
    child = _start(
        children,
        ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "500", "--batch-size", "8"],
        _env(digits),
    )
    _wait_for_line(child, "started (pid")
    began = time.monotonic()
    child.send_signal(signal.SIGTERM)
    code = child.wait(timeout=EXIT_S)
    time.sleep(0.5)
    assert code == 143 and time.monotonic() - began < EXIT_S, _LATER
    with Workspace(digits) as ws:
        (run,) = run_flows.list_runs(ws)
    assert run.status == "interrupted" and "SIGTERM" in str(run.error)


def test_a_run_silent_past_the_bound_is_abandoned_and_a_beating_one_is_not(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    wh, key = workspace.warehouse, cat.get_dataset(workspace.warehouse, "digits").key
    now = datetime.now(UTC)
    elsewhere = registry.Worker(4242, "another-host")
    for run_id, beat in (("silent", now - timedelta(seconds=31)), ("beating", now)):
        registry.create_run(
            wh,
            run_id=run_id,
            dataset_key=key,
            model="mlp",
            params={},
            seed=0,
            evaluation="holdout",
            code_version="x",
            now=beat,
            worker=elsewhere,
        )
        registry.start_run(wh, run_id, now=beat, worker=elsewhere)
    assert reap_abandoned(workspace) == ["silent"]  # 31 s > 3 x the default 10 s
    silent = registry.get_run(wh, "silent")
    assert silent.status == "abandoned" and "no heartbeat for 31 s" in str(silent.error)
    assert registry.get_run(wh, "beating").status == "running"


def test_a_living_run_beats_in_the_background(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    workspace.settings.run_heartbeat_seconds = 0.2
    spec = RunSpec(cat.get_dataset(workspace.warehouse, "digits"), "mlp", {}, 0, "holdout")
    with pytest.raises(KeyboardInterrupt), run_lifecycle(workspace, spec) as run:
        run.start()
        first = registry.get_run(workspace.warehouse, run.run_id).heartbeat_at
        time.sleep(1.0)
        later = registry.get_run(workspace.warehouse, run.run_id).heartbeat_at
        assert first is not None and later is not None and later > first
        assert reap_abandoned(workspace) == []  # its own process holds it
        raise KeyboardInterrupt
    assert registry.get_run(workspace.warehouse, run.run_id).status == "interrupted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _watch_events(url: str) -> None:
    """A browser on the run page: the live event stream held open."""
    try:
        with httpx.stream("GET", url, timeout=None) as response:
            for _ in response.iter_lines():
                pass
    except httpx.HTTPError:
        pass


def test_sigterm_stops_serve_while_a_run_trains_and_marks_it_interrupted(
    digits: Settings, children: list[subprocess.Popen[str]]
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(
        children, ["serve", "--port", str(port)], _env(digits, HEADWATER_API_TOKEN=TOKEN)
    )
    _wait_for_line(server, "Uvicorn running")
    body = {"dataset": "digits", "model": "mlp", "epochs": 458, "batch_size": 32}
    answer = httpx.post(
        f"{base}/runs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/runs/{run_id}", timeout=10).json()["progress"].get("epoch") is None:
        assert time.monotonic() < deadline, "the run never finished an epoch"
        time.sleep(0.2)
    events = f"{base}/ui/runs/{run_id}/events"
    threading.Thread(target=_watch_events, args=(events,), daemon=True).start()
    time.sleep(1)
    began = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=EXIT_S)
    assert time.monotonic() - began < EXIT_S
    with Workspace(digits) as ws:
        run = run_flows.run_detail(ws, run_id).run
    assert run.status == "interrupted" and "shutting down" in str(run.error)
    assert int(str(run.progress["epoch"])) < 458


def _big_csv(path: Path, rows: int = 400_000) -> Path:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 1000, size=rows),
            "label": rng.integers(0, 3, size=rows),
        }
    )
    pacsv.write_csv(table, path)
    return path


def test_sigterm_stops_an_ingest_with_nothing_half_written(
    settings: Settings, tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    source = _big_csv(tmp_path / "orders.csv")
    child = _start(
        children, ["ingest", str(source)], _env(settings, HEADWATER_INGEST_CHUNK_ROWS="2000")
    )
    _wait_for_line(child, "rows read")
    began = time.monotonic()
    child.send_signal(signal.SIGTERM)
    code = child.wait(timeout=EXIT_S)
    assert time.monotonic() - began < EXIT_S and code == 143
    lake = settings.home / "lake"
    assert list((lake / "curated").rglob("*.parquet")) == []
    assert list((lake / "_staging").rglob("*")) == []
    with Workspace(settings) as ws:
        assert cat.list_batches(ws.warehouse) == []
