"""The Synthesize page: a tabular dataset copied from the form in a real browser, the report
with its plots shown once the background run ends; refusals shown on the form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from playwright.sync_api import expect

from headwater.learning.synth.example import mixed_table
from tests.faces.web.conftest import Site, log_in, shoot
from tests.faces.web.test_access import _logged_in

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


def _upload_people(site: Site, tmp_path: Path) -> None:
    pacsv.write_csv(mixed_table(150, seed=5), tmp_path / "people.csv")
    loaded = _logged_in(site).post(
        "/ui/datasets/upload",
        data={"dataset": "people", "label": "segment"},
        files={"file": ("people.csv", (tmp_path / "people.csv").read_bytes(), "text/csv")},
    )
    assert loaded.status_code == 303, loaded.text


def test_a_browser_synthesizes_a_table_and_sees_the_report(
    page: Any, site: Site, tmp_path: Path
) -> None:
    _upload_people(site, tmp_path)
    log_in(page, site)
    page.get_by_role("link", name="Synthesize").click()
    page.wait_for_url(f"{site.url}/ui/synthesize")
    page.get_by_label("Dataset").select_option("people")
    page.get_by_label("Copula", exact=False).check()
    page.get_by_label("Rows to make").fill("120")
    page.get_by_label("Seed (optional)").fill("3")
    page.get_by_role("button", name="Start synthesis").click()
    page.wait_for_url(re.compile(r"/ui/syntheses/[0-9a-f]+$"))
    expect(page.locator("#fidelity-overall")).to_be_visible(timeout=120_000)
    expect(page.locator("#synthesis-status")).to_have_text("succeeded")
    overall = float(page.locator("#fidelity-overall").inner_text())
    assert 0 < overall <= 100
    for section in ("#fidelity-plot", "#utility-plot", "#detectability-plot", "#privacy-plot"):
        expect(page.locator(section)).to_be_visible()
    expect(page.locator("#exact-copies")).to_have_text("0")
    worst = page.locator("#worst-columns")
    expect(worst).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", worst.element_handle()) > 0
    shoot(page, "synthesis-report")
    run_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("link", name="The synthetic dataset").click()
    page.wait_for_url(f"{site.url}/ui/datasets/people_copula_{run_id}")


def test_the_form_shows_refusals(site: Site, tmp_path: Path) -> None:
    _upload_people(site, tmp_path)
    client = _logged_in(site)
    form = client.get("/ui/synthesize").text
    assert 'href="/ui/synthesize" aria-current="page"' in form and "people" in form
    too_many = client.post("/ui/synthesize", data={"dataset": "people", "rows": "1501"})
    assert too_many.status_code == 422 and "force" in too_many.text
    unknown = client.post("/ui/synthesize", data={"dataset": "people", "method": "gan"})
    assert unknown.status_code == 422 and "method" in unknown.text
    assert client.get("/ui/syntheses/000000000000").status_code == 404
