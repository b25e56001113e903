"""Dependencies as typed aliases: the service, the config, access checks, path parameters.

Access is secure by default: write endpoints need ``Authorization: Bearer <token>``
matching ``HEADWATER_API_TOKEN`` (compared in constant time), and with no token
configured they are refused outright rather than left open. Read endpoints are
open unless ``HEADWATER_API_READ_REQUIRES_TOKEN`` is set.

Every dependency here is ``async def`` although none awaits: FastAPI runs a plain
``def`` dependency in the thread pool, and four thread hops per request were a
measurable part of a 1 ms prediction.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from headwater.faces.config import ApiConfig
from headwater.faces.http import DATASET_NAME_PATTERN, RUN_ID_PATTERN, DatasetName, Problem, RunId
from headwater.flows.background import PipelineRuns, Suggestions
from headwater.flows.service import RunService, WarehouseService
from headwater.flows.serving import ModelCache
from headwater.flows.workspace import Workspace

__all__ = [
    "DATASET_NAME_PATTERN",
    "RUN_ID_PATTERN",
    "SERVING_OPENAPI",
    "AccessRoute",
    "BatchId",
    "ConfigDep",
    "DatasetName",
    "ModelRef",
    "ModelsDep",
    "PipelinesDep",
    "ReadAccess",
    "RunId",
    "RunsDep",
    "ServiceDep",
    "Serving",
    "ServingDep",
    "SuggestionsDep",
    "WriteAccess",
    "access_of",
]


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The value of HEADWATER_API_TOKEN, sent as `Authorization: Bearer <token>`.",
)


async def get_service(request: Request) -> WarehouseService:
    service = getattr(request.app.state, "service", None)
    if not isinstance(service, WarehouseService):  # only if the lifespan did not run
        raise RuntimeError("the API's lifespan has not opened the workspace")
    return service


async def get_config(request: Request) -> ApiConfig:
    config = getattr(request.app.state, "config", None)
    if not isinstance(config, ApiConfig):
        raise RuntimeError("the API was not built by create_app")
    return config


ServiceDep = Annotated[WarehouseService, Depends(get_service)]
ConfigDep = Annotated[ApiConfig, Depends(get_config)]


async def get_runs(service: ServiceDep) -> RunService:
    return service.runs


async def get_models(service: ServiceDep) -> ModelCache:
    return service.models


async def get_pipelines(service: ServiceDep) -> PipelineRuns:
    return service.pipelines


async def get_suggestions(service: ServiceDep) -> Suggestions:
    return service.suggestions


RunsDep = Annotated[RunService, Depends(get_runs)]
ModelsDep = Annotated[ModelCache, Depends(get_models)]
PipelinesDep = Annotated[PipelineRuns, Depends(get_pipelines)]
SuggestionsDep = Annotated[Suggestions, Depends(get_suggestions)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check_token(config: ApiConfig, credentials: HTTPAuthorizationCredentials | None) -> None:
    if config.token is None:
        raise Problem(
            503,
            "Writes disabled",
            "no API token is configured, so endpoints that change data are off; "
            "set HEADWATER_API_TOKEN on the server and send it as 'Authorization: Bearer <token>'",
        )
    challenge = {"WWW-Authenticate": 'Bearer realm="headwater"'}
    if credentials is None:
        raise Problem(
            401,
            "Unauthorized",
            "this endpoint needs 'Authorization: Bearer <token>' with the server's "
            "HEADWATER_API_TOKEN",
            headers=challenge,
        )
    expected = config.token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise Problem(
            401,
            "Unauthorized",
            "the bearer token does not match HEADWATER_API_TOKEN",
            headers={"WWW-Authenticate": 'Bearer realm="headwater", error="invalid_token"'},
        )


async def require_write(config: ConfigDep, credentials: Credentials) -> None:
    """Write endpoints: a configured token, and the request carrying it."""
    _check_token(config, credentials)


async def require_read(config: ConfigDep, credentials: Credentials) -> None:
    """Read endpoints: open, unless the config asks for the token there too."""
    if config.read_requires_token:
        _check_token(config, credentials)


WriteAccess = Annotated[None, Depends(require_write)]
ReadAccess = Annotated[None, Depends(require_read)]


@dataclass(frozen=True)
class Serving:
    """What a prediction needs: the models, the limits, the dataset of an alias; access checked."""

    models: ModelCache
    config: ApiConfig
    dataset: str | None
    workspace: Workspace


SERVING_OPENAPI: dict[str, object] = {
    "parameters": [
        {
            "name": "dataset",
            "in": "query",
            "required": False,
            "description": "The dataset whose best/latest run to use; needed with an alias.",
            "schema": {"type": "string", "pattern": DATASET_NAME_PATTERN},
            "example": "mnist",
        }
    ],
    "security": [{"token": []}],
}
"""What `get_serving` reads itself, for the OpenAPI document of the routes that use it."""

_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)


async def get_serving(request: Request) -> Serving:
    """`ReadAccess`, `ConfigDep`, `ModelsDep` and ``?dataset=`` in one dependency.

    FastAPI spends roughly 10-20 µs per dependency and per parameter on every
    request; a one-row prediction costs about 300 µs in all, and the folded form
    measured ~15% more predictions per second (bench/api.py). Routes using it add
    `SERVING_OPENAPI` so the document still shows the parameter and the token.
    """
    config = await get_config(request)
    if config.read_requires_token:
        _check_token(config, await _bearer(request))
    dataset = request.query_params.get("dataset")
    if dataset is not None and not _DATASET_NAME.fullmatch(dataset):
        raise Problem(
            422,
            "Invalid request",
            f"query.dataset: {dataset[:70]!r} is not a dataset name (lowercase letters, digits "
            "and _, starting with a letter)",
            field="dataset",
        )
    service = await get_service(request)
    return Serving(service.models, config, dataset, service.workspace)


ServingDep = Annotated[Serving, Depends(get_serving)]

BatchId = Annotated[
    int, Path(ge=1, le=2**63 - 1, description="Batch id, as listed by the dataset.")
]
ModelRef = Annotated[
    str,
    Path(
        pattern=RUN_ID_PATTERN,
        description="A run id, or best / latest of the dataset named by ?dataset=.",
        examples=["best"],
    ),
]


Access = Literal["write", "read"]


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def access_of(route: APIRoute) -> Access | None:
    """``write``, ``read`` or None (open to all), from the access dependency the route takes."""
    calls = set(_calls(route.dependant))
    if require_write in calls:
        return "write"
    if calls & {require_read, get_serving}:
        return "read"
    return None


class AccessRoute(APIRoute):
    """Checks the token before FastAPI reads the body, so an anonymous caller gets 401, not 422.

    FastAPI parses and validates a body before it runs any dependency; without
    this, a caller with no token would learn the body's rules from the 422s. The
    route's own `WriteAccess` / `ReadAccess` dependency stays, for the OpenAPI document.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handler = super().get_route_handler()
        access = access_of(self)
        if access is None:
            return handler

        async def guarded(request: Request) -> Response:
            config = await get_config(request)
            if access == "write" or config.read_requires_token:
                _check_token(config, await _bearer(request))
            return await handler(request)

        return guarded
