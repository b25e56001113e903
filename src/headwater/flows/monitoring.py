"""How a dataset's models and data do over time: the numbers behind the monitoring chart.

Three series, from what the warehouse already records:

* every finished classifier run's test accuracy, when it finished (across versions);
* for pipeline runs, the served model's score after each run, on that run's test rows
  (the challenger's if it was promoted, the champion's if not);
* per batch, the rows loaded and the share of rows read that quality held back;
* per numeric column, each batch's drift from the first (`headwater.flows.drift`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from headwater.flows.drift import feature_drift
from headwater.flows.runs import leaderboard
from headwater.flows.workspace import Workspace
from headwater.learning.monitor_plot import plot_monitor
from headwater.storage.warehouse import pipelines as store

__all__ = ["BatchPoint", "MonitorData", "RunPoint", "ServedPoint", "monitor_chart", "monitor_data"]


@dataclass(frozen=True)
class RunPoint:
    at: datetime
    run_id: str
    model: str
    test_accuracy: float


@dataclass(frozen=True)
class ServedPoint:
    at: datetime
    pipeline_run_id: str
    served_run_id: str
    score: float
    metric: str
    promoted: bool


@dataclass(frozen=True)
class BatchPoint:
    batch_id: int
    at: datetime
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    quarantine_rate: float


@dataclass(frozen=True)
class MonitorData:
    dataset: str
    runs: list[RunPoint]
    served: list[ServedPoint]
    batches: list[BatchPoint]
    drift: dict[str, dict[int, float]]
    """Per numeric column, each batch's population stability index against the first batch."""

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "runs": [asdict(p) for p in self.runs],
            "served": [asdict(p) for p in self.served],
            "batches": [asdict(p) for p in self.batches],
            "drift": {c: {str(b): v for b, v in d.items()} for c, d in self.drift.items()},
        }


def _served(ws: Workspace, dataset: str) -> list[ServedPoint]:
    points = []
    for run in reversed(store.list_runs(ws.warehouse, limit=10_000)):
        steps = {s.step: s.outcome for s in run.steps if s.status == "succeeded"}
        if run.dataset != dataset or run.status != "succeeded" or "compare" not in steps:
            continue
        compare, evaluate = steps["compare"], steps.get("evaluate", {})
        metric = str(compare.get("metric", "accuracy"))
        if compare.get("champion") is None or run.promoted:
            score = compare.get("challenger_score", evaluate.get(metric))
            served = run.challenger_run_id
        else:
            score, served = compare.get("champion_score"), run.champion_run_id
        if score is None or served is None or run.finished_at is None:
            continue
        points.append(
            ServedPoint(
                run.finished_at,
                run.pipeline_run_id,
                served,
                float(str(score)),
                metric,
                run.promoted,
            )
        )
    return points


def monitor_data(ws: Workspace, dataset: str) -> MonitorData:
    """The dataset's run scores, served scores and batches over time; see the docstring."""
    summary = ws.dataset(dataset)  # DatasetNotFound for an unknown name
    runs = sorted(
        (
            RunPoint(r.finished_at, r.run_id, r.model, float(str(r.metrics["test_accuracy"])))
            for r in leaderboard(ws, dataset)
            if r.finished_at is not None and "test_accuracy" in r.metrics
        ),
        key=lambda p: p.at,
    )
    held = {r.batch_id: r.rows_quarantined for r in ws.quality(dataset)}
    batches = [
        BatchPoint(
            b.batch_id,
            b.finished_at or b.started_at,
            b.rows_read,
            b.rows_loaded,
            held.get(b.batch_id, 0),
            held.get(b.batch_id, 0) / b.rows_read if b.rows_read else 0.0,
        )
        for b in summary.batches
    ]
    return MonitorData(dataset, runs, _served(ws, dataset), batches, feature_drift(ws, dataset))


def monitor_chart(ws: Workspace, dataset: str, out: Path) -> MonitorData:
    """Write the monitoring PNG of a dataset to ``out``; return the data it shows."""
    data = monitor_data(ws, dataset)
    plot_monitor(
        f"{dataset}: test accuracy over time",
        [(p.at, p.test_accuracy, p.model) for p in data.runs],
        [(p.at, p.score, p.promoted) for p in data.served],
        [(b.batch_id, b.rows_loaded, b.quarantine_rate) for b in data.batches],
        data.drift,
        out,
    )
    return data
