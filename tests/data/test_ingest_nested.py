"""JSON records with nested objects and lists load, show and append alike on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.data.features import choose_features
from headwater.flows.training_data import dataset_features
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.faces.cli.test_data_commands import run


def _records(start: int, n: int) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "address": {"city": f"town {i}", "zip": 1000 + i},
            "tags": ["a", f"t{i}"] if i % 3 else [],
            "items": [{"sku": f"s{i}", "qty": i % 4}],
            "score": i / 2,
        }
        for i in range(start, start + n)
    ]


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_nested_records_load_show_and_append(workspace: Workspace, tmp_path: Path) -> None:
    first = _write_jsonl(tmp_path / "orders.jsonl", _records(0, 30))
    report = workspace.ingest(first, dataset="orders")
    assert report.rows_loaded == 30
    assert workspace.dataset("orders").rows == 30

    rows = workspace.rows("orders", limit=3)
    assert [r["id"] for r in rows] == [0, 1, 2]
    # nested values come back as JSON text, equal to what the file held, on both backends
    assert json.loads(str(rows[1]["address"])) == {"city": "town 1", "zip": 1001}
    assert json.loads(str(rows[1]["tags"])) == ["a", "t1"]
    assert json.loads(str(rows[0]["tags"])) == []
    assert json.loads(str(rows[2]["items"])) == [{"sku": "s2", "qty": 2}]

    second = _write_jsonl(tmp_path / "more.jsonl", _records(30, 20))
    again = workspace.ingest(second, dataset="orders")
    assert again.rows_loaded == 20
    assert workspace.dataset("orders").rows == 50
    last = workspace.rows("orders", limit=1, offset=49)[0]
    assert json.loads(str(last["items"])) == [{"sku": "s49", "qty": 1}]


def test_show_prints_nested_values_as_json(settings: Settings, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "orders.jsonl", _records(0, 5))
    assert run(settings, "ingest", str(path), "--dataset", "orders").returncode == 0
    shown = run(settings, "show", "orders", "--limit", "2", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert json.loads(rows[1]["address"]) == {"city": "town 1", "zip": 1001}
    table = run(settings, "show", "orders", "--limit", "2")
    assert table.returncode == 0, table.stderr
    assert '"city": "town 1"' in table.stdout or '"city":"town 1"' in table.stdout


def test_features_leave_nested_columns_out(workspace: Workspace, tmp_path: Path) -> None:
    workspace.ingest(_write_jsonl(tmp_path / "orders.jsonl", _records(0, 40)), dataset="orders")
    choices = {c.column: c for c in dataset_features(workspace, "orders")}
    for name in ("address", "tags", "items"):
        assert not choices[name].used
        assert "nested value" in choices[name].reason
    assert choices["score"].used


def test_chooser_leaves_arrow_nested_types_out() -> None:
    table = pa.table({"y": [0, 1, 0, 1], "x": [1.0, 2.0, 3.0, 5.0], "obj": _records(0, 4)})
    choices = {c.column: c for c in choose_features(table, label="y")}
    assert not choices["obj"].used and "nested value" in choices["obj"].reason
    assert choices["x"].used


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_too_many_fields_names_the_postgres_limit(settings: Settings, tmp_path: Path) -> None:
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps([{f"k{i}": i for i in range(2000)}]))
    done = run(settings, "ingest", str(wide), "--dataset", "wide")
    assert done.returncode == 4, done.stderr
    assert "wide.json" in done.stderr and "1,600" in done.stderr and "DuckDB" in done.stderr
    assert "Traceback" not in done.stderr
