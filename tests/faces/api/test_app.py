"""The app factory: nothing happens at import, and a warehouse that is not there stops start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.faces.api import create_app
from headwater.settings import Settings
from tests.faces.api.conftest import start_server


def test_importing_the_api_reads_no_settings_and_opens_nothing() -> None:
    env = {**os.environ, "HEADWATER_WAREHOUSE_URL": "bogus://not-read-at-import"}
    done = subprocess.run(
        [sys.executable, "-c", "import headwater.faces.api.app"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_an_unreachable_warehouse_stops_the_server_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        home=tmp_path, warehouse_url="postgresql://postgres@127.0.0.1:9/none?connect_timeout=2"
    )
    with pytest.raises(RuntimeError, match="did not start"):
        start_server(create_app(settings))
    assert "WarehouseUnavailable: cannot connect to PostgreSQL" in caplog.text
