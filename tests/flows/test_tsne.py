"""`tsne_map` of an image dataset's pixels and of its embeddings, over both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from headwater.flows.embeddings import embed_images
from headwater.flows.images import ingest_images
from headwater.flows.tsne import saved_map, tsne_map
from headwater.flows.workspace import Workspace
from tests.blobs import write_blobs_npz
from tests.data.images_folder import write_photo_folder
from tests.onnx_models import projection_model


def test_pixels_map_keeps_every_class_and_reports_trustworthiness(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.ingest(write_blobs_npz(tmp_path / "blobs.npz", {0: 220, 1: 70, 2: 10}))
    result = tsne_map(workspace, "blobs", sample=120, out=tmp_path / "map.png")
    assert (result.points, result.rows, result.source) == (120, 300, "pixels")
    assert result.classes["2"] == {"rows": 10, "kept": 10, "share": 1.0}  # the tiny class
    assert sum(int(c["kept"]) for c in result.classes.values()) == 120
    assert result.classes["0"]["share"] < result.classes["1"]["share"] < 1.0
    assert result.trustworthiness > 0.85 and result.trust_points == 120
    assert result.engine.startswith("openTSNE")
    with Image.open(tmp_path / "map.png") as png:
        assert png.format == "PNG" and png.width > 500
    saved = saved_map(workspace, "blobs")
    assert saved is not None and len(saved.x) == 120 and set(saved.labels) == {"0", "1", "2"}
    assert min(saved.image_keys) > 0


def test_embeddings_map_points_back_to_the_images(workspace: Workspace, tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos", per_category=6)
    ingest_images(workspace, tmp_path / "photos", dataset="photos", size=8)
    weights = np.random.default_rng(0).uniform(0.1, 1, size=(8 * 8 * 3, 16))
    model = projection_model(tmp_path / "m.onnx", weights, input_shape=["n", 192])
    embed_images(workspace, "photos", onnx_path=model, output="features")
    result = tsne_map(workspace, "photos_embeddings", sample=15)
    assert (result.source, result.image_dataset, result.points) == ("embeddings", "photos", 15)
    assert {c: int(v["kept"]) > 0 for c, v in result.classes.items()} == dict.fromkeys(
        ("animals", "humans", "plants"), True
    )
    saved = saved_map(workspace, "photos")
    assert saved is not None and saved.facts["source"] == "embeddings"
    assert min(saved.image_keys) > 0
