"""The leaderboard: every run of a dataset, sorted by any metric; compare two; serve one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from headwater.errors import NotFound
from headwater.faces.api.deps import DATASET_NAME_PATTERN, RunId
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute
from headwater.flows import runs as run_flows
from headwater.flows.runs import RunDetail, RunRow

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

SORTABLE = {
    "test_accuracy": "Test acc.",
    "test_macro_f1": "Test macro F1",
    "validation_accuracy": "Valid. acc.",
    "cv_mean_accuracy": "CV mean acc.",
    "train_seconds": "Train seconds",
    "created_at": "Started",
}
"""Columns the table sorts by; the metrics are those the registry keeps per run."""
METRIC_NAMES = {
    "test_accuracy": "Test accuracy",
    "test_macro_f1": "Test macro F1",
    "validation_accuracy": "Validation accuracy",
    "cv_mean_accuracy": "Cross-validation mean accuracy",
    "train_seconds": "Train seconds",
}


@dataclass(frozen=True)
class Entry:
    run: RunRow
    batches: list[int]
    served: bool

    def value(self, key: str) -> float | None:
        if key == "train_seconds":
            return self.run.train_seconds
        if key == "created_at":
            return self.run.created_at.timestamp()
        found = self.run.metrics.get(key)
        return float(found) if isinstance(found, int | float) and math.isfinite(found) else None


def served_run(page: Page, dataset: str) -> str | None:
    """The run the dataset's ``best`` alias serves now, or None before any run succeeded."""
    try:
        return run_flows.resolve_run(page.workspace, dataset, "best")
    except NotFound:
        return None


def _entries(page: Page, dataset: str) -> list[Entry]:
    served = served_run(page, dataset)
    entries = []
    for run in page.service.runs.runs(dataset):
        data = page.service.runs.detail(run.run_id).data
        batches = sorted({b for d in data for b in d.batch_ids})
        entries.append(Entry(run, batches, run.run_id == served))
    return entries


def _sorted(entries: list[Entry], key: str, order: str) -> list[Entry]:
    """Runs without the metric (failed, still training, no CV) go last whatever the order."""
    present = [e for e in entries if e.value(key) is not None]
    missing = [e for e in entries if e.value(key) is None]
    present.sort(key=lambda e: e.value(key) or 0.0, reverse=order == "desc")
    return present + missing


Sort = Annotated[str, Query(pattern="^(" + "|".join(SORTABLE) + ")$")]


@router.get("/leaderboard")
def leaderboard(
    page: PageDep,
    dataset: Annotated[str | None, Query(pattern=DATASET_NAME_PATTERN)] = None,
    sort: Sort = "test_accuracy",
    order: Literal["asc", "desc"] = "desc",
    served: str | None = None,
) -> Response:
    """Every run of the chosen dataset (the first one by default), best first."""
    datasets = page.service.datasets()
    chosen = dataset or (datasets[0].name if datasets else None)
    entries = _sorted(_entries(page, chosen), sort, order) if chosen else []
    links = {
        key: "/ui/leaderboard?"
        + urlencode(
            {
                "dataset": chosen or "",
                "sort": key,
                "order": "asc" if key == sort and order == "desc" else "desc",
            }
        )
        for key in SORTABLE
    }
    return page.render(
        "leaderboard.html",
        title="Leaderboard",
        section="leaderboard",
        datasets=datasets,
        chosen=chosen,
        entries=entries,
        sortable=SORTABLE,
        sort=sort,
        order=order,
        links=links,
        notice=f"Run {served} is now served as the best model of {chosen}." if served else None,
    )


@router.post("/runs/{run_id}/serve")
async def serve(run_id: RunId, request: Request, page: PageDep) -> Response:
    """Pin the run as its dataset's ``best``: predictions by alias switch to it at once."""
    page.require_write("/ui/leaderboard")
    detail = await anyio.to_thread.run_sync(page.service.runs.detail, run_id)
    dataset = detail.run.dataset
    await anyio.to_thread.run_sync(page.service.runs.set_alias, dataset, "best", run_id)
    query = urlencode({"dataset": dataset, "served": run_id})
    return RedirectResponse(f"/ui/leaderboard?{query}", status_code=303)


@dataclass(frozen=True)
class Side:
    detail: RunDetail
    test: dict[str, object]
    batches: list[int]


def _side(detail: RunDetail) -> Side:
    test = detail.run.metrics.get("test")
    batches = sorted({b for d in detail.data for b in d.batch_ids})
    return Side(detail, test if isinstance(test, dict) else {}, batches)


@router.get("/compare")
def compare(page: PageDep, run: Annotated[list[str] | None, Query()] = None) -> Response:
    """Two runs side by side: headline metrics, parameters, per-class scores, confusion."""
    chosen = list(dict.fromkeys(run or []))
    if len(chosen) != 2:
        raise WebError(
            f"Select exactly two runs to compare on the leaderboard (you selected {len(chosen)})."
        )
    sides = [_side(page.service.runs.detail(run_id)) for run_id in chosen]
    params = sorted({k for s in sides for k in s.detail.run.params})
    return page.render(
        "compare.html",
        title="Compare two runs",
        section="leaderboard",
        sides=sides,
        params=params,
        metrics=list(METRIC_NAMES),
        names=METRIC_NAMES,
    )
