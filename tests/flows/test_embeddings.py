"""`embed_images` on a realistic image folder, over both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from headwater.errors import ConfigError, QualityCheckFailed
from headwater.flows.embeddings import embed_images, image_keys
from headwater.flows.export import export
from headwater.flows.images import ingest_images
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from tests.data.images_folder import write_photo_folder
from tests.onnx_models import projection_model

SIDE = 12


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embed") / "photos"
    write_photo_folder(root, per_category=8)
    return root


@pytest.fixture
def photos(workspace: Workspace, folder: Path) -> Workspace:
    """27 pictures in three categories at 12x12 RGB: 432 values a row."""
    ingest_images(workspace, folder, dataset="photos", size=SIDE)
    return workspace


def _curated(ws: Workspace, name: str) -> list[str]:
    (batch,) = ws.lake.curated_batches(name)
    (path,) = (ws.lake.curated_dir(name) / f"batch_id={batch}").glob("*.parquet")
    return pq.read_schema(path).names


# training is the slow part: once, on DuckDB; the loads run on both backends below
@pytest.mark.parametrize("backend", ["duckdb"])
def test_trained_cnn_gives_id_label_and_dim_features(photos: Workspace, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = embed_images(
        photos, "photos", dim=8, epochs=1, on_progress=lambda d, t: seen.append((d, t))
    )
    assert result.trained and result.model_run is not None
    assert (result.dim, result.rows, result.images) == (8, 27, 27)
    assert seen[-1] == (27, 27)
    features = [f"f{j}" for j in range(8)]
    assert _curated(photos, "photos_embeddings")[:10] == ["id", "label", *features]
    quality = result.to_dict()["quality"]
    assert quality["categories"]["plants"] == {  # type: ignore[index]
        "images": 9,
        "kept": 9,
        "set_aside": 0,
        "adds_up": True,
        "varied": True,
    }
    index = pq.read_table(photos.lake.root / "images" / "photos.parquet")
    out = export(photos, "photos_embeddings", str(tmp_path / "out"), fmt="parquet", part_rows=10)
    table = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert table.column_names == ["id", "label", *features]  # 2 + dim columns
    assert [p["rows"] for p in out.parts] == [10, 10, 7]
    assert set(index.column("id").to_pylist()) >= set(table.column("id").to_pylist())
    keys = image_keys(photos, "photos_embeddings", table.column("id").to_pylist())
    assert (keys > 0).all()

    again = embed_images(photos, "photos")  # same model, nothing new: nothing computed
    assert (again.trained, again.model_run, again.rows, again.skipped) == (
        False,
        result.model_run,
        0,
        27,
    )


def test_a_users_onnx_model_by_named_output_and_channels_first(
    photos: Workspace, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    grey = projection_model(
        tmp_path / "grey.onnx",
        rng.uniform(0.1, 1, size=(SIDE * SIDE, 6)),
        input_shape=["n", 1, SIDE, SIDE],
    )
    result = embed_images(photos, "photos", onnx_path=grey, output="features")
    assert (result.dim, result.rows, result.output) == (6, 27, "headwater_penultimate")
    dataset = cat.get_dataset(photos.warehouse, "photos_embeddings")
    assert dataset.kind == "tabular" and dataset.label_column == "label"
    sources = cat.image_sources(photos.warehouse, cat.get_dataset(photos.warehouse, "photos"))
    assert sources.column_names == ["image_key", "batch_key", "source_row"]  # what Spark joins on
    assert sources.num_rows == 27 and sources["image_key"].to_pylist() == sorted(
        sources["image_key"].to_pylist()
    )
    other = projection_model(
        tmp_path / "other.onnx", np.ones((SIDE * SIDE * 3, 4)), input_shape=["n", SIDE * SIDE * 3]
    )
    with pytest.raises(ConfigError, match="holds vectors from onnx"):
        embed_images(photos, "photos", onnx_path=other)


def test_constant_vectors_are_refused_and_nothing_is_loaded(
    photos: Workspace, tmp_path: Path
) -> None:
    dead = projection_model(
        tmp_path / "dead.onnx",
        np.zeros((SIDE * SIDE * 3, 5)),
        input_shape=["n", SIDE * SIDE * 3],
        bias=0.0,
    )
    with pytest.raises(QualityCheckFailed, match=r"category 'animals': none of its 9 vectors"):
        embed_images(photos, "photos", onnx_path=dead, output="features")
    aside = pq.read_table(photos.lake.root / "embeddings" / "photos_embeddings.set_aside.parquet")
    assert aside.num_rows == 27 and set(aside.column("label").to_pylist()) == {
        "animals",
        "humans",
        "plants",
    }
    assert cat.find_dataset(photos.warehouse, "photos_embeddings") is None
    wrong = projection_model(tmp_path / "wrong.onnx", np.ones((100, 2)), input_shape=["n", 100])
    with pytest.raises(ConfigError, match="12x12 images"):
        embed_images(photos, "photos", onnx_path=wrong)
