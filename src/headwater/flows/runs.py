"""Reading the registry and using its models: runs, leaderboard, evaluation, predictions.

A model is loaded through its recorded sha256s: a file whose bytes changed on
disk is refused with an error naming the run and the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.data.features import FeatureSpec
from headwater.data.task import dataset_task
from headwater.errors import ConfigError, NotFound
from headwater.flows.lifecycle import reap_abandoned
from headwater.flows.workspace import Workspace
from headwater.learning import ESTIMATORS, OnnxPredictor
from headwater.learning.artifacts import FEATURES_FILE, ONNX_FILE, read_verified
from headwater.learning.params import SEQUENCE_PARAMS, model_task
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry
from headwater.storage.warehouse.runs import ENDED, RunRow

__all__ = [
    "ENDED",
    "Numbers",
    "RunDetail",
    "RunRow",
    "ServedModel",
    "default_metric",
    "interval_columns",
    "leaderboard",
    "list_runs",
    "load_model",
    "prediction_header",
    "ranking_order",
    "resolve_run",
    "run_detail",
    "run_task",
    "set_alias",
]

CLASSIFICATION_METRICS = (
    "test_accuracy",
    "test_macro_f1",
    "validation_accuracy",
    "cv_mean_accuracy",
)
REGRESSION_METRICS = (
    "test_rmse",
    "test_mae",
    "test_r2",
    "test_mape",
    "validation_rmse",
    "cv_mean_rmse",
)
LEADERBOARD_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER = frozenset(
    {"test_rmse", "test_mae", "test_mape", "validation_rmse", "cv_mean_rmse"}
)
"""Errors: the smaller the better. Every other metric ranks larger first."""
DEFAULT_METRIC = {"classification": "test_accuracy", "regression": "test_rmse"}
DETECTOR_METRICS = ("threshold", "test_flag_rate", "train_flagged", "train_score_mean")
"""A detector's headline: where it draws the line, and how much it flags."""


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    epochs: list[dict[str, object]]
    artifacts: list[registry.ArtifactRow]
    data: list[registry.DataRow]

    def plots(self) -> dict[str, str]:
        return {a.name: a.path for a in self.artifacts if a.name.endswith(".png")}

    def to_dict(self) -> dict[str, object]:
        return {
            **run_summary(self.run),
            "epochs": self.epochs,
            "artifacts": [a.__dict__ for a in self.artifacts],
            "data": [d.__dict__ for d in self.data],
            "plots": self.plots(),
            "features": self.run.metrics.get("features", []),  # used as, or left out and why
            "classes": self.run.metrics.get("classes", {}),  # code -> name of a text label
        }


def run_summary(run: RunRow) -> dict[str, object]:
    """A run as JSON: id, model, hyperparameters, final headline metrics."""
    names = LEADERBOARD_METRICS if _classifies(run) else DETECTOR_METRICS
    headline = {k: run.metrics[k] for k in names if k in run.metrics}
    return {
        "run_id": run.run_id,
        "dataset": run.dataset,
        "model": run.model,
        "task": run_task(run),
        "params": run.params,
        "seed": run.seed,
        "evaluation": run.evaluation,
        "status": run.status,
        "metrics": headline,
        "progress": run.progress,
        "train_seconds": run.train_seconds,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "code_version": run.code_version,
        "error": run.error,
    }


def list_runs(ws: Workspace, dataset: str | None = None) -> list[RunRow]:
    """Runs, oldest first; a run whose worker died is marked ``abandoned`` first."""
    if dataset is not None:
        cat.get_dataset(ws.warehouse, dataset)
    reap_abandoned(ws)
    return registry.list_runs(ws.warehouse, dataset)


def run_task(run: RunRow) -> str | None:
    """``classification`` or ``regression`` for a model's run (its model says); None otherwise."""
    return (
        model_task(run.model) if run.model in ESTIMATORS or run.model in SEQUENCE_PARAMS else None
    )


def ranking_order(metric: str) -> str:
    """How ``metric`` ranks, in words the faces show beside the leaderboard."""
    return "lower is better" if metric in LOWER_IS_BETTER else "higher is better"


def default_metric(ws: Workspace, dataset: str) -> str:
    """What a dataset's leaderboard ranks by: test RMSE for a regression, else test accuracy.

    The task is the label's inferred one, unless every finished run was of the other.
    """
    found = cat.get_dataset(ws.warehouse, dataset)
    inferred = dataset_task(ws.warehouse, found)
    task = inferred.task if inferred else "classification"
    done = {
        run_task(r) for r in registry.list_runs(ws.warehouse, dataset) if r.status == "succeeded"
    }
    done.discard(None)
    if done and task not in done:
        task = "regression" if "regression" in done else "classification"
    return DEFAULT_METRIC[task]


def leaderboard(ws: Workspace, dataset: str, *, metric: str | None = None) -> list[RunRow]:
    """Succeeded runs of a dataset that have ``metric``, best first: larger first, except
    errors (RMSE, MAE, MAPE: `LOWER_IS_BETTER`). No metric: `default_metric`."""
    metric = metric or default_metric(ws, dataset)
    if metric not in LEADERBOARD_METRICS:
        raise ConfigError(
            f"unknown metric {metric!r}; choose one of {', '.join(LEADERBOARD_METRICS)}"
        )
    done = [
        r
        for r in list_runs(ws, dataset)
        if r.status == "succeeded" and _classifies(r) and _number(r.metrics.get(metric))
    ]
    lower = metric in LOWER_IS_BETTER
    return sorted(done, key=lambda r: float(str(r.metrics[metric])), reverse=not lower)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _classifies(run: RunRow) -> bool:
    """Model runs (classifiers and regressors) rank and serve; detectors (the autoencoder)
    are registered beside them. Sequence models (the LSTM) rank beside the table models
    trained on the same sequence dataset."""
    return run.model in ESTIMATORS or run.model in SEQUENCE_PARAMS


def run_detail(ws: Workspace, run_id: str) -> RunDetail:
    wh = ws.warehouse
    reap_abandoned(ws)
    return RunDetail(
        registry.get_run(wh, run_id),
        registry.run_epochs(wh, run_id),
        registry.run_artifacts(wh, run_id),
        registry.run_data(wh, run_id),
    )


def resolve_run(ws: Workspace, dataset: str, alias: str) -> str:
    """``best`` (top of the leaderboard unless pinned), ``latest``, or a pinned alias."""
    found = cat.get_dataset(ws.warehouse, dataset)
    pinned = registry.get_alias(ws.warehouse, found.key, alias)
    if pinned is not None:
        return pinned
    runs = (
        leaderboard(ws, dataset)
        if alias == "best"
        else [
            r
            for r in reversed(list_runs(ws, dataset))
            if r.status == "succeeded" and _classifies(r)
        ]
    )
    if alias not in {"best", "latest"}:
        raise NotFound(f"dataset {dataset!r} has no alias {alias!r}; use best, latest or a run id")
    if not runs:
        raise NotFound(f"dataset {dataset!r} has no finished run yet; train one: headwater train")
    return runs[0].run_id


def set_alias(ws: Workspace, run_id: str, alias: str = "best") -> None:
    """Pin a run as the one a dataset's alias serves."""
    run = registry.get_run(ws.warehouse, run_id)
    if run.status != "succeeded":
        raise ConfigError(f"run {run_id} is {run.status}; only a succeeded run can be served")
    dataset = cat.get_dataset(ws.warehouse, run.dataset)
    registry.set_alias(ws.warehouse, dataset.key, alias, run_id, now=datetime.now(UTC))


@dataclass
class ServedModel:
    """A verified ONNX model with the feature transform and label names it was trained with."""

    run_id: str
    predictor: OnnxPredictor
    features: FeatureSpec
    label_names: dict[str, str] | None

    @property
    def classes(self) -> list[str]:
        codes = [str(c) for c in self.predictor.classes_.tolist()]
        return [self.label_names.get(c, c) for c in codes] if self.label_names else codes

    @property
    def regression(self) -> bool:
        return bool(self.predictor.task == "regression")

    def predict_proba(self, data: npt.NDArray[np.generic] | pa.Table) -> npt.NDArray[np.float32]:
        return self.predictor.predict_proba(self.features.transform(data))

    def predict_values(self, data: npt.NDArray[np.generic] | pa.Table) -> npt.NDArray[np.float64]:
        """A regressor's predicted number per row, in the target's units."""
        return self.predictor.predict_values(self.features.transform(data))

    @property
    def coverage(self) -> float | None:
        """A regressor's interval coverage (0.9), or None when its model gives no interval."""
        return self.predictor.coverage if self.regression else None

    def predict_interval(self, data: npt.NDArray[np.generic] | pa.Table) -> Numbers:
        """A regressor's number per row and, where its model gives one, the interval."""
        values, interval = self.predictor.predict_interval(self.features.transform(data))
        return Numbers(values, *(interval or (None, None)))


@dataclass(frozen=True)
class Numbers:
    """A regressor's predictions: the number, and the interval's ends where the model gives one."""

    values: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64] | None = None
    upper: npt.NDArray[np.float64] | None = None


def interval_columns(coverage: float) -> list[str]:
    """The CSV columns of an interval, naming its coverage: ``lower_90``, ``upper_90``."""
    percent = f"{100 * coverage:g}"
    return [f"lower_{percent}", f"upper_{percent}"]


def prediction_header(model: ServedModel) -> list[str]:
    """``row_id, predicted`` and one ``p_<class>`` per class; a regressor: the number, and
    ``lower_90, upper_90`` when its model gives an interval."""
    if model.regression:
        coverage = model.coverage
        return ["row_id", "predicted", *(interval_columns(coverage) if coverage else [])]
    return ["row_id", "predicted", *(f"p_{c}" for c in model.classes)]


def _verified(run_id: str, artifact: registry.ArtifactRow) -> bytes:
    return read_verified(Path(artifact.path), artifact.sha256, run_id)


def load_model(ws: Workspace, run_id: str) -> ServedModel:
    run = registry.get_run(ws.warehouse, run_id)
    if run.status != "succeeded":
        raise ConfigError(f"run {run_id} is {run.status}; only a succeeded run has a model")
    if run.model in SEQUENCE_PARAMS:
        raise ConfigError(
            f"run {run_id} is a {run.model} over whole sequences; predict with it from a "
            f"source of sequences: headwater predict {run_id} URL --records ..."
        )
    artifacts = {a.name: a for a in registry.run_artifacts(ws.warehouse, run_id)}
    onnx_artifact = artifacts[ONNX_FILE]
    predictor = OnnxPredictor(onnx_artifact.path, onnx_artifact.sha256, run_id=run_id)
    features = FeatureSpec.from_json(_verified(run_id, artifacts[FEATURES_FILE]).decode())
    labels = None
    if "labels.json" in artifacts:
        labels = json.loads(_verified(run_id, artifacts["labels.json"]))
    return ServedModel(run_id, predictor, features, labels)


def _escape_cell(value: str) -> str:
    """Keep a spreadsheet from running a cell: formulas start with = + - @ (or tab, CR)."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def prediction_rows(
    model: ServedModel, data: npt.NDArray[np.generic] | pa.Table, row_ids: list[object]
) -> Iterator[list[str]]:
    if model.regression:
        numbers = model.predict_interval(data)
        ends = [] if numbers.lower is None else [numbers.lower, numbers.upper]
        for row_id, *values in zip(row_ids, numbers.values, *ends, strict=True):
            yield [_escape_cell(str(row_id)), *(f"{v:.6g}" for v in values)]
        return
    proba = model.predict_proba(data)
    classes = model.classes
    best = np.argmax(proba, axis=1)
    for row_id, top, row in zip(row_ids, best, proba, strict=True):
        yield [_escape_cell(str(row_id)), _escape_cell(classes[top]), *(f"{p:.6f}" for p in row)]


def csv_text(rows: list[list[str]]) -> str:
    sink = io.StringIO()
    csv.writer(sink).writerows(rows)
    return sink.getvalue()
