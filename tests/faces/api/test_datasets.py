"""Reading over HTTP: health, the dataset list, one dataset's detail, and its rows."""

from __future__ import annotations

from pathlib import Path

from tests.builders import write_csv, write_mnist_pickle
from tests.faces.api.conftest import LiveApi, Serve


def test_health_and_an_empty_warehouse(api: LiveApi) -> None:
    health = api.client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "version": "0.1.0",
        "warehouse": api.settings.dialect,
        "datasets": 0,
    }
    assert api.client.get("/datasets").json() == {"datasets": []}


def test_list_detail_and_rows(api: LiveApi, tmp_path: Path) -> None:
    mnist = write_mnist_pickle(tmp_path / "mnist.pkl.gz", (30, 10, 10))
    assert api.upload("mnist", "mnist.pkl.gz", mnist.read_bytes()).status_code == 201
    csv = write_csv(tmp_path / "orders.csv", 12)
    assert api.upload("orders", "orders.csv", csv.read_bytes(), label="label").status_code == 201

    listed = api.client.get("/datasets").json()["datasets"]
    assert [d["name"] for d in listed] == ["mnist", "orders"]
    assert listed[0]["splits"] == {"train": 30, "validation": 10, "test": 10}
    assert listed[0]["rows"] == 50 and listed[0]["last_batch_at"]
    assert api.client.get("/health").json()["datasets"] == 2

    detail = api.client.get("/datasets/orders").json()
    assert detail["kind"] == "tabular" and detail["label_column"] == "label"
    assert set(detail["columns"]) == {"id", "name", "price", "when", "label"}
    assert detail["labels"] == {}  # the core counts labels for image datasets only
    (batch,) = detail["batches"]
    assert batch["file_name"] == "orders.csv" and batch["origin_url"] is None
    assert batch["rows_loaded"] == 12 and batch["status"] == "succeeded"
    assert batch["started_at"] <= batch["finished_at"]
    assert str(api.settings.home) not in str(detail)

    images = api.client.get("/datasets/mnist").json()
    assert images["kind"] == "image"
    assert images["labels"]["train"] == {str(d): 3 for d in range(10)}

    page = api.client.get("/datasets/mnist/rows", params={"limit": 4, "offset": 2})
    assert page.status_code == 200
    body = page.json()
    assert (body["limit"], body["offset"], len(body["rows"])) == (4, 2, 4)
    assert body["rows"][0]["label"] == "2" and len(body["rows"][0]["pixels"]) > 0

    default = api.client.get("/datasets/orders/rows").json()["rows"]
    assert len(default) == 12 and default[0]["name"] == "item 0"
    past_the_end = api.client.get("/datasets/orders/rows", params={"offset": 100}).json()
    assert past_the_end["rows"] == []


def test_row_limits_are_named(serve: Serve, tmp_path: Path) -> None:
    api = serve(max_rows_per_request=10)
    csv = write_csv(tmp_path / "orders.csv", 12)
    assert api.upload("orders", "orders.csv", csv.read_bytes()).status_code == 201

    over_config = api.client.get("/datasets/orders/rows", params={"limit": 11})
    assert over_config.status_code == 422
    problem = over_config.json()
    assert problem["limit"] == 10 and problem["setting"] == "HEADWATER_API_MAX_ROWS_PER_REQUEST"
    assert "10-row limit" in problem["detail"] and problem["field"] == "limit"

    over_ceiling = api.client.get("/datasets/orders/rows", params={"limit": 1001})
    assert over_ceiling.status_code == 422
    assert over_ceiling.headers["content-type"] == "application/problem+json"
    assert over_ceiling.json()["field"] == "limit" and "1000" in over_ceiling.json()["detail"]

    for bad in ({"limit": 0}, {"offset": -1}, {"limit": "many"}):
        assert api.client.get("/datasets/orders/rows", params=bad).status_code == 422


def test_unknown_dataset_and_bad_names(api: LiveApi) -> None:
    missing = api.client.get("/datasets/nothing_here")
    assert missing.status_code == 404
    problem = missing.json()
    assert problem["title"] == "Not found" and problem["status"] == 404
    assert problem["type"].startswith("urn:headwater:problem:")
    assert "nothing_here" in problem["detail"] and problem["instance"] == "/datasets/nothing_here"
    assert api.client.get("/datasets/nothing_here/rows").status_code == 404
    assert api.client.get("/datasets/nothing_here/quarantine").status_code == 404

    hostile = api.client.get("/datasets/x;DROP TABLE dim_batch")
    assert hostile.status_code == 422 and hostile.json()["field"] == "name"
    assert api.client.get("/nowhere").json()["status"] == 404
