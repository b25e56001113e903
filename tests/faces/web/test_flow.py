"""The main path in a real browser, on both backends: upload, analyze, train live, leaderboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.builders import write_small_digits
from tests.faces.web.conftest import Site, log_in, shoot

# Records, after the page has loaded, each epoch row the page adds and when the metrics
# appear: the test's own view of the live updates, independent of the page's scripts.
WATCH_UPDATES = """
window.__hwLog = [];
window.__hwLive = null;
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  window.__hwLive = Boolean(live && live.dataset.events);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches("#epochs tr")) {
          window.__hwLog.push({kind: "epoch", text: node.textContent, t: performance.now()});
        }
        if (node.id === "metrics" || node.querySelector("#metrics")) {
          window.__hwLog.push({kind: "metrics", t: performance.now()});
        }
      }
    }
  }).observe(document.body, {childList: true, subtree: true});
});
"""


def test_upload_train_with_density_50_and_find_the_run_on_the_leaderboard(
    page: Any, site: Site, tmp_path: Path, backend: str
) -> None:
    digits = write_small_digits(tmp_path / "digits.npz")
    log_in(page, site)

    page.locator("#upload-file").set_input_files(str(digits))
    page.locator("#upload-dataset").fill("digits")
    page.get_by_role("button", name="Upload and load").click()
    page.wait_for_url(re.compile(r"/ui/datasets/digits\?loaded="))
    expect(page.get_by_role("status").filter(has_text="Loaded")).to_contain_text(
        "Loaded 1,797 new rows"
    )
    expect(page.locator("#samples img")).to_have_count(24)
    expect(page.locator("#labels figure")).to_have_count(2)  # train and test
    expect(page.locator("#batches-table")).to_contain_text("digits.npz")
    expect(page.locator("#summary-table")).to_contain_text("pixels")
    shoot(page, f"analyze-{backend}")

    page.get_by_role("link", name="Train on digits").click()
    expect(page.get_by_label("Dataset")).to_have_value("digits")
    page.get_by_label("Model type").select_option("mlp")
    expect(page.locator("#mlp-density")).to_have_value("35")
    page.locator("#mlp-density-slider").fill("50")
    expect(page.locator("#mlp-density")).to_have_value("50")  # the slider moves the number box
    page.locator("#mlp-epochs").fill("3")
    page.locator("#mlp-batch_size").fill("2")  # small steps: each epoch takes a while
    shoot(page, f"train-form-{backend}")
    page.add_init_script(WATCH_UPDATES)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/ui/runs/[0-9a-f]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#metrics")).to_be_visible(timeout=120_000)
    assert page.evaluate("window.__hwLive"), "the run finished before its page opened"
    log = page.evaluate("window.__hwLog")
    kinds = [entry["kind"] for entry in log]
    assert "metrics" in kinds, log
    before = kinds[: kinds.index("metrics")]
    assert before.count("epoch") >= 3, log
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator("#result img")).to_have_count(3)  # learning curves, confusion, samples
    page.locator("#result img").last.scroll_into_view_if_needed()
    shoot(page, f"run-{backend}")

    page.get_by_role("link", name="Leaderboard").first.click()
    row = page.locator(f"tr[data-run='{run_id}']")
    expect(row).to_contain_text("density=50")
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("served")  # the only run is the best one

    page.goto(f"{site.url}/ui/train?dataset=digits")
    page.get_by_label("Model type").select_option("logistic")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/ui/runs/[0-9a-f]+$"))
    other = page.url.rsplit("/", 1)[1]
    expect(page.locator("#metrics")).to_be_visible(timeout=120_000)
    page.goto(f"{site.url}/ui/leaderboard?dataset=digits&sort=test_accuracy")
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(2)
    board = site.client().get("/datasets/digits/leaderboard").json()["runs"]
    ranked = [r["run_id"] for r in board]  # the core ranks once; the API and this page show it
    expect(rows.first).to_have_attribute("data-run", ranked[0])
    expect(rows.last).to_have_attribute("data-run", ranked[1])
    page.get_by_label(f"Compare run {run_id}").check()
    page.get_by_label(f"Compare run {other}").check()
    page.get_by_role("button", name="Compare the two selected runs").click()
    expect(page.locator("table.confusion")).to_have_count(2)
    expect(page.locator("#compare-table")).to_contain_text("density")
    shoot(page, f"compare-{backend}")

    page.goto(f"{site.url}/ui/leaderboard?dataset=digits")
    unserved = page.locator("#leaderboard tbody tr:not(.served)")
    chosen = unserved.get_attribute("data-run")
    unserved.get_by_role("button", name="Serve").click()
    expect(page.get_by_role("status")).to_contain_text(f"Run {chosen} is now served")
    expect(page.locator(f"tr[data-run='{chosen}']")).to_contain_text("served")
    expect(page.locator("#leaderboard .badge.served")).to_have_count(1)
    shoot(page, f"leaderboard-{backend}")


@pytest.mark.parametrize("backend", ["duckdb"])
def test_a_bad_upload_shows_a_readable_error(page: Any, site: Site, tmp_path: Path) -> None:
    broken = tmp_path / "orders.csv"
    broken.write_bytes(b"\x00\x01 not a table \xff" * 64)
    log_in(page, site)
    page.locator("#upload-file").set_input_files(str(broken))
    page.get_by_role("button", name="Upload and load").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("orders.csv")
    expect(alert).to_contain_text("is not UTF-8 text")
    assert "Traceback" not in page.content()
    assert page.url == f"{site.url}/"
    shoot(page, "bad-upload")
