"""The app factory: routers, error handlers, limits and CORS around one shared workspace.

Nothing happens at import: settings are read and the warehouse opened when
`create_app` runs and its lifespan starts. Tests pass their own `Settings`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

import headwater
from headwater.faces import web
from headwater.faces.api.deps import access_of
from headwater.faces.api.limits import BodyLimit, BodySizeLimit
from headwater.faces.api.problems import (
    document_problems,
    flat_routes,
    install_problem_handlers,
)
from headwater.faces.api.routes import (
    aliases,
    batches,
    datasets,
    health,
    leaderboard,
    models,
    pipelines,
    quarantine,
    runs,
    sequences,
    syntheses,
)
from headwater.faces.config import ApiConfig
from headwater.flows.service import WarehouseService
from headwater.flows.workspace import Workspace
from headwater.settings import Settings, get_settings

__all__ = ["ROUTERS", "create_app"]

ROUTERS: tuple[APIRouter, ...] = (
    models.router,
    health.router,
    datasets.router,
    batches.router,
    quarantine.router,
    runs.router,
    sequences.router,
    syntheses.router,
    leaderboard.router,
    aliases.router,
    pipelines.router,
)

DESCRIPTION = """\
Datasets, their rows and batches, uploads and their quality reports; training runs, their
leaderboard, and predictions from the served models; pages of sequences analyzed and
predicted from a URL.

Reads are open unless the server sets HEADWATER_API_READ_REQUIRES_TOKEN. Writes need
`Authorization: Bearer <HEADWATER_API_TOKEN>`; with no token configured they are off.
Every error is an RFC 9457 problem (`application/problem+json`).
"""


class HeadwaterAPI(FastAPI):
    """FastAPI whose OpenAPI document shows errors as the problem details really sent,
    and the token as optional on reads when this server leaves reads open."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            config: ApiConfig = self.state.config
            if not config.read_requires_token:
                _open_reads(schema, flat_routes(self.routes))
            self.openapi_schema = document_problems(schema)
        return self.openapi_schema


def _open_reads(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Mark the token optional (``{}`` is 'no credentials') on every read operation."""
    for route in routes:
        if not isinstance(route, APIRoute) or access_of(route) != "read":
            continue
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is not None:
                operation["security"] = [{"token": []}, {}]


def create_app(settings: Settings | None = None, *, config: ApiConfig | None = None) -> FastAPI:
    """Build the API; its lifespan opens one `Workspace` and closes it at shutdown."""
    settings = settings or get_settings()
    config = config or ApiConfig.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fetch = {"fetch_allow_private": config.allow_private_urls}
        # shared with the web UI
        app.state.workspace = workspace = Workspace(settings.model_copy(update=fetch))
        service = WarehouseService(
            workspace,
            wait_s=config.warehouse_wait_s,
            training_queue=config.training_queue,
            training_threads=config.training_threads,
            alias_ttl_s=config.alias_ttl_s,
        )
        try:
            await anyio.to_thread.run_sync(service.open)
        except BaseException:
            service.close()
            raise
        app.state.service = service
        # What start-up imported (torch, ONNX Runtime, pyarrow: ~400k objects) lives as long
        # as the process; frozen, it is no longer walked by every full collection, which
        # otherwise stalls every thread, predictions included, while a run allocates.
        gc.freeze()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.close)

    app = HeadwaterAPI(
        title="Headwater",
        version=headwater.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.config = config
    for router in ROUTERS:
        app.include_router(router)
    web.mount(app)
    install_problem_handlers(app)
    _add_middleware(app, config)
    return app


def _add_middleware(app: FastAPI, config: ApiConfig) -> None:
    """Body limits (uploads get the upload limit), and CORS only when origins are set."""
    upload_limit = BodyLimit(
        config.max_upload_request_bytes,
        "HEADWATER_MAX_UPLOAD_BYTES, plus 64 KiB for the multipart envelope",
        "upload",
    )
    app.add_middleware(
        BodySizeLimit,
        default=BodyLimit(config.max_request_bytes, "HEADWATER_API_MAX_REQUEST_BYTES"),
        special=(
            (re.compile(batches.UPLOAD_PATH_PATTERN), upload_limit),
            (re.compile(models.SCORE_PATH_PATTERN), upload_limit),
            (re.compile(web.UPLOAD_PATH_PATTERN), upload_limit),
        ),
    )
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type"],
        )
