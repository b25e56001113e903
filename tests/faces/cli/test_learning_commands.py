"""The learning commands as a user types them: train, runs, leaderboard, evaluate, predict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from headwater.settings import Settings
from tests.builders import write_customers_csv, write_small_digits
from tests.faces.cli.test_data_commands import run


def test_train_list_rank_evaluate_and_predict(settings: Settings, tmp_path: Path) -> None:
    assert run(settings, "ingest", str(write_small_digits(tmp_path / "digits.npz"))).returncode == 0

    trained = run(settings, "train", "--dataset", "digits", "--model", "logistic")
    assert trained.returncode == 0, trained.stderr
    assert "test accuracy" in trained.stdout and "confusion_matrix.png" in trained.stdout

    (listed,) = json.loads(run(settings, "runs", "--json").stdout)
    assert listed["model"] == "logistic" and listed["status"] == "succeeded"
    assert 0.8 < listed["metrics"]["test_accuracy"] <= 1.0
    board = json.loads(run(settings, "leaderboard", "digits", "--json").stdout)
    assert [r["run_id"] for r in board] == [listed["run_id"]]

    shown = run(settings, "evaluate", listed["run_id"])
    assert shown.returncode == 0 and "precision" in shown.stdout
    assert "test: 297 rows" in shown.stdout

    images = np.load(tmp_path / "digits.npz")["x_test"][:5]
    np.savez(tmp_path / "five.npz", x=images, y=np.zeros(5, np.int64))
    out = tmp_path / "predictions.csv"
    predicted = run(
        settings, "predict", listed["run_id"], str(tmp_path / "five.npz"), "--out", str(out)
    )
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and {"row_id", "predicted", "p_0"} <= set(rows[0])


def test_bad_parameters_exit_2_and_register_nothing(settings: Settings, tmp_path: Path) -> None:
    run(settings, "ingest", str(write_small_digits(tmp_path / "digits.npz")))
    done = run(settings, "train", "--dataset", "digits", "--density", "0")
    assert done.returncode == 2
    assert "density must be an integer in [1, 100000], got 0" in done.stderr
    assert json.loads(run(settings, "runs", "--json").stdout) == []
    missing = run(settings, "train", "--dataset", "nope")
    assert missing.returncode == 3 and "does not exist" in missing.stderr


def test_a_detector_run_evaluates_to_its_threshold(settings: Settings, tmp_path: Path) -> None:
    run(settings, "ingest", str(write_small_digits(tmp_path / "digits.npz")))
    trained = run(settings, "anomalies", "digits", "--train", "--epochs", "2")
    assert trained.returncode == 0, trained.stderr
    (listed,) = json.loads(run(settings, "runs", "--json").stdout)
    assert listed["model"] == "autoencoder" and "threshold" in listed["metrics"]
    shown = run(settings, "evaluate", listed["run_id"])
    assert "threshold" in shown.stdout and "test_flag_rate" in shown.stdout
    assert "precision" not in shown.stdout


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_unknown_commands_and_options_print_the_usage_and_exit_2(settings: Settings) -> None:
    for args, problem in [
        (("nope",), "No such command 'nope'"),
        (("ingest", "x", "--nope"), "No such option: --nope"),
        (("train", "--dataset", "x", "--density", "many"), "Invalid value for '--density'"),
    ]:
        done = run(settings, *args)
        assert done.returncode == 2, done.stderr
        said = " ".join(done.stderr.split())
        assert "Usage: headwater" in said and problem in said
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_any_model_parameter_is_set_from_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    run(settings, "ingest", str(write_small_digits(tmp_path / "digits.npz")))
    empty = run(settings, "leaderboard", "digits")
    assert "train one: headwater train --dataset digits" in " ".join(empty.stdout.split())
    args = ["--model", "random_forest", "--n-estimators", "7", "--max-depth", "3"]
    trained = run(settings, "train", "--dataset", "digits", *args, "--min-samples-leaf", "2")
    assert trained.returncode == 0, trained.stderr
    (listed,) = json.loads(run(settings, "runs", "--json").stdout)
    assert (
        listed["params"] | {"n_estimators": 7, "max_depth": 3, "min_samples_leaf": 2}
        == (listed["params"])
    )
    table = " ".join(run(settings, "runs").stdout.split())
    assert "n_estimators=7" in table and "min_samples_leaf=2" in table
    wrong = run(settings, "train", "--dataset", "digits", "--model", "logistic", "--density", "3")
    assert wrong.returncode == 2
    assert "logistic has no parameter density; its parameters are: seed, c, max_iter" in (
        " ".join(wrong.stderr.split())
    )


def test_evaluate_names_the_classes_and_why_columns_were_left_out(
    settings: Settings, tmp_path: Path
) -> None:
    path = write_customers_csv(tmp_path / "customers.csv", 200)
    assert run(settings, "ingest", str(path), "--label", "churned").returncode == 0
    trained = run(
        settings, "train", "--dataset", "customers", "--model", "random_forest", "--holdout", "0.2"
    )
    assert trained.returncode == 0, trained.stderr
    (listed,) = json.loads(run(settings, "runs", "--json").stdout)

    shown = run(settings, "evaluate", listed["run_id"])
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}
    assert {"no", "yes"} <= set(rows) and "0" not in rows  # class names, not codes
    assert "left out" in rows["customer_id"]
    assert "identifier: a different value in every row" in rows["customer_id"]
    assert "free text: 200 distinct values" in rows["Notes (free text)"]
    assert (
        "number" in rows["Annual income (EUR)"] and "training median" in rows["Annual income (EUR)"]
    )
    assert "date parts" in rows["signup date"]
