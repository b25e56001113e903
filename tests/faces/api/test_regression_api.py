"""The API with a regressor: datasets say their task, POST /runs takes one, a model for the
other task is a 409, the leaderboard ranks by RMSE and says so, predict answers numbers (a
forest's with its 90% interval, in the JSON answer and the scored CSV)."""

from __future__ import annotations

from pathlib import Path

from tests.faces.api.conftest import AUTH, LiveApi, train_run
from tests.flows.test_regression import write_houses


def test_a_regressor_through_the_api(api: LiveApi, tmp_path: Path) -> None:
    data = write_houses(tmp_path / "houses.csv", rows=400).read_bytes()
    assert api.upload("houses", "houses.csv", data, label="price").status_code == 201
    client = api.client
    (shown,) = client.get("/datasets", headers=AUTH).json()["datasets"]
    assert shown["task"] == "regression" and "distinct numbers" in shown["task_reason"]
    wrong = client.post("/runs", json={"dataset": "houses", "model": "logistic"}, headers=AUTH)
    assert wrong.status_code == 409 and "regression" in wrong.json()["detail"]
    ridge = train_run(client, dataset="houses", model="ridge", task="regression")
    forest = train_run(client, dataset="houses", model="random_forest_regressor", n_estimators=20)
    assert ridge["task"] == "regression" and "test_rmse" in ridge["metrics"]
    board = client.get("/datasets/houses/leaderboard", headers=AUTH).json()
    assert board["metric"] == "test_rmse" and board["order"] == "lower is better"
    assert [r["run_id"] for r in board["runs"]] == [ridge["run_id"], forest["run_id"]]
    row = {"area (m2)": 90, "age": 10, "rooms": 3, "region": "coast", "listed_on": "2024-02-02"}
    answer = client.post(f"/models/{ridge['run_id']}/predict", json={"rows": [row]}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    expected = 10 + 0.04 * 90 - 0.07 * 10 + 0.6 * 3 + 2
    assert abs(prediction["value"] - expected) < 0.5 and prediction["probabilities"] == {}
    assert answer.json()["coverage"] is None and prediction["lower"] is None  # ridge: no interval
    answer = client.post(f"/models/{forest['run_id']}/predict", json={"rows": [row]}, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["coverage"] == 0.9, answer.text
    (prediction,) = answer.json()["predictions"]
    assert prediction["lower"] < prediction["value"] < prediction["upper"]
    assert prediction["lower"] < expected < prediction["upper"]
    scored = client.post(
        f"/models/{forest['run_id']}/score",
        files={
            "file": ("new.csv", write_houses(tmp_path / "new.csv", rows=5, seed=3).read_bytes())
        },
        headers=AUTH,
    )
    lines = scored.text.splitlines()
    assert scored.status_code == 200 and lines[0] == "row_id,predicted,lower_90,upper_90"
    value, low, high = (float(v) for v in lines[1].split(",")[1:])
    assert len(lines) == 6 and low < value < high
