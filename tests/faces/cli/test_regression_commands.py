"""The CLI with a numeric label: datasets --json says regression, train --task, the
leaderboard by RMSE lowest first, evaluate's errors, predict's numbers, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from headwater.settings import Settings
from tests.faces.cli.test_data_commands import run
from tests.flows.test_regression import write_houses


def test_a_regression_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    houses = write_houses(tmp_path / "houses.csv", rows=500)
    assert run(settings, "ingest", str(houses), "--label", "price").returncode == 0
    (shown,) = json.loads(run(settings, "datasets", "--json").stdout)
    assert shown["task"] == "regression" and shown["task_reason"]
    refused = run(settings, "train", "--dataset", "houses", "--model", "mlp")
    assert refused.returncode == 2 and "--task classification" in refused.stderr
    bad_task = run(settings, "train", "--dataset", "houses", "--model", "ridge", "--task", "x")
    assert bad_task.returncode == 2 and "task must be one of" in bad_task.stderr
    trained = run(
        settings,
        "train",
        "--dataset",
        "houses",
        "--model",
        "ridge",
        "--task",
        "regression",
        "--alpha",
        "0.5",
    )
    assert trained.returncode == 0, trained.stderr
    assert "test RMSE" in trained.stdout and "predicted_vs_actual.png" in trained.stdout
    board = run(settings, "leaderboard", "houses")
    assert "by test_rmse (lower is better)" in board.stdout.replace("\n", " ")
    (ranked,) = json.loads(run(settings, "leaderboard", "houses", "--json").stdout)
    assert ranked["task"] == "regression" and ranked["params"]["alpha"] == 0.5
    shown_run = run(settings, "evaluate", ranked["run_id"])
    assert "test RMSE" in shown_run.stdout and "R²" in shown_run.stdout
    out = tmp_path / "predictions.csv"
    predicted = run(settings, "predict", ranked["run_id"], str(houses), "--out", str(out))
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["row_id", "predicted"] and len(rows) == 501
    truth = [float(r[-1]) for r in list(csv.reader(houses.open()))[1:]]
    errors = [float(r[1]) - t for r, t in zip(rows[1:], truth, strict=True)]
    assert (sum(e * e for e in errors) / len(errors)) ** 0.5 < 1.3
