"""`headwater synthesize` and `synthesize-report` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from headwater.learning.synth.example import mixed_table
from headwater.settings import Settings
from tests.faces.cli.test_data_commands import run


def _ingest(settings: Settings, tmp_path: Path, rows: int = 800) -> None:
    table = mixed_table(rows, seed=4)
    table = table.append_column("id", pa.array([f"u{i}x" for i in range(rows)]))
    pacsv.write_csv(table, tmp_path / "people.csv")
    done = run(
        settings,
        "ingest",
        str(tmp_path / "people.csv"),
        "--dataset",
        "people",
        "--label",
        "segment",
    )
    assert done.returncode == 0, done.stderr


def test_synthesize_prints_the_headline_and_the_report_reads_back(
    settings: Settings, tmp_path: Path
) -> None:
    _ingest(settings, tmp_path)
    made = run(
        settings,
        "synthesize",
        "people",
        "--method",
        "copula",
        "--rows",
        "500",
        "--into",
        "fake",
        "--seed",
        "2",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    headline = json.loads(made.stdout)
    assert {"dataset", "rows", "method", "fidelity", "utility", "detectability", "privacy"} <= set(
        headline
    )
    assert headline["dataset"] == "fake" and headline["rows"] == 500
    assert 0 <= headline["fidelity"]["overall"] <= 100
    assert headline["privacy"]["exact_copies"] == 0
    assert headline["left_out"] == {"id": "identifier: a different value in every row"}

    shown = run(settings, "synthesize-report", "fake")
    assert shown.returncode == 0, shown.stderr
    assert "fidelity" in shown.stdout and "left out id: identifier" in shown.stdout
    assert "report.html" in shown.stdout
    whole = json.loads(run(settings, "synthesize-report", "fake", "--json").stdout)
    assert whole["lineage"]["source"] == "people"


def test_bad_input_exits_with_a_clear_error_and_registers_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    _ingest(settings, tmp_path, rows=100)
    unknown = run(settings, "synthesize", "people", "--method", "gan", "--rows", "5", "--into", "x")
    assert unknown.returncode == 2 and "unknown synthesis method 'gan'" in unknown.stderr
    many = run(settings, "synthesize", "people", "--rows", "1001", "--into", "x")
    assert many.returncode == 2 and "pass --force" in many.stderr
    missing = run(settings, "synthesize", "nobody", "--rows", "5", "--into", "x")
    assert missing.returncode == 3
    assert json.loads(run(settings, "runs", "--json").stdout) == []
    assert run(settings, "synthesize-report", "people").returncode == 3
