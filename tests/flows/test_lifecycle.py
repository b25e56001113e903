"""The one run lifecycle on both backends: how a run ends is written down, whatever ended it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ConfigError
from headwater.flows.lifecycle import Interrupted, RunSpec, run_lifecycle
from headwater.flows.training import TrainRequest, queue_run, train
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry
from tests.builders import write_csv, write_small_digits


@pytest.fixture
def spec(workspace: Workspace, tmp_path: Path) -> RunSpec:
    workspace.ingest(write_csv(tmp_path / "orders.csv", 20))
    dataset = cat.get_dataset(workspace.warehouse, "orders")
    return RunSpec(dataset, "mlp", {"epochs": 3}, 1, "holdout")


def test_epochs_then_success(workspace: Workspace, spec: RunSpec) -> None:
    seen: list[tuple[int, int]] = []
    with run_lifecycle(workspace, spec, on_epoch=lambda e, n, m: seen.append((e, n))) as run:
        assert registry.get_run(workspace.warehouse, run.run_id).status == "queued"
        fit = run.epoch_fn(2)
        fit(1, {"loss": 0.5})
        assert registry.get_run(workspace.warehouse, run.run_id).status == "running"
        fit(2, {"loss": 0.25})
        run.succeed(rows={"train": (np.array([1, 2]), [1])}, hashes={}, metrics={}, seconds=1.0)
    done = registry.get_run(workspace.warehouse, run.run_id)
    assert done.status == "succeeded" and done.progress == {"epoch": 2, "epochs": 2, "loss": 0.25}
    assert seen == [(1, 2), (2, 2)]
    assert [e["epoch"] for e in registry.run_epochs(workspace.warehouse, run.run_id)] == [1, 2]


def test_a_failure_is_recorded_with_its_reason_and_raised(
    workspace: Workspace, spec: RunSpec
) -> None:
    with pytest.raises(ZeroDivisionError), run_lifecycle(workspace, spec) as run:
        run.start()
        _ = 1 / 0
    done = registry.get_run(workspace.warehouse, run.run_id)
    assert done.status == "failed" and done.error == "division by zero"
    assert done.finished_at is not None


def test_a_refusal_before_the_start_leaves_no_trace(workspace: Workspace, spec: RunSpec) -> None:
    with pytest.raises(ConfigError), run_lifecycle(workspace, spec) as run:
        raise ConfigError("density must be 1 or more")
    assert registry.list_runs(workspace.warehouse) == []
    assert not registry.run_exists(workspace.warehouse, run.run_id)


def test_a_refusal_after_the_start_is_a_failure(workspace: Workspace, spec: RunSpec) -> None:
    with pytest.raises(ConfigError), run_lifecycle(workspace, spec) as run:
        run.epoch(1, 3, {"loss": 1.0})
        raise ConfigError("late")
    assert registry.get_run(workspace.warehouse, run.run_id).status == "failed"


@pytest.mark.parametrize(
    ("error", "reason"),
    [(KeyboardInterrupt(), "interrupted"), (Interrupted("stopped: SIGTERM"), "stopped: SIGTERM")],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupt_is_marked_interrupted(
    workspace: Workspace, spec: RunSpec, error: BaseException, reason: str
) -> None:
    with pytest.raises(KeyboardInterrupt), run_lifecycle(workspace, spec) as run:
        run.epoch(1, 3, {"loss": 1.0})
        raise error
    done = registry.get_run(workspace.warehouse, run.run_id)
    assert (done.status, done.error) == ("interrupted", reason)


def test_a_body_that_records_no_result_fails(workspace: Workspace, spec: RunSpec) -> None:
    with (
        pytest.raises(RuntimeError, match="without recording a result"),
        run_lifecycle(workspace, spec) as run,
    ):
        run.start()
    assert registry.get_run(workspace.warehouse, run.run_id).status == "failed"


def test_a_stop_event_interrupts_training_between_epochs(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    stop = threading.Event()
    seen: list[int] = []

    def on_epoch(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        if epoch == 2:
            stop.set()

    request = TrainRequest("digits", "mlp", {"epochs": 50, "batch_size": 64})
    queue_run(workspace, request, "stopme")
    with pytest.raises(Interrupted):
        train(workspace, request, run_id="stopme", on_epoch=on_epoch, stop=stop)
    run = registry.get_run(workspace.warehouse, "stopme")
    assert seen == [1, 2] and run.status == "interrupted" and "shutting down" in str(run.error)
    assert not (workspace.settings.home / "cache" / "stopme").exists()


def test_a_stop_set_during_a_scikit_learn_fit_ends_the_run_before_its_export(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A fit that cannot stop mid-way stops right after it: no evaluation, no ONNX export
    (a large ensemble's export ran on for an hour in a server that had shut down)."""
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    stop = threading.Event()
    stop.set()
    request = TrainRequest("digits", "random_forest", {"n_estimators": 5})
    queue_run(workspace, request, "forest")
    with pytest.raises(Interrupted):
        train(workspace, request, run_id="forest", stop=stop)
    run = registry.get_run(workspace.warehouse, "forest")
    assert run.status == "interrupted" and "shutting down" in str(run.error)
    assert not list((workspace.settings.home / "runs").glob("forest/*.onnx"))
