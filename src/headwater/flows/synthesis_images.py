"""Synthesis of an image dataset (MNIST-shaped, one channel) as a run; see `flows.synthesis`.

The train split is learned from (PCA per class, or the conditional image VAE); the
test split is the holdout (20% of train when there is none). Synthetic images that are
byte-for-byte training images are dropped and drawn again, and the rows are ingested
as a new image dataset (its train split) whose batch source names the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from headwater.errors import ConfigError, DataError
from headwater.flows.lifecycle import RunSpec, run_lifecycle
from headwater.flows.workspace import Workspace
from headwater.learning.synth.image_report import image_report, plot_samples
from headwater.learning.synth.images import PCAImageSynthesizer, VAEImageSynthesizer
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = ["synthesize_images"]

Images = npt.NDArray[np.uint8]
Keys = npt.NDArray[np.int64]
SAMPLES_FILE = "samples.png"
ProgressFn = Callable[[int, int, dict[str, float]], None]


def _split(
    ws: Workspace, source: cat.DatasetRow, split: str
) -> tuple[Images, list[str], Keys, Keys]:
    index = cat.split_index(ws.warehouse, source, split)
    arrays = cat.image_arrays(ws.warehouse, source, split)
    if len(index.row_keys) and arrays.pixels.shape[-1] != 1:
        raise ConfigError(f"dataset {source.name!r} has colour images; synthesis reads one channel")
    images = arrays.pixels[..., 0] if len(index.row_keys) else np.zeros((0, 0, 0), np.uint8)
    labels = [str(v) for v in index.labels.to_pylist()]
    return images.astype(np.uint8), labels, index.row_keys, index.batch_keys


def read_images(
    ws: Workspace, source: cat.DatasetRow, seed: int
) -> tuple[dict[str, tuple[Images, list[str], Keys, Keys]], list[str]]:
    """The train (or unassigned) and holdout (test, or 20% of train) roles; label texts in order."""
    train = _split(ws, source, "train")
    if not len(train[0]):  # a folder of images has no splits: every row is unassigned
        train = _split(ws, source, "unassigned")
    if len(train[0]) < 2:
        raise DataError(
            f"dataset {source.name!r} has {len(train[0])} training images: nothing to learn"
        )
    held = _split(ws, source, "test")
    if not len(held[0]):
        rows = np.arange(len(train[0]))
        keep, out = train_test_split(rows, test_size=0.2, random_state=seed)
        train, held = _pick(train, np.sort(keep)), _pick(train, np.sort(out))
    classes = sorted(set(train[1]), key=lambda t: (len(t), t))
    return {"train": train, "holdout": held}, classes


def _pick(
    role: tuple[Images, list[str], Keys, Keys], rows: npt.NDArray[np.int64]
) -> tuple[Images, list[str], Keys, Keys]:
    return role[0][rows], [role[1][i] for i in rows], role[2][rows], role[3][rows]


def synthesize_images(
    ws: Workspace,
    source: cat.DatasetRow,
    *,
    method: str,
    rows: int,
    into: str,
    seed: int,
    force: bool,
    ingest: Callable[[Images, list[str], str], None],
    write: Callable[[object, dict[str, object]], dict[str, str]],
    on_epoch: ProgressFn | None = None,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> dict[str, object]:
    """Fit, sample, report and ingest an image dataset; returns the report.

    ``run_id``: a queued run to take over (see `flows.synthesis.queue_synthesis`).
    """
    roles, classes, y, synth = _prepare(ws, source, method, rows, seed, force)
    x, _, keys, batches = roles["train"]
    code = {t: i for i, t in enumerate(classes)}
    params: dict[str, object] = {"method": method, "rows": rows, "into": into, "images": True}
    spec = RunSpec(source, f"synth-{method}", params, seed, "test split")
    started = time.perf_counter()
    queued = run_id is not None and registry.run_exists(ws.warehouse, run_id)
    adopted = None if queued else spec
    with run_lifecycle(ws, adopted, run_id=run_id, on_epoch=on_epoch, stop=stop) as run:
        run.stage("fitting")
        epochs = synth.epochs if isinstance(synth, VAEImageSynthesizer) else len(classes)
        synth.fit(x, y, on_epoch=run.epoch_fn(epochs))
        run.stage("sampling and measuring")
        made_x, made_y = _without_copies(synth, x, rows, seed)
        hx, htexts, hkeys, hbatches = roles["holdout"]
        hy = np.array([code.get(t, -1) for t in htexts], dtype=np.int64)
        report = image_report((x, y), (hx, hy), (made_x, made_y), seed=seed)
        report |= {
            "dataset": into,
            "source": source.name,
            "method": method,
            "rows": rows,
            "run_id": run.run_id,
            "seed": seed,
            "params": params,
            "left_out": {},
            "source_batches": sorted({int(b) for b in batches}),
        }
        hashes = synth.save(run.folder)
        run.folder.mkdir(parents=True, exist_ok=True)
        plot_samples((x, y), (made_x, made_y), run.folder / SAMPLES_FILE)
        hashes |= write(run.folder, report)
        run.stage("ingesting")
        ingest(made_x, [classes[int(c)] for c in made_y], run.run_id)
        run.succeed(
            rows={
                "train": (keys, sorted({int(b) for b in batches})),
                "holdout": (hkeys, sorted({int(b) for b in hbatches})),
            },
            hashes=hashes,
            metrics={k: report[k] for k in ("fidelity", "utility", "detectability", "privacy")},
            seconds=time.perf_counter() - started,
        )
    return report


def _prepare(
    ws: Workspace, source: cat.DatasetRow, method: str, rows: int, seed: int, force: bool
) -> tuple[
    dict[str, tuple[Images, list[str], Keys, Keys]],
    list[str],
    npt.NDArray[np.int64],
    PCAImageSynthesizer | VAEImageSynthesizer,
]:
    """Everything refused before a run is registered: the method, and too many rows asked."""
    if method not in ("pca", "vae"):
        raise ConfigError(f"method {method!r} makes tables; for images choose pca or vae")
    roles, classes = read_images(ws, source, seed)
    x, texts = roles["train"][0], roles["train"][1]
    if rows > 10 * len(x) and not force:
        raise ConfigError(
            f"{rows:,} images is more than 10x the {len(x):,} training images of "
            f"{source.name!r}; pass --force if you mean it"
        )
    code = {t: i for i, t in enumerate(classes)}
    y = np.array([code[t] for t in texts], dtype=np.int64)
    synth: PCAImageSynthesizer | VAEImageSynthesizer = (
        PCAImageSynthesizer(seed=seed) if method == "pca" else VAEImageSynthesizer(seed=seed)
    )
    return roles, classes, y, synth


def _without_copies(
    synth: PCAImageSynthesizer | VAEImageSynthesizer, x: Images, rows: int, seed: int
) -> tuple[Images, npt.NDArray[np.int64]]:
    """``rows`` images none of which is a training image byte for byte."""
    seen = {bytes(image) for image in x}
    images, labels = synth.sample(rows, seed=seed)
    fresh = np.array([bytes(image) not in seen for image in images])
    for round_ in range(1, 5):
        if fresh.all():
            break
        more, more_y = synth.sample(int((~fresh).sum()), seed=seed + round_ * 7919)
        images[~fresh], labels[~fresh] = more, more_y
        fresh = np.array([bytes(image) not in seen for image in images])
    if not fresh.all():
        raise DataError("the synthesizer keeps reproducing training images; nothing was kept")
    return images, labels
