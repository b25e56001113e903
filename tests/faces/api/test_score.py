"""``POST /models/{ref}/score``: a CSV or Parquet file in, predictions streamed out as CSV.

A file is read by the ingest's readers, so refusals speak the same words as an ingest's.
"""

from __future__ import annotations

import csv
import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.builders import digits, write_csv, write_mnist_pickle
from tests.faces.api.conftest import Trained


def pixel_table(n: int, *, seed: int = 3, row_ids: bool = True) -> pa.Table:
    images, labels = digits(n, seed=seed)
    columns: dict[str, object] = {}
    if row_ids:
        columns["row_id"] = [f"img-{i}" for i in range(n)]
    columns["label"] = labels
    flat = images.reshape(n, -1)
    for i in range(flat.shape[1]):
        columns[f"pixel{i}"] = flat[:, i].astype(np.int64)
    return pa.table(columns)


def as_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa.csv.write_csv(table, sink)
    return sink.getvalue()


def as_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=300)
    return sink.getvalue()


def score(trained: Trained, run: str, name: str, content: bytes) -> list[list[str]]:
    answer = trained.api.client.post(
        f"/models/{run}/score", files={"file": (name, content, "application/octet-stream")}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["transfer-encoding"] == "chunked"
    return list(csv.reader(io.StringIO(answer.text)))


def test_a_pixel_csv_is_scored_row_by_row_in_chunks(trained: Trained) -> None:
    table = pixel_table(1500)  # > one 4 MiB CSV block: several batches
    rows = score(trained, trained.image_run, "digits.csv", as_csv(table))
    header, body = rows[0], rows[1:]
    assert header == ["row_id", "predicted", *(f"p_{c}" for c in range(10))]
    assert [r[0] for r in body] == [f"img-{i}" for i in range(1500)]
    assert all(sum(float(p) for p in r[2:]) == pytest.approx(1, abs=1e-4) for r in body)
    pixels = list(table.drop_columns(["row_id", "label"]).slice(0, 1).to_pylist()[0].values())
    first = trained.api.client.post(
        f"/models/{trained.image_run}/predict", json={"pixels": [pixels]}
    ).json()
    assert body[0][1] == first["predictions"][0]["label"]


def test_parquet_gives_the_same_predictions_as_csv(trained: Trained) -> None:
    table = pixel_table(700, row_ids=False)
    from_csv = score(trained, trained.image_run, "digits.csv", as_csv(table))
    from_parquet = score(trained, trained.image_run, "digits.parquet", as_parquet(table))
    assert from_parquet == from_csv
    assert [r[0] for r in from_csv[1:]] == [str(i) for i in range(700)]


def test_a_table_csv_is_scored_with_its_feature_types(trained: Trained, tmp_path: Path) -> None:
    content = write_csv(tmp_path / "new_orders.csv", 50, start=1000).read_bytes()
    rows = score(trained, trained.table_run, "new_orders.csv", content)
    assert rows[0] == ["row_id", "predicted", "p_0", "p_1", "p_2"]
    assert len(rows) == 51 and {r[1] for r in rows[1:]} <= {"0", "1", "2"}


def test_formula_cells_are_escaped(trained: Trained) -> None:
    table = pixel_table(2)
    table = table.set_column(0, "row_id", pa.array(["=cmd|' /C calc'!A0", "@SUM(1)"]))
    rows = score(trained, trained.image_run, "digits.csv", as_csv(table))
    assert [r[0] for r in rows[1:]] == ["'=cmd|' /C calc'!A0", "'@SUM(1)"]


def test_a_header_only_file_gives_a_header_only_answer(trained: Trained) -> None:
    empty = as_csv(pixel_table(1).slice(0, 0))
    assert len(score(trained, trained.image_run, "none.csv", empty)) == 1


def _hostile_files(folder: Path) -> list[tuple[str, bytes, str]]:
    images, labels = digits(5)
    text_pixel = pixel_table(2).set_column(2, "pixel0", pa.array(["x", "y"]))
    return [
        ("mnist.csv", write_mnist_pickle(folder / "m.pkl.gz", (5, 5, 5)).read_bytes(), "binary"),
        ("data.csv", pickle.dumps((images, labels), protocol=4), "pickle"),
        ("data.csv", pickle.dumps([1, 2, 3], protocol=0), "pixel columns"),
        ("data.csv", gzip.compress(b"a,b\n1,2\n"), "binary"),
        ("data.csv", b"", "empty"),
        ("data.csv", b"a,b\n\x00\x01\x02,3\n", "binary"),
        ("data.csv", b"\xff\xfe\x00a\x00,\x00b", "not UTF-8"),
        ("data.parquet", b"a,b\n1,2\n", "Parquet"),
        ("data.csv", b"PAR1 but not really parquet", "binary"),
        ("data.csv", b"a,b\n1,2\n", "2 pixel columns"),
        ("data.csv", as_csv(text_pixel), "pixels must be numbers"),
        ("data.npz", b"PK\x03\x04" + bytes(100), "CSV, TSV, JSON (Lines) or Parquet"),
    ]


def test_hostile_files_are_refused_before_any_row(trained: Trained, tmp_path: Path) -> None:
    for name, content, says in _hostile_files(tmp_path):
        refused = trained.api.client.post(
            f"/models/{trained.image_run}/score",
            files={"file": (name, content, "text/csv")},
        )
        assert refused.status_code == 422, (name, says, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert says in refused.json()["detail"], (says, refused.json())
        assert str(tmp_path) not in refused.text


def test_score_needs_a_multipart_file(trained: Trained) -> None:
    client = trained.api.client
    url = f"/models/{trained.image_run}/score"
    assert (
        client.post(url, content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}).status_code
        == 415
    )
    form = client.post(url, data={"other": "x"}, files={"nope": ("a.csv", b"a\n", "text/csv")})
    assert form.status_code == 422
