"""`headwater profile`: the CLI parses, calls the flow, renders (the engines agree: tests/flows)."""

from __future__ import annotations

import json
from pathlib import Path

from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import write_csv
from tests.faces.cli.test_data_commands import run


def test_profile_prints_json_and_refuses_an_unknown_engine(
    settings: Settings, tmp_path: Path
) -> None:
    with Workspace(settings) as workspace:  # closed before the CLI opens the warehouse
        workspace.ingest(write_csv(tmp_path / "orders.csv", 30), label="label")
    done = run(settings, "profile", "orders", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["rows"] == 30 and found["labels"] == {"0": 10, "1": 10, "2": 10}
    price = next(c for c in found["columns"] if c["name"] == "price")
    assert (price["count"], price["min"], price["max"]) == (30, 0.0, 43.5)
    refused = run(settings, "profile", "orders", "--engine", "dask")
    assert refused.returncode == 2 and "choose one of local, spark" in refused.stderr
