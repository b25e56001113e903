"""``/syntheses``: a synthesis started over HTTP as a background job, followed, its report read."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pacsv

from headwater.learning.synth.example import mixed_table
from tests.faces.api.conftest import AUTH, LiveApi, Serve, snapshot

DONE = {"succeeded", "failed", "interrupted", "abandoned"}


def wait_for_synthesis(client: httpx.Client, url: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll the synthesis until it ended; return the last answer and every stage seen."""
    deadline, stages = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        answer: dict[str, Any] = client.get(url).raise_for_status().json()
        stages.append(answer["progress"].get("stage"))
        if answer["status"] in DONE:
            answer["stages_seen"] = stages
            return answer
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish in {timeout_s} s")


def _people(api: LiveApi, tmp_path: Path, rows: int = 120) -> None:
    pacsv.write_csv(mixed_table(rows, seed=4), tmp_path / "people.csv")
    data = (tmp_path / "people.csv").read_bytes()
    assert api.upload("people", "people.csv", data, label="segment").status_code == 201


def test_a_synthesis_runs_in_the_background_and_serves_its_report(
    serve: Serve, tmp_path: Path
) -> None:
    api = serve()
    _people(api, tmp_path)
    client = api.client
    sent = client.post(
        "/syntheses", json={"dataset": "people", "method": "pca", "rows": 100}, headers=AUTH
    )
    assert sent.status_code == 202, sent.text
    run_id = sent.json()["run_id"]
    assert sent.json()["status"] == "queued"
    assert sent.headers["location"] == f"/syntheses/{run_id}"
    done = wait_for_synthesis(client, f"/syntheses/{run_id}")
    assert done["status"] == "succeeded", done
    assert (done["dataset"], done["method"], done["rows"]) == ("people", "pca", 100)
    assert done["into"] == f"people_pca_{run_id}"
    report = done["report"]
    assert 0 <= report["fidelity"]["overall"] <= 100
    assert {"tstr_accuracy", "trtr_accuracy"} <= set(report["utility"])
    assert 0 <= report["detectability"]["roc_auc"] <= 1
    assert report["privacy"]["exact_copies"] == 0
    assert str(api.settings.home) not in client.get(f"/syntheses/{run_id}").text
    page = client.get(done["links"]["report"])
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    picture = client.get(done["links"]["worst_columns"])
    assert picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")
    made = client.get(f"/datasets/{done['into']}").json()
    assert made["rows"] == 100
    assert client.get(f"/runs/{run_id}").json()["model"] == "synth-pca"


def test_refusals_are_problems_and_register_nothing(serve: Serve, tmp_path: Path) -> None:
    api = serve()
    _people(api, tmp_path, rows=60)
    before = snapshot(api.settings)
    cases = [
        ({"dataset": "nobody", "method": "pca", "rows": 10}, 404, "nobody"),
        ({"dataset": "people", "method": "gan", "rows": 10}, 422, "method"),
        ({"dataset": "people", "method": "pca", "rows": 0}, 422, "rows"),
        ({"dataset": "people", "method": "pca", "rows": 601}, 422, "force"),
        ({"dataset": "people", "method": "pca", "rows": 10, "into": "people"}, 422, "exists"),
        # past 32 bits a seed reached the database (INT64) and NumPy: a 500 before
        ({"dataset": "people", "method": "pca", "rows": 10, "seed": 2**77}, 422, "seed"),
    ]
    for body, status, word in cases:
        answer = api.client.post("/syntheses", json=body, headers=AUTH)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert word in answer.text, answer.text
    assert api.client.get("/runs").json()["runs"] == []
    assert snapshot(api.settings) == before
    assert api.client.post("/syntheses", json=cases[0][0]).status_code == 401
    for path in ("/syntheses/000000000000", "/syntheses/000000000000/files/report.html"):
        missing = api.client.get(path)
        assert missing.status_code == 404 and missing.json()["status"] == 404
    bad_file = api.client.get("/syntheses/000000000000/files/..%2Fparams.json")
    assert bad_file.status_code in {404, 422}
