"""URL first: analyze keystroke pages, train AdaBoost and the LSTM on one holdout, predict a CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows import sequences as flows
from headwater.flows.keystroke_demo import PHRASE, keystroke_set, serve_keystrokes
from headwater.flows.training import TrainRequest, new_run_id, queue_run, train
from headwater.flows.workspace import Workspace
from headwater.settings import Settings

TRAIN = keystroke_set(users=3, attempts=5, invalid_rate=0.1, seed=5)
TEST = keystroke_set(users=3, attempts=2, invalid_rate=0.1, seed=5, part="test")


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    with Workspace(settings.model_copy(update={"fetch_allow_private": True})) as workspace:
        yield workspace


def test_analyze_train_both_models_and_predict_who_typed_each_attempt(ws: Workspace) -> None:
    with serve_keystrokes([TRAIN, TEST]) as base:
        url = base + TRAIN.first
        analysis = flows.analyze_source(
            ws, url, records="user_data", label="user_label", dataset="typing", first=40
        )
        assert analysis.fetched and analysis.expected == PHRASE and len(analysis.records) == 40
        assert analysis.counts == {
            "valid": 15 - len(TRAIN.invalid),
            "quarantined": len(TRAIN.invalid),
        }
        assert {r["label"] for r in analysis.invalid} == {label for label, _ in TRAIN.invalid}
        assert {"interval_ms", "symbol_code", "microsecond"} <= set(analysis.records[0])
        used = [f["column"] for f in analysis.features if f["used_as"]]
        assert "interval_cv" in used and any(c.startswith("digraph_") for c in used)
        assert not flows.analyze_source(ws, url).fetched  # the same URL: read back, not fetched
        assert ws.dataset("typing").kind == "sequence"

        boost = flows.train_sequences(
            ws, flows.SequenceTrainRequest("typing", "adaboost", {"n_estimators": 5}, name="boost")
        )
        queued = TrainRequest("typing", "lstm", {"epochs": 2, "hidden": 8}, name="typing_lstm")
        run_id = new_run_id()
        queue_run(ws, queued, run_id)  # as the API's queue does: a job takes it over
        lstm = train(ws, queued, run_id=run_id)
        assert lstm.run_id == run_id and lstm.status == "succeeded"
        board = run_flows.leaderboard(ws, "typing")
        assert {r.run_id for r in board} == {boost.run_id, lstm.run_id}
        held = {r.run_id: run_flows.run_detail(ws, r.run_id).data for r in board}
        tests = [{d.rows_hash for d in data if d.role == "test"} for data in held.values()]
        assert tests[0] == tests[1]  # the same held-out sequences for both models

        out = ws.settings.home / "who.csv"
        for name in ("boost", "typing_lstm"):
            table = flows.predict_sequences(
                ws, name, base + TEST.first, records="user_data", label="user_label", out=out
            )
            assert table.total == TEST.attempts and table.accuracy is not None
            with out.open() as handle:
                rows = list(csv.DictReader(handle))
            assert len(rows) == TEST.attempts
            assert {r["label"] for r in rows} == set(TEST.labels)
            p = [sum(float(r[f"p_{label}"]) for label in TRAIN.labels) for r in rows]
            assert p == pytest.approx([1.0] * len(rows), abs=1e-4)
            assert {r["predicted"] for r in rows} <= set(TRAIN.labels)
        with pytest.raises(ConfigError, match="sequences"):
            run_flows.load_model(ws, lstm.run_id)
