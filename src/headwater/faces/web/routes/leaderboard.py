"""The leaderboard as the core ranks it (finished runs, best first); compare two; serve one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from headwater.errors import NotFound
from headwater.faces.http import DATASET_NAME_PATTERN, RunId
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute
from headwater.flows import runs as run_flows
from headwater.flows.params import changed_params
from headwater.flows.runs import RunDetail, RunRow

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

RANKED_BY = {
    "test_accuracy": "Test acc.",
    "test_macro_f1": "Test macro F1",
    "validation_accuracy": "Valid. acc.",
    "cv_mean_accuracy": "CV mean acc.",
}
"""The metrics the leaderboard ranks by (``flows.runs.leaderboard``), as column headers."""
REGRESSION_RANKED_BY = {
    "test_rmse": "Test RMSE",
    "test_mae": "Test MAE",
    "test_r2": "Test R²",
    "validation_rmse": "Valid. RMSE",
    "cv_mean_rmse": "CV mean RMSE",
}
"""A regression's columns: errors rank lowest first."""
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
    shown_params: dict[str, object]


def served_run(page: Page, dataset: str) -> str | None:
    """The run the dataset's ``best`` alias serves now, or None before any run succeeded."""
    try:
        return run_flows.resolve_run(page.workspace, dataset, "best")
    except NotFound:
        return None


def _entries(page: Page, dataset: str, metric: str) -> list[Entry]:
    """The dataset's ranking as the core draws it (finished classifiers, best first)."""
    served = served_run(page, dataset)
    entries = []
    for run in run_flows.leaderboard(page.workspace, dataset, metric=metric):
        data = page.service.runs.detail(run.run_id).data
        batches = sorted({b for d in data for b in d.batch_ids})
        shown = changed_params(run.model, run.params)
        entries.append(Entry(run, batches, run.run_id == served, shown))
    return entries


Metric = Annotated[
    str | None, Query(pattern="^(" + "|".join([*RANKED_BY, *REGRESSION_RANKED_BY]) + ")$")
]


@router.get("/leaderboard")
def leaderboard(
    page: PageDep,
    dataset: Annotated[str | None, Query(pattern=DATASET_NAME_PATTERN)] = None,
    sort: Metric = None,
    served: str | None = None,
) -> Response:
    """The chosen dataset's (the first one by default) finished runs, best first by ``sort``
    (by default test accuracy, or test RMSE, lowest first, for a regression)."""
    datasets = page.service.datasets()
    chosen = dataset or (datasets[0].name if datasets else None)
    sort = sort or (run_flows.default_metric(page.workspace, chosen) if chosen else "test_accuracy")
    regression = sort in REGRESSION_RANKED_BY
    ranked_by = REGRESSION_RANKED_BY if regression else RANKED_BY
    entries = _entries(page, chosen, sort) if chosen else []
    links = {
        key: "/ui/leaderboard?" + urlencode({"dataset": chosen or "", "sort": key})
        for key in ranked_by
    }
    return page.render(
        "leaderboard.html",
        title="Leaderboard",
        section="leaderboard",
        datasets=datasets,
        chosen=chosen,
        entries=entries,
        ranked_by=ranked_by,
        regression=regression,
        order=run_flows.ranking_order(sort),
        lower_first=run_flows.ranking_order(sort) == "lower is better",
        sort=sort,
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
