"""`run_images`: ingest → embed → export, run again the next day over a grown folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headwater.flows.images import ImageChain, ImageRunReport, run_images
from headwater.flows.workspace import Workspace
from tests.data.images_folder import write_photo_folder
from tests.onnx_models import projection_model

SIDE = 12


# each step runs on both backends in its own tests; the chain once, on DuckDB
@pytest.mark.parametrize("backend", ["duckdb"])
def test_a_second_run_does_only_what_three_new_images_need(
    workspace: Workspace, tmp_path: Path
) -> None:
    root, out = tmp_path / "photos", tmp_path / "out"
    write_photo_folder(root)
    rng = np.random.default_rng(0)
    model = projection_model(
        tmp_path / "grey.onnx",
        rng.uniform(0.1, 1, size=(SIDE * SIDE * 3, 6)),
        input_shape=["n", 3, SIDE, SIDE],
    )

    def run() -> ImageRunReport:
        chain = ImageChain(
            root, "photos", str(out), size=SIDE, onnx_path=model, output="features", part_rows=10
        )
        return run_images(workspace, chain)

    first = run()
    assert first.ingest.images_loaded == 27 and first.embed.rows == 27
    assert [p["rows"] for p in first.export.parts] == [10, 10, 7]
    assert first.export.written == 4  # three parts and the manifest
    for i in range(3):
        pixels = rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "plants" / f"new_{i}.png")
    second = run()
    assert second.ingest.images_loaded == 3 and second.ingest.images_known == 31
    assert second.embed.rows == 3 and second.embed.skipped == 27
    assert [p["rows"] for p in second.export.parts] == [10, 10, 10]
    assert second.export.written == 2  # the last part, grown, and the manifest
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 30 and manifest["dataset"] == "photos_embeddings"
    third = run()
    assert third.ingest.images_loaded == 0 and third.embed.rows == 0
    assert third.export.written == 0
    assert json.loads(json.dumps(third.to_dict()))["export"]["parts_written"] == 0
