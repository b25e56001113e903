"""Creating batches over HTTP (upload, URL) and reading their quality; hostile input refused.

Every refusal is checked twice: the answer (status, problem details naming the
file, row, field or limit, never a server path) and the warehouse and lake
afterwards (no new dataset, batch, row or file).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import httpx
import pytest

from tests.builders import write_csv, write_mnist_pickle
from tests.faces.api.conftest import AUTH, UPLOAD_LIMIT, LiveApi, Serve, snapshot


def assert_problem(response: httpx.Response, status: int, api: LiveApi) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert str(api.settings.home) not in response.text and "/tmp/" not in response.text
    return dict(problem)


def test_upload_csv_then_the_same_bytes_again(api: LiveApi, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "orders.csv", 20).read_bytes()
    first = api.upload("orders", "orders.csv", csv)
    assert first.status_code == 201
    report = first.json()
    assert report["dataset"] == "orders" and report["status"] == "loaded"
    assert report["rows_loaded"] == 20 and report["batch_ids"] == [1]
    assert report["batches"][0]["file_name"] == "orders.csv"
    assert report["batches"][0]["quality"] == "passed"

    again = api.upload("orders", "orders.csv", csv)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"

    more = write_csv(tmp_path / "more.csv", 10, start=20).read_bytes()
    assert api.upload("orders", "more.csv", more).json()["rows_loaded"] == 10
    assert api.client.get("/datasets/orders").json()["rows"] == 30


def test_upload_mnist_pickle(api: LiveApi, tmp_path: Path) -> None:
    data = write_mnist_pickle(tmp_path / "digits.pkl.gz", (30, 10, 10)).read_bytes()
    done = api.upload("digits", "digits.pkl.gz", data)
    assert done.status_code == 201
    assert done.json()["rows_loaded"] == 50
    assert done.json()["batches"][0]["splits"] == {"train": 30, "validation": 10, "test": 10}


def test_ingest_from_a_url(serve: Serve, file_server: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = file_server
    write_csv(folder / "orders.csv", 15)
    api = serve(allow_private_urls=True)
    done = api.client.post(
        "/datasets/orders/sources", json={"url": f"{base}/orders.csv"}, headers=AUTH
    )
    assert done.status_code == 201, done.text
    assert done.json()["rows_loaded"] == 15
    (batch,) = api.client.get("/datasets/orders").json()["batches"]
    assert batch["origin_url"] == f"{base}/orders.csv" and batch["file_name"] == "orders.csv"

    missing = api.client.post(
        "/datasets/orders/sources", json={"url": f"{base}/gone.csv"}, headers=AUTH
    )
    problem = assert_problem(missing, 404, api)
    assert "HTTP 404" in str(problem["detail"]) and "gone.csv" in str(problem["detail"])


def test_quality_report_as_json_and_html(api: LiveApi, tmp_path: Path) -> None:
    api.upload("orders", "orders.csv", write_csv(tmp_path / "orders.csv", 20).read_bytes())
    path = "/datasets/orders/batches/1/quality"
    report = api.client.get(path)
    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    body = report.json()
    assert (body["dataset"], body["batch_id"], body["status"]) == ("orders", 1, "passed")
    assert body["rows_read"] == 20 and {c["outcome"] for c in body["checks"]} == {"pass"}

    for html in (
        api.client.get(path, params={"format": "html"}),
        api.client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
    ):
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "<h1>Quality of orders batch 1</h1>" in html.text

    assert api.client.get("/datasets/orders/batches/99/quality").status_code == 404
    assert api.client.get(path, params={"format": "pdf"}).status_code == 422
    quarantine = api.client.get("/datasets/orders/quarantine", params={"status": "all"})
    assert quarantine.status_code == 200 and quarantine.json()["rows"] == []


def test_an_upload_over_the_size_limit(api: LiveApi) -> None:
    before = snapshot(api.settings)
    too_big = b"id,value\n" + b"1,2\n" * (UPLOAD_LIMIT // 4 + 10)
    problem = assert_problem(api.upload("big", "big.csv", too_big), 413, api)
    assert problem["limit"] == UPLOAD_LIMIT and problem["setting"] == "HEADWATER_MAX_UPLOAD_BYTES"
    assert f"{UPLOAD_LIMIT:,}-byte limit" in str(problem["detail"])
    assert problem["file"] == "big.csv"
    assert snapshot(api.settings) == before


@pytest.mark.parametrize("name", ["../escape.csv", "..%2Fescape.csv", "$(reboot).csv", "a|b.csv"])
def test_hostile_file_names(api: LiveApi, tmp_path: Path, name: str) -> None:
    before = snapshot(api.settings)
    csv = write_csv(tmp_path / "ok.csv", 3).read_bytes()
    problem = assert_problem(api.upload("orders", name, csv), 422, api)
    assert problem["title"] == "Unsafe input" and "rename it" in str(problem["detail"])
    assert snapshot(api.settings) == before


def test_wrong_columns_for_an_existing_dataset(api: LiveApi, tmp_path: Path) -> None:
    api.upload("orders", "orders.csv", write_csv(tmp_path / "orders.csv", 5).read_bytes())
    before = snapshot(api.settings)
    problem = assert_problem(
        api.upload("orders", "other.csv", b"id,name,cost\n1,a,2.0\n"), 422, api
    )
    assert problem["title"] == "Schema mismatch" and problem["field"] == "price"
    assert problem["file"] == "other.csv" and "columns differ" in str(problem["detail"])
    assert snapshot(api.settings) == before


def test_strings_and_nan_in_a_numeric_column(api: LiveApi, tmp_path: Path) -> None:
    api.upload("orders", "orders.csv", write_csv(tmp_path / "orders.csv", 20).read_bytes())
    before = snapshot(api.settings)
    mixed = (
        b"id,name,price,when,label\n"
        b"100,a,NaN,2024-01-01 10:00:00,1\n"
        b"101,b,cheap,2024-01-02 10:00:00,2\n"
    )
    problem = assert_problem(api.upload("orders", "mixed.csv", mixed), 422, api)
    assert (problem["field"], problem["row"], problem["file"]) == ("price", 1, "mixed.csv")
    assert "cheap" in str(problem["detail"])
    assert snapshot(api.settings) == before


def test_a_batch_of_mostly_nan_fails_its_checks(api: LiveApi, tmp_path: Path) -> None:
    api.upload("orders", "orders.csv", write_csv(tmp_path / "orders.csv", 20).read_bytes())
    nan = b"id,name,price,when,label\n" + b"".join(
        b"%d,n,NaN,2024-01-01 10:00:00,1\n" % i for i in range(100, 104)
    )
    problem = assert_problem(api.upload("orders", "nan.csv", nan), 422, api)
    assert problem["title"] == "Quality checks failed" and "not_null" in str(problem["detail"])
    detail = api.client.get("/datasets/orders").json()
    # No row is loaded; the core keeps the refused batch, with its report, for the record.
    assert detail["rows"] == 20
    assert [b["status"] for b in detail["batches"]] == ["succeeded", "failed"]
    failed = api.client.get("/datasets/orders/batches/2/quality").json()
    assert failed["status"] == "failed"


def test_a_pickle_disguised_as_csv(api: LiveApi) -> None:
    before = snapshot(api.settings)
    disguised = pickle.dumps({"a": 1}, protocol=4)
    problem = assert_problem(api.upload("report", "report.csv", disguised), 422, api)
    assert problem["title"] == "Unsafe input" and "pickle" in str(problem["detail"])
    assert problem["file"] == "report.csv"
    assert snapshot(api.settings) == before


def test_private_urls_are_refused_by_default(api: LiveApi, file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    write_csv(folder / "orders.csv", 5)
    before = snapshot(api.settings)
    for url, says in (
        (f"{base}/orders.csv", "HEADWATER_FETCH_ALLOW_PRIVATE"),
        ("http://169.254.169.254/latest/meta-data/x.csv", "link-local address"),
    ):
        refused = api.client.post("/datasets/orders/sources", json={"url": url}, headers=AUTH)
        problem = assert_problem(refused, 422, api)
        assert says in str(problem["detail"])
    for body in ({"url": "file:///etc/passwd"}, {"url": "not a url"}, {"href": "x"}):
        bad = api.client.post("/datasets/orders/sources", json=body, headers=AUTH)
        assert_problem(bad, 422, api)
    assert snapshot(api.settings) == before


def test_malformed_uploads(api: LiveApi, tmp_path: Path) -> None:
    before = snapshot(api.settings)
    csv = write_csv(tmp_path / "orders.csv", 5).read_bytes()
    url = "/datasets/orders/files"
    not_multipart = api.client.post(url, content=csv, headers=AUTH)
    assert_problem(not_multipart, 415, api)

    no_file = api.client.post(url, data={"other": "x"}, files={"x": ("a.csv", b"a")}, headers=AUTH)
    assert assert_problem(no_file, 422, api)["field"] == "file"

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="orders.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    cut_short = api.client.post(
        url,
        content=head + csv,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "closing boundary" in str(assert_problem(cut_short, 400, api)["detail"])

    tail = f"\r\n--{boundary}--\r\n".encode()
    two_files = api.client.post(
        url,
        content=head
        + csv
        + f"\r\n--{boundary}\r\n".encode()
        + head[len(boundary) + 4 :]
        + csv
        + tail,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "more than one" in str(assert_problem(two_files, 422, api)["detail"])
    assert snapshot(api.settings) == before

    whole = api.client.post(
        url,
        content=head + csv + tail,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert whole.status_code == 201 and whole.json()["rows_loaded"] == 5
