"""What the HTTP API may be told beyond the core `Settings`: access, CORS and limits.

These live here, not in `headwater.settings`, until the core grows ``api_*`` fields;
the environment names (``HEADWATER_API_*``) are already the ones those fields will
read, so moving them later changes no deployment. Read when the app is built,
never at import time.
"""

from __future__ import annotations

import os
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headwater.errors import ConfigError
from headwater.settings import Settings

__all__ = [
    "MAX_PREDICT_ROWS",
    "MAX_ROWS_PER_REQUEST",
    "MULTIPART_ENVELOPE_BYTES",
    "ApiConfig",
]

MAX_ROWS_PER_REQUEST = 1000
"""Hard ceiling on rows in one response, whatever the settings say: the schema documents it."""

MAX_PREDICT_ROWS = 10_000
"""Hard ceiling on rows in one /predict body; larger batches go to /score as a file."""

MULTIPART_ENVELOPE_BYTES = 64 * 1024
"""Room for the multipart boundaries and part headers around an uploaded file."""

MIN_TOKEN_LENGTH = 16
PLACEHOLDER_PREFIXES = ("changeme", "change-me", "change_me", "changethis", "replace")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split_origins(value: object) -> object:
    """Accept ``a,b`` as well as a JSON list, because a comma list is what people type."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _ApiEnvironment(BaseSettings):
    """The ``HEADWATER_API_*`` variables; unset ones fall back to `ApiConfig`'s defaults."""

    model_config = SettingsConfigDict(env_prefix="HEADWATER_API_", extra="ignore")

    cors_origins: Annotated[list[str] | None, NoDecode] = None
    read_requires_token: bool | None = None
    max_request_bytes: int | None = None
    max_rows_per_request: int | None = None
    warehouse_wait_s: float | None = None
    upload_idle_timeout_s: float | None = None
    allow_private_urls: bool | None = None
    training_queue: int | None = None
    max_predict_rows: int | None = None
    alias_ttl_s: float | None = None
    training_threads: int | None = None

    _origins = field_validator("cors_origins", mode="before")(_split_origins)


class ApiConfig(BaseModel):
    """The API's own knobs, validated once when the app is built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = Field(
        default=None,
        description="Bearer token for write endpoints (HEADWATER_API_TOKEN); none refuses writes.",
    )
    read_requires_token: bool = Field(
        default=False, description="Also require the token on read endpoints."
    )
    cors_origins: tuple[str, ...] = Field(
        default=(), description="Origins allowed by CORS; empty adds no CORS middleware at all."
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Body size limit of every request except file uploads.",
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="HEADWATER_MAX_UPLOAD_BYTES, from Settings."
    )
    max_rows_per_request: int = Field(
        default=MAX_ROWS_PER_REQUEST,
        ge=1,
        le=MAX_ROWS_PER_REQUEST,
        description="Most rows one /rows request may ask for.",
    )
    warehouse_wait_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a request waits for the warehouse before answering 503 busy.",
    )
    upload_idle_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="An upload that sends nothing for this long is abandoned.",
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Let POST /datasets/{name}/sources fetch from loopback and private addresses "
        "(HEADWATER_FETCH_ALLOW_PRIVATE, which the fetcher checks on every redirect).",
    )
    training_queue: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Runs that may wait behind the one training; POST /runs answers 429 past it.",
    )
    max_predict_rows: int = Field(
        default=100,
        ge=1,
        le=MAX_PREDICT_ROWS,
        description="Most rows or images one /predict request may carry; files go to /score.",
    )
    training_threads: int = Field(
        default_factory=lambda: max(1, _usable_cores() - 1),
        ge=1,
        le=1024,
        description="Threads a neural net trains with when the run does not say; one core "
        "fewer than the process may use, so predictions keep one while a run trains.",
    )
    alias_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="How long a best/latest answer is reused before the registry is asked again.",
    )

    @field_validator("token")
    @classmethod
    def _not_a_placeholder(cls, token: SecretStr | None) -> SecretStr | None:
        """A short or well-known token is as good as none; refuse to start with one."""
        if token is None:
            return None
        value = token.get_secret_value()
        placeholder = value.lower().startswith(PLACEHOLDER_PREFIXES) or len(set(value)) < 4
        if len(value) < MIN_TOKEN_LENGTH or placeholder:
            raise ConfigError(
                f"HEADWATER_API_TOKEN must be at least {MIN_TOKEN_LENGTH} characters and not a "
                "placeholder; make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        return token

    @property
    def max_upload_request_bytes(self) -> int:
        """The body limit of an upload request: the file plus its multipart envelope."""
        return self.max_upload_bytes + MULTIPART_ENVELOPE_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Core settings first, then the ``HEADWATER_API_*`` environment, then defaults."""
        env = _ApiEnvironment()
        values: dict[str, object] = {
            "token": settings.api_token,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_rows_per_request": min(MAX_ROWS_PER_REQUEST, settings.max_show_rows),
            "allow_private_urls": settings.fetch_allow_private,
        }
        values.update(env.model_dump(exclude_none=True))
        if "cors_origins" in values:
            values["cors_origins"] = tuple(env.cors_origins or ())
        return cls.model_validate(values)
