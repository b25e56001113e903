"""``/datasets/{name}/leaderboard``: a dataset's finished runs, best first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headwater.faces.api.deps import AccessRoute, DatasetName, ReadAccess, RunsDep
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import LeaderboardMetric, LeaderboardOut

__all__ = ["router"]

router = APIRouter(prefix="/datasets", tags=["leaderboard"], route_class=AccessRoute)


@router.get(
    "/{name}/leaderboard", response_model=LeaderboardOut, responses=problem_responses(401, 404, 422)
)
def read_leaderboard(
    name: DatasetName,
    runs: RunsDep,
    _: ReadAccess,
    metric: Annotated[
        LeaderboardMetric | None,
        Query(description="The metric to rank by; test_rmse for a regression, else test_accuracy."),
    ] = None,
) -> LeaderboardOut:
    """Succeeded runs ranked by the metric; `best` serves the first unless an alias pins one."""
    chosen, ranked = runs.leaderboard(name, metric)
    return LeaderboardOut.from_core(name, chosen, ranked)
