"""Training and synthesis in the background: a bounded queue and one worker thread per process.

Faces that must answer at once (the API, the web UI) submit a `TrainRequest` (or a
`SynthesisRequest`, with `submit_synthesis`) and get the run id back immediately; the
run is registered as ``queued`` before `submit` returns, so its status and per-epoch
progress can be read from the registry straight away. One worker runs one job at a
time: on two cores a second concurrent run would only slow both down.

`close` stops in bounded time: the run in progress ends ``interrupted`` at its next
epoch, and runs still waiting are marked ``interrupted`` too, since no one will
train them (the queue lives in this process only).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from headwater.errors import HeadwaterError, QueueFull
from headwater.flows.lifecycle import (
    EpochFn,
    Interrupted,
    end_interrupted,
    new_run_id,
    reap_abandoned,
)
from headwater.flows.synthesis import SynthesisRequest, queue_synthesis, run_queued
from headwater.flows.training import TrainRequest, queue_run, train
from headwater.flows.workspace import Workspace

__all__ = ["QueueFull", "TrainingQueue"]

log = logging.getLogger("headwater.jobs")


@dataclass(frozen=True)
class _Job:
    run_id: str
    request: TrainRequest | SynthesisRequest


class TrainingQueue:
    """Submit runs from any thread; a daemon worker trains them one after another."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        limit: int = 4,
        on_done: Callable[[str], None] | None = None,
        on_epoch: Callable[[str, int, int, dict[str, float]], None] | None = None,
    ) -> None:
        self._workspace = workspace
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=limit)
        self._limit = limit
        self._on_done = on_done
        self._on_epoch = on_epoch
        self._stop = threading.Event()
        self._current: str | None = None
        reap_abandoned(workspace)  # a worker starting: runs an earlier process left are ended
        self._worker = threading.Thread(target=self._work, name="headwater-training", daemon=True)
        self._worker.start()

    def submit(self, request: TrainRequest) -> str:
        """Check the request, register the run as queued, and return its id at once."""
        request.check()
        run_id = new_run_id()
        if self._jobs.full():
            raise QueueFull(self._limit)
        queue_run(self._workspace, request, run_id)
        try:
            self._jobs.put_nowait(_Job(run_id, request))
        except queue.Full as exc:
            raise QueueFull(self._limit) from exc
        return run_id

    def submit_synthesis(self, request: SynthesisRequest) -> str:
        """Check the request, register the synthesis run as queued, and return its id at once."""
        run_id = new_run_id()
        if self._jobs.full():
            raise QueueFull(self._limit)
        request = queue_synthesis(self._workspace, request, run_id)
        try:
            self._jobs.put_nowait(_Job(run_id, request))
        except queue.Full as exc:
            end_interrupted(self._workspace, run_id, "interrupted: the queue filled meanwhile")
            raise QueueFull(self._limit) from exc
        return run_id

    def pending(self) -> int:
        return self._jobs.qsize()

    def close(self, timeout_s: float = 5.0) -> None:
        """Interrupt the current run at its next epoch, end the waiting ones, stop the worker."""
        self._stop.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._end_waiting(job)
        with contextlib.suppress(queue.Full):  # the worker sees the stop event anyway
            self._jobs.put_nowait(None)
        self._worker.join(timeout_s)
        current = self._current
        if self._worker.is_alive() and current is not None:
            log.warning("run %s did not stop within %.0f s; marked interrupted", current, timeout_s)
            end_interrupted(
                self._workspace, current, "stopped: the process shut down before its epoch ended"
            )

    def _end_waiting(self, job: _Job) -> None:
        end_interrupted(self._workspace, job.run_id, "interrupted: the server stopped first")
        if self._on_done is not None:
            self._on_done(job.run_id)

    def _epoch_hook(self, run_id: str) -> EpochFn | None:
        hook = self._on_epoch
        if hook is None:
            return None

        def epoch_fn(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            hook(run_id, epoch, epochs, metrics)

        return epoch_fn

    def _run(self, job: _Job, epoch_fn: EpochFn | None) -> None:
        if isinstance(job.request, SynthesisRequest):
            run_queued(self._workspace, job.request, job.run_id, on_epoch=epoch_fn, stop=self._stop)
        else:
            train(
                self._workspace, job.request, run_id=job.run_id, on_epoch=epoch_fn, stop=self._stop
            )

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stop.is_set():
                self._end_waiting(job)
                continue
            epoch_fn = self._epoch_hook(job.run_id)
            self._current = job.run_id
            try:
                self._run(job, epoch_fn)
            except Interrupted as stopped:  # recorded on the run as interrupted
                log.warning("run %s: %s", job.run_id, stopped.reason)
            except HeadwaterError as error:  # recorded on the run by `train`; keep serving
                log.warning("run %s failed: %s", job.run_id, error)
            except Exception:  # a bug must not kill the worker; the run is marked failed
                log.exception("run %s crashed", job.run_id)
            finally:
                self._current = None
                if self._on_done is not None:
                    self._on_done(job.run_id)
