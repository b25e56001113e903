"""`headwater tsne`: a map of an image dataset's pixels, or of its embeddings, by t-SNE.

The sample is drawn from row keys and labels alone (`learning.tsne.stratified_sample`),
then the features of only the sampled rows are kept while the dataset streams past in
chunks, so memory holds the sample, not the dataset. The map (row key, image key,
label, x, y) and its facts are kept in the lake under ``maps/``, where the web UI's
scatter reads them, and drawn as a PNG.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headwater.errors import ConfigError, NotFound, SchemaError
from headwater.flows.embeddings import image_keys
from headwater.flows.exploration import png_of
from headwater.flows.workspace import Workspace
from headwater.learning.plots import palette, plot_map
from headwater.learning.tsne import reduce, stratified_sample, trust, tsne
from headwater.storage.warehouse import catalog as cat

__all__ = ["MapPoints", "TsneResult", "image_png", "saved_map", "tsne_map"]

CHUNK_ROWS = 8192
EMBEDDINGS = "_embeddings"

Floats = npt.NDArray[np.float32]
Stage = Callable[[str], None]


@dataclass
class TsneResult:
    """A map's facts: the sample per class, trustworthiness, timings, where it was drawn."""

    dataset: str
    image_dataset: str
    source: str
    points: int
    rows: int
    classes: dict[str, dict[str, float]]
    trustworthiness: float
    trust_points: int
    engine: str
    perplexity: float
    png: str
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "image_dataset": self.image_dataset,
            "source": self.source,
            "points": self.points,
            "rows": self.rows,
            "classes": self.classes,
            "trustworthiness": round(self.trustworthiness, 4),
            "trust_k": 10,
            "trust_points": self.trust_points,
            "engine": self.engine,
            "perplexity": self.perplexity,
            "png": self.png,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def tsne_map(
    ws: Workspace,
    dataset: str,
    *,
    sample: int = 20_000,
    out: Path | None = None,
    seed: int = 0,
    n_jobs: int = 2,
    on_stage: Stage | None = None,
) -> TsneResult:
    """Map ``dataset`` (images, or a ``<name>_embeddings`` table); see the module docstring."""
    if sample < 10:
        raise ConfigError(f"--sample must be at least 10 points, got {sample}")
    stage = on_stage or (lambda _: None)
    clock = {"began": time.perf_counter()}
    found = cat.get_dataset(ws.warehouse, dataset)
    stage("reading")
    keys, labels = _index(ws, found)
    chosen = stratified_sample(labels, sample, seed=seed)
    features, ids = _sampled_features(ws, found, keys[chosen])
    clock["read"] = time.perf_counter()
    stage("PCA to 50 dimensions")
    reduced = reduce(features, seed=seed)
    clock["pca"] = time.perf_counter()
    stage(f"t-SNE of {len(chosen)} points")
    fitted = tsne(reduced, seed=seed, n_jobs=n_jobs)
    clock["tsne"] = time.perf_counter()
    stage("trustworthiness")
    score, used = trust(reduced, fitted.points, seed=seed)
    clock["trust"] = time.perf_counter()
    image_dataset, images = _image_keys(ws, found, keys[chosen], ids)
    result = TsneResult(
        dataset=dataset,
        image_dataset=image_dataset,
        source="pixels" if found.kind == "image" else "embeddings",
        points=len(chosen),
        rows=len(keys),
        classes=_shares(labels, chosen),
        trustworthiness=score,
        trust_points=used,
        engine=fitted.engine,
        perplexity=fitted.perplexity,
        png="",
    )
    png = out or _maps(ws) / f"{dataset}.png"
    plot_map(fitted.points, labels[chosen], png, title=_title(result))
    result.png = str(png)
    _save(ws, result, keys[chosen], images, labels[chosen], fitted.points)
    clock["done"] = time.perf_counter()
    steps = ("began", "read", "pca", "tsne", "trust", "done")
    result.seconds = {b: clock[b] - clock[a] for a, b in itertools.pairwise(steps)}
    result.seconds["total"] = clock["done"] - clock["began"]
    return result


def _title(result: TsneResult) -> str:
    return (
        f"t-SNE of {result.dataset} ({result.source}): {result.points:,} of {result.rows:,} "
        f"points, trustworthiness {result.trustworthiness:.3f} at k=10"
    )


def _index(ws: Workspace, found: cat.DatasetRow) -> tuple[npt.NDArray[np.int64], np.ndarray]:
    """Every row's key and label (text), no features."""
    if found.kind != "image" and found.label_column is None:
        raise SchemaError(f"dataset {found.name!r} has no label to colour a map by", field="label")
    keys, labels = [], []
    for split in cat.SPLIT_KEYS:
        index = cat.split_index(ws.warehouse, found, split)
        keys.append(index.row_keys)
        labels.append(np.asarray(pc.fill_null(index.labels, "").to_pylist(), dtype=object))
    all_keys = np.concatenate(keys).astype(np.int64)
    if len(all_keys) < 10:
        raise ConfigError(f"dataset {found.name!r} has {len(all_keys)} rows; a map needs 10")
    return all_keys, np.concatenate(labels)


def _sampled_features(
    ws: Workspace, found: cat.DatasetRow, wanted: npt.NDArray[np.int64]
) -> tuple[Floats, list[str] | None]:
    """The sampled rows' features in ``wanted``'s order (and ids, for an embeddings table)."""
    parts: list[tuple[npt.NDArray[np.int64], Floats, list[str] | None]] = []
    for keys, features, ids in _chunks(ws, found):
        hit = np.isin(keys, wanted)
        if hit.any():
            picked = None if ids is None else [i for i, h in zip(ids, hit, strict=True) if h]
            parts.append((keys[hit], features[hit], picked))
    if not parts:
        raise NotFound(f"dataset {found.name!r} has no rows to map")
    got = np.concatenate([p[0] for p in parts])
    sorter = np.argsort(got)
    place = sorter[np.searchsorted(got, wanted, sorter=sorter)]
    matrix = np.concatenate([p[1] for p in parts])[place]
    names = None
    if parts[0][2] is not None:
        flat = [i for p in parts for i in (p[2] or [])]
        names = [flat[int(j)] for j in place]
    return matrix, names


def _chunks(
    ws: Workspace, found: cat.DatasetRow
) -> Iterator[tuple[npt.NDArray[np.int64], Floats, list[str] | None]]:
    if found.kind == "image":
        for chunk in cat.sourced_image_chunks(ws.warehouse, found, chunk_rows=CHUNK_ROWS):
            pixels = chunk.images.pixels
            flat = pixels.reshape(len(pixels), -1).astype(np.float32)
            if np.issubdtype(pixels.dtype, np.integer):
                flat /= np.float32(255.0)
            yield chunk.images.row_keys, flat, None
        return
    assert found.schema is not None
    numbers = [
        f.name
        for f in found.schema
        if f.name != found.label_column and pa.types.is_floating(f.type)
    ]
    if not numbers:
        raise SchemaError(f"dataset {found.name!r} has no number columns to map", field="f0")
    for split in cat.SPLIT_KEYS:
        for batch in cat.tabular_chunks(ws.warehouse, found, split, chunk_rows=CHUNK_ROWS):
            keys = batch.column("hw_row_key").to_numpy(zero_copy_only=False).astype(np.int64)
            table = pa.Table.from_batches([batch])
            matrix = np.column_stack([table.column(n).to_numpy() for n in numbers])
            ids = table.column("id").to_pylist() if "id" in table.column_names else None
            yield keys, matrix.astype(np.float32), ids


def _image_keys(
    ws: Workspace, found: cat.DatasetRow, keys: npt.NDArray[np.int64], ids: list[str] | None
) -> tuple[str, npt.NDArray[np.int64]]:
    """The image dataset a map shows, and each point's image row there (-1: none)."""
    if found.kind == "image":
        return found.name, keys
    if ids is not None and found.name.endswith(EMBEDDINGS):
        return found.name.removesuffix(EMBEDDINGS), image_keys(ws, found.name, ids)
    return found.name, np.full(len(keys), -1, np.int64)


def _shares(labels: np.ndarray, chosen: npt.NDArray[np.int64]) -> dict[str, dict[str, float]]:
    classes, counts = np.unique(labels, return_counts=True)
    kept = dict(zip(*np.unique(labels[chosen], return_counts=True), strict=True))
    return {
        str(c): {"rows": int(n), "kept": int(kept.get(c, 0)), "share": float(kept.get(c, 0) / n)}
        for c, n in zip(classes, counts, strict=True)
    }


def _maps(ws: Workspace) -> Path:
    folder = ws.lake.root / "maps"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save(
    ws: Workspace,
    result: TsneResult,
    keys: npt.NDArray[np.int64],
    images: npt.NDArray[np.int64],
    labels: np.ndarray,
    points: Floats,
) -> None:
    """The points and the facts under ``maps/<image dataset>.*``: the web page shows the
    latest map of an image dataset, from its pixels or its embeddings."""
    table = pa.table(
        {
            "row_key": pa.array(keys, pa.int64()),
            "image_key": pa.array(images, pa.int64()),
            "label": pa.array([str(v) for v in labels], pa.string()),
            "x": pa.array(points[:, 0], pa.float32()),
            "y": pa.array(points[:, 1], pa.float32()),
        }
    )
    base = _maps(ws) / result.image_dataset
    pq.write_table(table, base.with_suffix(".partial"))
    base.with_suffix(".partial").replace(base.with_suffix(".parquet"))
    base.with_suffix(".json").write_text(json.dumps(result.to_dict()))


@dataclass(frozen=True)
class MapPoints:
    """A saved map: its facts and points (image key, label, x, y)."""

    facts: dict[str, object]
    colours: dict[str, str]
    image_keys: list[int]
    labels: list[str]
    x: list[float]
    y: list[float]


def saved_map(ws: Workspace, image_dataset: str) -> MapPoints | None:
    """The latest map saved for ``image_dataset`` (of its pixels or embeddings), or None."""
    cat.get_dataset(ws.warehouse, image_dataset)
    base = _maps(ws) / image_dataset
    if not base.with_suffix(".parquet").exists() or not base.with_suffix(".json").exists():
        return None
    table = pq.read_table(base.with_suffix(".parquet"))
    classes = sorted(set(table.column("label").to_pylist()))
    return MapPoints(
        facts=json.loads(base.with_suffix(".json").read_text()),
        colours=dict(zip(classes, palette(len(classes)), strict=True)),
        image_keys=table.column("image_key").to_pylist(),
        labels=table.column("label").to_pylist(),
        x=table.column("x").to_pylist(),
        y=table.column("y").to_pylist(),
    )


def image_png(ws: Workspace, image_dataset: str, image_key: int) -> tuple[bytes, str]:
    """One image of a dataset as PNG bytes, with its label (hover thumbnails)."""
    found = cat.get_dataset(ws.warehouse, image_dataset)
    if found.kind != "image":
        raise NotFound(f"dataset {image_dataset!r} holds no images")
    image = cat.image_by_key(ws.warehouse, found, image_key)
    if image is None:
        raise NotFound(f"dataset {image_dataset!r} has no image {image_key}")
    return png_of(image.pixels[0]), image.labels[0] or ""
