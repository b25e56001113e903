"""Sequences in a real browser: analyze a URL → train a named LSTM → predict a URL → CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from headwater.flows.keystroke_demo import keystroke_set, serve_keystrokes
from headwater.settings import Settings
from tests.faces.api.conftest import TOKEN
from tests.faces.web.conftest import Site, _serve, log_in, shoot
from tests.faces.web.test_access import _logged_in

TRAIN = keystroke_set(users=3, attempts=4, invalid_rate=0.1, seed=5)
TEST = keystroke_set(users=3, attempts=3, seed=5, part="test")


@pytest.fixture
def url_site(settings: Settings) -> Iterator[Site]:
    """A server with a token that may fetch loopback URLs (the demo API runs there)."""
    with_token = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    yield from _serve(with_token, allow_private_urls=True)


def test_analyze_train_an_lstm_and_download_predictions(page: Any, url_site: Site) -> None:
    with serve_keystrokes([TRAIN, TEST]) as base:
        log_in(page, url_site, next_path="/ui/sequences")
        page.locator("#analyze-url").fill(base + TRAIN.first)
        page.locator("#analyze-dataset").fill("typing")
        page.locator("#analyze-first").fill("7")
        page.get_by_role("button", name="Analyze", exact=True).click()
        expect(page.locator("#records-table tbody tr")).to_have_count(7)
        expect(page.locator("#count-quarantined")).to_have_text(str(len(TRAIN.invalid)))
        expect(page.locator("#invalid-table tbody tr")).to_have_count(len(TRAIN.invalid))
        expect(page.locator("#features")).to_contain_text("left out")
        shoot(page, "sequences-analyze")

        expect(page.locator("#train-dataset")).to_have_value("typing")
        page.locator("#model").select_option("lstm")
        page.locator("#holdout").fill("0.2")
        page.locator("#name").fill("typing_lstm")
        page.locator("#lstm-epochs").fill("2")
        page.locator("#lstm-hidden").fill("8")
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_url("**/ui/sequences?dataset=typing*")
        row = page.locator("#compare-runs tbody tr", has_text="typing_lstm")
        expect(row).to_contain_text("succeeded", timeout=60_000)  # the page reloads itself
        expect(row).to_contain_text("%")
        shoot(page, "sequences-trained")

        expect(page.locator("#predict-model option:checked")).to_contain_text("typing_lstm")
        page.locator("#predict-url").fill(base + TEST.first)
        page.locator("#predict-first").fill("4")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.locator("#predictions-table tbody tr")).to_have_count(4)
        expect(page.locator("#predicted-count")).to_have_text(str(TEST.attempts))
        with page.expect_download() as started:
            page.locator("#download").click()
        text = Path(started.value.path()).read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == TEST.attempts
    assert {f"p_{label}" for label in TRAIN.labels} <= set(rows[0])
    assert {r["predicted"] for r in rows} <= set(TRAIN.labels)
    assert all(abs(sum(float(r[f"p_{n}"]) for n in TRAIN.labels) - 1) < 1e-3 for r in rows)


def test_the_url_form_follows_pages_and_the_forms_say_what_is_wrong(url_site: Site) -> None:
    client = _logged_in(url_site)
    with serve_keystrokes([TEST]) as base:
        pages = {"url": base + TEST.first, "records": "user_data", "label": "user_label"}
        loaded = client.post("/ui/datasets/fetch", data={**pages, "dataset": "seen"})
        assert loaded.status_code == 303, loaded.text  # every page, as one batch
        assert f"loaded={TEST.events}" in loaded.headers["location"]
        too_many = client.post("/ui/sequences/analyze", data={**pages, "first": "1001"})
        assert too_many.status_code == 422 and "first" in too_many.text
        boost = {**pages, "model": "adaboost", "adaboost-n_estimators": "3", "name": "from_url"}
        from_url = client.post("/ui/sequences/train", data=boost)  # a URL loaded before
        assert from_url.status_code == 303, from_url.text
        assert from_url.headers["location"] == "/ui/sequences?dataset=seen#compare"
    named = client.post("/ui/sequences/train", data={"dataset": "seen", "name": "bad name!"})
    assert named.status_code == 422 and "name" in named.text
    regressor = client.post("/ui/sequences/train", data={"dataset": "seen", "model": "ridge"})
    assert regressor.status_code == 422 and "Choose one of the models" in regressor.text
    shown = client.get("/ui/sequences?dataset=seen").text
    assert 'href="/ui/sequences" aria-current="page"' in shown
    assert '<table class="data" id="compare-runs">' in shown and "<td>adaboost</td>" in shown
