"""A batch's fields have one set of names, whichever face shows it (CLI --json, API)."""

from __future__ import annotations

import json
from pathlib import Path

from headwater.settings import Settings
from tests.builders import write_csv
from tests.faces.api.conftest import Serve
from tests.faces.cli.test_data_commands import run


def test_cli_and_api_name_a_batch_alike(settings: Settings, serve: Serve, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", 12)
    done = run(settings, "ingest", str(path), "--label", "label", "--json")
    assert done.returncode == 0, done.stderr
    (from_cli,) = json.loads(done.stdout)["batches"]
    api = serve()
    (from_api,) = api.client.get("/datasets/orders").raise_for_status().json()["batches"]
    assert from_cli["file_name"] == from_api["file_name"] == "orders.csv"
    assert "original_name" not in from_api and "original_name" not in from_cli
    shared = set(from_api) & set(from_cli)
    assert {"file_name", "batch_id", "rows_loaded", "rows_duplicate"} <= shared
