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
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from headwater.data.features import FeatureSpec
from headwater.data.sequences import find_spec
from headwater.data.task import TaskChoice, check_task, dataset_task
from headwater.errors import ConfigError, SchemaError, TaskMismatch
from headwater.flows import runs as run_flows
from headwater.flows import sequences as sequence_flows
from headwater.flows.lifecycle import (
    EpochFn,
    Run,
    RunSpec,
    check_run_name,
    check_seed,
    new_run_id,
    register,
    run_lifecycle,
)
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
    MLPRegressor,
    ParamValue,
    TorchClassifier,
    classification_metrics,
    cross_validate,
    make_estimator,
    plot_confusion_matrix,
    plot_digit_grid,
    plot_history,
    plot_regression,
    regression_metrics,
    save_model,
)
from headwater.learning.params import SEQUENCE_PARAMS, model_task, models_for
from headwater.storage.lake import sha256_file
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = [
    "EpochFn",
    "TrainRequest",
    "new_run_id",
    "queue_run",
    "resolve_task",
    "run_spec",
    "train",
]

log = logging.getLogger("headwater.train")

JsonDict = dict[str, object]


@dataclass(frozen=True)
class TrainRequest:
    dataset: str
    model: str = "mlp"
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    seed: int = 0
    holdout: float | None = None
    cv: int | None = None
    task: str | None = None
    """``classification`` or ``regression``; None: as inferred from the label (`data.task`)."""
    name: str | None = None
    """A name for the run, kept as an alias on its dataset (never a file name)."""

    def check(self) -> None:
        """Refuse what can be refused before anything is read or registered."""
        if self.model not in ESTIMATORS and self.model not in SEQUENCE_PARAMS:
            known = sorted([*ESTIMATORS, *SEQUENCE_PARAMS])
            raise ConfigError(f"unknown model {self.model!r}; known models: {', '.join(known)}")
        if self.task is not None:
            check_task(self.task)
        if self.holdout is not None and not 0 < self.holdout < 1:
            raise ConfigError(
                f"holdout must be a fraction strictly between 0 and 1, got {self.holdout}"
            )
        if self.cv is not None and self.cv < 2:
            raise ConfigError(f"cv must be 2 or more folds, got {self.cv}")
        if self.cv is not None and self.holdout is not None:
            raise ConfigError("give cv or holdout, not both")
        check_seed(self.seed)
        check_run_name(self.name)


def run_spec(ws: Workspace, request: TrainRequest) -> RunSpec:
    """Check a request against the catalog and the model's parameters; nothing is read yet."""
    request.check()
    if _of_sequences(ws, request):
        return sequence_flows.sequence_run_spec(ws, _as_sequences(request))
    dataset = cat.get_dataset(ws.warehouse, request.dataset)
    _no_sequences_for(request)
    resolve_task(ws, dataset, request)
    estimator = make_estimator(request.model, **{**request.params, "seed": request.seed})
    return RunSpec(
        dataset,
        request.model,
        {k: v for k, v in estimator.get_params().items() if k != "seed"},
        request.seed,
        f"cv{request.cv}" if request.cv else "holdout",
    )


def resolve_task(ws: Workspace, dataset: cat.DatasetRow, request: TrainRequest) -> TaskChoice:
    """The run's task (``--task``, else inferred from the label); the model must be for it."""
    inferred = dataset_task(ws.warehouse, dataset)
    if request.task is not None:
        chosen = TaskChoice(check_task(request.task), "chosen with --task", inferred=False)
    elif inferred is None:
        raise SchemaError(
            f"dataset {dataset.name!r} has no label column; ingest it with --label COLUMN",
            field="label",
        )
    else:
        chosen = inferred
    if chosen.task == "regression" and dataset.kind == "image":
        raise TaskMismatch(
            f"dataset {dataset.name!r} holds images with class labels: not a regression"
        )
    wanted = model_task(request.model)
    if wanted != chosen.task:
        other = "classification" if chosen.task == "regression" else "regression"
        hint = f" (or pass --task {other})" if chosen.inferred else ""
        raise TaskMismatch(
            f"model {request.model!r} is a {wanted} model, but dataset {dataset.name!r} is a "
            f"{chosen.task} task ({chosen.reason}); choose one of "
            f"{', '.join(models_for(chosen.task))}{hint}"
        )
    return chosen


def queue_run(ws: Workspace, request: TrainRequest, run_id: str) -> None:
    """Register a run as ``queued`` after the checks that need no data (name, parameters)."""
    register(ws, run_spec(ws, request), run_id)


def train(
    ws: Workspace,
    request: TrainRequest,
    *,
    run_id: str | None = None,
    on_epoch: EpochFn | None = None,
    stop: threading.Event | None = None,
) -> registry.RunRow:
    """Train, evaluate, save and register one run; see the module docstring.

    Given the id of a run already queued (`queue_run`), a refusal is recorded on
    that run as ``failed``; otherwise a run refused before training began leaves
    no trace in the registry. ``stop``, once set, ends the run ``interrupted`` at the
    next epoch.
    """
    if _of_sequences(ws, request):
        return sequence_flows.train_sequences(
            ws, _as_sequences(request), run_id=run_id, on_epoch=on_epoch, stop=stop
        )
    _no_sequences_for(request)
    queued = run_id is not None and registry.run_exists(ws.warehouse, run_id)
    spec = None if queued else run_spec(ws, request)
    with run_lifecycle(ws, spec, run_id=run_id, on_epoch=on_epoch, stop=stop) as run:
        estimator = make_estimator(request.model, **{**request.params, "seed": request.seed})
        task = resolve_task(ws, cat.get_dataset(ws.warehouse, request.dataset), request)
        inputs = _read_inputs(ws, request, run, task)
        cv_report = _cross_validate(estimator, inputs, request)
        seconds = _fit(run, estimator, inputs)
        if task.task == "regression":
            final, hashes = _evaluate_regression(estimator, inputs, run.folder)
        else:
            final, hashes = _evaluate_and_save(estimator, inputs, run.folder)
        final["task"], final["task_reason"] = task.task, task.reason
        if cv_report is not None:
            headline = "mean_rmse" if task.task == "regression" else "mean_accuracy"
            final[f"cv_{headline}"] = cv_report[headline]
            final["cv"] = cv_report
        run.succeed(
            rows={role: (data.row_keys, data.batch_ids) for role, data in inputs.roles.items()},
            hashes=hashes,
            metrics=final,
            seconds=seconds,
        )
    if request.name:
        run_flows.set_alias(ws, run.run_id, request.name)
    headline = "test_rmse" if task.task == "regression" else "test_accuracy"
    score = float(str(final[headline]))
    log.info("run %s: %s %.4f in %.1f s", run.run_id, headline, score, seconds)
    return registry.get_run(ws.warehouse, run.run_id)


def _as_sequences(request: TrainRequest) -> sequence_flows.SequenceTrainRequest:
    """A request on a sequence dataset, as `flows.sequences` takes it (holdout 0.2 unless set)."""
    if request.cv is not None:
        raise ConfigError("a sequence dataset trains on one holdout; leave out --cv")
    return sequence_flows.SequenceTrainRequest(
        request.dataset, request.model, request.params, request.seed,
        request.holdout or 0.2, request.name,
    )  # fmt: skip


def _no_sequences_for(request: TrainRequest) -> None:
    """A sequence model on a table: the request is sound, the dataset says otherwise."""
    if request.model in SEQUENCE_PARAMS:
        raise TaskMismatch(
            f"model {request.model!r} learns from sequences; dataset {request.dataset!r} holds "
            "none (ingest pages whose records are lists of events)"
        )


def _of_sequences(ws: Workspace, request: TrainRequest) -> bool:
    """Whether the request is for a sequence dataset (trained by `flows.sequences`)."""
    found = cat.find_dataset(ws.warehouse, request.dataset)
    return found is not None and find_spec(ws.warehouse, found) is not None


@dataclass(frozen=True)
class _Inputs:
    """What a fit and its scoring need: the rows per role, their features, the label names."""

    dataset: cat.DatasetRow
    roles: dict[str, RoleRows]
    features: dict[str, npt.NDArray[np.float32]]
    spec: FeatureSpec
    mapping: dict[str, int] | None

    def role(self, name: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        return self.features[name], self.roles[name].y


def _read_inputs(ws: Workspace, request: TrainRequest, run: Run, task: TaskChoice) -> _Inputs:
    """Settle the roles from row keys and labels, fit the features on train, build the matrices."""
    dataset = cat.get_dataset(ws.warehouse, request.dataset)
    mapping = label_mapping(ws, dataset) if task.task == "classification" else None
    roles = roles_for(
        ws, dataset, mapping, holdout=request.holdout, seed=request.seed, task=task.task
    )
    train_y = roles["train"].y
    if task.task == "regression" and float(np.ptp(train_y)) == 0.0:
        raise SchemaError(
            f"dataset {dataset.name!r}: label {dataset.label_column!r} is {train_y[0]:g} in "
            "every training row; a constant has nothing to predict",
            field=dataset.label_column or "label",
        )
    spec = fit_feature_spec(ws, dataset, roles["train"])
    features = feature_matrices(ws, dataset, roles, spec, run.cache)
    return _Inputs(dataset, roles, features, spec, mapping)


def _cross_validate(
    estimator: Estimator, inputs: _Inputs, request: TrainRequest
) -> JsonDict | None:
    """k-fold cross-validation over train and validation together, when the request asks."""
    if not request.cv:
        return None
    (X_train, y_train), (X_val, y_val) = inputs.role("train"), inputs.role("validation")
    return cross_validate(
        estimator,
        np.concatenate([X_train, X_val]),
        np.concatenate([y_train, y_val]),
        folds=request.cv,
        seed=request.seed,
    ).to_dict()


def _fit(run: Run, estimator: Estimator, inputs: _Inputs) -> float:
    """Fit on train (a neural net watches validation, epoch by epoch); return the seconds."""
    (X_train, y_train), validation = inputs.role("train"), inputs.role("validation")
    began = time.perf_counter()
    if isinstance(estimator, TorchClassifier | MLPRegressor):
        epochs = int(estimator.get_params().get("epochs") or 0)
        estimator.fit(X_train, y_train, validation_data=validation, on_epoch=run.epoch_fn(epochs))
    else:
        estimator.fit(X_train, y_train)
        run.start()
    return time.perf_counter() - began


def _evaluate_and_save(
    estimator: Estimator, inputs: _Inputs, folder: Path
) -> tuple[JsonDict, dict[str, str]]:
    """Score test and validation, save the model, labels and plots; return metrics and sha256s."""
    (X_test, y_test), (X_val, y_val) = inputs.role("test"), inputs.role("validation")
    test_pred = estimator.predict(X_test)
    labels = sorted(set(inputs.roles["train"].y.tolist()) | set(y_test.tolist()))
    test_scores = classification_metrics(y_test, test_pred, labels=labels)
    test_metrics = test_scores.to_dict()
    val_metrics = classification_metrics(y_val, estimator.predict(X_val), labels=labels).to_dict()
    hashes = save_model(estimator, folder, features=inputs.spec)
    if inputs.mapping is not None:
        names = {str(v): k for k, v in inputs.mapping.items()}
        (folder / "labels.json").write_text(json.dumps(names))
        hashes["labels.json"] = sha256_file(folder / "labels.json")
    images = inputs.dataset.kind == "image"
    test_set = inputs.roles["test"]
    hashes.update(_plots(folder, estimator, images, test_set, X_test, test_pred, test_scores))
    final: JsonDict = {
        "test_accuracy": test_metrics["accuracy"],
        "test_macro_f1": test_metrics["macro_f1"],
        "validation_accuracy": val_metrics["accuracy"],
        "test": test_metrics,
        "validation": val_metrics,
        "rows": {role: len(data) for role, data in inputs.roles.items()},
        "features": [choice.to_dict() for choice in inputs.spec.columns],
        "classes": {str(code): name for name, code in (inputs.mapping or {}).items()},
    }
    return final, hashes


def _evaluate_regression(
    estimator: Estimator, inputs: _Inputs, folder: Path
) -> tuple[JsonDict, dict[str, str]]:
    """RMSE, MAE, R² and MAPE on test and validation; the model and its three plots saved."""
    (X_test, y_test), (X_val, y_val) = inputs.role("test"), inputs.role("validation")
    test_pred = np.asarray(estimator.predict(X_test), dtype=np.float64)
    test = regression_metrics(y_test, test_pred)
    validation = regression_metrics(y_val, estimator.predict(X_val))
    hashes = save_model(estimator, folder, features=inputs.spec)
    written = plot_regression(y_test, test_pred, folder)
    history = getattr(estimator, "history_", None)
    if history:
        written.append(plot_history(history, folder / "learning_curves.png"))
    hashes.update({Path(p).name: sha256_file(Path(p)) for p in written})
    final: JsonDict = {
        "test_rmse": test.rmse,
        "test_mae": test.mae,
        "test_r2": test.r2,
        "test_mape": test.mape,
        "validation_rmse": validation.rmse,
        "test": test.to_dict(),
        "validation": validation.to_dict(),
        "rows": {role: len(data) for role, data in inputs.roles.items()},
        "features": [choice.to_dict() for choice in inputs.spec.columns],
        "classes": {},
    }
    return final, hashes


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
