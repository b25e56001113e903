"""Predict in a real browser: a dataset split and an uploaded file, shown and downloaded as CSV."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.faces.web.conftest import Site, shoot

DIGITS = [str(d) for d in range(10)]


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_predict_the_test_split_and_download_every_row(page: Any, mnist_site: Site) -> None:
    page.goto(f"{mnist_site.url}/ui/predict")
    expect(page.locator("#split-model option")).to_have_count(1)
    page.locator("#split-dataset").select_option("mnist")
    page.get_by_label("Split").select_option("test")
    page.locator("#split-rows").fill("15")
    page.get_by_role("button", name="Predict", exact=True).click()

    table = page.locator("#predictions-table tbody tr")
    expect(table).to_have_count(15)
    expect(page.locator("#predictions")).to_contain_text("10,000 rows of the test split of mnist")
    expect(page.locator("#predictions")).to_contain_text("agree with their labels")
    shown = [table.nth(i).locator("td strong").inner_text() for i in range(15)]
    shoot(page, "predict-split")

    with page.expect_download() as started:
        page.locator("#download").click()
    download = started.value
    assert download.suggested_filename.endswith("-mnist-test.csv")
    rows = _read_csv(Path(download.path()))
    assert rows[0] == ["row_id", "predicted", *(f"p_{d}" for d in DIGITS)]
    body = rows[1:]
    assert len(body) == 10_000
    assert len({r[0] for r in body}) == 10_000
    assert [r[1] for r in body[:15]] == shown  # the page shows the first rows of the file
    for row in body[::997]:
        probabilities = [float(p) for p in row[2:]]
        assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-3)
        assert row[1] == DIGITS[probabilities.index(max(probabilities))]
    agreement = page.locator("#agreement").inner_text()
    assert float(agreement.rstrip("%")) > 90  # real MNIST, a trained MLP


def test_predict_an_uploaded_csv_escapes_formula_cells(
    page: Any, mnist_site: Site, tmp_path: Path
) -> None:
    upload = tmp_path / "to_score.csv"
    ids = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "plain"]
    header = ["row_id", *(f"px{i}" for i in range(784))]
    lines = [",".join(header)]
    for n, row_id in enumerate(ids):
        pixels = ["0"] * 784
        pixels[300 + n] = "255"
        quoted = '"' + row_id.replace('"', '""') + '"'
        lines.append(",".join([quoted, *pixels]))
    upload.write_text("\n".join(lines) + "\n")

    page.goto(f"{mnist_site.url}/ui/predict")
    page.get_by_label("CSV or Parquet file").set_input_files(str(upload))
    page.locator("#file-rows").fill("3")
    page.get_by_role("button", name="Predict file").click()
    expect(page.locator("#predictions-table tbody tr")).to_have_count(3)
    expect(page.locator("#predictions")).to_contain_text("5 rows of to_score.csv scored")
    shoot(page, "predict-file")

    with page.expect_download() as started:
        page.locator("#download").click()
    rows = _read_csv(Path(started.value.path()))
    assert [r[0] for r in rows[1:]] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "plain",
    ]
