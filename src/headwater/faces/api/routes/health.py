"""``/health``: is the warehouse reachable, and what does it hold."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter

import headwater
from headwater.faces.api.deps import ServiceDep
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import HealthOut

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses=problem_responses(503))
def read_health(service: ServiceDep) -> HealthOut:
    """Open to all, for load balancers: 200 when the warehouse answers, 503 when it does not."""
    return HealthOut(
        version=headwater.__version__,
        warehouse=cast(Literal["duckdb", "postgres"], service.dialect),
        datasets=service.dataset_count(),
    )
