"""The Pipelines page in a real browser: press Start, watch the steps, see the run land.

The pipeline is declared in a headwater.toml the test writes (HEADWATER_CONFIG) over
one small CSV batch and a logistic regression, so a run takes about a second.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.builders import write_pipeline_batch
from tests.faces.web.conftest import Site, log_in, shoot

TOML = """
[pipelines.daily]
source = "incoming"
dataset = "toy"
label = "label"
model = "logistic"
params = { c = 1.0 }
schedule = "0 7 * * *"
timezone = "Europe/London"
"""
STEPS = ["ingest", "quality", "train", "evaluate", "compare", "promote"]


@pytest.fixture
def declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "incoming").mkdir()
    write_pipeline_batch(tmp_path / "incoming" / "day1.csv", seed=1, train_a=14, train_b=6)
    (tmp_path / "headwater.toml").write_text(TOML)
    monkeypatch.setenv("HEADWATER_CONFIG", str(tmp_path / "headwater.toml"))
    return tmp_path


def test_start_watch_steps_and_see_the_run(site: Site, page: Any, declared: Path) -> None:
    polled: list[dict[str, Any]] = []

    def seen(response: Any) -> None:
        if re.search(r"/ui/pipelines/daily/runs/\w+$", response.url):
            polled.append(response.json())

    page.on("response", seen)
    log_in(page, site, next_path="/ui/pipelines")
    section = page.locator("#pipeline-daily")
    expect(section.get_by_role("heading", name="daily")).to_be_visible()
    expect(section.locator(".next-fire")).to_contain_text(re.compile(r"T0[67]:00:00"))
    expect(section).to_contain_text("Not run yet.")

    section.get_by_role("button", name="Start daily now").click()
    expect(page.locator("#messages")).to_contain_text("of daily: succeeded (promoted)")
    run_id = section.locator("table.history tr[data-pipeline-run]").first.get_attribute(
        "data-pipeline-run"
    )
    shoot(page, "pipelines-after-start")

    # the page followed the run step by step: it saw it running, then all six done
    assert polled and polled[0]["status"] == "running", polled[:1]
    assert [s["step"] for s in polled[0]["steps"]] == STEPS
    assert polled[-1]["status"] == "succeeded"
    assert [s["status"] for s in polled[-1]["steps"]] == ["succeeded"] * 6
    expect(page.locator("#messages")).to_contain_text(f"{run_id} of daily: succeeded (promoted)")
    for step in STEPS:
        expect(section.locator(f"li[data-step={step}]")).to_have_attribute(
            "data-status", "succeeded"
        )
    expect(section.locator("li[data-step=compare]")).to_contain_text("no model served yet")

    # its history and its chart hold the new run
    row = section.locator(f"table.history tr[data-pipeline-run='{run_id}']")
    expect(row).to_contain_text("promoted")
    served = section.locator(f"svg[data-chart=scores] rect[data-pipeline-run='{run_id}']")
    expect(served).to_have_count(1)
    assert "promoted" in served.locator("title").text_content()
    challenger = polled[-1]["challenger_run_id"]
    expect(
        section.locator(f"svg[data-chart=scores] circle[data-run='{challenger}']")
    ).to_have_count(1)
    expect(section.locator("svg[data-chart=rows] rect[data-batch='1'] title")).to_contain_text(
        "30 rows loaded"
    )
    expect(section.locator("svg[data-chart=drift] title").first).to_contain_text("PSI")

    page.set_viewport_size({"width": 390, "height": 844})  # and it fits a phone
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the Pipelines page is {overflow}px wider than a phone"
    shoot(page, "pipelines-phone")
