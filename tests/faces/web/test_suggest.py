"""The train form's "Suggest" in a real browser: with no search yet it runs a short one and
fills the form with its best trial, the same parameters ``GET /datasets/{name}/suggestion``
answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.builders import write_pipeline_batch
from tests.faces.web.conftest import Site, log_in
from tests.faces.web.test_access import _logged_in

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


def test_suggest_searches_then_fills_the_form(site: Site, page: Any, tmp_path: Path) -> None:
    data = write_pipeline_batch(tmp_path / "toy.csv", seed=1, train_a=14, train_b=6)
    loaded = _logged_in(site).post(
        "/ui/datasets/upload",
        data={"dataset": "toy", "label": "label"},
        files={"file": ("toy.csv", data.read_bytes(), "text/csv")},
    )
    assert loaded.status_code == 303, loaded.text
    api = site.client()
    before = api.get("/datasets/toy/suggestion", params={"model": "logistic"}).json()
    assert before["params"] is None and before["trials"] == 0

    log_in(page, site, next_path="/ui/train?dataset=toy")
    page.get_by_label("Model type").select_option("logistic")
    page.get_by_role("button", name="Suggest").click()
    status = page.locator("#suggest-status")
    expect(status).to_contain_text("Filled 2 parameters: the best of 4 trials", timeout=90_000)

    after = api.get("/datasets/toy/suggestion", params={"model": "logistic"}).json()
    assert after["trials"] == 4 and not after["searching"]
    assert status.get_attribute("data-run") == after["run_id"]
    shown_c = float(page.locator("#logistic-c").input_value())
    assert shown_c == pytest.approx(after["params"]["c"])
    assert page.locator("#logistic-max_iter").input_value() == str(after["params"]["max_iter"])

    page.locator("#logistic-c").fill("3")
    page.get_by_role("button", name="Suggest").click()  # found now: filled without a search
    expect(page.locator("#logistic-c")).not_to_have_value("3")
    expect(status).to_contain_text("the best of 4 trials")
    assert api.get("/datasets/toy/suggestion", params={"model": "logistic"}).json()["trials"] == 4
