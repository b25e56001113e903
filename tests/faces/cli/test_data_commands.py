"""The CLI as a user runs it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.faces.cli.app import COMMAND_MODULES, app, command_group
from headwater.settings import Settings
from tests.builders import write_csv, write_idx_pair, write_mnist_pickle, write_wide_csv


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(settings.home)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args], env=env, capture_output=True, text=True
    )


def test_ingest_datasets_show_as_json(settings: Settings, tmp_path: Path) -> None:
    path = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (30, 10, 10))
    done = run(settings, "ingest", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows_loaded"] == 50 and summary["rows_duplicate"] == 0
    assert summary["status"] == "loaded" and summary["batch_ids"] == [1]
    assert summary["seconds"] > 0

    again = json.loads(run(settings, "ingest", str(path), "--json").stdout)
    assert again["status"] == "unchanged" and again["rows_loaded"] == 0

    listed = json.loads(run(settings, "datasets", "--json").stdout)
    assert listed[0]["name"] == "mnist"
    assert listed[0]["splits"] == {"train": 30, "validation": 10, "test": 10}

    rows = json.loads(run(settings, "show", "mnist", "--limit", "4", "--json").stdout)
    assert len(rows) == 4 and {r["split"] for r in rows} == {"train"}
    assert rows[0]["label"] == "0" and len(rows[0]["pixels"]) > 0


def test_human_output_names_rows_duplicates_batch_and_time(
    settings: Settings, tmp_path: Path
) -> None:
    write_idx_pair(tmp_path, "train", 12)
    done = run(settings, "ingest", str(tmp_path), "--dataset", "digits")
    assert done.returncode == 0, done.stderr
    assert "12 rows" in done.stdout and "0 duplicates" in done.stdout
    assert "batch 1" in done.stdout and " s" in done.stdout
    table = run(settings, "datasets").stdout
    assert "digits" in table and "12" in table


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda p: ["ingest", str(p / "missing.csv")], 4, "missing.csv: no such file"),
        (lambda p: ["show", "nothing"], 3, "dataset 'nothing' does not exist"),
        (lambda p: ["show", "x", "--limit", "5000"], 2, "limit must be between 1 and 1000"),
        (lambda p: ["ingest", str(p / "ok.csv"), "--dataset", "Bad Name"], 2, "dataset name"),
    ],
    ids=["missing-file", "unknown-dataset", "limit", "bad-name"],
)
def test_errors_exit_non_zero_with_one_line(
    settings: Settings, tmp_path: Path, make_args: object, code: int, message: str
) -> None:
    write_csv(tmp_path / "ok.csv", 3)
    if "limit" in message:
        run(settings, "ingest", str(tmp_path / "ok.csv"), "--dataset", "x")
    done = run(settings, *make_args(tmp_path))  # type: ignore[operator]
    assert done.returncode == code, done.stderr
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        name
        for name, module in COMMAND_MODULES.items()
        if not hasattr(command_group(module).commands[name], "commands")  # groups have no example
    ],
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    """In this process (help reads no settings, opens nothing): a process per command cost
    3-7 s of imports each."""
    done = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    assert "Example: headwater" in done.output


def test_show_prints_a_wide_table_one_record_per_block(settings: Settings, tmp_path: Path) -> None:
    path = write_wide_csv(tmp_path / "wide.csv", columns=40, rows=5)
    assert run(settings, "ingest", str(path)).returncode == 0
    done = run(settings, "show", "wide", "--limit", "3", "--offset", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("record ")] == ["2", "3", "4"]
    for j in (0, 17, 39):  # every value whole, on its own line, once per record
        found = [line.split() for line in lines if line.startswith(f"column_{j:02d} ")]
        assert found == [[f"column_{j:02d}", f"v{i}_{j}"] for i in (1, 2, 3)]
    assert "…" not in done.stdout

    narrow = run(settings, "show", "wide", "-n", "2", "--columns", "column_17, column_03")
    assert narrow.returncode == 0, narrow.stderr
    assert "record" not in narrow.stdout and "column_04" not in narrow.stdout
    header = next(line for line in narrow.stdout.splitlines() if "column_17" in line)
    assert header.index("column_17") < header.index("column_03")
    assert "v1_17" in narrow.stdout and "v1_3 " in narrow.stdout

    picked = json.loads(run(settings, "show", "wide", "--columns", "column_05", "--json").stdout)
    assert picked == [{"column_05": f"v{i}_5"} for i in range(5)]
    unknown = run(settings, "show", "wide", "--columns", "column_05,nope")
    assert unknown.returncode == 2
    assert "wide has no column 'nope'; its columns: row_id, batch_id, split, column_00" in (
        unknown.stderr
    )
