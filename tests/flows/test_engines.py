"""The same command on ``--engine local`` and ``--engine spark`` gives the same result.

One small lake (scikit-learn's digits as images, a CSV as a table) with a model on each,
made once for the module; Spark runs on the session-wide local[1] session. DuckDB only:
the engines read the lake's Parquet, and the warehouse is only asked for names and model
files, which both backends answer alike (tests/storage covers that).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.errors import SchemaError
from headwater.flows import scoring
from headwater.flows.embeddings import embed_images, image_keys
from headwater.flows.export import export
from headwater.flows.images import ImageChain, ingest_images, run_images
from headwater.flows.profile import profile
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.builders import write_csv, write_small_digits
from tests.data.images_folder import write_photo_folder
from tests.onnx_models import projection_model


@dataclass
class Lake:
    ws: Workspace
    digits_run: str
    orders_run: str
    parts: Path


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, spark_local: object) -> Iterator[Lake]:
    root = tmp_path_factory.mktemp("engines")
    with Workspace(Settings(home=root / "home", ingest_chunk_rows=1000)) as ws:
        ws.ingest(write_small_digits(root / "digits.npz"))
        ws.ingest(write_csv(root / "orders.csv", 90), label="label")
        digits_run = train(ws, TrainRequest("digits", "logistic")).run_id
        orders_run = train(ws, TrainRequest("orders", "logistic")).run_id
        yield Lake(ws, digits_run, orders_run, _parts(ws, root / "parts"))


def _parts(ws: Workspace, folder: Path) -> Path:
    """The digits' curated rows split over batch folders 1, 2 and 10 (batch order is not
    name order) in small row groups, so Spark's batches cross files."""
    table = pq.read_table(next(ws.lake.curated_dir("digits").rglob("*.parquet")))
    for batch_id, (start, stop) in zip(
        (1, 2, 10), ((0, 700), (700, 1300), (1300, None)), strict=True
    ):
        target = folder / f"batch_id={batch_id}" / "part-00000.parquet"
        target.parent.mkdir(parents=True)
        pq.write_table(
            table.slice(start, None if stop is None else stop - start), target, row_group_size=150
        )
    return folder


def _both(lake: Lake, run_id: str, path: Path, tmp_path: Path) -> tuple[bytes, bytes]:
    outs = []
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.csv"
        assert scoring.predict_file(lake.ws, run_id, path, out, engine=engine) > 0
        outs.append(out.read_bytes())
    return outs[0], outs[1]


def test_images_score_the_same_on_both_engines(lake: Lake, tmp_path: Path) -> None:
    local, spark = _both(lake, lake.digits_run, lake.parts, tmp_path)
    assert spark == local
    lines = local.decode().splitlines()
    assert len(lines) == 1 + 1797 and lines[0].startswith("row_id,predicted,p_0")
    assert [line.split(",")[0] for line in lines[1:4]] == ["0", "1", "2"]  # in batch order


def test_table_rows_score_the_same_on_both_engines(lake: Lake, tmp_path: Path) -> None:
    curated = lake.ws.lake.curated_dir("orders")
    local, spark = _both(lake, lake.orders_run, curated, tmp_path)
    assert spark == local and len(local.decode().splitlines()) == 91


def test_an_executors_error_comes_back_as_headwaters(lake: Lake, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": [3, 4]}), wrong)
    with pytest.raises(SchemaError, match="2 pixel columns; this model takes 64"):
        scoring.predict_file(lake.ws, lake.digits_run, wrong, tmp_path / "o.csv", engine="spark")


@pytest.mark.parametrize("dataset", ["digits", "orders"])
def test_profiles_agree(lake: Lake, dataset: str) -> None:
    local = profile(lake.ws, dataset, engine="local").to_dict()
    spark = profile(lake.ws, dataset, engine="spark").to_dict()
    assert (local.pop("engine"), spark.pop("engine")) == ("local", "spark")
    moments = [{k: c.pop(k) for k in ("mean", "std")} for c in local["columns"]]
    spark_moments = [{k: c.pop(k) for k in ("mean", "std")} for c in spark["columns"]]
    assert spark == local
    for ours, theirs in zip(moments, spark_moments, strict=True):
        for key, value in ours.items():
            assert theirs[key] == (None if value is None else pytest.approx(value, rel=1e-9))
    if dataset == "digits":
        assert local["rows"] == 1797 and sum(local["labels"].values()) == 1797
        pixels = next(c for c in local["columns"] if c["name"] == "pixels")
        assert pixels == {
            "name": "pixels",
            "type": "binary",
            "count": 1797,
            "nulls": 0,
            "min": None,
            "max": None,
        }
    else:
        price = next(c for c in local["columns"] if c["name"] == "price")
        assert (price["min"], price["max"]) == (0.0, 89 * 1.5)
        when = next(c for c in local["columns"] if c["name"] == "when")
        assert when["min"] == "2024-01-01T10:00:00" and local["labels"] == {
            "0": 30,
            "1": 30,
            "2": 30,
        }


def test_export_writes_the_same_parts_on_both_engines(lake: Lake, tmp_path: Path) -> None:
    local = export(lake.ws, "digits", str(tmp_path / "local"), fmt="parquet", part_rows=500)
    spark = export(
        lake.ws, "digits", str(tmp_path / "spark"), fmt="parquet", part_rows=500, engine="spark"
    )
    assert spark.parts == local.parts and [p["rows"] for p in local.parts] == [500, 500, 500, 297]
    manifest = (tmp_path / "spark" / "manifest.json").read_bytes()
    assert manifest == (tmp_path / "local" / "manifest.json").read_bytes()
    assert json.loads(manifest)["rows"] == 1797 and spark.written == 5
    again = export(
        lake.ws, "digits", str(tmp_path / "spark"), fmt="parquet", part_rows=500, engine="spark"
    )
    assert again.written == 0  # the same data: nothing new, the manifest kept


def test_embed_gives_the_same_vectors_on_both_engines(spark_local: object, tmp_path: Path) -> None:
    """A user's channels-first grey model on 12x12 RGB photos (the preprocessing converts),
    embedded from the warehouse locally and from the lake's curated Parquet on Spark."""
    write_photo_folder(tmp_path / "photos", per_category=4)
    weights = np.random.default_rng(0).uniform(0.1, 1, size=(12 * 12, 5))
    model = projection_model(tmp_path / "m.onnx", weights, input_shape=["n", 1, 12, 12])
    tables = []
    for engine in ("local", "spark"):
        with Workspace(Settings(home=tmp_path / engine)) as ws:
            ingest_images(ws, tmp_path / "photos", dataset="photos", size=12)
            result = embed_images(ws, "photos", onnx_path=model, output="features", engine=engine)
            assert (result.rows, result.images, result.dim) == (15, 15, 5)
            (part,) = ws.lake.curated_dir("photos_embeddings").rglob("*.parquet")
            table = pq.read_table(part).select(["id", "label", *[f"f{j}" for j in range(5)]])
            tables.append((table, image_keys(ws, "photos_embeddings", table["id"].to_pylist())))
            again = embed_images(ws, "photos", onnx_path=model, output="features", engine=engine)
            assert (again.rows, again.skipped) == (0, 15)  # nothing new, nothing scored
    (local, local_keys), (spark, spark_keys) = tables
    assert spark.select(["id", "label"]) == local.select(["id", "label"])
    assert (spark_keys == local_keys).all() and (local_keys > 0).all()
    vectors = [np.column_stack([t[f"f{j}"].to_numpy() for j in range(5)]) for t in (local, spark)]
    assert np.allclose(vectors[0], vectors[1]) and np.ptp(vectors[0], axis=0).min() > 0


def test_images_run_on_spark_exports_what_the_local_engine_exports(
    spark_local: object, tmp_path: Path
) -> None:
    """`headwater images run --engine spark` (and an image pipeline's engine key): the
    ingest stays local, the embed and the export run on Spark, and the parts match."""
    write_photo_folder(tmp_path / "photos", per_category=4)
    weights = np.random.default_rng(1).uniform(0.1, 1, size=(12 * 12, 3))
    model = projection_model(tmp_path / "m.onnx", weights, input_shape=["n", 1, 12, 12])
    exported = {}
    for engine in ("local", "spark"):
        chain = ImageChain(
            tmp_path / "photos",
            "photos",
            str(tmp_path / f"out-{engine}"),
            size=12,
            onnx_path=model,
            output="features",
            part_rows=4,
            engine=engine,
        )
        with Workspace(Settings(home=tmp_path / engine)) as ws:
            report = run_images(ws, chain)
        assert (report.ingest.images_loaded, report.embed.rows) == (15, 15)
        assert report.export.rows == 15 and len(report.export.parts) == 4
        parts = sorted((tmp_path / f"out-{engine}").glob("part-*.parquet"))
        exported[engine] = pa.concat_tables([pq.read_table(p) for p in parts])
    local, spark = exported["local"], exported["spark"]
    assert spark.column_names == local.column_names == ["id", "label", "f0", "f1", "f2"]
    assert spark.select(["id", "label"]) == local.select(["id", "label"])
    for j in range(3):
        assert np.allclose(spark[f"f{j}"].to_numpy(), local[f"f{j}"].to_numpy())
