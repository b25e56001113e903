"""Column names as files bring them: case clashes and names past PostgreSQL's 63 bytes.

The fact table stores a normalised name per column (unique without regard to case,
at most 63 bytes); everything a user sees keeps the file's own header.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat

LONG = "measurement of the customer's average monthly spend in euros, before tax "
LONG_A, LONG_B = LONG + "(first estimate)", LONG + "(second estimate)"


def _all_rows(ws: Workspace, dataset: str) -> list[dict[str, object]]:
    found = cat.get_dataset(ws.warehouse, dataset)
    out: list[dict[str, object]] = []
    for split in cat.SPLIT_KEYS:
        out.extend(cat.tabular_rows(ws.warehouse, found, split).to_pylist())
    return sorted(out, key=lambda r: str(r["hw_row_key"]))


def test_fact_column_names_are_unique_regardless_of_case_and_fit_63_bytes() -> None:
    names = ["Name", "name", "NAME", "name_2", LONG_A, LONG_B, "é" * 40]
    stored = cat.fact_column_names(names)
    # names that fit and come first stay as they are, even name_2; the others take a free suffix
    assert stored[:4] == ["Name", "name_3", "NAME_4", "name_2"]
    assert len({s.lower() for s in stored}) == len(names)
    assert all(len(s.encode()) <= 63 for s in stored)
    assert stored[4] != stored[5] and stored[4].startswith(LONG[:40])
    assert cat.fact_column_names(names) == stored  # the same names, the same answer


def test_a_csv_with_case_clashing_headers_loads_and_shows_them(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = tmp_path / "people.csv"
    data.write_text("Name,name,id\nAda,ada,1\nGrace,grace,2\n")
    workspace.ingest(data, dataset="people")
    assert list(workspace.dataset("people").columns) == ["Name", "name", "id"]
    shown = workspace.rows("people", limit=10)
    assert [(r["Name"], r["name"], r["id"]) for r in shown] == [
        ("Ada", "ada", 1),
        ("Grace", "grace", 2),
    ]
    rows = _all_rows(workspace, "people")
    assert [(r["Name"], r["name"]) for r in rows] == [("Ada", "ada"), ("Grace", "grace")]
    stored = workspace.warehouse.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s ORDER BY ordinal_position",
        ["fact_people"],
    )
    assert [c for (c,) in stored if not str(c).startswith("hw_")] == ["Name", "name_2", "id"]


def test_json_keys_that_differ_only_in_case_load(workspace: Workspace, tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    data.write_text("\n".join(json.dumps({"a": i, "A": -i}) for i in range(1, 4)) + "\n")
    workspace.ingest(data, dataset="events")
    shown = workspace.rows("events", limit=10)
    assert [(r["a"], r["A"]) for r in shown] == [(1, -1), (2, -2), (3, -3)]


def test_headers_past_63_bytes_load_distinct_and_keep_their_names(
    workspace: Workspace, tmp_path: Path
) -> None:
    header = f'"{LONG_A}","{LONG_B}",label\n'
    data = tmp_path / "spend.csv"
    data.write_text(header + "".join(f"{i},{i * 10},{'ab'[i % 2]}\n" for i in range(20)))
    workspace.ingest(data, dataset="spend", label="label")
    more = tmp_path / "spend_more.csv"
    more.write_text(header + "".join(f"{i},{i * 10},{'ab'[i % 2]}\n" for i in range(20, 25)))
    workspace.ingest(more, dataset="spend")
    assert list(workspace.dataset("spend").columns) == [LONG_A, LONG_B, "label"]
    shown = workspace.rows("spend", limit=100)
    assert sorted((r[LONG_A], r[LONG_B]) for r in shown) == [(i, i * 10) for i in range(25)]
    rows = _all_rows(workspace, "spend")
    assert sorted(r[LONG_B] for r in rows) == [i * 10 for i in range(25)]


@pytest.mark.parametrize("label", ["Label", LONG_A])
def test_a_label_column_with_a_normalised_name_is_found(
    workspace: Workspace, tmp_path: Path, label: str
) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text(f'label,"{label}"\n' + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(30)))
    workspace.ingest(data, dataset="labelled", label=label)
    found = cat.get_dataset(workspace.warehouse, "labelled")
    labels = []
    for split in cat.SPLIT_KEYS:
        labels.extend(cat.split_index(workspace.warehouse, found, split).labels.to_pylist())
    assert sorted(labels) == sorted("xy"[i % 2] for i in range(30))
