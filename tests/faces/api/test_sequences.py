"""``/sequences`` and ``POST /runs`` on pages of keystrokes: analyze → train named → predict."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from headwater.flows.keystroke_demo import PHRASE, keystroke_set, serve_keystrokes
from tests.builders import write_csv
from tests.faces.api.conftest import AUTH, Serve, train_run

TRAIN = keystroke_set(users=3, attempts=5, invalid_rate=0.1, seed=5)
TEST = keystroke_set(users=3, attempts=2, seed=5, part="test")
PAGES = {"records": "user_data", "label": "user_label"}


def test_analyze_train_by_name_and_predict_from_urls(serve: Serve) -> None:
    api = serve(allow_private_urls=True)
    client = api.client
    with serve_keystrokes([TRAIN, TEST]) as base:
        body = {"url": base + TRAIN.first, **PAGES, "dataset": "typing", "first": 5}
        assert client.post("/sequences/analyze", json=body).status_code == 401
        found = client.post("/sequences/analyze", json=body, headers=AUTH)
        assert found.status_code == 200, found.text
        analysis = found.json()
        assert analysis["fetched"] and analysis["expected"] == PHRASE
        assert len(analysis["records"]) == 5
        assert analysis["counts"]["quarantined"] == len(TRAIN.invalid) == len(analysis["invalid"])
        assert all(row["reason"] for row in analysis["invalid"])
        assert any(f["used_as"] for f in analysis["features"])
        again = client.post("/sequences/analyze", json=body, headers=AUTH).json()
        assert not again["fetched"]  # the lake knows the URL: nothing downloaded again

        boost = train_run(
            client, dataset="typing", model="adaboost", n_estimators=5, holdout=0.2, name="boost"
        )
        lstm = train_run(
            client, dataset="typing", model="lstm", epochs=1, hidden=8, holdout=0.2,
            name="typing_lstm",
        )  # fmt: skip
        assert boost["data"] == lstm["data"]  # one holdout for both: the same rows, by batch
        assert 0 <= lstm["metrics"]["test_accuracy"] <= 1

        ask = {"model": "typing_lstm", "url": base + TEST.first, **PAGES, "first": 2}
        shown = client.post("/sequences/predictions", json=ask, headers=AUTH)
        assert shown.status_code == 200, shown.text
        table = shown.json()
        assert table["run_id"] == lstm["run_id"] and table["total"] == TEST.attempts
        assert len(table["rows"]) == 2
        assert {f"p_{label}" for label in TRAIN.labels} <= set(table["header"])
        every = client.post("/sequences/predictions.csv", json=ask, headers=AUTH)
        pages = {"url": base + TEST.first, **PAGES}
        loaded = client.post("/datasets/seen/sources", json=pages, headers=AUTH)
        assert loaded.status_code == 201, loaded.text  # the sources endpoint follows pages too
        assert loaded.json()["rows_loaded"] == TEST.events
    assert every.status_code == 200 and every.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(every.text)))
    assert len(rows) == TEST.attempts and rows[0]["predicted"] in TRAIN.labels


def test_sequence_requests_are_refused_as_problems(serve: Serve, tmp_path: Path) -> None:
    api = serve()  # loopback URLs are private here: the fetcher refuses them
    client = api.client
    with serve_keystrokes([TEST]) as base:
        body = {"url": base + TEST.first, **PAGES}
        refused = client.post("/sequences/analyze", json=body, headers=AUTH)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        too_many = client.post("/sequences/analyze", json={**body, "first": 1001}, headers=AUTH)
        assert too_many.status_code == 422
        unknown = client.post(
            "/sequences/predictions", json={"model": "nobody", **body}, headers=AUTH
        )
        assert unknown.status_code == 404, unknown.text
    orders = write_csv(tmp_path / "orders.csv", 40).read_bytes()
    assert api.upload("orders", "orders.csv", orders, label="label").status_code == 201
    lstm = client.post("/runs", json={"dataset": "orders", "model": "lstm"}, headers=AUTH)
    assert lstm.status_code == 409, lstm.text  # sound request; the dataset holds no sequences
    named = {"dataset": "orders", "model": "logistic", "name": "bad name!"}
    assert client.post("/runs", json=named, headers=AUTH).status_code == 422
