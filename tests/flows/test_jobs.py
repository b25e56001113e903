"""Background training and serving: queued runs, their progress, cached models, aliases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ConfigError, DatasetNotFound, SchemaError
from headwater.flows import runs as run_flows
from headwater.flows.jobs import QueueFull, TrainingQueue
from headwater.flows.serving import ModelCache
from headwater.flows.training import TrainRequest
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import runs as registry
from tests.builders import write_small_digits


@pytest.fixture
def digits_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    return workspace


def _wait(ws: Workspace, run_id: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = registry.get_run(ws.warehouse, run_id).status
        if status in {"succeeded", "failed"}:
            return status
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


def test_submitted_run_is_queued_then_trains_with_progress(digits_ws: Workspace) -> None:
    done: list[str] = []
    epochs: list[int] = []
    jobs = TrainingQueue(
        digits_ws, on_done=done.append, on_epoch=lambda run, e, n, m: epochs.append(e)
    )
    try:
        run_id = jobs.submit(TrainRequest("digits", "mlp", {"epochs": 3, "batch_size": 32}))
        assert registry.get_run(digits_ws.warehouse, run_id).status in {
            "queued",
            "running",
            "succeeded",
        }
        assert _wait(digits_ws, run_id) == "succeeded"
    finally:
        jobs.close()
    assert done == [run_id] and epochs == [1, 2, 3]
    assert registry.get_run(digits_ws.warehouse, run_id).progress["epoch"] == 3


def test_bad_requests_are_refused_at_submit(digits_ws: Workspace) -> None:
    jobs = TrainingQueue(digits_ws)
    try:
        with pytest.raises(ConfigError, match="unknown model"):
            jobs.submit(TrainRequest("digits", "nope"))
        with pytest.raises(DatasetNotFound):
            jobs.submit(TrainRequest("missing"))
        with pytest.raises(ConfigError, match="no parameter"):
            jobs.submit(TrainRequest("digits", "mlp", {"width": 3}))
    finally:
        jobs.close()
    assert run_flows.list_runs(digits_ws) == []


def test_a_run_refused_while_training_is_kept_as_failed(
    digits_ws: Workspace, tmp_path: Path
) -> None:
    """What submit can see (no label column) is refused at once and queues nothing; what only
    the rows can refuse (an infinite feature value) is found while training, kept as failed."""
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n3,4\n")
    digits_ws.ingest(plain)
    rows = "\n".join(f"{i},{i % 2}" for i in range(40))
    infinite = tmp_path / "infinite.csv"
    infinite.write_text(f"amount,label\n{rows}\ninf,1\n")
    digits_ws.ingest(infinite, label="label")
    jobs = TrainingQueue(digits_ws)
    try:
        with pytest.raises(SchemaError, match="no label column"):
            jobs.submit(TrainRequest("plain", "logistic"))
        run_id = jobs.submit(TrainRequest("infinite", "logistic"))
        assert _wait(digits_ws, run_id) == "failed"
    finally:
        jobs.close()
    assert "amount" in str(registry.get_run(digits_ws.warehouse, run_id).error)


def test_queue_limit(digits_ws: Workspace) -> None:
    jobs = TrainingQueue(digits_ws, limit=1)
    try:
        slow = TrainRequest("digits", "mlp", {"epochs": 2})
        first = jobs.submit(slow)
        with pytest.raises(QueueFull, match="queue is full"):
            for _ in range(3):
                jobs.submit(slow)
        _wait(digits_ws, first, 120)
    finally:
        jobs.close(timeout_s=120)


def test_model_cache_serves_the_best_run_and_follows_a_new_one(digits_ws: Workspace) -> None:
    from headwater.flows.training import train

    first = train(digits_ws, TrainRequest("digits", "logistic", {"c": 0.0001}))
    cache = ModelCache(digits_ws, alias_ttl_s=60)
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    prediction = cache.predict("best", images, dataset="digits")
    assert prediction.run_id == first.run_id and prediction.proba.shape == (2, 10)
    assert len(prediction.labels) == 2
    better = train(digits_ws, TrainRequest("digits", "logistic"))
    assert cache.resolve("best", "digits") == first.run_id  # cached within the TTL
    cache.invalidate()
    assert cache.resolve("best", "digits") == better.run_id
    run_flows.set_alias(digits_ws, first.run_id, "best")
    cache.invalidate()
    assert cache.resolve("best", "digits") == first.run_id
    with pytest.raises(ConfigError, match="needs a dataset"):
        cache.resolve("best")


def test_close_interrupts_the_run_in_progress_and_ends_the_waiting_ones(
    digits_ws: Workspace,
) -> None:
    started = threading.Event()
    jobs = TrainingQueue(digits_ws, on_epoch=lambda run, e, n, m: started.set())
    slow = TrainRequest("digits", "mlp", {"epochs": 500, "batch_size": 64})
    first, waiting = jobs.submit(slow), jobs.submit(slow)
    assert started.wait(120)
    began = time.monotonic()
    jobs.close(timeout_s=60)
    assert time.monotonic() - began < 30  # one epoch at most, not the 500
    runs = {r.run_id: r for r in run_flows.list_runs(digits_ws)}
    assert runs[first].status == "interrupted" and "shutting down" in str(runs[first].error)
    assert int(str(runs[first].progress["epoch"])) < 500
    assert runs[waiting].status == "interrupted" and runs[waiting].started_at is None
