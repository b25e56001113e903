"""One run lifecycle: register a run, record its progress, record how it ended.

Everything that trains something and keeps it (a classifier, the anomaly
detector, and later synthesis, tuning and pipelines) runs its work inside::

    with run_lifecycle(ws, spec, on_epoch=...) as run:
        estimator.fit(X, y, on_epoch=run.epoch_fn(epochs))
        run.succeed(rows=..., folder=run.folder, hashes=..., metrics=..., seconds=...)

so the registry tells the same story whatever ran. A run ends in one of five ways:

- ``succeeded``: the body called :meth:`Run.succeed` (rows, artifacts, metrics in one
  transaction);
- ``interrupted``: Ctrl-C, SIGTERM (:func:`sigterm_interrupts`) or the stop event the
  run was given, checked between epochs;
- forgotten: a refusal (`ConfigError`, `SchemaError`) before the run began, on a run
  this lifecycle registered, leaves no trace, as if it had been refused up front;
- ``pruned``: its ``on_epoch`` raised `Pruned` (a hyperparameter search stopping a trial
  that trails the others); the reason names the epoch, and its progress keeps that epoch;
- ``failed``, with the reason, for anything else.

The exception is re-raised in every case but success.

While it lives, a run's worker (pid and host) refreshes the run's heartbeat at every
epoch and from a background thread every ``run_heartbeat_seconds``. A queued or
running run whose heartbeat is older than three such intervals, or whose pid is gone
from this host, is marked ``abandoned`` with the reason by :func:`reap_abandoned`,
which runs whenever the registry is listed or read and whenever a worker starts: a
SIGKILLed training process does not leave its run ``running`` forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import numpy as np
import numpy.typing as npt

import headwater
from headwater.errors import ConfigError, SchemaError, WarehouseError
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = [
    "RUN_NAME_PATTERN",
    "EpochFn",
    "Interrupted",
    "Pruned",
    "Run",
    "RunSpec",
    "check_run_name",
    "check_seed",
    "code_version",
    "end_interrupted",
    "new_run_id",
    "reap_abandoned",
    "register",
    "run_lifecycle",
    "sigterm_interrupts",
]

log = logging.getLogger("headwater.runs")

EpochFn = Callable[[int, int, dict[str, float]], None]
"""Called as (epoch, epochs, metrics) after every epoch of a model that learns in epochs."""

JsonDict = dict[str, object]

STALE_BEATS = 3
"""A live run whose heartbeat is older than this many intervals is abandoned."""

_SIGTERM = "interrupted: the process received SIGTERM"
_TERMINATED = threading.Event()
"""Set once SIGTERM arrived (see `sigterm_interrupts`): whatever error follows is its doing."""

_OWN: set[str] = set()
"""Runs this process registered or took over and has not finished: alive whatever the clock."""


class Interrupted(KeyboardInterrupt):
    """Asked to stop from outside (SIGTERM, a server shutting down): a run ends ``interrupted``.

    A `KeyboardInterrupt`, so code that cleans up after Ctrl-C (a transaction rolling
    back, a staging file removed) does the same for it, and ``except Exception`` does not
    swallow it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Pruned(Exception):
    """Raised from a run's ``on_epoch`` to stop it on purpose: the run ends ``pruned``.

    A tuner's pruner stopping a trial that trails the trials before it is a decision,
    not a failure, so the registry keeps it apart from ``failed``.
    """

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"pruned at epoch {epoch}: {reason}")
        self.epoch = epoch


@dataclass(frozen=True)
class RunSpec:
    """What a run is registered with before it starts."""

    dataset: cat.DatasetRow
    model: str
    params: JsonDict
    seed: int
    evaluation: str


def check_seed(seed: int) -> None:
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}")


RUN_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$"
"""A run's name (kept as an alias on its dataset): the CLI, the API and the forms check it
(the ``-`` escaped, as an HTML pattern attribute's ``v``-flag regex needs it)."""


def check_run_name(name: str | None) -> None:
    if name is not None and re.fullmatch(RUN_NAME_PATTERN, name) is None:
        raise ConfigError(
            f"--name {name!r}: start with a letter or _, then letters, digits, - and _ (at most 63)"
        )


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


def this_worker() -> registry.Worker:
    return registry.Worker(os.getpid(), socket.gethostname())


def register(ws: Workspace, spec: RunSpec, run_id: str) -> None:
    """Register a run as ``queued``, owned by this process, before any data is read."""
    check_seed(spec.seed)
    _OWN.add(run_id)
    registry.create_run(
        ws.warehouse,
        run_id=run_id,
        dataset_key=spec.dataset.key,
        model=spec.model,
        params=spec.params,
        seed=spec.seed,
        evaluation=spec.evaluation,
        code_version=code_version(),
        now=datetime.now(UTC),
        worker=this_worker(),
    )


def end_interrupted(ws: Workspace, run_id: str, reason: str) -> None:
    """Mark a run that will not go on ``interrupted`` from outside it: a queued run whose
    queue closed, or one whose worker did not stop in time. A run that ended is left alone."""
    try:
        registry.interrupt_run(ws.warehouse, run_id, now=datetime.now(UTC), reason=reason)
    except Exception:
        log.exception("run %s: could not record that it was interrupted", run_id)
    finally:
        release(run_id)


def release(run_id: str) -> None:
    """This process no longer holds the run (it ended, or was dropped from a queue)."""
    _OWN.discard(run_id)


def reap_abandoned(ws: Workspace) -> list[str]:
    """Mark every live run whose worker is gone ``abandoned``, with the reason; return their ids.

    Gone means: its pid no longer exists on this host, or (on any host) it has not
    beaten for ``STALE_BEATS`` heartbeat intervals while running. A queued run waits
    without beating, so only the first rule applies to it.
    """
    wh = ws.warehouse
    now = datetime.now(UTC)
    bound = timedelta(seconds=STALE_BEATS * ws.settings.run_heartbeat_seconds)
    marked: list[str] = []
    for run in registry.live_runs(wh):
        reason = _why_gone(run, now, bound)
        if reason is None:
            continue
        try:
            if registry.abandon_run(wh, run.run_id, now=now, reason=reason, seen=run.heartbeat_at):
                log.warning("run %s abandoned: %s", run.run_id, reason)
                marked.append(run.run_id)
        except WarehouseError as error:  # a concurrent writer moved it: judge it next time
            log.info("run %s not marked abandoned now: %s", run.run_id, error)
    return marked


def _why_gone(run: registry.RunRow, now: datetime, bound: timedelta) -> str | None:
    if run.run_id in _OWN:
        return None
    me, pid = this_worker(), run.worker_pid
    if pid is not None and run.worker_host == me.host and (pid == me.pid or not _pid_alive(pid)):
        return f"its worker (pid {pid} on {run.worker_host}) is gone"
    beat = run.heartbeat_at
    if run.status == "running" and beat is not None and now - beat > bound:
        silent = (now - beat).total_seconds()
        return (
            f"no heartbeat for {silent:.0f} s (more than {STALE_BEATS} x "
            f"HEADWATER_RUN_HEARTBEAT_SECONDS); its worker on {run.worker_host} is presumed gone"
        )
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


class Run:
    """The handle a run's body writes through: progress, the start, the result."""

    def __init__(
        self,
        ws: Workspace,
        run_id: str,
        *,
        on_epoch: EpochFn | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.run_id = run_id
        self.folder = ws.settings.home / "runs" / run_id
        self.cache = ws.settings.home / "cache" / run_id
        self.started = False
        self.succeeded = False
        self._ws = ws
        self._on_epoch = on_epoch
        self._stop = stop
        self._worker = this_worker()
        self._progress: dict[str, object] = {}
        self._writing = threading.Lock()  # the heartbeat and the run never update dim_run at once
        self._beats_done = threading.Event()
        self._beats = threading.Thread(
            target=self._beat_until_done, name=f"headwater-heartbeat-{run_id}", daemon=True
        )

    def _beat_until_done(self) -> None:
        interval = self._ws.settings.run_heartbeat_seconds
        while not self._beats_done.wait(interval):
            try:
                with self._writing:
                    registry.beat(
                        self._ws.warehouse, self.run_id, now=datetime.now(UTC), worker=self._worker
                    )
            except Exception as error:  # the warehouse away for a while: beat again later
                log.warning("run %s: heartbeat not recorded: %s", self.run_id, error)

    def start_beating(self) -> None:
        self._beats.start()

    def stop_beating(self) -> None:
        """Stop the background heartbeat before the run's last write (no two writers of its row)."""
        self._beats_done.set()
        if self._beats.is_alive():
            self._beats.join()

    def start(self) -> None:
        """Mark the run ``running`` (once), then check for stop: a scikit-learn fit cannot be
        stopped mid-way, so a server shutting down stops it here, before its evaluation and
        ONNX export (minutes for a large ensemble). Before this a refusal leaves no trace."""
        if not self.started:
            self.started = True
            with self._writing:
                registry.start_run(
                    self._ws.warehouse, self.run_id, now=datetime.now(UTC), worker=self._worker
                )
            log.info("run %s started (pid %d)", self.run_id, self._worker.pid)
        self.check_stop()

    def check_stop(self) -> None:
        """Raise `Interrupted` if the run was asked to stop; called between epochs."""
        if self._stop is not None and self._stop.is_set():
            raise Interrupted("stopped: the process running it is shutting down")

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        """Record one finished epoch (its metrics, and the run's progress), then check for stop."""
        self.start()
        clean = {k: float(v) for k, v in metrics.items()}
        wh = self._ws.warehouse
        now = datetime.now(UTC)
        self._progress = {**self._progress, "epoch": epoch, "epochs": epochs, **clean}
        with self._writing:
            registry.record_epoch(wh, self.run_id, epoch, dict(clean), now=now)
            registry.update_progress(wh, self.run_id, self._progress)
            registry.beat(wh, self.run_id, now=now, worker=self._worker)
        if self._on_epoch is not None:
            self._on_epoch(epoch, epochs, clean)
        self.check_stop()

    def stage(self, name: str) -> None:
        """Record which step a run with steps after its epochs is on (``progress.stage``)."""
        self.start()
        self._progress = {**self._progress, "stage": name}
        with self._writing:
            registry.update_progress(self._ws.warehouse, self.run_id, self._progress)
        self.check_stop()

    def epoch_fn(self, epochs: int) -> Callable[[int, dict[str, float]], None]:
        """The ``on_epoch`` a model's ``fit`` calls as (epoch, metrics)."""

        def done(epoch: int, metrics: dict[str, float]) -> None:
            self.epoch(epoch, epochs, metrics)

        return done

    def succeed(
        self,
        *,
        rows: Mapping[str, tuple[npt.NDArray[np.int64], list[int]]],
        hashes: Mapping[str, str],
        metrics: JsonDict,
        seconds: float,
    ) -> None:
        """In one transaction: the exact rows per role, the hashed artifacts, the final metrics."""
        self.start()
        self.stop_beating()
        wh = self._ws.warehouse
        with wh.transaction():
            for role, (keys, batch_ids) in rows.items():
                registry.record_data(wh, self.run_id, role, keys, batch_ids)
            registry.record_artifacts(
                wh,
                self.run_id,
                [
                    registry.ArtifactRow(
                        name, str(self.folder / name), sha, (self.folder / name).stat().st_size
                    )
                    for name, sha in sorted(hashes.items())
                ],
            )
            registry.finish_run(
                wh,
                self.run_id,
                status="succeeded",
                now=datetime.now(UTC),
                metrics=metrics,
                train_seconds=seconds,
            )
        self.succeeded = True


@contextlib.contextmanager
def run_lifecycle(
    ws: Workspace,
    spec: RunSpec | None,
    *,
    run_id: str | None = None,
    on_epoch: EpochFn | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Run]:
    """Register a run from ``spec`` (or, with ``spec=None``, take over the queued ``run_id``).

    See the module docstring for how it ends. The run's cache folder is removed on exit.
    """
    adopted = spec is None
    reap_abandoned(ws)  # a worker starting: runs whose worker died are marked first
    if spec is None:
        if run_id is None:
            raise ValueError("run_lifecycle needs a spec or the id of a queued run")
        registry.get_run(ws.warehouse, run_id)  # RunNotFound if it was never queued
        _OWN.add(run_id)
    else:
        run_id = run_id or new_run_id()
        register(ws, spec, run_id)
    run = Run(ws, run_id, on_epoch=on_epoch, stop=stop)
    run.start_beating()
    try:
        yield run
        if not run.succeeded:
            raise RuntimeError(f"run {run_id} ended without recording a result")
    except BaseException as error:
        run.stop_beating()
        _record_end(ws, run, error, forget=not adopted and not run.started)
        raise
    finally:
        run.stop_beating()
        release(run_id)
        shutil.rmtree(run.cache, ignore_errors=True)


def _record_end(ws: Workspace, run: Run, error: BaseException, *, forget: bool) -> None:
    """Write down how a run ended that did not succeed; never hide the error that ended it."""
    wh = ws.warehouse
    try:
        if isinstance(error, ConfigError | SchemaError) and forget:
            registry.delete_run(wh, run.run_id)
        elif isinstance(error, Pruned):
            registry.finish_run(
                wh, run.run_id, status="pruned", now=datetime.now(UTC), error=str(error)
            )
        elif isinstance(error, KeyboardInterrupt | SystemExit) or _TERMINATED.is_set():
            # a driver may turn the interrupt into its own error ("Query interrupted")
            reason = (
                error.reason
                if isinstance(error, Interrupted)
                else _SIGTERM
                if _TERMINATED.is_set()
                else "interrupted"
            )
            registry.finish_run(
                wh, run.run_id, status="interrupted", now=datetime.now(UTC), error=reason
            )
            log.warning("run %s interrupted: %s", run.run_id, reason)
        else:
            registry.finish_run(
                wh,
                run.run_id,
                status="failed",
                now=datetime.now(UTC),
                error=str(error) or type(error).__name__,
            )
    except Exception:  # the warehouse may be what failed; the original error matters more
        log.exception("run %s: could not record how it ended", run.run_id)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[threading.Event]:
    """While inside, SIGTERM raises `Interrupted` in the main thread, as Ctrl-C would.

    So a command asked to stop rolls its transaction back, removes its staging files
    and marks its run ``interrupted`` instead of dying mid-write. Only the first SIGTERM
    raises (a second one must not break the clean-up the first began). Yields an event
    set once SIGTERM arrived, for the exit code. Outside the main thread it does nothing.
    """
    received = _TERMINATED
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if received.is_set():
            return
        received.set()
        raise Interrupted(_SIGTERM)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
