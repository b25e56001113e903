"""``/models/{ref}``: predictions from a run's model, by run id or by best/latest of a dataset.

`predict` answers a few rows or images as JSON; `score` takes a whole CSV or
Parquet file and streams the predictions back as CSV. Both are reads: they
change nothing, so they need the token only where reads do.
"""

from __future__ import annotations

from itertools import chain

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from headwater.faces.api.deps import SERVING_OPENAPI, ModelRef, Serving, ServingDep
from headwater.faces.api.problems import Problem, problem_responses
from headwater.faces.api.schemas import PredictIn, PredictOut
from headwater.faces.api.uploads import FILE_FIELD, stream_file_part
from headwater.flows import scoring
from headwater.flows.inputs import ModelInput, model_input
from headwater.flows.runs import ServedModel
from headwater.flows.serving import predict as predicted

__all__ = ["SCORE_PATH_PATTERN", "router"]

router = APIRouter(prefix="/models", tags=["models"])

SCORE_PATH_PATTERN = r"^/models/[^/]+/score/?$"
"""Paths whose body limit is the upload limit, not the small request limit."""

INLINE_ROWS = 32
"""Up to this many rows a loaded model answers on the event loop; more go to a thread."""

_PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": PredictIn.model_json_schema()},
        "image/png": {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "One image of the model's size (28x28 for MNIST).",
            }
        },
    },
}

_SCORE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV (header row) or Parquet. Image models: one column "
                        "per pixel, row-major; an optional row_id column names the rows.",
                    }
                },
            },
            "encoding": {FILE_FIELD: {"contentType": "text/csv, application/vnd.apache.parquet"}},
        }
    },
}


async def _model(serving: Serving, ref: str) -> ServedModel:
    """A loaded run's model at once; anything else is looked up in a worker thread."""
    hot = serving.models.hot(ref, serving.dataset)
    if hot is not None:
        return hot
    return await anyio.to_thread.run_sync(serving.models.load, ref, serving.dataset)


@router.post(
    "/{ref}/predict",
    response_model=PredictOut,
    responses=problem_responses(401, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": _PREDICT_BODY, **SERVING_OPENAPI},
)
async def predict(
    ref: ModelRef,
    request: Request,
    serving: ServingDep,
) -> Response:
    """Labels and per-class probabilities for JSON rows, pixel rows, or one PNG image.

    Example: curl --data-binary @seven.png -H "Content-Type: image/png"
    ".../models/best/predict?dataset=mnist"
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in {"application/json", "image/png"}:
        raise Problem(
            415,
            "Unsupported media type",
            "send application/json ({'rows': [...]}, {'pixels': [[...]]} or "
            "{'image_base64': '...'}) or one image/png",
        )
    body = await request.body()
    served = await _model(serving, ref)
    if media == "image/png":
        data = model_input(served, png=body)
    else:
        try:
            parsed = PredictIn.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from exc
        _check_rows(len(parsed.rows or parsed.pixels or ()), serving.config.max_predict_rows)
        data = model_input(
            served, rows=parsed.rows, pixels=parsed.pixels, image_base64=parsed.image_base64
        )
    answer = await _predict(served, data)
    # Serialised here, not by FastAPI: its response_model path validates the answer again.
    return Response(answer.model_dump_json(), media_type="application/json")


async def _predict(served: ServedModel, data: ModelInput) -> PredictOut:
    if len(data) <= INLINE_ROWS:
        return PredictOut.from_core(predicted(served, data))
    return PredictOut.from_core(await anyio.to_thread.run_sync(predicted, served, data))


def _check_rows(count: int, limit: int) -> None:
    if count > limit:
        raise Problem(
            413,
            "Too many rows",
            f"{count} rows in one request is over the {limit}-row limit "
            "(HEADWATER_API_MAX_PREDICT_ROWS); split the request or score a file with "
            "POST /models/{ref}/score",
            limit=limit,
            setting="HEADWATER_API_MAX_PREDICT_ROWS",
        )


@router.post(
    "/{ref}/score",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One CSV row per input row: row_id, predicted, p_<class>...",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(400, 401, 404, 408, 413, 415, 422, 503),
    },
    openapi_extra={"requestBody": _SCORE_BODY, **SERVING_OPENAPI},
)
async def score(
    ref: ModelRef,
    request: Request,
    serving: ServingDep,
) -> StreamingResponse:
    """Score every row of an uploaded CSV or Parquet file; predictions stream back as CSV.

    Example: curl -F file=@mnist_test.csv ".../models/best/score?dataset=mnist" -o predictions.csv
    """
    served = await _model(serving, ref)
    staged = await stream_file_part(
        request, scoring.stage, idle_timeout_s=serving.config.upload_idle_timeout_s
    )
    chunks = scoring.csv_chunks(serving.workspace, served, staged)
    first = await anyio.to_thread.run_sync(next, chunks, b"")
    return StreamingResponse(
        chain([first], chunks),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="predictions.csv"'},
    )
