"""Hyperparameter search over the declared search space, each trial a registered run."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ConfigError
from headwater.flows import runs as run_flows
from headwater.flows.tuning import TuneRequest, tune
from headwater.flows.workspace import Workspace
from headwater.learning.params import search_space
from headwater.storage.warehouse import pipelines as store
from tests.builders import write_small_digits

FIXED = {"epochs": 2, "batch_size": 128}


def test_trials_are_registered_runs_and_a_study_resumes(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    first = tune(workspace, TuneRequest("digits", "mlp", trials=4, fixed=FIXED))
    assert [t.number for t in first.trials] == [0, 1, 2, 3]
    density = search_space("mlp")["density"]
    runs = {r.run_id: r for r in run_flows.list_runs(workspace, "digits")}
    for trial in first.trials:
        assert trial.run_id in runs  # every trial is on the registry, with its parameters
        assert runs[trial.run_id].params["epochs"] == 2
        assert density.low is not None and density.high is not None
        assert density.low <= int(str(trial.params["density"])) <= density.high
        if trial.state == "pruned":
            assert str(runs[trial.run_id].error).startswith("pruned at epoch")
    complete = [t for t in first.trials if t.state == "complete"]
    assert complete and first.best_run_id in {t.run_id for t in complete}
    assert first.best_validation_accuracy == max(t.value or 0 for t in complete)
    assert first.best_test_accuracy is not None and first.best_params["epochs"] == 2

    again = tune(workspace, TuneRequest("digits", "mlp", trials=1, fixed=FIXED))
    assert [t.number for t in again.trials] == [4]  # resumed, numbering on
    assert len(store.list_trials(workspace.warehouse, "digits:mlp")) == 5
    assert (again.best_validation_accuracy or 0) >= (first.best_validation_accuracy or 0)


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
