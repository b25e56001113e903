"""Runs of sequence datasets with the names they were trained under, as the faces list them.

A person picks a model by the name they gave it (``typing_lstm``), not by its id, and
compares every model of one dataset on the holdout they all share: the runs still queued
or training first (a page shows a run from the moment it is submitted), then the
succeeded ones ranked as the leaderboard ranks them (`flows.runs.leaderboard`), then
those that failed, with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.data.sequences import find_spec
from headwater.flows import runs as run_flows
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry

__all__ = ["NamedRun", "compare_runs", "sequence_datasets", "sequence_runs"]

UNFINISHED = frozenset({"queued", "running"})


@dataclass(frozen=True)
class NamedRun:
    run: registry.RunRow
    names: tuple[str, ...]

    @property
    def caption(self) -> str:
        """``name · model · dataset · holdout accuracy``: what a model select shows."""
        accuracy = self.run.metrics.get("test_accuracy")
        score = f" · holdout accuracy {100 * accuracy:.1f}%" if isinstance(accuracy, float) else ""
        named = f"{', '.join(self.names)} · " if self.names else ""
        return f"{named}{self.run.model} · {self.run.dataset} · {self.run.run_id}{score}"


def sequence_datasets(ws: Workspace) -> list[str]:
    """The names of the datasets whose rows are sequences, in name order."""
    return [
        d.name for d in cat.list_datasets(ws.warehouse) if find_spec(ws.warehouse, d) is not None
    ]


def sequence_runs(ws: Workspace) -> list[NamedRun]:
    """Succeeded runs of every sequence dataset, newest first: the models that predict."""
    datasets = set(sequence_datasets(ws))
    names = registry.run_names(ws.warehouse)
    runs = [r for r in run_flows.list_runs(ws) if r.status == "succeeded" and r.dataset in datasets]
    return [NamedRun(r, tuple(names.get(r.run_id, ()))) for r in reversed(runs)]


def compare_runs(ws: Workspace, dataset: str) -> list[NamedRun]:
    """Every model of a dataset: unfinished, then ranked by holdout accuracy, then failed."""
    names = registry.run_names(ws.warehouse)
    ranked = run_flows.leaderboard(ws, dataset, metric="test_accuracy")
    shown = {r.run_id for r in ranked}
    newest = list(reversed(run_flows.list_runs(ws, dataset)))
    waiting = [r for r in newest if r.status in UNFINISHED]
    ended = [r for r in newest if r.status not in UNFINISHED and r.run_id not in shown]
    return [NamedRun(r, tuple(names.get(r.run_id, ()))) for r in [*waiting, *ranked, *ended]]
