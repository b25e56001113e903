"""``/pipelines`` and ``/datasets/{name}/suggestion`` against a live server, on both backends.

The pipeline is declared in a headwater.toml the test writes (found through
HEADWATER_CONFIG, as `headwater serve` finds it) over one small CSV batch, with a
two-trial search of a logistic regression: so one run also fills the tuning study
that "Suggest" reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.builders import write_pipeline_batch
from tests.data.images_folder import write_photo_folder
from tests.faces.api.conftest import AUTH, Serve
from tests.onnx_models import projection_model

TOML = """
[pipelines.daily]
source = "incoming"
dataset = "toy"
label = "label"
model = "logistic"
tune = 2
schedule = "0 7 * * *"
timezone = "Europe/London"
"""
PROBLEM = "application/problem+json"


def declare(folder: Path, monkeypatch: pytest.MonkeyPatch, toml: str = TOML) -> None:
    """A headwater.toml with the pipeline, and its first batch in incoming/."""
    (folder / "incoming").mkdir()
    write_pipeline_batch(folder / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    (folder / "headwater.toml").write_text(toml)
    monkeypatch.setenv("HEADWATER_CONFIG", str(folder / "headwater.toml"))


def wait_for_pipeline(client: httpx.Client, url: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(url).raise_for_status().json()
        if found["status"] != "running":
            return found
        time.sleep(0.05)
    raise AssertionError(f"{url} still running after {timeout_s} s")


def test_list_start_follow_and_refuse(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(tmp_path, monkeypatch)
    api = serve()
    client = api.client

    [listed] = client.get("/pipelines").raise_for_status().json()["pipelines"]
    assert listed["name"] == "daily" and listed["schedule"] == "0 7 * * *"
    assert listed["timezone"] == "Europe/London" and listed["last_run"] is None
    assert listed["next_fire"].endswith(("T07:00:00Z", "T06:00:00Z", ":00+00:00"))
    before = client.get("/datasets/toy/suggestion", params={"model": "logistic"})
    assert before.status_code == 404  # no dataset yet

    started = client.post("/pipelines/daily/runs", headers=AUTH)
    assert started.status_code == 202, started.text
    url = started.json()["url"]
    assert started.headers["Location"] == url
    again = client.post("/pipelines/daily/runs", headers=AUTH, json={"force": True})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert "running" in again.json()["detail"]

    first = client.get(url).json()  # every step is listed from the start
    assert [s["step"] for s in first["steps"]] == [
        "ingest",
        "quality",
        "train",
        "evaluate",
        "compare",
        "promote",
    ]
    done = wait_for_pipeline(client, url)
    assert done["status"] == "succeeded" and done["promoted"], done
    assert [s["status"] for s in done["steps"]] == ["succeeded"] * 6
    assert all(s["seconds"] >= 0 for s in done["steps"])
    steps = {s["step"]: s["outcome"] for s in done["steps"]}
    assert steps["ingest"]["rows_loaded"] == 30 and steps["train"]["trials"] == 2
    assert steps["promote"]["promoted"] is True

    history = client.get("/pipelines/daily/runs").raise_for_status().json()
    assert [r["pipeline_run_id"] for r in history["runs"]] == [done["pipeline_run_id"]]
    [listed] = client.get("/pipelines").json()["pipelines"]
    assert listed["last_run"]["status"] == "succeeded"

    suggested = client.get("/datasets/toy/suggestion", params={"model": "logistic"}).json()
    assert suggested["run_id"] in done["run_ids"] and suggested["trials"] == 2
    assert set(suggested["params"]) >= {"c", "max_iter"} and not suggested["searching"]
    none_yet = client.get("/datasets/toy/suggestion", params={"model": "random_forest"}).json()
    assert none_yet["params"] is None and none_yet["trials"] == 0


def test_unknown_pipeline_run_and_model(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(tmp_path, monkeypatch)
    client = serve().client
    for answer in (
        client.post("/pipelines/nightly/runs", headers=AUTH),
        client.get("/pipelines/nightly/runs"),
        client.get("/pipelines/daily/runs/0123456789ab"),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == PROBLEM
    assert (
        "declared pipelines: daily"
        in client.post("/pipelines/nightly/runs", headers=AUTH).json()["detail"]
    )
    assert client.post("/pipelines/daily/runs").status_code == 401  # writes need the token
    wrong = client.get("/datasets/toy/suggestion", params={"model": "gpt"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "model"


def test_an_image_pipeline_lists_and_runs_its_three_steps(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_photo_folder(tmp_path / "photos", per_category=3)
    weights = np.random.default_rng(0).uniform(0.1, 1, size=(8 * 8 * 3, 4))
    projection_model(tmp_path / "m.onnx", weights, input_shape=["n", 3, 8, 8])
    toml = (
        '[pipelines.photos]\nkind = "images"\nsource = "photos"\ndataset = "photos"\nsize = 8\n'
        'embed = { onnx = "m.onnx", output = "features" }\nexport = "out"\n'
    )
    (tmp_path / "headwater.toml").write_text(toml)
    monkeypatch.setenv("HEADWATER_CONFIG", str(tmp_path / "headwater.toml"))
    client = serve().client

    [listed] = client.get("/pipelines").raise_for_status().json()["pipelines"]
    assert listed["kind"] == "images" and listed["model"] == "ONNX m.onnx"
    started = client.post("/pipelines/photos/runs", headers=AUTH)
    assert started.status_code == 202, started.text
    done = wait_for_pipeline(client, started.json()["url"])
    assert done["status"] == "succeeded", done["error"]
    assert [(s["step"], s["status"]) for s in done["steps"]] == [
        ("images-ingest", "succeeded"),
        ("embed", "succeeded"),
        ("export", "succeeded"),
    ]
    assert (tmp_path / "out" / "manifest.json").is_file()
