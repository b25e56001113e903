"""Batches of a dataset: created by an upload or a URL, then read back as a quality report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from headwater.faces.api.deps import (
    AccessRoute,
    BatchId,
    ConfigDep,
    DatasetName,
    ReadAccess,
    ServiceDep,
    WriteAccess,
)
from headwater.faces.api.problems import problem_responses
from headwater.faces.api.schemas import IngestOut, QualityReportOut, SourceIn
from headwater.faces.api.uploads import FILE_FIELD, stream_file_part
from headwater.flows.reports import IngestReport

__all__ = ["UPLOAD_PATH_PATTERN", "router"]

router = APIRouter(prefix="/datasets", tags=["batches"], route_class=AccessRoute)

UPLOAD_PATH_PATTERN = r"^/datasets/[^/]+/files/?$"
"""Paths whose body limit is the upload limit, not the small request limit."""

UPLOAD_MEDIA_TYPES = (
    "text/csv",
    "text/tab-separated-values",
    "text/plain",
    "application/json",
    "application/x-ndjson",
    "application/vnd.apache.parquet",
    "application/gzip",
    "application/octet-stream",
)
"""What an upload may be; the server goes by the file's name and bytes, not this header."""

Label = Annotated[
    str | None,
    Query(min_length=1, max_length=63, description="Label column of a tabular file."),
]

_UPLOAD_BODY = {
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
                        "description": "The file, its type known by its name: .csv .tsv .txt "
                        ".json .jsonl .ndjson (each may end .gz), .parquet .pq, .npz, "
                        ".pkl(.gz) (the MNIST pickle: numpy arrays only), IDX "
                        "(-idx3-ubyte / -idx1-ubyte). Anything else is 422.",
                    }
                },
            },
            "encoding": {FILE_FIELD: {"contentType": ", ".join(UPLOAD_MEDIA_TYPES)}},
        }
    },
}

_CREATED: dict[int | str, dict[str, object]] = {
    200: {"model": IngestOut, "description": "The same bytes were already loaded: no change."},
    201: {"description": "A new batch was loaded."},
}


def _answer(report: IngestReport, response: Response) -> IngestOut:
    response.status_code = 200 if report.unchanged else 201
    return IngestOut.from_core(report)


@router.post(
    "/{name}/files",
    response_model=IngestOut,
    status_code=201,
    responses={**_CREATED, **problem_responses(400, 401, 408, 413, 415, 422, 503)},
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_file(
    name: DatasetName,
    request: Request,
    response: Response,
    service: ServiceDep,
    config: ConfigDep,
    _: WriteAccess,
    label: Label = None,
) -> IngestOut:
    """Load an uploaded file as a new batch, streamed to the lake as it arrives.

    Example: curl -H "Authorization: Bearer $TOKEN" -F file=@orders.csv .../datasets/orders/files
    """

    def ingest(chunks: Iterator[bytes], filename: str) -> IngestReport:
        return service.ingest_stream(chunks, filename, dataset=name, label=label)

    report = await stream_file_part(request, ingest, idle_timeout_s=config.upload_idle_timeout_s)
    return _answer(report, response)


@router.post(
    "/{name}/sources",
    response_model=IngestOut,
    status_code=201,
    responses={**_CREATED, **problem_responses(400, 401, 403, 404, 413, 422, 503)},
)
def ingest_source(
    name: DatasetName,
    source: SourceIn,
    response: Response,
    service: ServiceDep,
    _: WriteAccess,
) -> IngestOut:
    """Download an http(s) URL and load it as a new batch (same size limit as uploads).

    With ``records``, ``paginate`` or ``max_pages``, every page of a paginated JSON API
    loads as one batch, each page through the same SSRF-guarded fetcher.
    """
    report = service.ingest_url(
        str(source.url), dataset=name, label=source.label, records=source.records,
        paginate=source.paginate, max_pages=source.max_pages,
    )  # fmt: skip
    return _answer(report, response)


@router.get(
    "/{name}/batches/{batch_id}/quality",
    response_model=QualityReportOut,
    responses={
        200: {
            "description": "The report as JSON, or as an HTML page with ?format=html.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 404, 422, 503),
    },
)
def read_quality(
    name: DatasetName,
    batch_id: BatchId,
    request: Request,
    service: ServiceDep,
    _: ReadAccess,
    output: Annotated[
        Literal["json", "html"] | None,
        Query(alias="format", description="json or html; default from the Accept header."),
    ] = None,
) -> QualityReportOut | HTMLResponse:
    """Every check of one batch with its outcome and counts; HTML for people, JSON for code."""
    report = service.quality(name, batch_id)
    if output == "html" or (output is None and _prefers_html(request.headers.get("accept", ""))):
        return HTMLResponse(report.to_html())
    return QualityReportOut.from_core(report)


def _prefers_html(accept: str) -> bool:
    return "text/html" in accept and "application/json" not in accept
