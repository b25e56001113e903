"""The datasets pages over HTTP: URL ingest, the analyze page of a table, refusals as messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from headwater.settings import Settings
from tests.builders import write_csv, write_customers_csv
from tests.faces.api.conftest import TOKEN, file_server  # noqa: F401  (a fixture)
from tests.faces.web.conftest import Site, _serve

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


@pytest.fixture
def lab_site(settings: Settings) -> Iterator[Site]:
    """A server that may fetch from private addresses (the test's own file server)."""
    yield from _serve(
        settings.model_copy(update={"api_token": SecretStr(TOKEN)}), allow_private_urls=True
    )


def test_a_url_is_downloaded_loaded_and_analysed(
    lab_site: Site, file_server: tuple[str, Path]
) -> None:
    base, folder = file_server
    write_csv(folder / "orders.csv", 50)
    client = lab_site.client()
    client.post("/ui/login", data={"token": TOKEN})
    answer = client.post(
        "/ui/datasets/fetch", data={"url": f"{base}/orders.csv", "label": "label", "dataset": ""}
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/datasets/orders?loaded=50")
    page = client.get(answer.headers["location"] + "&rows=3")
    assert page.status_code == 200
    assert "Loaded 50 new rows" in page.text
    assert page.text.count("<tr><td>") == 3  # the first three rows
    assert "<code>price</code>" in page.text and "summary-table" in page.text
    assert "Rows per label in unassigned" in page.text


def test_a_private_url_is_refused_unless_the_server_allows_it(
    site: Site, file_server: tuple[str, Path]
) -> None:
    base, folder = file_server
    write_csv(folder / "orders.csv", 5)
    client = site.client()
    client.post("/ui/login", data={"token": TOKEN})
    answer = client.post("/ui/datasets/fetch", data={"url": f"{base}/orders.csv"})
    assert answer.status_code == 422
    assert "HEADWATER_FETCH_ALLOW_PRIVATE" in answer.text
    assert '<p class="message error" role="alert">' in answer.text


def test_a_bad_dataset_name_is_a_message(site: Site) -> None:
    client = site.client()
    client.post("/ui/login", data={"token": TOKEN})
    answer = client.post(
        "/ui/datasets/upload",
        files={"file": ("orders.csv", b"a,b\n1,2\n")},
        data={"dataset": "Bad Name!"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 422
    assert "is not a dataset name" in answer.json()["error"]


def test_more_rows_than_allowed_is_refused_by_the_form(site: Site) -> None:
    answer = site.client().get("/ui/datasets/anything", params={"rows": 5000})
    assert answer.status_code == 422
    assert "rows: Input should be less than or equal to 1000" in answer.text


def test_uploads_take_the_upload_limit_not_the_small_request_limit(
    site: Site, tmp_path: Path
) -> None:
    big = write_csv(tmp_path / "orders.csv", 40_000)
    assert big.stat().st_size > 1024 * 1024  # over HEADWATER_API_MAX_REQUEST_BYTES
    client = site.client()
    client.post("/ui/login", data={"token": TOKEN})
    answer = client.post(
        "/ui/datasets/upload",
        files={"file": ("orders.csv", big.read_bytes())},
        data={"label": "label"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["redirect"].startswith("/ui/datasets/orders?loaded=40000")


def test_the_dataset_page_says_which_columns_the_model_trains_on_and_why_not(
    site: Site, tmp_path: Path
) -> None:
    path = write_customers_csv(tmp_path / "customers.csv", 120)
    client = site.client()
    client.post("/ui/login", data={"token": TOKEN})
    answer = client.post(
        "/ui/datasets/upload",
        files={"file": ("customers.csv", path.read_bytes())},
        data={"label": "churned"},
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/datasets/customers")
    assert page.status_code == 200
    assert "The features the model will train on" in page.text
    table = page.text.split('id="features-table"')[1].split("</table>")[0]
    rows = {row.split("<code>")[1].split("</code>")[0]: row for row in table.split("<tr>")[2:]}
    assert 'badge warn">left out' in rows["customer_id"]
    assert "identifier: a different value in every row" in rows["customer_id"]
    assert "free text: 120 distinct values" in rows["Notes (free text)"]
    assert "<td>number</td>" in rows["Annual income (EUR)"]
    assert "<td>category</td>" in rows["City"] and "<td>date parts</td>" in rows["signup date"]
    assert "<td>label</td>" in rows["churned"]
