"""`headwater images ingest` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from headwater.flows.images import ingest_images
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.data.images_folder import write_photo_folder
from tests.faces.cli.test_data_commands import run
from tests.onnx_models import projection_model


def test_images_ingest_reports_quarantine_and_duplicates(
    settings: Settings, tmp_path: Path
) -> None:
    write_photo_folder(tmp_path / "photos")
    done = run(
        settings,
        "images",
        "ingest",
        str(tmp_path / "photos"),
        "-d",
        "photos",
        "--workers",
        "2",
        "--size",
        "16",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["images_loaded"] == 27  # the 9 Mpx "bomb" is under the default limit
    assert {Path(r["file"]).name for r in report["rejected"]} == {
        "corrupt.png",
        "cut.jpg",
        "tiny.png",
    }
    assert [Path(d["file"]).name for d in report["duplicates"]] == ["copy_of_animal.png"]


def test_export_to_a_folder_as_a_user_runs_it(settings: Settings, tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos")
    assert (
        run(settings, "images", "ingest", str(tmp_path / "photos"), "-d", "photos").returncode == 0
    )
    out = tmp_path / "out"
    args = ("export", "photos", "--to", str(out), "--format", "parquet", "--part-rows", "10")
    done = run(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    assert [p["rows"] for p in json.loads(done.stdout)["parts"]] == [10, 10, 7]
    assert json.loads(run(settings, *args, "--json").stdout)["parts_written"] == 0
    missing = run(settings, "export", "nothing", "--to", str(out))
    assert missing.returncode == 3, missing.stderr


@pytest.mark.parametrize("backend", ["duckdb"])
def test_images_embed_with_a_users_onnx_model(settings: Settings, tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos", per_category=3)
    with Workspace(settings) as workspace:  # in-process: a CLI start costs seconds
        ingest_images(workspace, tmp_path / "photos", dataset="photos", size=8)
    weights = np.full((8 * 8 * 3, 5), 0.5)
    model = projection_model(tmp_path / "mine.onnx", weights, input_shape=["n", 192])
    args = ("images", "embed", "photos", "--model", str(model), "--output", "features")
    done = run(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["embeddings"], report["columns"], report["rows"]) == ("photos_embeddings", 7, 12)
    assert report["quality"]["categories"]["humans"]["adds_up"] is True
    refused = run(settings, "images", "embed", "photos", "--model", str(tmp_path / "none.onnx"))
    assert refused.returncode == 2 and "cannot read the ONNX model" in refused.stderr
