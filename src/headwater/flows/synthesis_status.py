"""A synthesis run as its followers see it: status and progress, then the report and its files.

The API and the web page both read a synthesis from here, never from the job that
runs it: the registry holds its status and last epoch, and once it succeeded its
registered ``report.json`` is the report (the same the CLI's ``synthesize-report``
prints). Files are served by registered name only (the HTML page and its PNG), so no
path a client sends reaches the disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from headwater.errors import NotFound
from headwater.flows.lifecycle import reap_abandoned
from headwater.flows.synthesis import HTML_FILE, PLOT_FILE, REPORT_FILE
from headwater.flows.synthesis_images import SAMPLES_FILE
from headwater.flows.workspace import Workspace
from headwater.learning.synth import METHODS
from headwater.storage.warehouse import runs as registry

__all__ = [
    "FILES",
    "METHODS",
    "SynthesisStatus",
    "synthesis_file",
    "synthesis_status",
]

FILES = (HTML_FILE, PLOT_FILE, SAMPLES_FILE)
"""What a client may fetch of a synthesis run: its HTML report and its one picture."""
MODEL_PREFIX = "synth-"
FINISHED = frozenset({"succeeded", "failed", "interrupted", "abandoned"})


@dataclass(frozen=True)
class SynthesisStatus:
    """One synthesis run: what was asked, how far it got, and its report once it succeeded."""

    run_id: str
    source: str
    method: str
    rows: int
    into: str
    seed: int
    status: str
    progress: dict[str, object]
    error: str | None
    report: dict[str, object] | None
    files: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def images(self) -> bool:
        return SAMPLES_FILE in self.files


def _run(ws: Workspace, run_id: str) -> registry.RunRow:
    run = registry.get_run(ws.warehouse, run_id)  # RunNotFound
    if not run.model.startswith(MODEL_PREFIX):
        raise NotFound(f"run {run_id} is a {run.model} training run, not a synthesis")
    return run


def synthesis_status(ws: Workspace, run_id: str) -> SynthesisStatus:
    """The run's status and progress; with the report (``report.json``) once it succeeded."""
    reap_abandoned(ws)
    run = _run(ws, run_id)
    artifacts = {a.name: Path(a.path) for a in registry.run_artifacts(ws.warehouse, run_id)}
    report = None
    if run.status == "succeeded" and REPORT_FILE in artifacts:
        report = json.loads(artifacts[REPORT_FILE].read_text())
        report.pop("html", None)  # a server path: the faces link to the file instead
    params = run.params
    return SynthesisStatus(
        run_id=run.run_id,
        source=run.dataset,
        method=str(params.get("method", run.model.removeprefix(MODEL_PREFIX))),
        rows=int(str(params.get("rows", 0))),
        into=str(params.get("into", "")),
        seed=run.seed,
        status=run.status,
        progress=dict(run.progress),
        error=run.error,
        report=report,
        files=tuple(name for name in FILES if name in artifacts),
    )


def synthesis_file(ws: Workspace, run_id: str, name: str) -> Path:
    """The registered HTML report or picture of a synthesis run; anything else is NotFound."""
    _run(ws, run_id)
    artifacts = {a.name: Path(a.path) for a in registry.run_artifacts(ws.warehouse, run_id)}
    if name not in FILES or name not in artifacts:
        have = ", ".join(n for n in FILES if n in artifacts) or "none yet"
        raise NotFound(f"synthesis run {run_id} has no file {name!r}; it has: {have}")
    path = artifacts[name]
    if not path.is_file():
        raise NotFound(f"synthesis run {run_id}: {name!r} is registered but missing")
    return path
