"""analyze → train --name → predict URL --out, as a user types them against the demo API."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from headwater.faces.cli import app
from headwater.flows.keystroke_demo import PHRASE, keystroke_set, serve_keystrokes
from headwater.settings import Settings, get_settings

TRAIN = keystroke_set(users=3, attempts=5, invalid_rate=0.1, seed=5)
TEST = keystroke_set(users=3, attempts=2, seed=5, part="test")


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """In-process commands on the test's settings (a subprocess each would cost seconds)."""
    ours = settings.model_copy(update={"fetch_allow_private": True})
    monkeypatch.setattr("headwater.faces.cli.learning_commands.get_settings", lambda: ours)
    monkeypatch.setattr("headwater.faces.cli.sequence_commands.get_settings", lambda: ours)
    yield CliRunner()
    get_settings.cache_clear()


def test_analyze_train_and_predict_from_urls(cli: CliRunner, settings: Settings) -> None:
    with serve_keystrokes([TRAIN, TEST]) as base:
        pages = ["--records", "user_data", "--label", "user_label"]
        done = cli.invoke(
            app, ["analyze", base + TRAIN.first, *pages, "-d", "typing", "--first", "5", "--json"]
        )
        assert done.exit_code == 0, done.output
        found = json.loads(done.stdout)
        assert found["expected"] == PHRASE and len(found["records"]) == 5
        assert found["counts"]["quarantined"] == len(TRAIN.invalid)
        again = cli.invoke(app, ["analyze", base + TRAIN.first])
        assert again.exit_code == 0 and "not fetched again" in again.stdout
        trained = cli.invoke(
            app, ["train", "-d", "typing", "--model", "adaboost", "--holdout", "0.2",
                  "--n-estimators", "5", "--name", "boost"],
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
        assert "test accuracy" in trained.stdout
        out = settings.home / "who.csv"
        predicted = cli.invoke(
            app, ["predict", "boost", base + TEST.first, *pages, "--out", str(out)]
        )
        assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == TEST.attempts and set(rows[0]) >= {"sequence", "label", "predicted"}
    assert {f"p_{label}" for label in TRAIN.labels} <= set(rows[0])
