"""``/pipelines``: the pipelines headwater.toml declares; start one now and follow its steps.

Example::

    curl .../pipelines
    curl -X POST -H "Authorization: Bearer $TOKEN" .../pipelines/orders_daily/runs
    curl .../pipelines/orders_daily/runs/4f2a9c01d3e7
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from headwater.faces.api.deps import AccessRoute, PipelinesDep, ReadAccess, RunId, WriteAccess
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import (
    PipelineAcceptedOut,
    PipelineHistoryOut,
    PipelineListOut,
    PipelineOut,
    PipelineRunOut,
    PipelineStartIn,
)

__all__ = ["router"]

router = APIRouter(prefix="/pipelines", tags=["pipelines"], route_class=AccessRoute)

PipelineName = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="A pipeline's name, as in [pipelines.NAME] of headwater.toml.",
        examples=["orders_daily"],
    ),
]


@router.get("", response_model=PipelineListOut, responses=problem_responses(401, 422, 503))
def list_pipelines(pipelines: PipelinesDep, _: ReadAccess) -> PipelineListOut:
    """Each declared pipeline: schedule, time zone, next fire time, last run and its outcome."""
    return PipelineListOut(pipelines=[PipelineOut.from_core(p) for p in pipelines.summaries()])


@router.post(
    "/{name}/runs",
    response_model=PipelineAcceptedOut,
    status_code=202,
    responses=problem_responses(400, 401, 404, 409, 422, 503),
)
def start_pipeline(
    name: PipelineName,
    response: Response,
    pipelines: PipelinesDep,
    _: WriteAccess,
    body: Annotated[PipelineStartIn | None, Body()] = None,
) -> PipelineAcceptedOut:
    """Run the pipeline now, in the background; 409 while a run of it is going on.

    Answers at once with the run's id; its URL shows each step as it starts and ends.
    """
    run = pipelines.start(name, force=body.force if body is not None else False)
    url = f"/pipelines/{name}/runs/{run.pipeline_run_id}"
    response.headers["Location"] = url
    return PipelineAcceptedOut(pipeline_run_id=run.pipeline_run_id, url=url)


@router.get(
    "/{name}/runs", response_model=PipelineHistoryOut, responses=problem_responses(401, 404, 422)
)
def pipeline_history(
    name: PipelineName,
    pipelines: PipelinesDep,
    _: ReadAccess,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most runs returned.")] = 50,
) -> PipelineHistoryOut:
    """The pipeline's runs, newest first, each with its six steps."""
    runs = pipelines.history(name, limit=limit)
    return PipelineHistoryOut(pipeline=name, runs=[PipelineRunOut.from_core(r) for r in runs])


@router.get(
    "/{name}/runs/{run_id}",
    response_model=PipelineRunOut,
    responses=problem_responses(401, 404, 422),
)
def read_pipeline_run(
    name: PipelineName, run_id: RunId, pipelines: PipelinesDep, _: ReadAccess
) -> PipelineRunOut:
    """One run: its status, and each step's status, seconds and outcome as they are now."""
    return PipelineRunOut.from_core(pipelines.run(name, run_id))
