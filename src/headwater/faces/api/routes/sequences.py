"""``/sequences``: the URL-first flow of sequence data: analyze pages, predict who made them.

Training goes through ``POST /runs`` (a sequence dataset with ``lstm``, ``adaboost`` or
another classifier, a ``holdout`` and a ``name``); the name then picks the model here.
Every page is fetched server-side by the SSRF-guarded fetcher, so both operations need
the token: an outbound fetch is a write's privilege, even where nothing is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from headwater.faces.api.deps import AccessRoute, ServiceDep, WriteAccess
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.sequence_schemas import (
    AnalysisOut,
    AnalyzeIn,
    SequencePredictIn,
    SequencePredictionsOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/sequences", tags=["sequences"], route_class=AccessRoute)

_FETCH_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 422, 503)


@router.post("/analyze", response_model=AnalysisOut, responses=_FETCH_PROBLEMS)
def analyze(body: AnalyzeIn, service: ServiceDep, _: WriteAccess) -> AnalysisOut:
    """Load a URL's pages of sequences (once) and show what a model would learn from them.

    The first ``first`` events, the per-sequence features (and those left out, and why),
    the quarantined sequences with their reasons. A URL analyzed before is read back from
    the warehouse, nothing fetched, unless ``refresh``.

    Example: curl -H "Authorization: Bearer $TOKEN" -d '{"url": ".../train/user_1.json",
    "records": "user_data", "label": "user_label", "dataset": "typing"}' .../sequences/analyze
    """
    found = service.analyze(
        body.source(), dataset=body.dataset, expect=body.expect, first=body.first,
        refresh=body.refresh,
    )  # fmt: skip
    return AnalysisOut.from_core(found)


@router.post("/predictions", response_model=SequencePredictionsOut, responses=_FETCH_PROBLEMS)
def predict(body: SequencePredictIn, service: ServiceDep, _: WriteAccess) -> SequencePredictionsOut:
    """Who made each sequence of a URL's pages: the first ``first`` predictions with their
    probabilities, and how many in all (``/sequences/predictions.csv`` gives every one).

    The pages are read, not loaded. Example: curl -H "Authorization: Bearer $TOKEN"
    -d '{"model": "typing_lstm", "url": ".../test/user_1.json", "records": "user_data"}'
    .../sequences/predictions
    """
    return SequencePredictionsOut.from_core(
        service.predict_sequences(body.model, body.source(), first=body.first)
    )


@router.post(
    "/predictions.csv",
    response_class=Response,
    responses={
        200: {
            "description": "One CSV row per sequence: sequence, [label,] status, predicted, "
            "p_<class>... (cells that could run as formulas start with ').",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **_FETCH_PROBLEMS,
    },
)
def predict_csv(body: SequencePredictIn, service: ServiceDep, _: WriteAccess) -> Response:
    """Every prediction of ``/sequences/predictions`` as CSV (``first`` is ignored)."""
    table = service.predict_sequences(body.model, body.source(), first=1, as_csv=True)
    return Response(
        table.csv,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="predictions-{table.run_id}.csv"'},
    )
