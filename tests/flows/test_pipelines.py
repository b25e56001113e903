"""Declared pipelines run by a scheduler on a fake clock, on both backends.

The data (tests/builders.py `write_pipeline_batch`) has a known answer: label ``a``
exactly when ``x1 > 0``, and every batch's test split is 6 ``a`` to 4 ``b``. A logistic
regression with ``c = 1e-6`` learns only the training majority, so its accuracy on
the test rows is 0.6 when the training rows lean ``a`` and 0.4 when they lean ``b``;
with ``c = 1`` it learns the boundary (about 0.9). That makes a worse and a better
challenger without luck.
"""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows.drift import psi
from headwater.flows.monitoring import monitor_chart
from headwater.flows.pipeline_config import PipelineConfig, load_pipelines
from headwater.flows.pipelines import run_pipeline
from headwater.flows.scheduler import PipelineScheduler
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import pipelines as store
from tests.builders import write_pipeline_batch

LONDON = ZoneInfo("Europe/London")
WEAK = {"c": 1e-6}  # predicts the training majority
STRONG = {"c": 1.0}  # learns x1 > 0


def _config(folder: Path, **changes: object) -> PipelineConfig:
    values: dict[str, object] = {
        "name": "daily",
        "source": str(folder),
        "dataset": "toy",
        "label": "label",
        "model": "logistic",
        "params": WEAK,
        "schedule": "0 7 * * *",
        "timezone": "Europe/London",
        **changes,
    }
    return PipelineConfig.model_validate(values)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in London in January 2027 (no daylight saving), as UTC."""
    return datetime(2027, 1, day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def test_three_daily_fires_train_compare_and_promote_only_the_better(
    workspace: Workspace, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    scheduler = PipelineScheduler(workspace, {"daily": _config(incoming)})
    scheduler.start(_at(1, 6))
    assert scheduler.fire_due(_at(1, 6, 59)) == []  # not 07:00 yet

    write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
    [first] = scheduler.fire_due(_at(1, 7))
    assert scheduler.fire_due(_at(1, 7, 30)) == []  # the 07:00 fire ran once

    write_pipeline_batch(incoming / "day2.csv", seed=2, train_a=4, train_b=36)
    [second] = scheduler.fire_due(_at(2, 7))

    write_pipeline_batch(incoming / "day3.csv", seed=3, train_a=10, train_b=10)
    scheduler.pipelines["daily"] = _config(incoming, params=STRONG)  # the team tunes it
    [third] = scheduler.fire_due(_at(3, 7, 5))

    runs = [first, second, third]
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert [r.batch_ids for r in runs] == [[1], [2], [3]]
    assert [r.promoted for r in runs] == [True, False, True]
    assert [[s.step for s in r.steps] for r in runs] == [
        ["ingest", "quality", "train", "evaluate", "compare", "promote"]
    ] * 3
    compared = [r.steps[4].outcome for r in runs]
    assert compared[1]["champion"] == first.challenger_run_id
    assert (compared[1]["challenger_score"], compared[1]["champion_score"]) == (0.4, 0.6)
    assert compared[2]["champion"] == first.challenger_run_id  # the worse one never served
    assert float(str(compared[2]["challenger_score"])) > 0.6
    assert compared[1]["same_rows"] == runs[1].steps[3].outcome["rows_hash"]
    assert run_flows.resolve_run(workspace, "toy", "best") == third.challenger_run_id

    history = store.list_runs(workspace.warehouse, "daily")
    assert [h.pipeline_run_id for h in history] == [r.pipeline_run_id for r in reversed(runs)]
    assert all(h.trigger == "schedule" for h in history)

    chart = monitor_chart(workspace, "toy", tmp_path / "toy.png")
    assert [p.pipeline_run_id for p in chart.served] == [r.pipeline_run_id for r in runs]
    served = [p.served_run_id for p in chart.served]
    assert served == [first.challenger_run_id, first.challenger_run_id, third.challenger_run_id]
    assert [p.score for p in chart.served][:2] == [0.6, 0.6]
    assert [b.batch_id for b in chart.batches] == [1, 2, 3]
    assert [b.rows_loaded for b in chart.batches] == [30, 50, 30]
    assert len(chart.runs) == 3 and (tmp_path / "toy.png").read_bytes()[:4] == b"\x89PNG"
    assert chart.drift["x1"][1] == 0.0  # the first batch is the reference
    assert chart.drift["x1"][2] > 1.0 > chart.drift["x2"][2]  # day 2 leans to b: x1 < 0


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    assert psi(np.array([50.0, 50.0]), np.array([5.0, 5.0])) == 0.0
    assert psi(np.array([90.0, 10.0]), np.array([10.0, 90.0])) == pytest.approx(2 * 0.8 * np.log(9))


def test_a_missed_week_runs_once_and_two_schedulers_run_each_fire_once(
    workspace: Workspace, tmp_path: Path, backend: str
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
    pipelines = {"daily": _config(incoming, on_new_data=True)}
    other = Workspace(workspace.settings) if backend == "postgres" else workspace
    try:
        schedulers = [PipelineScheduler(ws, pipelines) for ws in (workspace, other)]
        for scheduler in schedulers:
            scheduler.start(_at(1, 6))
        ran: list[store.PipelineRunRow] = []

        def both(work: str, now: datetime) -> list[store.PipelineRunRow]:
            ran.clear()
            threads = [
                threading.Thread(target=lambda s=s: ran.extend(getattr(s, work)(now)))
                for s in schedulers
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return list(ran)

        [weekly] = both("fire_due", _at(8, 9))  # a week of 07:00 fires, missed: one run
        assert weekly.fire_key == f"cron:{_at(8, 7).isoformat()}" and weekly.batch_ids == [1]
        assert schedulers[1].fire_due(_at(8, 9, 30)) == []

        [seen] = both("watch", _at(8, 10))  # the folder's first fingerprint: nothing new
        assert seen.trigger == "new-data" and seen.status == "skipped"
        write_pipeline_batch(incoming / "day2.csv", seed=2, train_a=4, train_b=36)
        [new] = both("watch", _at(8, 11))
        assert new.status == "succeeded" and new.batch_ids == [2]
        assert both("watch", _at(8, 12)) == []
        assert len(store.list_runs(workspace.warehouse, "daily")) == 3
    finally:
        if other is not workspace:
            other.close()


def test_a_failing_step_stops_the_run_and_leaves_the_served_model(
    workspace: Workspace, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
    good = run_pipeline(workspace, _config(incoming))
    assert good is not None and good.promoted
    (incoming / "day2.csv").write_text("x1,x2,split,label\nnot a number,1.0,train,a\n")
    bad = run_pipeline(workspace, _config(incoming))
    assert bad is not None and bad.status == "failed" and not bad.promoted
    assert bad.error and "day2.csv" in bad.error
    assert [(s.step, s.status) for s in bad.steps] == [("ingest", "failed")]
    assert run_flows.resolve_run(workspace, "toy", "best") == good.challenger_run_id


def test_batches_a_failed_run_committed_are_trained_on_by_the_next_run(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
    write_pipeline_batch(incoming / "day2.csv", seed=2, train_a=14, train_b=6)
    ingest = Workspace.ingest

    def second_file_fails(ws: Workspace, source: str | Path, **options: Any) -> Any:
        if Path(source).name == "day2.csv":
            raise ConfigError("the disk is full")
        return ingest(ws, source, **options)

    monkeypatch.setattr(Workspace, "ingest", second_file_fails)
    failed = run_pipeline(workspace, _config(incoming))
    assert failed is not None and failed.status == "failed"
    assert failed.steps[0].status == "failed" and failed.steps[0].outcome["batch_ids"] == [1]
    monkeypatch.undo()

    retried = run_pipeline(workspace, _config(incoming))  # day1's load is a no-op now
    assert retried is not None and (retried.status, retried.batch_ids) == ("succeeded", [1, 2])
    assert retried.steps[0].outcome["carried_over"] == [1] and retried.promoted
    again = run_pipeline(workspace, _config(incoming))  # trained on: nothing left to carry
    assert again is not None and again.status == "skipped" and again.batch_ids == []


def test_a_new_file_in_a_watched_folder_is_trained_on_within_one_poll(
    workspace: Workspace, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    poll_s = 0.5
    config = _config(incoming, schedule=None, on_new_data=True, poll_s=poll_s)
    scheduler = PipelineScheduler(workspace, {"daily": config})
    stop = threading.Event()
    worker = threading.Thread(target=scheduler.serve, args=[stop], daemon=True)
    worker.start()
    try:
        time.sleep(poll_s)  # the scheduler is up and has seen an empty folder
        dropped = datetime.now(UTC)
        write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [r for r in store.list_runs(workspace.warehouse, "daily") if r.finished_at]
            if done:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=60)
    [run] = done
    assert run.trigger == "new-data" and run.status == "succeeded" and run.batch_ids == [1]
    assert run.started_at - dropped < timedelta(seconds=poll_s + 0.5)
    assert run.run_ids and run.promoted


def test_cron_in_london_fires_at_seven_local_across_the_clock_change() -> None:
    config = _config(Path("unused"))
    spring = [config.next_fire(datetime(2027, 3, d, 12, tzinfo=UTC)) for d in (26, 27, 28)]
    autumn = [config.next_fire(datetime(2027, 10, d, 12, tzinfo=UTC)) for d in (29, 30, 31)]
    for fire in spring + autumn:
        assert fire is not None
        assert (fire.astimezone(LONDON).hour, fire.astimezone(LONDON).minute) == (7, 0)
    assert [f.astimezone(UTC).hour for f in spring if f] == [7, 6, 6]  # BST from 28 March
    assert [f.astimezone(UTC).hour for f in autumn if f] == [6, 7, 7]  # GMT from 31 October
    missed = config.latest_fire(
        datetime(2027, 3, 27, 12, tzinfo=UTC), datetime(2027, 3, 29, 12, tzinfo=UTC)
    )
    assert missed == datetime(2027, 3, 29, 6, tzinfo=UTC)  # two missed fires, the latest runs


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('schedule = "0 25 * * *"', "pipelines.daily: key 'schedule'"),
        ('schedule = "0 7 * *"', "five fields"),
        ('timezone = "Mars/Olympus"', "unknown time zone 'Mars/Olympus'"),
        ('model = "svm"', "unknown model 'svm'; known models:"),
        ('model = "logistic"\nparams = { density = 10 }', "logistic has no parameter density"),
        ('model = "logistic"\nparams = { c = -1 }', "logistic.c must be"),
        ('promote = "sometimes"', "key 'promote'"),
        ("retrain = true", "key 'retrain' is not understood; a pipeline takes: source"),
    ],
)
def test_invalid_config_is_refused_at_load_naming_file_and_key(
    tmp_path: Path, table: str, said: str
) -> None:
    file = tmp_path / "headwater.toml"
    file.write_text('[pipelines.daily]\nsource = "in"\ndataset = "toy"\n' + table + "\n")
    with pytest.raises(ConfigError) as caught:
        load_pipelines(file)
    assert str(file) in str(caught.value) and said in str(caught.value)


def test_config_reads_pipelines_with_sources_relative_to_the_file(tmp_path: Path) -> None:
    file = tmp_path / "headwater.toml"
    file.write_text(
        'home = ".hw"\n[pipelines.daily]\nsource = "in"\ndataset = "toy"\nmodel = "logistic"\n'
        'schedule = "0 7 * * *"\ntimezone = "Europe/London"\npromote = "always"\n'
    )
    [(name, config)] = load_pipelines(file).items()
    assert name == "daily" and config.source == str(tmp_path / "in")
    assert config.promote == "always" and config.metric == "accuracy"
    assert load_pipelines(tmp_path / "missing.toml") == {}


def test_a_pipeline_with_tune_trains_trials_and_offers_the_best(
    workspace: Workspace, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pipeline_batch(incoming / "day1.csv", seed=1, train_a=14, train_b=6)
    run = run_pipeline(workspace, _config(incoming, params={"max_iter": 200}, tune=3))
    assert run is not None and run.status == "succeeded", run and run.error
    assert len(run.run_ids) == 3 and run.challenger_run_id in run.run_ids
    trained = run.steps[2].outcome
    assert trained["trials"] == 3 and trained["best_params"]["max_iter"] == 200
    assert run.promoted  # the first model of the dataset


def test_a_changed_url_is_fetched_and_trained_on_once(settings: Settings, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    write_pipeline_batch(served / "day.csv", seed=1, train_a=14, train_b=6)
    handler = functools.partial(QuietHandler, directory=str(served))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
        threading.Thread(target=http.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{http.server_address[1]}/day.csv"
        config = _config(Path("unused"), source=url, schedule=None, on_new_data=True)
        lab = settings.model_copy(update={"fetch_allow_private": True})  # a lab's own server
        with Workspace(lab) as ws:
            scheduler = PipelineScheduler(ws, {"daily": config})
            scheduler.start(_at(1, 6))
            [first] = scheduler.watch(_at(1, 6, 1))
            assert scheduler.watch(_at(1, 6, 2)) == []  # the same bytes: nothing to do
            write_pipeline_batch(served / "day.csv", seed=2, train_a=4, train_b=36)
            [second] = scheduler.watch(_at(1, 6, 3))
            http.shutdown()
    assert (first.status, first.batch_ids) == ("succeeded", [1])
    assert (second.status, second.batch_ids, second.promoted) == ("succeeded", [2], False)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
