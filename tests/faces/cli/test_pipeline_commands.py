"""`headwater pipeline run|list|history` and a scheduler killed mid-run, as a user meets them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headwater.flows import runs as run_flows
from headwater.flows.pipeline_config import load_pipelines
from headwater.flows.scheduler import PipelineScheduler
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import pipelines as store
from tests.builders import write_pipeline_batch
from tests.data.kill import kill_at

TOML = """
[pipelines.daily]
source = "incoming"
dataset = "toy"
label = "label"
model = "logistic"
params = { c = 1e-6 }
schedule = "0 7 * * *"
timezone = "Europe/London"
on_new_data = true
"""


def _declare(tmp_path: Path) -> Path:
    (tmp_path / "incoming").mkdir()
    file = tmp_path / "headwater.toml"
    file.write_text(TOML)
    return file


def run(settings: Settings, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(settings.home)
    env["HEADWATER_CONFIG"] = str(config)
    if settings.warehouse_url:
        env["HEADWATER_WAREHOUSE_URL"] = settings.warehouse_url
        env["HEADWATER_WAREHOUSE_SCHEMA"] = settings.warehouse_schema or "public"
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args], env=env, capture_output=True, text=True
    )


def test_run_list_and_history(settings: Settings, tmp_path: Path) -> None:
    config = _declare(tmp_path)
    write_pipeline_batch(tmp_path / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    done = run(settings, config, "pipeline", "run", "daily", "--json")
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout)
    assert ran["status"] == "succeeded" and ran["promoted"] and ran["batch_ids"] == [1]
    assert [s["step"] for s in ran["steps"]][-1] == "promote"

    [listed] = json.loads(run(settings, config, "pipeline", "list", "--json").stdout)
    assert listed["name"] == "daily" and listed["schedule"] == "0 7 * * *"
    assert listed["next_fire"].endswith(("07:00:00+00:00", "06:00:00+00:00"))
    assert listed["last_run"]["pipeline_run_id"] == ran["pipeline_run_id"]

    again = run(settings, config, "pipeline", "run", "daily")
    assert again.returncode == 0 and "skipped" in again.stdout  # no new data
    shown = run(settings, config, "pipeline", "history", "daily")
    assert shown.returncode == 0 and ran["pipeline_run_id"] in shown.stdout
    history = json.loads(run(settings, config, "pipeline", "history", "daily", "--json").stdout)
    assert [h["status"] for h in history] == ["skipped", "succeeded"]

    chart = tmp_path / "toy.png"
    shown = run(settings, config, "monitor", "toy", "--out", str(chart), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [p["pipeline_run_id"] for p in data["served"]] == [ran["pipeline_run_id"]]
    assert data["batches"][0]["rows_loaded"] == 30 and chart.read_bytes()[:4] == b"\x89PNG"

    none = run(settings, config, "suggest", "--dataset", "toy", "--model", "logistic", "--json")
    assert none.returncode == 1 and json.loads(none.stdout)["params"] is None  # no search yet


def test_bad_config_and_unknown_pipeline_exit_2_and_3(settings: Settings, tmp_path: Path) -> None:
    config = _declare(tmp_path)
    assert run(settings, config, "pipeline", "run", "nightly").returncode == 3
    config.write_text(TOML.replace('"0 7 * * *"', '"0 7 * *"'))
    refused = run(settings, config, "pipeline", "list")
    assert refused.returncode == 2
    assert str(config) in refused.stderr and "schedule" in refused.stderr


def test_a_run_killed_mid_ingest_is_abandoned_then_run_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _declare(tmp_path)
    monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    write_pipeline_batch(tmp_path / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    kill_at("mid_load", ["schedule"], settings, chunk_rows=10)  # the start-up tick runs it

    pipelines = load_pipelines(config)
    with Workspace(settings) as ws:
        [dead] = store.list_runs(ws.warehouse, "daily")
        assert dead.status == "running" and dead.trigger == "new-data"
        scheduler = PipelineScheduler(ws, pipelines)
        assert scheduler.start(datetime.now(UTC)) == [dead.pipeline_run_id]
        ran = scheduler.tick(datetime.now(UTC))
        assert [r.status for r in ran] == ["succeeded"] and len(ran[0].batch_ids) == 1
        assert scheduler.tick(datetime.now(UTC)) == []  # once, not twice
        runs = store.list_runs(ws.warehouse, "daily")
        assert [r.status for r in runs] == ["succeeded", "abandoned"]
        assert runs[1].steps[0].status == "failed" and not runs[1].promoted
        assert run_flows.resolve_run(ws, "toy", "best") == ran[0].challenger_run_id


def test_a_run_killed_in_train_after_its_ingest_keeps_best_then_trains_that_batch_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _declare(tmp_path)
    monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    pipelines = load_pipelines(config)
    write_pipeline_batch(tmp_path / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    with Workspace(settings) as ws:
        first = PipelineScheduler(ws, pipelines)
        first.start(datetime.now(UTC))
        [served] = first.tick(datetime.now(UTC))
    champion = served.challenger_run_id
    assert served.promoted and champion is not None

    write_pipeline_batch(tmp_path / "incoming" / "day2.csv", seed=2, train_a=14, train_b=6)
    kill_at("pipeline_train", ["schedule"], settings)  # its model trained, the step not ended

    with Workspace(settings) as ws:
        dead = store.list_runs(ws.warehouse, "daily")[0]
        assert dead.status == "running" and dead.steps[0].outcome["batch_ids"] == [2]
        assert [(s.step, s.status) for s in dead.steps][1:] == [
            ("quality", "succeeded"),
            ("train", "running"),
        ]
        orphan = run_flows.list_runs(ws, "toy")[-1].run_id  # the dead run's model
        assert orphan != champion and run_flows.resolve_run(ws, "toy", "best") == champion

        scheduler = PipelineScheduler(ws, pipelines)
        assert scheduler.start(datetime.now(UTC)) == [dead.pipeline_run_id]
        [ran] = scheduler.tick(datetime.now(UTC))
        assert scheduler.tick(datetime.now(UTC)) == []  # once, not twice
        assert (ran.status, ran.batch_ids, ran.champion_run_id) == ("succeeded", [2], champion)
        assert ran.steps[0].outcome["carried_over"] == [2]
        assert ran.challenger_run_id not in (champion, orphan)
        trained = run_flows.run_detail(ws, str(ran.challenger_run_id))
        assert {b for d in trained.data for b in d.batch_ids} == {1, 2}
        runs = store.list_runs(ws.warehouse, "daily")
        assert [r.status for r in runs] == ["succeeded", "abandoned", "succeeded"]
        assert runs[1].steps[2].status == "failed" and not runs[1].promoted
        best = ran.challenger_run_id if ran.promoted else champion
        assert run_flows.resolve_run(ws, "toy", "best") == best


def test_serve_with_schedule_runs_the_pipelines_in_the_server(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("DuckDB lets one process open its file: the server holds it, a test cannot")
    config = _declare(tmp_path)
    write_pipeline_batch(tmp_path / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(
        HEADWATER_HOME=str(settings.home),
        HEADWATER_CONFIG=str(config),
        HEADWATER_WAREHOUSE_URL=str(settings.warehouse_url),
        HEADWATER_WAREHOUSE_SCHEMA=str(settings.warehouse_schema),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--port", str(port), "--schedule"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Workspace(settings) as ws:
            deadline = time.monotonic() + 120
            done: list[store.PipelineRunRow] = []
            while not done and time.monotonic() < deadline and server.poll() is None:
                time.sleep(0.5)
                done = [r for r in store.list_runs(ws.warehouse, "daily") if r.finished_at]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [(r.trigger, r.status, r.batch_ids) for r in done] == [("new-data", "succeeded", [1])]
