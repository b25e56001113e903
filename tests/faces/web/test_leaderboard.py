"""The web leaderboard shows the core's ranking: finished classifier runs only, best first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import write_csv
from tests.faces.api.conftest import AUTH, wait_for_run
from tests.faces.web.conftest import Site
from tests.faces.web.test_access import _logged_in

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


def test_failed_runs_stay_off_the_ranking(site: Site, tmp_path: Path) -> None:
    client = _logged_in(site)
    data = write_csv(tmp_path / "orders.csv", 60).read_bytes()
    loaded = client.post(
        "/ui/datasets/upload",
        data={"dataset": "orders", "label": "label"},
        files={"file": ("orders.csv", data, "text/csv")},
    )
    assert loaded.status_code == 303, loaded.text
    runs = {}
    for model in ("logistic", "cnn"):  # a CNN cannot read rows of 3 numbers: it fails
        sent = client.post("/ui/train", data={"dataset": "orders", "model": model})
        assert sent.status_code == 303, sent.text
        runs[model] = sent.headers["location"].rsplit("/", 1)[1]
        wait_for_run(client, runs[model])
    api = site.client()
    assert api.get(f"/runs/{runs['cnn']}", headers=AUTH).json()["status"] == "failed"
    page = client.get("/ui/leaderboard", params={"dataset": "orders"}).text
    assert f'data-run="{runs["logistic"]}"' in page
    assert runs["cnn"] not in page
    shown = client.get("/ui/leaderboard", params={"dataset": "orders", "sort": "test_macro_f1"})
    assert shown.status_code == 200 and runs["logistic"] in shown.text
