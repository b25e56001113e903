"""Dependencies as typed aliases: the service, the config, access checks, path parameters.

Access is secure by default: write endpoints need ``Authorization: Bearer <token>``
matching ``HEADWATER_API_TOKEN`` (compared in constant time), and with no token
configured they are refused outright rather than left open. Read endpoints are
open unless ``HEADWATER_API_READ_REQUIRES_TOKEN`` is set.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from headwater.faces.api.config import ApiConfig
from headwater.faces.api.problems import Problem
from headwater.faces.api.service import WarehouseService

__all__ = [
    "BatchId",
    "ConfigDep",
    "DatasetName",
    "ReadAccess",
    "ServiceDep",
    "WriteAccess",
]

DATASET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The value of HEADWATER_API_TOKEN, sent as `Authorization: Bearer <token>`.",
)


def get_service(request: Request) -> WarehouseService:
    service = getattr(request.app.state, "service", None)
    if not isinstance(service, WarehouseService):  # only if the lifespan did not run
        raise RuntimeError("the API's lifespan has not opened the workspace")
    return service


def get_config(request: Request) -> ApiConfig:
    config = getattr(request.app.state, "config", None)
    if not isinstance(config, ApiConfig):
        raise RuntimeError("the API was not built by create_app")
    return config


ServiceDep = Annotated[WarehouseService, Depends(get_service)]
ConfigDep = Annotated[ApiConfig, Depends(get_config)]
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


def require_write(config: ConfigDep, credentials: Credentials) -> None:
    """Write endpoints: a configured token, and the request carrying it."""
    _check_token(config, credentials)


def require_read(config: ConfigDep, credentials: Credentials) -> None:
    """Read endpoints: open, unless the config asks for the token there too."""
    if config.read_requires_token:
        _check_token(config, credentials)


WriteAccess = Annotated[None, Depends(require_write)]
ReadAccess = Annotated[None, Depends(require_read)]

DatasetName = Annotated[
    str,
    Path(
        pattern=DATASET_NAME_PATTERN,
        description="Dataset name: lowercase letters, digits and _, starting with a letter.",
        examples=["mnist"],
    ),
]
BatchId = Annotated[
    int, Path(ge=1, le=2**63 - 1, description="Batch id, as listed by the dataset.")
]
