"""Hyperparameter search over the declared search space, each trial a registered run."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
import pytest

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows import tuning
from headwater.flows.lifecycle import EpochFn
from headwater.flows.training import TrainRequest, train
from headwater.flows.tuning import TuneRequest, tune
from headwater.flows.workspace import Workspace
from headwater.learning.params import search_space
from headwater.storage.warehouse import pipelines as store
from headwater.storage.warehouse.runs import RunRow
from tests.builders import write_small_digits

FIXED = {"epochs": 2, "batch_size": 128}


def test_trials_are_registered_runs_and_a_study_resumes_after_an_interruption(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    started: list[str | None] = []

    def ctrl_c_in_the_fourth_trial(
        ws: Workspace,
        request: TrainRequest,
        *,
        run_id: str | None = None,
        on_epoch: EpochFn,
        stop: threading.Event | None = None,
    ) -> RunRow:
        started.append(run_id)
        if len(started) < 4:
            return train(ws, request, run_id=run_id, on_epoch=on_epoch, stop=stop)

        def pressed(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            raise KeyboardInterrupt  # Ctrl-C after the fourth trial's first epoch

        return train(ws, request, run_id=run_id, on_epoch=pressed)

    monkeypatch.setattr(tuning, "train", ctrl_c_in_the_fourth_trial)
    with pytest.raises(KeyboardInterrupt):
        tune(workspace, TuneRequest("digits", "mlp", trials=6, fixed=FIXED))
    monkeypatch.undo()
    first = store.list_trials(workspace.warehouse, "digits:mlp")
    assert [t.number for t in first] == [0, 1, 2, 3]  # the three ended, and the cut one
    assert first[3].state == "failed" and first[3].run_id == started[3]
    density = search_space("mlp")["density"]
    runs = {r.run_id: r for r in run_flows.list_runs(workspace, "digits")}
    assert runs[started[3]].status == "interrupted"  # its run says what happened
    for trial in first[:3]:
        assert trial.run_id in runs  # every trial is on the registry, with its parameters
        assert runs[trial.run_id].params["epochs"] == 2
        assert density.low is not None and density.high is not None
        assert density.low <= int(str(trial.params["density"])) <= density.high
        if trial.state == "pruned":
            assert runs[trial.run_id].status == "pruned"
            assert str(runs[trial.run_id].error).startswith("pruned at epoch")
    best_before = max(t.value or 0 for t in first if t.state == "complete")

    again = tune(workspace, TuneRequest("digits", "mlp", trials=1, fixed=FIXED))
    assert [t.number for t in again.trials] == [4]  # resumed, numbering on
    assert len(store.list_trials(workspace.warehouse, "digits:mlp")) == 5
    # the trials before the interruption are the resumed study's history: its best counts them
    assert (again.best_validation_accuracy or 0) >= best_before
    assert again.best_test_accuracy is not None and again.best_params["epochs"] == 2


class _EveryOtherTrial(optuna.pruners.BasePruner):
    """Stops every odd-numbered trial at its first epoch: a pruned trial without luck."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1 and trial.last_step is not None


def test_a_pruned_trial_is_a_run_ended_pruned_at_its_epoch_not_failed(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **_: _EveryOtherTrial())
    found = tune(workspace, TuneRequest("digits", "mlp", trials=2, fixed=FIXED))
    assert [t.state for t in found.trials] == ["complete", "pruned"]
    kept, stopped = (t.run_id for t in found.trials)
    assert found.to_dict()["pruned"] == 1 and found.best_run_id == kept

    detail = run_flows.run_detail(workspace, str(stopped))
    assert detail.run.status == "pruned" and detail.run.finished_at is not None
    assert str(detail.run.error).startswith("pruned at epoch 1: validation accuracy")
    assert detail.run.progress["epoch"] == 1 and [e["epoch"] for e in detail.epochs] == [1]
    assert detail.run.progress["epochs"] == FIXED["epochs"]  # it would have gone on

    listed = {r.run_id: r.status for r in run_flows.list_runs(workspace, "digits")}
    assert listed == {kept: "succeeded", stopped: "pruned"}
    assert [r.run_id for r in run_flows.leaderboard(workspace, "digits")] == [kept]


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (TuneRequest("digits", "mlp", trials=0), "--trials must be 1 or more"),
        (TuneRequest("digits", "svm"), "unknown model 'svm'"),
        (TuneRequest("digits", "logistic", fixed={"c": 1.0, "max_iter": 10}), "nothing to tune"),
        (TuneRequest("digits", "mlp", fixed={"density": 0}), "mlp.density must be"),
    ],
)
def test_bad_requests_are_refused_before_any_trial(request_: TuneRequest, said: str) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(")):
        request_.check()
