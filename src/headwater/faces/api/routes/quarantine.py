"""``/datasets/{name}/quarantine``: rows held back by the quality checks, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headwater.faces.api.deps import AccessRoute, DatasetName, ReadAccess, ServiceDep
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import QuarantineOut, QuarantineStatus
from headwater.faces.config import MAX_ROWS_PER_REQUEST

__all__ = ["router"]

router = APIRouter(prefix="/datasets", tags=["quarantine"], route_class=AccessRoute)


@router.get(
    "/{name}/quarantine",
    response_model=QuarantineOut,
    responses=problem_responses(401, 404, 422, 503),
)
def list_quarantine(
    name: DatasetName,
    service: ServiceDep,
    _: ReadAccess,
    status: Annotated[
        QuarantineStatus, Query(description="Which rows: still held, released, dropped, or all.")
    ] = "quarantined",
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS_PER_REQUEST)] = 100,
) -> QuarantineOut:
    """Each held row: its batch, source row, the check it failed, the field and its value."""
    rows = service.quarantine(name, status=None if status == "all" else status, limit=limit)
    return QuarantineOut.from_core(name, status, rows)
