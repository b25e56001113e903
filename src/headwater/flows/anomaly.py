"""Anomaly runs: learn what a dataset's accepted images look like, then flag a batch's odd rows.

:func:`train_detector` fits an :class:`~headwater.learning.anomaly.AutoencoderDetector`
on the rows a model may learn from (the ``train`` split and unassigned rows; the
validation and test splits stay held out), saves it like any other model (ONNX +
safetensors + params, with sha256s) and registers it as a run of model
``autoencoder`` with the exact rows it saw.

:func:`score_batch` scores every row of one batch with the latest such run (its
ONNX file verified against the registry first), draws the most anomalous rows as a
PNG grid, and writes the outcome into that batch's quality report as the check
``anomaly``: ``warn`` with the flagged rows, or ``pass``. Scoring again replaces
the earlier ``anomaly`` check rather than adding a second one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from headwater.data.features import FeatureSpec, Pixels
from headwater.data.quality import CheckOutcome, QualityReport
from headwater.errors import ConfigError, IntegrityError, NotFound, SchemaError
from headwater.flows.lifecycle import EpochFn, Run, RunSpec, check_seed, run_lifecycle
from headwater.flows.training_data import RoleRows, feature_matrices, fit_feature_spec
from headwater.flows.workspace import Workspace
from headwater.learning.anomaly import (
    AutoencoderDetector,
    OnnxAnomalyScorer,
    plot_anomaly_grid,
    save_detector,
)
from headwater.learning.artifacts import ONNX_FILE
from headwater.learning.base import ParamValue
from headwater.storage.lake import sha256_file
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import quality_store as qs
from headwater.storage.warehouse import runs as registry
from headwater.storage.warehouse.runs import RunRow

__all__ = [
    "MODEL",
    "AnomalousRow",
    "AnomalyReport",
    "detector_run",
    "score_batch",
    "train_detector",
]

log = logging.getLogger("headwater.anomaly")

MODEL = "autoencoder"
CHECK = "anomaly"
LEARN_SPLITS = ("train", "unassigned")
GRID_FILE = "anomalies.png"
TRAIN_GRID_FILE = "train_anomalies.png"
TOP_ROWS = 100  # flagged rows kept in the report's ``top``; ``n_flagged`` counts all
NAMED_ROWS = 10  # source rows named in the quality check's detail
SHAPE_COLUMNS = ("height", "width", "channels", "pixel_dtype")


@dataclass(frozen=True)
class AnomalousRow:
    row_id: int  # the warehouse's image key
    source_row: int  # the row's position in the file it came from
    score: float


@dataclass(frozen=True)
class AnomalyReport:
    """One batch scored by one detector run; ``top`` is flagged rows, most anomalous first."""

    dataset: str
    batch_id: int
    run_id: str
    threshold: float
    quantile: float
    n_rows: int
    n_flagged: int
    top: list[AnomalousRow]
    grid: Path | None

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "batch_id": self.batch_id,
            "run_id": self.run_id,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "n_rows": self.n_rows,
            "n_flagged": self.n_flagged,
            "top": [row.__dict__ for row in self.top],
            "grid": None if self.grid is None else str(self.grid),
        }


@dataclass(frozen=True)
class _Images:
    keys: npt.NDArray[np.int64]
    source_rows: npt.NDArray[np.int64]
    pixels: npt.NDArray[np.generic]  # (n, h, w, c) as stored
    batch_ids: list[int]

    def rows(self) -> npt.NDArray[np.float32]:
        """Flat rows in 0..1 by the same rule as every model's input (:class:`Pixels`)."""
        flat = self.pixels.reshape(len(self.pixels), -1)
        return FeatureSpec([Pixels()]).fit_transform(flat)

    def display(self) -> npt.NDArray[np.float32]:
        """Images for a picture: (n, h, w) for one channel, (n, h, w, c) for colour."""
        n, height, width, channels = (int(d) for d in self.pixels.shape)
        scaled = self.rows().reshape(n, height, width, channels)
        return scaled[..., 0] if channels == 1 else scaled


# -- training --------------------------------------------------------------------------------


def train_detector(
    ws: Workspace,
    dataset: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    params: Mapping[str, ParamValue] | None = None,
    on_epoch: EpochFn | None = None,
) -> RunRow:
    """Fit, save and register an anomaly detector on ``dataset``'s learnable rows.

    ``params`` overrides :class:`AutoencoderDetector` hyperparameters (``latent``,
    ``hidden``, ``quantile``...). Metrics: the threshold, the training rows' mean
    score and, when the dataset has a test split, the share of test rows flagged
    (about ``1 - quantile`` when the test rows are like the training rows).
    """
    check_seed(seed)
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs must be 1 or more, got {epochs}")
    known = AutoencoderDetector().get_params()
    unknown = sorted(set(params or {}) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown detector parameters {unknown}; known: {', '.join(sorted(known))}"
        )
    found = _image_dataset(ws, dataset)
    chosen: dict[str, ParamValue] = {**(params or {}), "seed": seed}
    if epochs is not None:
        chosen["epochs"] = epochs
    detector = AutoencoderDetector(**chosen)  # type: ignore[arg-type]  # values checked next
    detector.check_params()  # before anything is registered
    learn = _learnable(ws, found)
    spec = RunSpec(
        found,
        MODEL,
        {k: v for k, v in detector.get_params().items() if k != "seed"},
        seed,
        f"train-quantile-{detector.quantile}",
    )
    with run_lifecycle(ws, spec, on_epoch=on_epoch) as run:
        _fit_and_register(ws, run, detector, learn, found)
    return registry.get_run(ws.warehouse, run.run_id)


def _fit_and_register(
    ws: Workspace,
    run: Run,
    detector: AutoencoderDetector,
    learn: RoleRows,
    dataset: cat.DatasetRow,
) -> None:
    # read a chunk at a time, memory-mapped past HEADWATER_TRAIN_MEMORY_MB, as training does
    spec = fit_feature_spec(ws, dataset, learn)
    X = feature_matrices(ws, dataset, {"train": learn}, spec, run.cache)["train"]
    shape = tuple(int(d) for d in np.asarray(spec.learned_[0]["shape"]))  # (h, w) or (h, w, c)
    began = time.perf_counter()
    detector.fit(X, on_epoch=run.epoch_fn(detector.epochs))
    seconds = time.perf_counter() - began
    scores = detector.score(X)
    metrics: dict[str, object] = {
        "threshold": detector.threshold_,
        "quantile": detector.quantile,
        "train_score_mean": float(scores.mean()),
        "train_flagged": int((scores > detector.threshold_).sum()),
        "rows": {"train": len(X)},
    }
    test = _test_rows(ws, dataset, spec, run.cache)
    if test is not None:
        metrics["test_flag_rate"] = float(detector.flag(test).mean())
        metrics["rows"] = {"train": len(X), "test": len(test)}
    hashes = save_detector(detector, run.folder)
    grid = plot_anomaly_grid(
        X.reshape(len(X), *shape),
        scores,
        detector.threshold_,
        run.folder / TRAIN_GRID_FILE,
        captions=[f"row id {k}" for k in learn.row_keys.tolist()],
    )
    hashes[grid.name] = sha256_file(grid)
    run.succeed(
        rows={"train": (learn.row_keys, learn.batch_ids)},
        hashes=hashes,
        metrics=metrics,
        seconds=seconds,
    )
    log.info("run %s: detector threshold %.4f in %.1f s", run.run_id, detector.threshold_, seconds)


def _image_dataset(ws: Workspace, dataset: str) -> cat.DatasetRow:
    found = cat.get_dataset(ws.warehouse, dataset)
    if found.kind != "image":
        raise ConfigError(
            f"dataset {dataset!r} holds {found.kind} rows; the anomaly detector learns images"
        )
    return found


def _learnable(ws: Workspace, dataset: cat.DatasetRow) -> RoleRows:
    """The train split and unassigned rows, in row-key order within each: keys only."""
    parts = [(s, cat.split_index(ws.warehouse, dataset, s)) for s in LEARN_SPLITS]
    present = [(split, index) for split, index in parts if len(index.row_keys)]
    if not present:
        raise SchemaError(
            f"dataset {dataset.name!r} has no train (or unassigned) rows to learn from",
            field="split",
        )
    keys = np.concatenate([index.row_keys for _, index in present])
    return RoleRows(
        splits=tuple(split for split, _ in present),
        row_keys=keys,
        y=np.zeros(len(keys), dtype=np.int64),  # a detector learns without labels
        batch_keys=np.concatenate([index.batch_keys for _, index in present]),
    )


def _test_rows(
    ws: Workspace, dataset: cat.DatasetRow, spec: FeatureSpec, cache: Path
) -> npt.NDArray[np.float32] | None:
    """The test split as the detector's input, or None without one (or with other-sized images)."""
    index = cat.split_index(ws.warehouse, dataset, "test")
    if len(index.row_keys) == 0:
        return None
    rows = RoleRows(
        ("test",), index.row_keys, np.zeros(len(index.row_keys), np.int64), index.batch_keys
    )
    try:
        return feature_matrices(ws, dataset, {"test": rows}, spec, cache)["test"]
    except SchemaError:  # images of another size than the training ones: nothing to compare
        return None


# -- scoring ---------------------------------------------------------------------------------


def detector_run(ws: Workspace, dataset: str, run_id: str | None = None) -> RunRow:
    """The named run, checked to be a succeeded detector of ``dataset``, else the latest one."""
    wh = ws.warehouse
    if run_id is not None:
        run = registry.get_run(wh, run_id)
        if run.model != MODEL or run.dataset != dataset:
            raise ConfigError(
                f"run {run_id} is a {run.model} run of {run.dataset!r}, not an anomaly detector "
                f"of {dataset!r}; list runs with: headwater runs --dataset {dataset}"
            )
        if run.status != "succeeded":
            raise ConfigError(f"run {run_id} is {run.status}; only a succeeded run can score")
        return run
    done = [
        r for r in registry.list_runs(wh, dataset) if r.model == MODEL and r.status == "succeeded"
    ]
    if not done:
        raise NotFound(
            f"dataset {dataset!r} has no anomaly detector yet; train one: "
            f"headwater anomalies {dataset} --train"
        )
    return done[-1]


def score_batch(
    ws: Workspace, dataset: str, batch_id: int, *, run_id: str | None = None
) -> AnomalyReport:
    """Score one batch, draw its most anomalous rows, and record the check in its report."""
    found = _image_dataset(ws, dataset)
    wh = ws.warehouse
    report_text = qs.get_report(wh, batch_id)
    if report_text is None or batch_id not in {b.batch_id for b in cat.list_batches(wh, dataset)}:
        raise NotFound(
            f"dataset {dataset!r} has no checked batch {batch_id}; see: headwater quality {dataset}"
        )
    run = detector_run(ws, dataset, run_id)
    scorer = _scorer(ws, run.run_id)
    quantile = float(str(run.metrics.get("quantile", run.params.get("quantile", 0.99))))
    rows = _batch_images(ws, found, batch_id)
    if rows is None:  # every row was a duplicate or quarantined: nothing to score
        result = AnomalyReport(
            dataset, batch_id, run.run_id, scorer.threshold_, quantile, 0, 0, [], None
        )
    else:
        result = _score_rows(ws, run.run_id, scorer, rows, batch_id, quantile, dataset)
    _record_check(ws, found, batch_id, QualityReport.from_json(report_text), result)
    return result


def _score_rows(
    ws: Workspace,
    run_id: str,
    scorer: OnnxAnomalyScorer,
    rows: _Images,
    batch_id: int,
    quantile: float,
    dataset: str,
) -> AnomalyReport:
    X = rows.rows()
    if X.shape[1] != scorer.n_features_in_:
        raise SchemaError(
            f"batch {batch_id} holds images of shape {rows.pixels.shape[1:]} "
            f"({X.shape[1]} values), the detector of run {run_id} learned "
            f"{scorer.n_features_in_}; retrain it: headwater anomalies {dataset} --train",
            field="pixels",
        )
    scores = scorer.score(X)
    grid = plot_anomaly_grid(
        rows.display(),
        scores,
        scorer.threshold_,
        ws.settings.home / "runs" / run_id / "batches" / str(batch_id) / GRID_FILE,
        captions=[f"row {r}" for r in rows.source_rows.tolist()],
    )
    order = np.argsort(-scores, kind="stable")
    flagged = order[scores[order] > scorer.threshold_]
    top = [
        AnomalousRow(key, source, score)
        for key, source, score in zip(
            rows.keys[flagged[:TOP_ROWS]].tolist(),
            rows.source_rows[flagged[:TOP_ROWS]].tolist(),
            scores[flagged[:TOP_ROWS]].tolist(),
            strict=True,
        )
    ]
    return AnomalyReport(
        dataset, batch_id, run_id, scorer.threshold_, quantile, len(X), len(flagged), top, grid
    )


def _scorer(ws: Workspace, run_id: str) -> OnnxAnomalyScorer:
    artifacts = {a.name: a for a in registry.run_artifacts(ws.warehouse, run_id)}
    onnx_artifact = artifacts.get(ONNX_FILE)
    if onnx_artifact is None:
        raise IntegrityError(f"run {run_id} has no {ONNX_FILE} registered; retrain the detector")
    return OnnxAnomalyScorer(onnx_artifact.path, onnx_artifact.sha256, run_id=run_id)


def _batch_images(ws: Workspace, dataset: cat.DatasetRow, batch_id: int) -> _Images | None:
    """Every loaded row of one batch, whatever its split, with the row it was in its file."""
    table = cat.batch_images(ws.warehouse, dataset, batch_id)
    if table.num_rows == 0:
        return None
    shape = {k: table.column(k).unique().to_pylist() for k in SHAPE_COLUMNS}
    if any(len(values) != 1 for values in shape.values()):
        raise SchemaError(
            f"batch {batch_id} mixes image sizes or pixel types ({shape}); "
            "the detector scores images of one size",
            field="pixels",
        )
    height, width, channels = (int(shape[k][0]) for k in ("height", "width", "channels"))
    data = b"".join(table.column("pixels").to_pylist())
    pixels = np.frombuffer(data, dtype=np.dtype(shape["pixel_dtype"][0]))
    pixels = pixels.reshape(table.num_rows, height, width, channels)
    return _Images(
        table.column("image_key").to_numpy().astype(np.int64),
        table.column("source_row").to_numpy().astype(np.int64),
        pixels,
        [batch_id],
    )


def _record_check(
    ws: Workspace,
    dataset: cat.DatasetRow,
    batch_id: int,
    report: QualityReport,
    result: AnomalyReport,
) -> None:
    """Replace the report's ``anomaly`` check with this result and restate its status."""
    named = ", ".join(str(r.source_row) for r in result.top[:NAMED_ROWS])
    more = ", ..." if result.n_flagged > NAMED_ROWS else ""
    detail = (
        f"{result.n_flagged} of {result.n_rows} rows above the {_percentile(result.quantile)}-"
        f"percentile relative reconstruction error ({result.threshold:.4f}) of run {result.run_id}"
    )
    if result.n_flagged:
        detail += f"; most anomalous: source rows {named}{more}"
    if result.grid is not None:
        detail += f"; grid: {result.grid}"
    checks = [c for c in report.checks if c.name != CHECK]
    checks.append(
        CheckOutcome(
            CHECK, "batch", "warn" if result.n_flagged else "pass", result.n_flagged, detail
        )
    )
    report.checks = checks
    outcomes = {c.outcome for c in checks}
    report.status = "failed" if "fail" in outcomes else "warned" if "warn" in outcomes else "passed"
    qs.replace_report(ws.warehouse, batch_id, dataset.key, report.status, report.to_json())


def _percentile(quantile: float) -> str:
    """0.99 -> '99th', 0.995 -> '99.5th', 0.91 -> '91st'."""
    value = round(quantile * 100, 4)
    text = f"{value:g}"
    if value != int(value) or 10 <= int(value) % 100 <= 13:
        return f"{text}th"
    return text + {1: "st", 2: "nd", 3: "rd"}.get(int(value) % 10, "th")
