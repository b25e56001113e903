"""Tabular data as people bring it: a text label, no split column, gaps, ids, free text, dates.

The issue's acceptance test: ingest a real-world-shaped CSV, train a random forest
and an MLP with a holdout, score a new CSV, and find the class names (not codes) in
the export, and the id and free-text columns left out with their reasons.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from headwater.flows import runs as run_flows
from headwater.flows import scoring
from headwater.flows.training import TrainRequest, train
from headwater.flows.training_data import dataset_features
from headwater.flows.workspace import Workspace
from tests.builders import write_customers_csv


@pytest.fixture
def customers(workspace: Workspace, tmp_path: Path) -> Workspace:
    path = write_customers_csv(tmp_path / "customers.csv", 300)
    report = workspace.ingest(path, dataset="customers", label="churned")
    assert report.rows_loaded == 300
    assert workspace.dataset("customers").splits == {"unassigned": 300}
    return workspace


@pytest.mark.parametrize(
    ("model", "params", "floor"),
    [("random_forest", {"n_estimators": 50}, 0.85), ("mlp", {"epochs": 40}, 0.75)],
)
def test_a_real_world_csv_trains_and_its_predictions_name_the_classes(
    customers: Workspace, tmp_path: Path, model: str, params: dict[str, int], floor: float
) -> None:
    run = train(customers, TrainRequest("customers", model, params, holdout=0.2, seed=1))
    assert run.status == "succeeded"
    assert float(str(run.metrics["test_accuracy"])) >= floor
    assert run.metrics["classes"] == {"0": "no", "1": "yes"}
    features = {f["column"]: f for f in run.metrics["features"]}  # type: ignore[union-attr]
    assert features["customer_id"]["used_as"] is None
    assert features["customer_id"]["reason"] == "identifier: a different value in every row"
    assert features["Notes (free text)"]["used_as"] is None
    assert features["Notes (free text)"]["reason"].startswith("free text: 300 distinct values")
    assert {c: features[c]["used_as"] for c in ("Annual income (EUR)", "Age", "City")} == {
        "Annual income (EUR)": "number",
        "Age": "number",
        "City": "category",
    }
    assert features["signup date"]["used_as"] == "date parts"
    assert "filled with the training median" in features["Annual income (EUR)"]["reason"]

    new = write_customers_csv(tmp_path / "new.csv", 60, seed=7, with_label=False)
    truth = [
        r["churned"]
        for r in csv.DictReader(write_customers_csv(tmp_path / "truth.csv", 60, seed=7).open())
    ]
    out = tmp_path / "predictions.csv"
    assert scoring.predict_file(customers, run.run_id, new, out) == 60
    with out.open() as handle:
        reader = csv.reader(handle)
        header, rows = next(reader), list(reader)
    assert header == ["row_id", "predicted", "p_no", "p_yes"]
    predicted = [row[1] for row in rows]
    assert set(predicted) == {"no", "yes"}
    hits = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert hits / len(truth) >= floor - 0.1


def test_the_dataset_says_what_it_will_train_on_before_any_run(customers: Workspace) -> None:
    choices = {c.column: c for c in dataset_features(customers, "customers")}
    assert [c for c, choice in choices.items() if choice.used] == [
        "Annual income (EUR)",
        "Age",
        "City",
        "signup date",
    ]
    assert choices["churned"].used_as == "label"
    assert choices["customer_id"].reason.startswith("identifier")


def test_text_labels_with_a_split_column_take_classes_from_every_split(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A class seen only in the test split no longer stops a run (its mapping read train only)."""
    lines = ["size,weight,colour,split,kind"]
    for i in range(120):
        kind = ["small", "large"][i % 2]
        split = "test" if i >= 100 else "train"
        label = "huge" if i == 119 else kind  # "huge" only in test
        size, colour = (i % 2) * 10 + i % 3, ["red", "blue"][i % 2]
        lines.append(f"{size},{i / 2},{colour},{split},{label}")
    (tmp_path / "things.csv").write_text("\n".join(lines) + "\n")
    workspace.ingest(tmp_path / "things.csv", label="kind")
    run = train(workspace, TrainRequest("things", "logistic", seed=0))
    assert run.status == "succeeded"
    assert run.metrics["classes"] == {"0": "huge", "1": "large", "2": "small"}
    rows = run.metrics["rows"]
    assert isinstance(rows, dict)
    assert rows["test"] == 20 and rows["train"] + rows["validation"] == 100
    detail = run_flows.run_detail(workspace, run.run_id).to_dict()
    assert detail["classes"] == run.metrics["classes"]
    assert {f["column"]: f["used_as"] for f in detail["features"]} == {  # type: ignore[union-attr]
        "size": "number",
        "weight": "number",
        "colour": "category",
        "split": None,
        "kind": "label",
    }
