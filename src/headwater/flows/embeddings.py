"""`headwater images embed`: a feature vector per image, from a CNN's penultimate layer.

No pretrained weights can be downloaded here, so with no model given Headwater
trains its own CNN on the dataset's labels (a registered run, like any
``headwater train``), with a penultimate (dense) layer ``dim`` wide. A registered
run (``model_run``) or any ONNX file a user brings (``onnx_path``) can be used
instead. The model runs in ONNX Runtime over bounded chunks of images read from the
warehouse; the vectors are checked part by part and category by category
(`headwater.data.embeddings`) and loaded as the dataset ``<name>_embeddings``
(``id``, ``label``, ``f0`` …): curated Parquet in the lake and a table in the
warehouse, through the ordinary ingest, so ``headwater export`` and the quality
commands work on it.

Per image it is idempotent: a second embed with the same model computes vectors
only for images not yet in ``<name>_embeddings``; a different model is refused
there, since vectors of two models cannot sit in one table.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headwater.data.embeddings import FeatureChecks
from headwater.data.ingest import ingest_path, validate_dataset_name
from headwater.errors import ConfigError, QualityCheckFailed
from headwater.flows.engines import Engine
from headwater.flows.runs import resolve_run
from headwater.flows.spark_embed import Scored, spark_vectors
from headwater.flows.spark_tasks import FeatureBytes
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.learning.artifacts import ONNX_FILE, read_verified, sha256_bytes
from headwater.learning.embedding import FeatureModel, feature_model
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = ["EmbedProgress", "EmbedResult", "embed_images", "embeddings_name", "image_keys"]

EmbedProgress = Callable[[int, int], None]
"""Called as (images done, images in total) after every chunk."""

CHUNK_ROWS = 2048
"""Images read from the warehouse, scored and checked at a time: one output part."""
ORIGIN = "headwater-embed:"
MAX_DIM = 100_000


def embeddings_name(dataset: str) -> str:
    """The features dataset of an image dataset: ``<dataset>_embeddings``."""
    return validate_dataset_name(f"{dataset}_embeddings")


@dataclass
class EmbedResult:
    """What an embed produced: where, from which model, and its quality counts."""

    dataset: str
    embeddings: str
    model: str
    model_run: str | None
    trained: bool
    output: str
    dim: int
    images: int
    rows: int
    skipped: int
    seconds: float
    quality: dict[str, object] = field(default_factory=dict)
    ingest: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "embeddings": self.embeddings,
            "model": self.model,
            "model_run": self.model_run,
            "trained": self.trained,
            "output": self.output,
            "dim": self.dim,
            "columns": 2 + self.dim,
            "images": self.images,
            "rows": self.rows,
            "already_embedded": self.skipped,
            "seconds": round(self.seconds, 3),
            "quality": self.quality,
            "ingest": self.ingest,
        }


@dataclass(frozen=True)
class _Model:
    features: FeatureModel
    name: str
    origin: str
    run_id: str | None
    trained: bool
    shipped: FeatureBytes
    """The graph's bytes and the tensor asked for, as Spark's executors rebuild it."""


def embed_images(
    ws: Workspace,
    dataset: str,
    *,
    model_run: str | None = None,
    onnx_path: Path | None = None,
    dim: int = 512,
    on_progress: EmbedProgress | None = None,
    output: str | None = None,
    epochs: int | None = None,
    engine: Engine = "local",
) -> EmbedResult:
    """Embed every image of ``dataset`` not yet embedded; see the module docstring.

    ``output`` names the tensor to read from ``onnx_path`` (default: its last 2-D
    output); ``epochs`` overrides the CNN's when Headwater trains it. ``engine="spark"``
    scores the lake's curated images on Spark (`spark_embed`); the load is the same.
    """
    began = time.perf_counter()
    images = cat.get_dataset(ws.warehouse, dataset)
    if images.kind != "image":
        raise ConfigError(f"dataset {dataset!r} holds a table, not images: nothing to embed")
    if not 1 <= dim <= MAX_DIM:
        raise ConfigError(f"--dim must be between 1 and {MAX_DIM}, got {dim}")
    if model_run is not None and onnx_path is not None:
        raise ConfigError("give a registered run or an ONNX file, not both")
    target = embeddings_name(dataset)
    model = _model(ws, images, target, model_run, onnx_path, dim, output, epochs)
    done = _embedded_ids(ws, target)
    staging = ws.lake.staging / f"embed-{uuid.uuid4().hex}"
    try:
        scored = (
            _spark_vectors(ws, images, model, done)
            if engine == "spark"
            else _local_vectors(ws, images, model, done)
        )
        checks, total, skipped, keys = _score(ws, images, scored, staging, on_progress)
        result = EmbedResult(
            dataset=dataset,
            embeddings=target,
            model=model.name,
            model_run=model.run_id,
            trained=model.trained,
            output=model.features.output,
            dim=checks.dim,
            images=total,
            rows=checks.rows,
            skipped=skipped,
            seconds=0.0,
            quality=checks.to_dict(),
        )
        if checks.rows:
            result.ingest = _load(ws, target, checks, model.origin)
            _remember_keys(ws, target, keys)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.seconds = time.perf_counter() - began
    return result


def _model(
    ws: Workspace,
    images: cat.DatasetRow,
    target: str,
    run_id: str | None,
    onnx_path: Path | None,
    dim: int,
    output: str | None,
    epochs: int | None,
) -> _Model:
    """The model to read vectors from: given, the one the embeddings came from, or trained."""
    previous = _previous_origin(ws, target)
    trained = False
    if onnx_path is not None:
        data = _read_model_file(onnx_path)
        origin = f"{ORIGIN}onnx={sha256_bytes(data)}"
        _same_model(target, previous, origin)
        model = feature_model(data, output=output)
        shipped = FeatureBytes(data, origin[-64:], output, False)
        name = f"{onnx_path.name} (sha256 {origin[-64:][:12]})"
        return _Model(model, name, origin, None, False, shipped)
    if run_id is None and previous is not None and previous.startswith(f"{ORIGIN}run="):
        run_id = previous.removeprefix(f"{ORIGIN}run=")  # more images, same model
    elif run_id is None:
        params: dict[str, int | float | str | None] = {"hidden": dim}
        if epochs is not None:
            params["epochs"] = epochs
        run_id = train(ws, TrainRequest(images.name, model="cnn", params=params)).run_id
        trained = True
    elif run_id in ("best", "latest"):
        run_id = resolve_run(ws, images.name, run_id)
    _same_model(target, previous, f"{ORIGIN}run={run_id}")
    data = _run_onnx(ws, run_id)
    return _Model(
        feature_model(data, own=True, output=output),
        f"run {run_id}",
        f"{ORIGIN}run={run_id}",
        run_id,
        trained,
        FeatureBytes(data, sha256_bytes(data), output, True),
    )


def _read_model_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the ONNX model {path}: {exc.strerror}") from exc


def _run_onnx(ws: Workspace, run_id: str) -> bytes:
    run = registry.get_run(ws.warehouse, run_id)
    if run.status != "succeeded":
        raise ConfigError(f"run {run_id} is {run.status}; only a succeeded run has a model")
    artifacts = {a.name: a for a in registry.run_artifacts(ws.warehouse, run_id)}
    artifact = artifacts[ONNX_FILE]
    return read_verified(Path(artifact.path), artifact.sha256, run_id)


def _previous_origin(ws: Workspace, target: str) -> str | None:
    batches = [b for b in cat.list_batches(ws.warehouse, target) if b.status == "succeeded"]
    return batches[-1].source if batches else None


def _same_model(target: str, previous: str | None, origin: str) -> None:
    if previous is not None and previous != origin:
        was = previous.removeprefix(ORIGIN).replace("=", " ")
        raise ConfigError(
            f"{target} holds vectors from {was}; vectors of another model would not be "
            f"comparable with them. Embed with that model (--model {was.split(' ', 1)[1]}) "
            "to add new images"
        )


def _embedded_ids(ws: Workspace, target: str) -> set[str]:
    """Ids already in the embeddings dataset (its curated Parquet, the id column only)."""
    done: set[str] = set()
    for batch_id in ws.lake.curated_batches(target):
        for path in (ws.lake.curated_dir(target) / f"batch_id={batch_id}").glob("*.parquet"):
            done.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return done


def _local_vectors(
    ws: Workspace, images: cat.DatasetRow, model: _Model, done: set[str]
) -> Iterator[Scored]:
    """The local engine: warehouse chunks scored in this process, embedded ids skipped."""
    for ids, labels, row_keys, pixels in _image_chunks(ws, images):
        chosen = np.flatnonzero(np.array([i not in done for i in ids], dtype=bool))
        vectors = model.features.features(pixels[chosen]) if len(chosen) else None
        yield (
            len(ids),
            [ids[i] for i in chosen],
            [labels[i] for i in chosen],
            row_keys[chosen],
            np.zeros((0, 0), np.float32) if vectors is None else vectors,
        )


def _spark_vectors(
    ws: Workspace, images: cat.DatasetRow, model: _Model, done: set[str]
) -> Iterator[Scored]:
    """The Spark engine: the driver names the images (ids as locally) and asks Spark for
    the vectors of those not yet embedded; the skipped ones pass as one empty chunk."""
    sources = cat.image_sources(ws.warehouse, images)
    batch_keys = sources.column("batch_key").to_numpy().astype(np.int64)
    source_rows = sources.column("source_row").to_numpy().astype(np.int64)
    row_keys = sources.column("image_key").to_numpy().astype(np.int64)
    ids = _image_ids(_folder_index(ws, images), images.name, batch_keys, source_rows, row_keys)
    fresh = np.array([i not in done for i in ids], dtype=bool)
    if not fresh.all():
        yield int((~fresh).sum()), [], [], np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    if fresh.any():
        wanted = pa.table(
            {
                "batch_key": batch_keys[fresh],
                "source_row": source_rows[fresh],
                "image_key": row_keys[fresh],
            }
        )
        chosen = np.flatnonzero(fresh)
        named = {int(row_keys[i]): ids[i] for i in chosen}
        yield from spark_vectors(
            ws, images.name, model.shipped, wanted, named, chunk_rows=CHUNK_ROWS
        )


def _score(
    ws: Workspace,
    images: cat.DatasetRow,
    scored: Iterator[Scored],
    staging: Path,
    on_progress: EmbedProgress | None,
) -> tuple[FeatureChecks, int, int, list[tuple[str, int]]]:
    """Every not-yet-embedded image's vector, chunk by chunk, checked and written."""
    total = sum(cat.split_counts(ws.warehouse, images).values())
    checks: FeatureChecks | None = None
    seen = skipped = 0
    keys: list[tuple[str, int]] = []
    for passed, ids, labels, row_keys, vectors in scored:
        seen += passed
        skipped += passed - len(ids)
        if ids:
            if checks is None:
                checks = FeatureChecks(staging / "features.parquet", vectors.shape[1])
            checks.add(ids, labels, vectors)
            keys += list(zip(ids, row_keys.tolist(), strict=True))
        if on_progress is not None:
            on_progress(seen, total)
    if checks is None:
        checks = FeatureChecks(staging / "features.parquet", 0)
    checks.close()
    kept_aside = _keep_set_aside(ws, images.name, checks)
    refusal = checks.refusal()
    if refusal is not None:
        where = f"; every row set aside is listed in {kept_aside}" if kept_aside else ""
        raise QualityCheckFailed(
            f"the vectors of {images.name!r} failed their checks and nothing was loaded: "
            f"{refusal}{where}"
        )
    return checks, seen, skipped, keys


def _keep_set_aside(ws: Workspace, dataset: str, checks: FeatureChecks) -> Path | None:
    """The rows set aside by this embed, moved into the lake as
    ``embeddings/<dataset>_embeddings.set_aside.parquet`` (the last embed's; none: removed)."""
    target = ws.lake.root / "embeddings" / f"{embeddings_name(dataset)}.set_aside.parquet"
    if not checks.aside_path.exists():
        target.unlink(missing_ok=True)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(checks.aside_path, target)
    return target


def _image_chunks(
    ws: Workspace, images: cat.DatasetRow
) -> Iterator[tuple[list[str], list[str], npt.NDArray[np.int64], npt.NDArray[np.generic]]]:
    """(ids, labels, row keys, pixels) a chunk at a time; ids from the folder's index."""
    index = _folder_index(ws, images)
    for chunk in cat.sourced_image_chunks(ws.warehouse, images, chunk_rows=CHUNK_ROWS):
        ids = _image_ids(
            index, images.name, chunk.batch_keys, chunk.source_rows, chunk.images.row_keys
        )
        labels = [label or "" for label in chunk.images.labels]
        yield ids, labels, chunk.images.row_keys, chunk.images.pixels


def _image_ids(
    index: dict[tuple[int, int], str],
    dataset: str,
    batch_keys: npt.NDArray[np.int64],
    source_rows: npt.NDArray[np.int64],
    row_keys: npt.NDArray[np.int64],
) -> list[str]:
    """Each image's id: its file's hash from the folder's index, else ``<dataset>:<row key>``."""
    return [
        index.get((int(b), int(r))) or f"{dataset}:{int(k)}"
        for b, r, k in zip(batch_keys, source_rows, row_keys, strict=True)
    ]


def _folder_index(ws: Workspace, images: cat.DatasetRow) -> dict[tuple[int, int], str]:
    """(batch, source row) -> image id, from ``images/<dataset>.parquet`` when one was written.

    An index without a ``batch_id`` column describes the dataset's latest loaded batch.
    Rows it does not name get ``<dataset>:<row key>`` as their id.
    """
    path = ws.lake.root / "images" / f"{images.name}.parquet"
    if not path.exists():
        return {}
    table = pq.read_table(path)
    if "batch_id" in table.column_names:
        batches = table.column("batch_id").to_pylist()
    else:
        loaded = [
            b.batch_id
            for b in cat.list_batches(ws.warehouse, images.name)
            if b.status == "succeeded" and b.rows_loaded
        ]
        batches = [loaded[-1] if loaded else -1] * table.num_rows
    rows = table.column("source_row").to_pylist()
    return dict(zip(zip(batches, rows, strict=True), table.column("id").to_pylist(), strict=True))


def _load(ws: Workspace, target: str, checks: FeatureChecks, origin: str) -> dict[str, object]:
    """The checked table into the lake and warehouse as one ingest batch; counts must add up."""
    report = ingest_path(
        checks.path,
        warehouse=ws.warehouse,
        lake=ws.lake,
        dataset=target,
        label="label",
        origin=origin,
        chunk_rows=ws.settings.ingest_chunk_rows,
    )
    accounted = report.rows_loaded + report.rows_duplicate + report.rows_quarantined
    if not report.unchanged and accounted != checks.rows:
        raise QualityCheckFailed(
            f"{target}: {checks.rows} vectors were written but the load accounts for "
            f"{accounted} (loaded {report.rows_loaded}, duplicate {report.rows_duplicate}, "
            f"quarantined {report.rows_quarantined})"
        )
    return report.to_dict()


def _remember_keys(ws: Workspace, target: str, keys: list[tuple[str, int]]) -> None:
    """Which image row each id came from, so a map of the vectors can show the image."""
    path = _keys_path(ws, target)
    table = pa.table(
        {"id": [k[0] for k in keys], "image_key": pa.array([k[1] for k in keys], pa.int64())}
    )
    if path.exists():
        table = pa.concat_tables([pq.read_table(path), table])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pq.write_table(table, partial)
    partial.replace(path)


def _keys_path(ws: Workspace, target: str) -> Path:
    return ws.lake.root / "embeddings" / f"{target}.parquet"


def image_keys(ws: Workspace, target: str, ids: list[str]) -> npt.NDArray[np.int64]:
    """The image row key of each embedding id (-1 where unknown)."""
    path = _keys_path(ws, target)
    if not path.exists():
        return np.full(len(ids), -1, np.int64)
    table = pq.read_table(path)
    at = pc.index_in(pa.array(ids, pa.string()), value_set=table.column("id"))
    keys = table.column("image_key").to_numpy()
    where = at.to_numpy(zero_copy_only=False)
    found = ~np.isnan(where.astype(np.float64))
    out = np.full(len(ids), -1, np.int64)
    out[found] = keys[where[found].astype(np.int64)]
    return out
