"""A declared image pipeline: images-ingest → embed → export, daily, only new images."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headwater.errors import ConfigError
from headwater.flows.pipeline_config import PipelineConfig, load_pipelines
from headwater.flows.pipelines import pipeline_run_dict, pipeline_summaries, run_pipeline
from headwater.flows.scheduler import PipelineScheduler
from headwater.flows.workspace import Workspace
from tests.data.images_folder import write_photo_folder
from tests.onnx_models import projection_model

SIDE = 12
NOW = datetime(2027, 1, 4, 7, tzinfo=UTC)


def _declare(tmp_path: Path, body: str) -> dict[str, PipelineConfig]:
    file = tmp_path / "headwater.toml"
    file.write_text(body, encoding="utf-8")
    return load_pipelines(file)


def _add_images(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"new_{seed}_{i}.png")


def _steps(run: object) -> dict[str, str]:
    found = pipeline_run_dict(run, every_step=True)  # type: ignore[arg-type]
    steps = found["steps"]
    assert isinstance(steps, list)
    return {str(s["step"]): str(s["status"]) for s in steps}


def test_a_daily_image_pipeline_does_only_what_new_images_need(
    workspace: Workspace, tmp_path: Path
) -> None:
    write_photo_folder(tmp_path / "photos")
    rng = np.random.default_rng(0)
    projection_model(
        tmp_path / "grey.onnx",
        rng.uniform(0.1, 1, size=(SIDE * SIDE * 3, 6)),
        input_shape=["n", 3, SIDE, SIDE],
    )
    pipelines = _declare(
        tmp_path,
        f"""
[pipelines.photos_daily]
kind = "images"
source = "photos"
dataset = "photos"
size = {SIDE}
embed = {{ onnx = "grey.onnx", output = "features" }}
export = "out"
part_rows = 10
on_new_data = true
""",
    )
    config = pipelines["photos_daily"]
    scheduler = PipelineScheduler(workspace, pipelines)
    scheduler.start(NOW)

    [first] = scheduler.watch(NOW)  # new data: the folder was never seen
    assert first.status == "succeeded", first.error
    assert first.outcome == "27 vectors exported"
    assert _steps(first) == {
        "images-ingest": "succeeded",
        "embed": "succeeded",
        "export": "succeeded",
    }
    outcome = {s.step: s.outcome for s in first.steps}
    assert outcome["images-ingest"]["rows_loaded"] == 27 and first.batch_ids
    assert outcome["embed"]["rows"] == 27
    assert outcome["export"] == {
        "rows": 27,
        "parts": 3,
        "parts_written": 4,
    }

    second = run_pipeline(workspace, config)  # by hand, nothing new: nothing done
    assert second is not None and second.status == "skipped" and second.outcome == "no new images"
    assert _steps(second) == {"images-ingest": "succeeded", "embed": "not run", "export": "not run"}
    assert scheduler.watch(NOW) == []  # the folder has not changed

    _add_images(tmp_path / "photos" / "plants", 3, seed=1)
    (tmp_path / "photos" / "plants" / "notes.txt").write_text("not an image")
    [third] = scheduler.watch(NOW)  # the watcher looks into the category folders
    assert third.status == "succeeded", third.error
    outcome = {s.step: s.outcome for s in third.steps}
    assert outcome["images-ingest"]["rows_loaded"] == 3
    assert outcome["embed"]["rows"] == 3 and outcome["embed"]["already_embedded"] == 27
    assert outcome["export"]["parts_written"] == 2  # the last part, grown, and the manifest
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"] == 30 and manifest["dataset"] == "photos_embeddings"

    (tmp_path / "photos" / "plants" / "more.txt").write_text("still not an image")
    assert scheduler.watch(NOW) == []  # only image files are watched
    [summary] = pipeline_summaries(workspace, pipelines, NOW)
    assert summary["kind"] == "images" and summary["model"] == "ONNX grey.onnx"
    assert summary["promote"] == "never"


@pytest.mark.parametrize("backend", ["duckdb"])
def test_an_image_pipeline_trains_its_cnn_once_and_reuses_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    for category in ("cats", "dogs"):
        (tmp_path / "photos" / category).mkdir(parents=True)
        _add_images(tmp_path / "photos" / category, 12, seed=ord(category[0]))
    config = _declare(
        tmp_path,
        """
[pipelines.photos]
kind = "images"
source = "photos"
dataset = "photos"
size = 8
embed = { dim = 4, epochs = 1 }
export = "out"
format = "csv"
""",
    )["photos"]
    first = run_pipeline(workspace, config)
    assert first is not None and first.status == "succeeded", first and first.error
    [cnn] = first.run_ids  # the CNN it trained for its vectors
    assert first.challenger_run_id is None and not first.promoted
    _add_images(tmp_path / "photos" / "dogs", 3, seed=9)
    second = run_pipeline(workspace, config)
    assert second is not None and second.status == "succeeded"
    embed = next(s.outcome for s in second.steps if s.step == "embed")
    assert embed["rows"] == 3 and embed["model_run"] == cnn and not embed["trained"]
    assert (tmp_path / "out" / "part-00000.csv").read_text().count("\n") == 28  # header + 27


@pytest.mark.parametrize("backend", ["duckdb"])
def test_after_a_failed_export_a_run_with_no_new_images_finishes_the_export(
    workspace: Workspace, tmp_path: Path
) -> None:
    write_photo_folder(tmp_path / "photos", per_category=3)
    weights = np.random.default_rng(0).uniform(0.1, 1, size=(8 * 8 * 3, 4))
    projection_model(tmp_path / "m.onnx", weights, input_shape=["n", 3, 8, 8])
    config = _declare(
        tmp_path,
        '[pipelines.p]\nkind = "images"\nsource = "photos"\ndataset = "photos"\nsize = 8\n'
        'embed = { onnx = "m.onnx", output = "features" }\nexport = "out"\n',
    )["p"]
    (tmp_path / "out").write_text("a file where the export folder should be")
    failed = run_pipeline(workspace, config)
    assert failed is not None and failed.status == "failed"
    assert _steps(failed)["export"] == "failed"

    (tmp_path / "out").unlink()
    again = run_pipeline(workspace, config)  # no new image, but the last run failed
    assert again is not None and again.status == "succeeded", again.error
    embed = next(s.outcome for s in again.steps if s.step == "embed")
    assert embed["rows"] == 0 and embed["already_embedded"] == 12
    assert (tmp_path / "out" / "manifest.json").is_file()
    skipped = run_pipeline(workspace, config)
    assert skipped is not None and skipped.status == "skipped"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('model = "mlp"', "key 'model' belongs to a table pipeline"),
        ("", "key 'export' is missing"),
        ('export = "out"\nembed = { dims = 8 }', "key 'embed.dims' is not understood"),
        ('export = "out"\nembed = { model = "r1", onnx = "m.onnx" }', "not both"),
        ('export = "http://example.com/x"', "export to a folder or to s3://bucket/prefix/"),
        ('export = "out"\nformat = "xlsx"', "key 'format'"),
        ('export = "out"\nworkers = 0', "key 'workers'"),
        ('export = "out"\nengine = "dask"', "key 'engine'"),
    ],
)
def test_a_bad_image_pipeline_is_refused_when_the_file_is_read(
    tmp_path: Path, body: str, said: str
) -> None:
    text = f'[pipelines.p]\nkind = "images"\nsource = "photos"\ndataset = "photos"\n{body}\n'
    with pytest.raises(ConfigError) as refused:
        _declare(tmp_path, text)
    message = str(refused.value)
    assert str(tmp_path / "headwater.toml") in message and "pipelines.p" in message
    assert said in message


def test_image_keys_on_a_table_pipeline_and_a_url_as_an_image_source_are_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        ConfigError, match=r'key .export. is read by an image pipeline only; add kind = "images"'
    ):
        _declare(tmp_path, '[pipelines.p]\nsource = "a.csv"\ndataset = "d"\nexport = "out"\n')
    with pytest.raises(ConfigError, match="key 'source': an image pipeline reads a folder"):
        _declare(
            tmp_path,
            '[pipelines.p]\nkind = "images"\nsource = "https://example.com/x.zip"\n'
            'dataset = "d"\nexport = "out"\n',
        )


def test_an_image_pipeline_names_the_engine_its_embed_and_export_run_on(tmp_path: Path) -> None:
    body = '[pipelines.p]\nkind = "images"\nsource = "photos"\ndataset = "photos"\nexport = "out"\n'
    assert _declare(tmp_path, body)["p"].image_chain().engine == "local"
    spark = _declare(tmp_path, body + 'engine = "spark"\n')["p"].image_chain()
    assert (spark.engine, spark.dest, spark.dataset) == ("spark", str(tmp_path / "out"), "photos")
    with pytest.raises(ConfigError, match=r"key .engine. is read by an image pipeline only"):
        _declare(tmp_path, '[pipelines.t]\nsource = "a.csv"\ndataset = "d"\nengine = "spark"\n')
