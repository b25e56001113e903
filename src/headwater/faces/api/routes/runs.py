"""``/runs``: submit a training run, follow its progress, read its metrics and plots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse

from headwater.faces.api.deps import (
    DATASET_NAME_PATTERN,
    AccessRoute,
    ReadAccess,
    RunId,
    RunsDep,
    WriteAccess,
)
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import RunAcceptedOut, RunDetailOut, RunIn, RunListOut, RunOut

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"], route_class=AccessRoute)

PlotName = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="A plot the run registered, without .png: confusion_matrix, predictions, "
        "learning_curves.",
        examples=["confusion_matrix"],
    ),
]


@router.post(
    "",
    response_model=RunAcceptedOut,
    status_code=202,
    responses=problem_responses(400, 401, 404, 409, 422, 429, 503),
)
def submit_run(body: RunIn, response: Response, runs: RunsDep, _: WriteAccess) -> RunAcceptedOut:
    """Queue a training run and answer at once; poll its URL for progress and metrics.

    Example: curl -H "Authorization: Bearer $TOKEN" -d '{"dataset":"mnist","epochs":5}' .../runs
    """
    run_id = runs.submit(body.to_core())
    response.headers["Location"] = f"/runs/{run_id}"
    return RunAcceptedOut(run_id=run_id, url=f"/runs/{run_id}")


@router.get("", response_model=RunListOut, responses=problem_responses(401, 404, 422))
def list_runs(
    runs: RunsDep,
    _: ReadAccess,
    dataset: Annotated[
        str | None, Query(pattern=DATASET_NAME_PATTERN, description="Only this dataset's runs.")
    ] = None,
) -> RunListOut:
    """Every run, queued to finished, with its parameters, progress and headline metrics."""
    return RunListOut(runs=[RunOut.from_core(run) for run in runs.runs(dataset)])


@router.get("/{run_id}", response_model=RunDetailOut, responses=problem_responses(401, 404, 422))
def read_run(run_id: RunId, runs: RunsDep, _: ReadAccess) -> RunDetailOut:
    """Status, last epoch's loss and accuracy while it trains; all metrics and plots once done."""
    return RunDetailOut.from_detail(runs.detail(run_id))


@router.get(
    "/{run_id}/plots/{plot}.png",
    response_class=FileResponse,
    responses={
        200: {"description": "The plot.", "content": {"image/png": {}}},
        **problem_responses(401, 404, 422),
    },
)
def read_plot(run_id: RunId, plot: PlotName, runs: RunsDep, _: ReadAccess) -> FileResponse:
    """A PNG the run registered (confusion matrix, sample predictions, learning curves)."""
    return FileResponse(runs.plot(run_id, f"{plot}.png"), media_type="image/png")
