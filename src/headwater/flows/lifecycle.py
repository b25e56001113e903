"""One run lifecycle: register a run, record its progress, record how it ended.

Everything that trains something and keeps it (a classifier, the anomaly
detector, and later synthesis, tuning and pipelines) runs its work inside::

    with run_lifecycle(ws, spec, on_epoch=...) as run:
        estimator.fit(X, y, on_epoch=run.epoch_fn(epochs))
        run.succeed(rows=..., folder=run.folder, hashes=..., metrics=..., seconds=...)

so the registry tells the same story whatever ran. A run ends in one of four ways:

- ``succeeded``: the body called :meth:`Run.succeed` (rows, artifacts, metrics in one
  transaction);
- ``interrupted``: Ctrl-C, SIGTERM (:func:`sigterm_interrupts`) or the stop event the
  run was given, checked between epochs;
- forgotten: a refusal (`ConfigError`, `SchemaError`) before the run began, on a run
  this lifecycle registered, leaves no trace, as if it had been refused up front;
- ``failed``, with the reason, for anything else.

The exception is re-raised in every case but success.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import numpy as np
import numpy.typing as npt

import headwater
from headwater.errors import ConfigError, SchemaError
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = [
    "EpochFn",
    "Interrupted",
    "Run",
    "RunSpec",
    "check_seed",
    "code_version",
    "new_run_id",
    "register",
    "run_lifecycle",
    "sigterm_interrupts",
]

log = logging.getLogger("headwater.runs")

EpochFn = Callable[[int, int, dict[str, float]], None]
"""Called as (epoch, epochs, metrics) after every epoch of a model that learns in epochs."""

JsonDict = dict[str, object]


class Interrupted(KeyboardInterrupt):
    """Asked to stop from outside (SIGTERM, a server shutting down): a run ends ``interrupted``.

    A `KeyboardInterrupt`, so code that cleans up after Ctrl-C (a transaction rolling
    back, a staging file removed) does the same for it, and ``except Exception`` does not
    swallow it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def register(ws: Workspace, spec: RunSpec, run_id: str) -> None:
    """Register a run as ``queued``: visible in the registry before any data is read."""
    check_seed(spec.seed)
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
    )


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

    def start(self) -> None:
        """Mark the run ``running`` (once); before this a refusal leaves no trace."""
        if not self.started:
            self.started = True
            registry.start_run(self._ws.warehouse, self.run_id, now=datetime.now(UTC))

    def check_stop(self) -> None:
        """Raise `Interrupted` if the run was asked to stop; called between epochs."""
        if self._stop is not None and self._stop.is_set():
            raise Interrupted("stopped: the process running it is shutting down")

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        """Record one finished epoch (its metrics, and the run's progress), then check for stop."""
        self.start()
        clean = {k: float(v) for k, v in metrics.items()}
        wh = self._ws.warehouse
        registry.record_epoch(wh, self.run_id, epoch, dict(clean), now=datetime.now(UTC))
        registry.update_progress(wh, self.run_id, {"epoch": epoch, "epochs": epochs, **clean})
        if self._on_epoch is not None:
            self._on_epoch(epoch, epochs, clean)
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
    if spec is None:
        if run_id is None:
            raise ValueError("run_lifecycle needs a spec or the id of a queued run")
        registry.get_run(ws.warehouse, run_id)  # RunNotFound if it was never queued
    else:
        run_id = run_id or new_run_id()
        register(ws, spec, run_id)
    run = Run(ws, run_id, on_epoch=on_epoch, stop=stop)
    try:
        yield run
        if not run.succeeded:
            raise RuntimeError(f"run {run_id} ended without recording a result")
    except BaseException as error:
        _record_end(ws, run, error, forget=not adopted and not run.started)
        raise
    finally:
        shutil.rmtree(run.cache, ignore_errors=True)


def _record_end(ws: Workspace, run: Run, error: BaseException, *, forget: bool) -> None:
    """Write down how a run ended that did not succeed; never hide the error that ended it."""
    wh = ws.warehouse
    try:
        if isinstance(error, ConfigError | SchemaError) and forget:
            registry.delete_run(wh, run.run_id)
        elif isinstance(error, KeyboardInterrupt | SystemExit):
            reason = error.reason if isinstance(error, Interrupted) else "interrupted"
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
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises `Interrupted` in the main thread, as Ctrl-C would.

    So a command asked to stop rolls its transaction back and marks its run
    ``interrupted`` instead of dying mid-write. Only the main thread can install it;
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted("interrupted: the process received SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
