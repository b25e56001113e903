"""Hyperparameter search: Optuna's TPE sampler over each model's declared search space.

Every trial is an ordinary registered training run (on the leaderboard, with its
parameters), scored by its validation accuracy, never the test split, which stays for
the final report. A neural net reports validation accuracy after every epoch, and
the median pruner stops a trial that is below the median of earlier trials at the same
epoch: its run ends ``pruned`` (not ``failed``), its reason "pruned at epoch N: ..." and its
progress at that epoch, and the search moves on.

Trials are written to ``tune_trial`` as they end, under the study ``dataset:model``;
the next search of the same study starts from them (given to the sampler as history),
so a search interrupted after 12 of 20 trials resumes with that knowledge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from headwater.errors import ConfigError, HeadwaterError
from headwater.flows.lifecycle import Pruned, new_run_id
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.learning import ParamValue
from headwater.learning.params import ParamRange, search_space, validate_params
from headwater.storage.warehouse import pipelines as store
from headwater.storage.warehouse import runs as registry
from headwater.storage.warehouse.pipelines import TrialRow

__all__ = [
    "QUICK_SEARCH",
    "Suggestion",
    "TrialRow",
    "TuneRequest",
    "TuneResult",
    "fixed_params",
    "quick_search",
    "suggestion",
    "tune",
]

log = logging.getLogger("headwater.tune")
JsonDict = dict[str, object]


def fixed_params(model: str, values: Mapping[str, object]) -> dict[str, ParamValue]:
    """Parameters held during a search, from text ("5") to their types, checked by the model."""
    checked = validate_params(model, values).model_dump(include=set(values))
    return {k: v for k, v in checked.items() if isinstance(v, bool | int | float | str)}


@dataclass(frozen=True)
class TuneRequest:
    dataset: str
    model: str = "mlp"
    trials: int = 20
    timeout_s: float | None = None
    seed: int = 0
    fixed: Mapping[str, ParamValue] = field(default_factory=dict)
    prune: bool = True

    def check(self) -> dict[str, ParamRange]:
        """The space left to search once ``fixed`` is taken out; refuses what makes no sense."""
        if self.trials < 1:
            raise ConfigError(f"--trials must be 1 or more, got {self.trials}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"--timeout must be more than 0 seconds, got {self.timeout_s}")
        validate_params(self.model, self.fixed)
        space = {k: v for k, v in search_space(self.model).items() if k not in self.fixed}
        if not space:
            raise ConfigError(
                f"every searchable parameter of {self.model} is fixed: nothing to tune"
            )
        return space


@dataclass
class TuneResult:
    study: str
    best_run_id: str | None
    best_params: JsonDict
    best_validation_accuracy: float | None
    best_test_accuracy: float | None
    trials: list[TrialRow]
    seconds: float

    def to_dict(self) -> JsonDict:
        states = [t.state for t in self.trials]
        return {
            "study": self.study,
            "best_run_id": self.best_run_id,
            "best_params": self.best_params,
            "best_validation_accuracy": self.best_validation_accuracy,
            "best_test_accuracy": self.best_test_accuracy,
            "trials": len(states),
            "complete": states.count("complete"),
            "pruned": states.count("pruned"),
            "failed": states.count("failed"),
            "seconds": round(self.seconds, 3),
            "runs": [t.run_id for t in self.trials],
        }


def _distribution(space: ParamRange) -> BaseDistribution:
    if space.kind == "choice":
        return CategoricalDistribution(space.choices)
    assert space.low is not None
    assert space.high is not None
    if space.kind == "int":
        return IntDistribution(int(space.low), int(space.high), log=space.log)
    return FloatDistribution(space.low, space.high, log=space.log)


def _history(study: optuna.Study, previous: list[TrialRow], space: dict[str, ParamRange]) -> None:
    """Give the sampler the trials recorded before (those that fit this space)."""
    distributions = {name: _distribution(r) for name, r in space.items()}
    for old in previous:
        params = {k: v for k, v in old.params.items() if k in space}
        if set(params) != set(space) or old.state == "failed":
            continue
        state = (
            optuna.trial.TrialState.COMPLETE
            if old.state == "complete"
            else (optuna.trial.TrialState.PRUNED)
        )
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=old.value if old.state == "complete" else None,
                    state=state,
                    user_attrs={"run_id": old.run_id},
                )
            )
        except ValueError:  # a value outside today's range: leave that trial out
            continue


class _Objective:
    """One trial: sample, train a registered run (pruned by epoch), record, score."""

    def __init__(
        self,
        ws: Workspace,
        request: TuneRequest,
        space: dict[str, ParamRange],
        first: int,
        on_trial: Callable[[TrialRow], None] | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.ws, self.request, self.space = ws, request, space
        self.stop = stop
        self.number = first
        self.on_trial = on_trial
        self.done: list[TrialRow] = []

    def _sample(self, trial: optuna.Trial) -> dict[str, ParamValue]:
        params: dict[str, ParamValue] = dict(self.request.fixed)
        for name, r in self.space.items():
            if r.kind == "choice":
                params[name] = trial.suggest_categorical(name, list(r.choices))
            elif r.kind == "int":
                params[name] = trial.suggest_int(name, int(r.low or 0), int(r.high or 0), log=r.log)
            else:
                params[name] = trial.suggest_float(
                    name, float(r.low or 0), float(r.high or 0), log=r.log
                )
        return params

    def __call__(self, trial: optuna.Trial) -> float:
        params, run_id = self._sample(trial), new_run_id()
        trial.set_user_attr("run_id", run_id)

        def report(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            accuracy = metrics.get("val_accuracy")
            if accuracy is None:
                return
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise Pruned(
                    epoch,
                    f"validation accuracy {accuracy:.4f} is below the median of earlier "
                    "trials at that epoch",
                )

        request = TrainRequest(self.request.dataset, self.request.model, params, self.request.seed)
        state, value = "failed", None
        try:
            run = train(self.ws, request, run_id=run_id, on_epoch=report, stop=self.stop)
            value = float(str(run.metrics["validation_accuracy"]))
            state = "complete"
            return value
        except Pruned as stopped:  # the run ended pruned; Optuna hears it its own way
            state = "pruned"
            raise optuna.TrialPruned(str(stopped)) from stopped
        finally:
            self._record(TrialRow(self.number, run_id, state, value, dict(params)))

    def _record(self, row: TrialRow) -> None:
        self.number += 1
        study = f"{self.request.dataset}:{self.request.model}"
        store.record_trial(self.ws.warehouse, study, row, now=datetime.now(UTC))
        self.done.append(row)
        if self.on_trial is not None:
            self.on_trial(row)


def tune(
    ws: Workspace,
    request: TuneRequest,
    *,
    on_trial: Callable[[TrialRow], None] | None = None,
    stop: threading.Event | None = None,
) -> TuneResult:
    """Run ``request.trials`` more trials (or until the timeout); see the module docstring.

    ``stop``, once set, interrupts the trial in progress (`Interrupted`) and the search with it.
    """
    space = request.check()
    study_name = f"{request.dataset}:{request.model}"
    previous = store.list_trials(ws.warehouse, study_name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=request.seed + len(previous)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
        if request.prune
        else optuna.pruners.NopPruner(),
    )
    _history(study, previous, space)
    objective = _Objective(
        ws, request, space, max((t.number for t in previous), default=-1) + 1, on_trial, stop
    )
    began = time.perf_counter()
    study.optimize(
        objective, n_trials=request.trials, timeout=request.timeout_s, catch=(HeadwaterError,)
    )
    result = _result(ws, study, study_name, objective.done, time.perf_counter() - began)
    result.best_params = {**request.fixed, **result.best_params}
    return result


def _result(
    ws: Workspace, study: optuna.Study, name: str, done: list[TrialRow], seconds: float
) -> TuneResult:
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return TuneResult(name, None, {}, None, None, done, seconds)
    best = max(completed, key=lambda t: float(t.value or 0.0))
    run_id = best.user_attrs.get("run_id")
    test = None
    if isinstance(run_id, str) and registry.run_exists(ws.warehouse, run_id):
        test = float(str(registry.get_run(ws.warehouse, run_id).metrics.get("test_accuracy")))
    return TuneResult(
        name,
        run_id if isinstance(run_id, str) else None,
        dict(best.params),
        best.value,
        test,
        done,
        seconds,
    )


@dataclass(frozen=True)
class Suggestion:
    """The best parameters a dataset's searches of a model found so far (None before any)."""

    dataset: str
    model: str
    params: JsonDict | None
    run_id: str | None
    validation_accuracy: float | None
    test_accuracy: float | None
    trials: int
    searching: bool = False

    def to_dict(self) -> JsonDict:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "params": self.params,
            "run_id": self.run_id,
            "validation_accuracy": self.validation_accuracy,
            "test_accuracy": self.test_accuracy,
            "trials": self.trials,
            "searching": self.searching,
        }


def suggestion(ws: Workspace, dataset: str, model: str) -> Suggestion:
    """What "Suggest" fills a train form with: the study's best complete trial.

    The study is the one `tune` records (``dataset:model``), so the CLI's searches, a
    pipeline's ``tune = N`` and the web's short searches all feed the same answer.
    """
    ws.dataset(dataset)  # DatasetNotFound (404) for an unknown name
    search_space(model)  # ConfigError naming the models for an unknown one
    trials = store.list_trials(ws.warehouse, f"{dataset}:{model}")
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if not complete:
        return Suggestion(dataset, model, None, None, None, None, len(trials))
    best = max(complete, key=lambda t: (float(t.value or 0.0), -t.number))
    test = None
    if best.run_id is not None and registry.run_exists(ws.warehouse, best.run_id):
        found = registry.get_run(ws.warehouse, best.run_id).metrics.get("test_accuracy")
        test = None if found is None else float(str(found))
    return Suggestion(dataset, model, dict(best.params), best.run_id, best.value, test, len(trials))


QUICK_SEARCH = {"trials": 4, "timeout_s": 60.0, "epochs": 5}
"""The short search "Suggest" starts when a dataset has none: a few trials, a minute at
most, a neural net held at a few epochs so one trial cannot take the minute alone."""


def quick_search(dataset: str, model: str) -> TuneRequest:
    """The `TuneRequest` of a short search (`QUICK_SEARCH`) for a model on a dataset."""
    fixed: dict[str, ParamValue] = {}
    if "epochs" in search_space(model):
        fixed["epochs"] = int(QUICK_SEARCH["epochs"])
    return TuneRequest(
        dataset,
        model,
        int(QUICK_SEARCH["trials"]),
        timeout_s=float(QUICK_SEARCH["timeout_s"]),
        fixed=fixed,
    )
