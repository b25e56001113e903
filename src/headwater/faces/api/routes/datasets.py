"""``/datasets``: what is loaded, its schema, splits, labels and batches, and its rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headwater.faces.api.deps import (
    AccessRoute,
    ConfigDep,
    DatasetName,
    ReadAccess,
    ServiceDep,
    SuggestionsDep,
)
from headwater.faces.api.problems import Problem, problem_responses
from headwater.faces.api.schemas import (
    DatasetDetailOut,
    DatasetListOut,
    DatasetOut,
    RowsOut,
    SuggestionOut,
)
from headwater.faces.config import MAX_ROWS_PER_REQUEST
from headwater.flows.params import PARAMS

__all__ = ["router"]

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=AccessRoute)

Limit = Annotated[
    int,
    Query(ge=1, le=MAX_ROWS_PER_REQUEST, description="Rows to return (the server may cap lower)."),
]
Offset = Annotated[int, Query(ge=0, le=2**62, description="Rows to skip first.")]


@router.get("", response_model=DatasetListOut, responses=problem_responses(401, 503))
def list_datasets(service: ServiceDep, _: ReadAccess) -> DatasetListOut:
    """Every dataset with its row counts per split; batches are in the detail."""
    return DatasetListOut(datasets=[DatasetOut.from_core(d) for d in service.datasets()])


@router.get(
    "/{name}", response_model=DatasetDetailOut, responses=problem_responses(401, 404, 422, 503)
)
def read_dataset(name: DatasetName, service: ServiceDep, _: ReadAccess) -> DatasetDetailOut:
    """Schema, counts per split and label, and every batch with its timestamps."""
    return DatasetDetailOut.from_core(service.dataset(name))


@router.get("/{name}/rows", response_model=RowsOut, responses=problem_responses(401, 404, 422, 503))
def read_rows(
    name: DatasetName,
    service: ServiceDep,
    config: ConfigDep,
    _: ReadAccess,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RowsOut:
    """A page of rows in load order; binary values (pixels) come as base64."""
    if limit > config.max_rows_per_request:
        raise Problem(
            422,
            "Too many rows",
            f"limit {limit} is over the {config.max_rows_per_request}-row limit per request "
            "(HEADWATER_API_MAX_ROWS_PER_REQUEST); page with offset instead",
            field="limit",
            limit=config.max_rows_per_request,
            setting="HEADWATER_API_MAX_ROWS_PER_REQUEST",
        )
    rows = service.rows(name, limit=limit, offset=offset)
    return RowsOut.from_core(name, rows, limit=limit, offset=offset)


TunedModel = Annotated[
    str,
    Query(
        pattern="^(" + "|".join(sorted(PARAMS)) + ")$",
        description="The model whose parameters to suggest.",
        examples=["mlp"],
    ),
]


@router.get(
    "/{name}/suggestion",
    response_model=SuggestionOut,
    responses=problem_responses(401, 404, 422, 503),
)
def read_suggestion(
    name: DatasetName, suggestions: SuggestionsDep, _: ReadAccess, model: TunedModel = "mlp"
) -> SuggestionOut:
    """The best parameters the searches of this dataset and model found so far.

    What the web train form's "Suggest" fills in; ``params`` is null before any search
    completed a trial (run ``headwater tune --dataset NAME --model M`` to make some).
    Example: curl .../datasets/mnist/suggestion?model=mlp
    """
    return SuggestionOut.from_core(suggestions.get(name, model))
