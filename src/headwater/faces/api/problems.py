"""The one place errors become HTTP statuses: RFC 9457 problem details.

Every error answer, from the core's `HeadwaterError` tree, from request
validation, from routing or from the API's own guards, leaves through
`problem_response` with ``Content-Type: application/problem+json``. A file is
shown by its name only and absolute paths are cut from messages, so a client
never learns where the server keeps its data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from headwater.errors import (
    DataError,
    HeadwaterError,
    QueueFull,
    UploadTooLarge,
    WarehouseBusy,
    locate,
)
from headwater.faces.http import (
    OPAQUE_STATUSES,
    RETRY_AFTER_S,
    STATUS_BY_ERROR,
    Problem,
    file_name,
    scrub,
    status_of,
)

__all__ = [
    "OPAQUE_STATUSES",
    "PROBLEM_MEDIA_TYPE",
    "STATUS_BY_ERROR",
    "Problem",
    "ProblemDetails",
    "document_problems",
    "file_name",
    "flat_routes",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "problem_type",
    "scrub",
    "status_of",
]

log = logging.getLogger("headwater.api")

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with Headwater's extension members where they apply."""

    type: str = Field(description="URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, and how to fix it.")
    instance: str | None = Field(default=None, description="The request path.")
    field: str | None = Field(default=None, description="The field or parameter at fault.")
    row: int | None = Field(default=None, description="The row at fault (0-based data row).")
    file: str | None = Field(default=None, description="The file at fault, by name only.")
    limit: int | None = Field(default=None, description="The limit that was passed.")
    setting: str | None = Field(default=None, description="The setting that sets that limit.")


def problem_type(title: str) -> str:
    """A stable, non-resolvable URI per kind of problem (RFC 9457 allows a URN)."""
    return "urn:headwater:problem:" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    field: str | None = None,
    row: int | None = None,
    file: str | None = None,
    limit: int | None = None,
    setting: str | None = None,
) -> JSONResponse:
    """The one way an error leaves the API."""
    body = ProblemDetails(
        type=problem_type(title),
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        field=field,
        row=row,
        file=file,
        limit=limit,
        setting=setting,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _headwater_problem(request: Request, error: HeadwaterError) -> JSONResponse:
    status, title = status_of(error)
    if isinstance(error, WarehouseBusy):
        return _busy(request, error)
    if status in OPAQUE_STATUSES:
        log.error("%s %s failed: %s", request.method, request.url.path, error, exc_info=error)
        detail = f"{title.lower()}; the server log has the cause. Try again shortly."
        retry = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        return problem_response(status, title, detail, instance=request.url.path, headers=retry)
    if isinstance(error, QueueFull):
        return problem_response(
            status,
            title,
            str(error),
            instance=request.url.path,
            headers={"Retry-After": "30"},
            limit=error.limit,
            setting="HEADWATER_API_TRAINING_QUEUE",
        )
    if not isinstance(error, DataError):
        return problem_response(status, title, scrub(str(error)), instance=request.url.path)
    name = file_name(error.path)
    limit = error.limit if isinstance(error, UploadTooLarge) else None
    return problem_response(
        status,
        title,
        locate(name, error.row, error.field) + scrub(error.reason),
        instance=request.url.path,
        field=error.field,
        row=error.row,
        file=name,
        limit=limit,
        setting="HEADWATER_MAX_UPLOAD_BYTES" if limit is not None else None,
    )


def _busy(request: Request, error: WarehouseBusy) -> JSONResponse:
    """Our own words (no SQL, no hosts): which setting to raise, and when to come back."""
    wait_s = float(getattr(request.app.state.config, "warehouse_wait_s", 5))
    setting = _SETTING.search(str(error))
    return problem_response(
        503,
        "Warehouse busy",
        scrub(str(error)),
        instance=request.url.path,
        headers={"Retry-After": str(max(1, round(wait_s)))},
        setting=setting.group(0) if setting else None,
    )


_SETTING = re.compile(r"HEADWATER_[A-Z_]+")


def _own_problem(request: Request, problem: Problem) -> JSONResponse:
    return problem_response(
        problem.status,
        problem.title,
        problem.detail,
        instance=request.url.path,
        headers=problem.headers,
        field=problem.field,
        limit=problem.limit,
        setting=problem.setting,
    )


def _validation_problem(request: Request, error: RequestValidationError) -> JSONResponse:
    issues = list(error.errors())
    parts = []
    for issue in issues:
        where = ".".join(str(p) for p in issue.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {issue.get('msg', 'is invalid')}")
    loc = list(issues[0].get("loc", ())) if issues else []
    if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
        loc = loc[1:]
    field = ".".join(str(p) for p in loc) or None  # the path: pixels.0.3, rows.2.price
    return problem_response(
        422,
        "Invalid request",
        scrub("; ".join(parts) or "the request is invalid"),
        instance=request.url.path,
        field=field,
    )


def _http_problem(request: Request, error: StarletteHTTPException) -> JSONResponse:
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    headers = error.headers
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    return problem_response(
        error.status_code, phrase, detail, instance=request.url.path, headers=headers
    )


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, with included routers opened (FastAPI keeps them as one entry each)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield route


def _allowed(request: Request) -> str:
    """Every method of every route at this path: Starlette names only the first route's."""
    methods: set[str] = set()
    for route in flat_routes(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _unexpected_problem(request: Request, error: Exception) -> JSONResponse:
    log.error("%s %s crashed", request.method, request.url.path, exc_info=error)
    return problem_response(
        500,
        "Internal error",
        "an unexpected error; the server log has the cause",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register every error handler; the mapping itself is `STATUS_BY_ERROR`."""
    # Starlette's handler type is loose (Exception); each of ours takes its own subclass.
    # Starlette types handlers as taking any Exception; each of ours takes the class it is for
    app.add_exception_handler(HeadwaterError, _headwater_problem)  # type: ignore[arg-type]
    app.add_exception_handler(Problem, _own_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_problem)


def problem_content() -> dict[str, object]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


def document_problems(schema: dict[str, object]) -> dict[str, object]:
    """Point every 4xx/5xx response in an OpenAPI document at the problem-details schema.

    FastAPI documents extra responses as ``application/json`` and adds its own
    422 model; this rewrites them to what the handlers above really send.
    """
    components = schema.setdefault("components", {})
    assert isinstance(components, dict)
    schemas = components.setdefault("schemas", {})
    assert isinstance(schemas, dict)
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    paths = schema.get("paths", {})
    assert isinstance(paths, dict)
    for operations in paths.values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45":
                    response["content"] = problem_content()
                    response.setdefault("description", HTTPStatus(int(code)).phrase)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """The ``responses=`` of a route: each status documented as problem details.

    Content is filled in by `document_problems`, so a route only says which
    statuses it can answer with.
    """
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}
