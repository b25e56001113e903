"""``/datasets/{name}/aliases/{alias}``: which run `best` (or `latest`) serves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headwater.faces.api.deps import AccessRoute, DatasetName, RunsDep, WriteAccess
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import AliasIn, AliasOut, ServedAlias

__all__ = ["router"]

router = APIRouter(prefix="/datasets", tags=["aliases"], route_class=AccessRoute)


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasOut,
    responses=problem_responses(400, 401, 404, 422, 503),
)
def set_alias(
    name: DatasetName,
    alias: Annotated[ServedAlias, Path(description="best or latest.")],
    body: AliasIn,
    runs: RunsDep,
    _: WriteAccess,
) -> AliasOut:
    """Serve this succeeded run under the alias; /models/{alias}/predict switches at once.

    Example: curl -X PUT -H "Authorization: Bearer $TOKEN" -d '{"run_id":"3f2a9c1d0b7e"}'
    .../datasets/mnist/aliases/best
    """
    runs.set_alias(name, alias, body.run_id)
    return AliasOut(dataset=name, alias=alias, run_id=body.run_id)
