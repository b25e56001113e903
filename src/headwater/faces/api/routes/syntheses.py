"""``/syntheses``: start a synthetic copy of a dataset, follow it, read its report and files."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from fastapi.responses import FileResponse

from headwater.faces.api.deps import AccessRoute, ReadAccess, RunId, RunsDep, WriteAccess
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import RunAcceptedOut, SynthesisIn, SynthesisOut

__all__ = ["router"]

router = APIRouter(prefix="/syntheses", tags=["synthesis"], route_class=AccessRoute)

FileName = Annotated[
    Literal["report.html", "worst_columns.png", "samples.png"],
    Path(
        description="The HTML report, or its picture: worst_columns.png (tables) or "
        "samples.png (images)."
    ),
]
MEDIA = {"html": "text/html; charset=utf-8", "png": "image/png"}


@router.post(
    "",
    response_model=RunAcceptedOut,
    status_code=202,
    responses=problem_responses(400, 401, 404, 422, 429, 503),
)
def submit_synthesis(
    body: SynthesisIn, response: Response, runs: RunsDep, _: WriteAccess
) -> RunAcceptedOut:
    """Queue a synthesis and answer at once; poll its URL for progress, then the report.

    Example: curl -H "Authorization: Bearer $TOKEN"
    -d '{"dataset":"customers","method":"pca","rows":5000}' .../syntheses
    """
    run_id = runs.submit_synthesis(body.to_core())
    response.headers["Location"] = f"/syntheses/{run_id}"
    return RunAcceptedOut(run_id=run_id, url=f"/syntheses/{run_id}")


@router.get("/{run_id}", response_model=SynthesisOut, responses=problem_responses(401, 404, 422))
def read_synthesis(run_id: RunId, runs: RunsDep, _: ReadAccess) -> SynthesisOut:
    """Status and stage while it runs; the report and links to its HTML and PNG once done."""
    return SynthesisOut.from_core(runs.synthesis(run_id))


@router.get(
    "/{run_id}/files/{name}",
    response_class=FileResponse,
    responses={
        200: {"description": "The file.", "content": {"text/html": {}, "image/png": {}}},
        **problem_responses(401, 404, 422),
    },
)
def read_synthesis_file(
    run_id: RunId, name: FileName, runs: RunsDep, _: ReadAccess
) -> FileResponse:
    """The report as a page, or its picture (worst columns' histograms, or sample digits)."""
    return FileResponse(runs.synthesis_file(run_id, name), media_type=MEDIA[name.rsplit(".")[-1]])
