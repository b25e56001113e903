"""Training runs: from a dataset in the warehouse to a registered, evaluated, saved model.

One call does what a careful data scientist would do by hand, and writes all of
it down: read the splits (keeping their row keys), fit the feature transform on
the training rows only, train with a progress callback, score on the test split,
save the model as ONNX (+ safetensors for torch) with sha256s, draw the plots,
and register the run with the exact rows it saw.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

import headwater
from headwater.data.features import (
    Categorical,
    FeatureSpec,
    FeatureStep,
    Numeric,
    Pixels,
    Timestamp,
)
from headwater.errors import ConfigError, RunNotFound, SchemaError
from headwater.flows.workspace import Workspace
from headwater.learning import (
    ESTIMATORS,
    ClassificationMetrics,
    Estimator,
    ParamValue,
    TorchClassifier,
    classification_metrics,
    cross_validate,
    holdout_split,
    make_estimator,
    plot_confusion_matrix,
    plot_digit_grid,
    plot_history,
    save_model,
)
from headwater.storage.lake import sha256_file
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = [
    "EpochFn",
    "LabelledData",
    "TrainRequest",
    "load_split",
    "new_run_id",
    "queue_run",
    "record_success",
    "train",
]

log = logging.getLogger("headwater.train")

EpochFn = Callable[[int, int, dict[str, float]], None]
"""Called as (epoch, epochs, metrics) after every epoch of a neural network."""

JsonDict = dict[str, object]


@dataclass(frozen=True)
class TrainRequest:
    dataset: str
    model: str = "mlp"
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    seed: int = 0
    holdout: float | None = None
    cv: int | None = None

    def check(self) -> None:
        """Refuse what can be refused before anything is read or registered."""
        if self.model not in ESTIMATORS:
            raise ConfigError(
                f"unknown model {self.model!r}; known models: {', '.join(sorted(ESTIMATORS))}"
            )
        if self.holdout is not None and not 0 < self.holdout < 1:
            raise ConfigError(
                f"--holdout must be a fraction strictly between 0 and 1, got {self.holdout}"
            )
        if self.cv is not None and self.cv < 2:
            raise ConfigError(f"--cv must be 2 or more folds, got {self.cv}")
        if self.cv is not None and self.holdout is not None:
            raise ConfigError("give --cv or --holdout, not both")
        if self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more, got {self.seed}")


@dataclass
class LabelledData:
    """Rows of one role (train, validation, test) with the keys and batches they came from."""

    X: npt.NDArray[np.generic] | pa.Table
    y: npt.NDArray[np.int64]
    row_keys: npt.NDArray[np.int64]
    batch_ids: list[int]

    def take(self, rows: npt.NDArray[np.int64]) -> LabelledData:
        X = self.X.take(pa.array(rows)) if isinstance(self.X, pa.Table) else self.X[rows]
        keys = self.row_keys[rows]
        return LabelledData(X, self.y[rows], keys, self.batch_ids)

    def __len__(self) -> int:
        return len(self.y)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def code_version() -> str:
    """The git commit of the code that trained, or the package version outside a checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return done.stdout.strip() or headwater.__version__
    except (OSError, subprocess.SubprocessError):
        return headwater.__version__


def load_split(
    ws: Workspace, dataset: cat.DatasetRow, split: str, labels: dict[str, int] | None
) -> LabelledData | None:
    """One split of a dataset as features and integer labels, or None when it is empty."""
    if dataset.kind == "image":
        arrays = cat.image_arrays(ws.warehouse, dataset, split)
        if len(arrays.row_keys) == 0:
            return None
        pixels = arrays.pixels
        X = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        return LabelledData(
            X, _encode(arrays.labels, labels, dataset), arrays.row_keys, arrays.batch_ids
        )
    table = cat.tabular_rows(ws.warehouse, dataset, split)
    if table.num_rows == 0:
        return None
    label_column = dataset.label_column
    if label_column is None:
        raise SchemaError(
            f"dataset {dataset.name!r} has no label column; ingest it with --label COLUMN",
            field="label",
        )
    raw = [None if v is None else str(v) for v in table.column(label_column).to_pylist()]
    keys = table.column("hw_row_key").to_numpy().astype(np.int64)
    batches = sorted(set(table.column("hw_batch_key").to_pylist()))
    features = table.drop_columns(["hw_row_key", "hw_batch_key", label_column])
    return LabelledData(features, _encode(raw, labels, dataset), keys, batches)


def _encode(
    raw: list[str | None], mapping: dict[str, int] | None, dataset: cat.DatasetRow
) -> npt.NDArray[np.int64]:
    texts = [v for v in raw if v is not None]
    if len(texts) != len(raw):
        raise SchemaError(f"dataset {dataset.name!r} has rows without a label", field="label")
    if mapping is None:
        return np.array([int(v) for v in texts], dtype=np.int64)
    unknown = sorted({v for v in texts if v not in mapping})
    if unknown:
        raise SchemaError(
            f"labels {unknown[:5]} appear only outside the training split", field="label"
        )
    return np.array([mapping[v] for v in texts], dtype=np.int64)


def label_mapping(ws: Workspace, dataset: cat.DatasetRow) -> dict[str, int] | None:
    """None when labels are whole numbers (kept as they are); else text label -> code."""
    if dataset.kind == "image":
        texts = [
            str(r[0])
            for r in ws.warehouse.fetch(
                "SELECT label FROM dim_label WHERE dataset_key = %s", [dataset.key]
            )
        ]
    else:
        table = cat.tabular_rows(ws.warehouse, dataset, "train") if dataset.label_column else None
        texts = (
            []
            if table is None
            else sorted({str(v) for v in table.column(dataset.label_column).to_pylist()})
        )
    if all(t.lstrip("-").isdigit() for t in texts):
        return None
    return {label: code for code, label in enumerate(sorted(texts))}


def feature_spec(
    dataset: cat.DatasetRow, sample: npt.NDArray[np.generic] | pa.Table
) -> FeatureSpec:
    """Pixels for images; per column for tables: numbers standardised, text one-hot, times split."""
    if dataset.kind == "image" or not isinstance(sample, pa.Table):
        return FeatureSpec([Pixels()])
    steps: list[FeatureStep] = []
    for f in sample.schema:
        if f.name == "split":
            continue
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            steps.append(Timestamp(f.name))
        elif (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
        ):
            steps.append(Numeric(f.name))
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            steps.append(Categorical(f.name))
    if not steps:
        raise SchemaError(f"dataset {dataset.name!r} has no usable feature columns")
    return FeatureSpec(steps)


def queue_run(ws: Workspace, request: TrainRequest, run_id: str) -> None:
    """Register a run as ``queued`` after the checks that need no data (name, parameters)."""
    request.check()
    dataset = cat.get_dataset(ws.warehouse, request.dataset)
    estimator = make_estimator(request.model, **{**request.params, "seed": request.seed})
    registry.create_run(
        ws.warehouse,
        run_id=run_id,
        dataset_key=dataset.key,
        model=request.model,
        params={k: v for k, v in estimator.get_params().items() if k != "seed"},
        seed=request.seed,
        evaluation=f"cv{request.cv}" if request.cv else "holdout",
        code_version=code_version(),
        now=datetime.now(UTC),
    )


def train(
    ws: Workspace,
    request: TrainRequest,
    *,
    run_id: str | None = None,
    on_epoch: EpochFn | None = None,
) -> registry.RunRow:
    """Train, evaluate, save and register one run; see the module docstring.

    Given the id of a run already queued (`queue_run`), a refusal is recorded on
    that run as ``failed``; otherwise a run refused before training began leaves
    no trace in the registry.
    """
    queued = run_id is not None and _exists(ws, run_id)
    run_id = run_id or new_run_id()
    if not queued:
        queue_run(ws, request, run_id)
    started = [False]
    try:
        dataset = cat.get_dataset(ws.warehouse, request.dataset)
        estimator = make_estimator(request.model, **{**request.params, "seed": request.seed})
        mapping = label_mapping(ws, dataset)
        roles = _roles(ws, dataset, request, mapping)
        folder = ws.settings.home / "runs" / run_id
        _fit_and_score(ws, run_id, estimator, roles, request, folder, on_epoch, started, mapping)
    except (ConfigError, SchemaError) as error:
        if not started[0] and not queued:
            _forget(ws, run_id)
        else:
            registry.finish_run(
                ws.warehouse, run_id, status="failed", now=datetime.now(UTC), error=str(error)
            )
        raise
    except BaseException as error:
        registry.finish_run(
            ws.warehouse, run_id, status="failed", now=datetime.now(UTC), error=str(error)
        )
        raise
    return registry.get_run(ws.warehouse, run_id)


def _exists(ws: Workspace, run_id: str) -> bool:
    try:
        registry.get_run(ws.warehouse, run_id)
    except RunNotFound:
        return False
    return True


def _roles(
    ws: Workspace, dataset: cat.DatasetRow, request: TrainRequest, mapping: dict[str, int] | None
) -> dict[str, LabelledData]:
    """train / validation / test, from the dataset's own splits or held out of the train split."""
    splits = {
        s: load_split(ws, dataset, s, mapping)
        for s in ("train", "validation", "test", "unassigned")
    }
    pool = splits["train"] or splits["unassigned"]
    if pool is None:
        raise SchemaError(
            f"dataset {dataset.name!r} has no train (or unassigned) rows to learn from"
        )
    test = splits["test"]
    if test is None:  # no test split: hold 20% of the pool out for it, seeded
        cut = holdout_split(pool.y, fraction=0.2, seed=request.seed)
        pool, test = pool.take(cut.train), pool.take(cut.test)
    validation = splits["validation"]
    if request.holdout is not None or validation is None:
        cut = holdout_split(pool.y, fraction=request.holdout or 0.1, seed=request.seed)
        pool, validation = pool.take(cut.train), pool.take(cut.test)
    return {"train": pool, "validation": validation, "test": test}


def _fit_and_score(
    ws: Workspace,
    run_id: str,
    estimator: Estimator,
    roles: dict[str, LabelledData],
    request: TrainRequest,
    folder: Path,
    on_epoch: EpochFn | None,
    started: list[bool],
    mapping: dict[str, int] | None,
) -> JsonDict:
    wh = ws.warehouse
    train_set, val_set, test_set = roles["train"], roles["validation"], roles["test"]
    spec = feature_spec_for(ws, request.dataset, train_set)
    X_train = spec.fit(train_set.X).transform(train_set.X)
    X_val, X_test = spec.transform(val_set.X), spec.transform(test_set.X)
    cv_report: JsonDict | None = None
    if request.cv:
        cv_report = cross_validate(
            estimator,
            np.concatenate([X_train, X_val]),
            np.concatenate([train_set.y, val_set.y]),
            folds=request.cv,
            seed=request.seed,
        ).to_dict()
    epochs = int(estimator.get_params().get("epochs") or 0)

    def epoch_done(epoch: int, metrics: dict[str, float]) -> None:
        if not started[0]:
            started[0] = True
            registry.start_run(wh, run_id, now=datetime.now(UTC))
        clean = {k: float(v) for k, v in metrics.items()}
        registry.record_epoch(wh, run_id, epoch, dict(clean), now=datetime.now(UTC))
        registry.update_progress(wh, run_id, {"epoch": epoch, "epochs": epochs, **clean})
        if on_epoch is not None:
            on_epoch(epoch, epochs, clean)

    began = time.perf_counter()
    if isinstance(estimator, TorchClassifier):
        estimator.fit(X_train, train_set.y, validation_data=(X_val, val_set.y), on_epoch=epoch_done)
    else:
        estimator.fit(X_train, train_set.y)
        started[0] = True
        registry.start_run(wh, run_id, now=datetime.now(UTC))
    seconds = time.perf_counter() - began
    test_pred = estimator.predict(X_test)
    val_pred = estimator.predict(X_val)
    labels = sorted(set(train_set.y.tolist()) | set(test_set.y.tolist()))
    test_scores = classification_metrics(test_set.y, test_pred, labels=labels)
    test_metrics = test_scores.to_dict()
    val_metrics = classification_metrics(val_set.y, val_pred, labels=labels).to_dict()
    hashes = save_model(estimator, folder, features=spec)
    if mapping is not None:
        (folder / "labels.json").write_text(json.dumps({str(v): k for k, v in mapping.items()}))
        hashes["labels.json"] = sha256_file(folder / "labels.json")
    hashes.update(_plots(folder, estimator, test_set, X_test, test_pred, test_scores))
    final: JsonDict = {
        "test_accuracy": test_metrics["accuracy"],
        "test_macro_f1": test_metrics["macro_f1"],
        "validation_accuracy": val_metrics["accuracy"],
        "test": test_metrics,
        "validation": val_metrics,
        "rows": {role: len(data) for role, data in roles.items()},
    }
    if cv_report is not None:
        final["cv_mean_accuracy"] = cv_report["mean_accuracy"]
        final["cv"] = cv_report
    record_success(
        ws,
        run_id,
        rows={role: (data.row_keys, data.batch_ids) for role, data in roles.items()},
        folder=folder,
        hashes=hashes,
        metrics=final,
        seconds=seconds,
    )
    log.info("run %s: test accuracy %.4f in %.1f s", run_id, test_metrics["accuracy"], seconds)
    return final


def record_success(
    ws: Workspace,
    run_id: str,
    *,
    rows: Mapping[str, tuple[npt.NDArray[np.int64], list[int]]],
    folder: Path,
    hashes: Mapping[str, str],
    metrics: JsonDict,
    seconds: float,
) -> None:
    """In one transaction: the exact rows per role, the hashed artifacts, the final metrics."""
    wh = ws.warehouse
    with wh.transaction():
        for role, (keys, batch_ids) in rows.items():
            registry.record_data(wh, run_id, role, keys, batch_ids)
        registry.record_artifacts(
            wh,
            run_id,
            [
                registry.ArtifactRow(name, str(folder / name), sha, (folder / name).stat().st_size)
                for name, sha in sorted(hashes.items())
            ],
        )
        registry.finish_run(
            wh,
            run_id,
            status="succeeded",
            now=datetime.now(UTC),
            metrics=metrics,
            train_seconds=seconds,
        )


def feature_spec_for(ws: Workspace, dataset_name: str, train_set: LabelledData) -> FeatureSpec:
    dataset = cat.get_dataset(ws.warehouse, dataset_name)
    return feature_spec(dataset, train_set.X)


def _plots(
    folder: Path,
    estimator: Estimator,
    test_set: LabelledData,
    X_test: npt.NDArray[np.float32],
    test_pred: npt.NDArray[np.int64],
    test: ClassificationMetrics,
) -> dict[str, str]:
    """Confusion matrix, sample digits (mistakes first) and learning curves, as PNG."""
    written = [plot_confusion_matrix(test.confusion, test.labels, folder / "confusion_matrix.png")]
    if not isinstance(test_set.X, pa.Table):
        written.append(plot_digit_grid(X_test, test_set.y, test_pred, folder / "predictions.png"))
    history = getattr(estimator, "history_", None)
    if history:
        written.append(plot_history(history, folder / "learning_curves.png"))
    return {Path(p).name: sha256_file(Path(p)) for p in written}


def _forget(ws: Workspace, run_id: str) -> None:
    """Remove every trace of a run refused before it trained."""
    for table in ("fact_run_epoch", "run_artifact", "run_data", "run_row", "dim_run"):
        ws.warehouse.execute("DELETE FROM {t} WHERE run_id = %s", [run_id], t=table)
