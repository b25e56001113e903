"""Run a `headwater` command until it pauses at a step boundary, then SIGKILL it there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from headwater.settings import Settings


def env_for(settings: Settings, step: str, chunk_rows: int = 500) -> dict[str, str]:
    """The environment that points a child process at these settings and this pause."""
    env = dict(os.environ)
    env["HEADWATER_HOME"] = str(settings.home)
    env["HEADWATER_INGEST_CHUNK_ROWS"] = str(chunk_rows)
    env["HEADWATER_TEST_PAUSE_AT"] = step
    env.pop("HEADWATER_WAREHOUSE_URL", None)
    env.pop("HEADWATER_WAREHOUSE_SCHEMA", None)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return env


def kill_at(step: str, args: list[str], settings: Settings, chunk_rows: int = 500) -> None:
    """Run ``headwater ARGS`` until it says it paused at ``step``, then SIGKILL it there."""
    child = subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        env=env_for(settings, step, chunk_rows),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(60, child.kill)  # a child that never pauses fails, never hangs
    watchdog.start()
    assert child.stderr is not None
    seen = []
    try:
        for line in child.stderr:
            seen.append(line)
            if line.strip() == f"headwater: paused at {step}":
                child.send_signal(signal.SIGKILL)
                break
        child.wait(timeout=60)
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, f"never paused at {step}: " + "".join(seen[-5:])
