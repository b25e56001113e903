"""A regressor trained from the web form: the leaderboard ranks it by test RMSE, lowest first,
and its page shows predicted against actual."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.faces.api.conftest import wait_for_run
from tests.faces.web.conftest import Site, log_in
from tests.faces.web.test_access import _logged_in
from tests.flows.test_regression import write_houses

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


def test_regressors_from_the_form_rank_by_rmse(site: Site, tmp_path: Path) -> None:
    client = _logged_in(site)
    data = write_houses(tmp_path / "houses.csv", rows=600).read_bytes()
    loaded = client.post(
        "/ui/datasets/upload",
        data={"dataset": "houses", "label": "price"},
        files={"file": ("houses.csv", data, "text/csv")},
    )
    assert loaded.status_code == 303, loaded.text
    form = client.get("/ui/train", params={"dataset": "houses"}).text
    assert "houses (tabular, 600 rows, regression)" in form and 'name="task"' in form
    runs = {}
    for model, task in (("ridge", ""), ("random_forest_regressor", "regression")):
        fields = {"dataset": "houses", "model": model, "task": task}
        sent = client.post("/ui/train", data=fields)
        assert sent.status_code == 303, sent.text
        runs[model] = sent.headers["location"].rsplit("/", 1)[1]
        wait_for_run(client, runs[model])
    refused = client.post("/ui/train", data={"dataset": "houses", "model": "logistic"})
    assert refused.status_code in {409, 422} and "regression" in refused.text
    page = client.get("/ui/leaderboard", params={"dataset": "houses"}).text
    assert "Test RMSE" in page and "lower is better" in page
    assert page.index(runs["ridge"]) < page.index(runs["random_forest_regressor"])  # ridge: lower
    run_page = client.get(f"/ui/runs/{runs['ridge']}").text
    assert "predicted_vs_actual.png" in run_page


def test_the_predict_page_shows_a_regressors_numbers(site: Site, tmp_path: Path) -> None:
    client = _logged_in(site)
    data = write_houses(tmp_path / "houses.csv", rows=400).read_bytes()
    client.post(
        "/ui/datasets/upload",
        data={"dataset": "houses", "label": "price"},
        files={"file": ("houses.csv", data, "text/csv")},
    )
    sent = client.post("/ui/train", data={"dataset": "houses", "model": "ridge"})
    run_id = sent.headers["location"].rsplit("/", 1)[1]
    wait_for_run(client, run_id)
    shown = client.get(
        "/ui/predict",
        params={"model": run_id, "dataset": "houses", "split": "unassigned", "rows": 5},
    )
    assert shown.status_code == 200, shown.text
    assert "test RMSE" in shown.text and "Probability" not in shown.text
    assert "agree with their labels" not in shown.text and 'class="wrong"' not in shown.text
    download = client.get(
        "/ui/predict/predictions.csv",
        params={"model": run_id, "dataset": "houses", "split": "unassigned"},
    )
    lines = download.text.splitlines()
    assert lines[0] == "row_id,predicted" and float(lines[1].split(",")[1]) > 0
    assert "Lower (90%)" not in shown.text  # ridge gives no interval


def test_the_predict_page_shows_a_forests_interval(site: Site, tmp_path: Path) -> None:
    client = _logged_in(site)
    houses = write_houses(tmp_path / "houses.csv", rows=400)
    client.post(
        "/ui/datasets/upload",
        data={"dataset": "houses", "label": "price"},
        files={"file": ("houses.csv", houses.read_bytes(), "text/csv")},
    )
    fields = {"dataset": "houses", "model": "random_forest_regressor", "n_estimators": "20"}
    sent = client.post("/ui/train", data=fields)
    run_id = sent.headers["location"].rsplit("/", 1)[1]
    wait_for_run(client, run_id)
    shown = client.post(
        "/ui/predict/file",
        data={"model": run_id, "rows": "3"},
        files={
            "file": ("new.csv", write_houses(tmp_path / "new.csv", rows=8, seed=5).read_bytes())
        },
    )
    assert shown.status_code == 200, shown.text
    assert "Lower (90%)" in shown.text and "Upper (90%)" in shown.text
    assert "90% prediction interval" in shown.text and "Probability" not in shown.text
    cells = re.findall(r'<td class="num interval">([^<]+)</td>', shown.text)
    ends = [(float(low), float(high)) for low, high in zip(cells[::2], cells[1::2], strict=True)]
    assert len(ends) == 3 and all(low < high for low, high in ends)
    download = re.search(r'id="download" href="([^"]+)"', shown.text)
    assert download is not None
    lines = client.get(download.group(1)).text.splitlines()
    assert lines[0] == "row_id,predicted,lower_90,upper_90" and len(lines) == 9


def test_a_browser_trains_a_regressor_and_sees_rmse(page: Any, site: Site, tmp_path: Path) -> None:
    """In a real browser: upload, train ridge from the form, RMSE and the plot on its page,
    RMSE on the leaderboard."""
    houses = write_houses(tmp_path / "houses.csv", rows=400)
    log_in(page, site)
    page.locator("#upload-file").set_input_files(str(houses))
    page.locator("#upload-dataset").fill("houses")
    page.locator("#upload-label").fill("price")
    page.get_by_role("button", name="Upload and load").click()
    page.wait_for_url(re.compile(r"/ui/datasets/houses\?loaded="))
    page.goto(f"{site.url}/ui/train?dataset=houses")
    page.get_by_label("Model type").select_option("ridge")
    page.get_by_label("Task").select_option("regression")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/ui/runs/[0-9a-f]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#test-rmse")).to_be_visible(timeout=120_000)
    plot = page.get_by_alt_text("Predicted against actual (test split), with the identity line")
    expect(plot).to_have_count(1)
    expect(page.get_by_alt_text("Residuals against predicted")).to_have_count(1)
    page.goto(f"{site.url}/ui/leaderboard?dataset=houses")
    expect(page.locator("#ranking")).to_contain_text("Test RMSE, lower is better")
    expect(page.locator(f"tr[data-run='{run_id}']")).to_be_visible()
