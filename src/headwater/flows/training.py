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
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

import headwater
from headwater.errors import ConfigError, RunNotFound, SchemaError
from headwater.flows.training_data import (
    RoleRows,
    feature_matrices,
    fit_feature_spec,
    label_mapping,
    roles_for,
)
from headwater.flows.workspace import Workspace
from headwater.learning import (
    ESTIMATORS,
    ClassificationMetrics,
    Estimator,
    ParamValue,
    TorchClassifier,
    classification_metrics,
    cross_validate,
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
    "TrainRequest",
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
        roles = roles_for(ws, dataset, mapping, holdout=request.holdout, seed=request.seed)
        folder = ws.settings.home / "runs" / run_id
        cache = ws.settings.home / "cache" / run_id
        try:
            _fit_and_score(
                ws, run_id, estimator, roles, request, folder, cache, on_epoch, started, mapping
            )
        finally:
            shutil.rmtree(cache, ignore_errors=True)
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


def _fit_and_score(
    ws: Workspace,
    run_id: str,
    estimator: Estimator,
    roles: dict[str, RoleRows],
    request: TrainRequest,
    folder: Path,
    cache: Path,
    on_epoch: EpochFn | None,
    started: list[bool],
    mapping: dict[str, int] | None,
) -> JsonDict:
    wh = ws.warehouse
    dataset = cat.get_dataset(wh, request.dataset)
    train_set, val_set, test_set = roles["train"], roles["validation"], roles["test"]
    spec = fit_feature_spec(ws, dataset, train_set)
    features = feature_matrices(ws, dataset, roles, spec, cache)
    X_train, X_val, X_test = features["train"], features["validation"], features["test"]
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
    hashes.update(
        _plots(folder, estimator, dataset.kind == "image", test_set, X_test, test_pred, test_scores)
    )
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


def _plots(
    folder: Path,
    estimator: Estimator,
    images: bool,
    test_set: RoleRows,
    X_test: npt.NDArray[np.float32],
    test_pred: npt.NDArray[np.int64],
    test: ClassificationMetrics,
) -> dict[str, str]:
    """Confusion matrix, sample digits (mistakes first) and learning curves, as PNG."""
    written = [plot_confusion_matrix(test.confusion, test.labels, folder / "confusion_matrix.png")]
    if images:
        written.append(plot_digit_grid(X_test, test_set.y, test_pred, folder / "predictions.png"))
    history = getattr(estimator, "history_", None)
    if history:
        written.append(plot_history(history, folder / "learning_curves.png"))
    return {Path(p).name: sha256_file(Path(p)) for p in written}


def _forget(ws: Workspace, run_id: str) -> None:
    """Remove every trace of a run refused before it trained."""
    for table in ("fact_run_epoch", "run_artifact", "run_data", "run_row", "dim_run"):
        ws.warehouse.execute("DELETE FROM {t} WHERE run_id = %s", [run_id], t=table)
