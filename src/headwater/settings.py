"""The one typed settings object.

Read, highest priority first, from constructor arguments (tests), ``HEADWATER_*``
environment variables, then an optional ``headwater.toml`` in the working folder
(or the file named by ``HEADWATER_CONFIG``). Secrets are refused from the file:
they come from the environment only, so they never land in a repository.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from headwater.errors import ConfigError

__all__ = ["Dialect", "Settings", "config_path", "get_settings"]

Dialect = Literal["duckdb", "postgres"]

SECRET_FIELDS = frozenset({"api_token", "pseudonym_key"})


def config_path() -> Path:
    """The config file: ``HEADWATER_CONFIG``, else ``headwater.toml`` in the working folder."""
    return Path(os.environ.get("HEADWATER_CONFIG", "headwater.toml"))


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """A TOML source that refuses secrets, so a committed config file cannot carry one."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        leaked = sorted(SECRET_FIELDS & values.keys())
        if leaked:
            raise ConfigError(
                f"{self.toml_file_path}: {', '.join(leaked)} must not be in a config file; "
                f"set HEADWATER_{leaked[0].upper()} in the environment instead"
            )
        return values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """Everything Headwater can be told, with defaults that work on a laptop."""

    model_config = SettingsConfigDict(env_prefix="HEADWATER_", extra="ignore")

    home: Path = Field(
        default=Path(".headwater"),
        description="Folder holding the lake and the embedded warehouse.",
    )
    warehouse_url: str | None = Field(
        default=None,
        description="duckdb:///path/file.duckdb or postgresql://user@host/db; "
        "default: a DuckDB file in the home folder.",
    )
    warehouse_schema: str | None = Field(
        default=None,
        description="PostgreSQL schema to use (created if missing); default 'public'.",
    )
    ingest_chunk_rows: int = Field(
        default=16384, ge=1, le=10_000_000, description="Rows per Arrow batch while loading."
    )
    duckdb_memory_limit: str = Field(
        default="1GB",
        description="DuckDB's memory cap; past it a large load spills to disk instead of growing.",
    )
    duckdb_lock_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="How long a command waits for a DuckDB warehouse another process holds "
        "before failing with WarehouseBusy (exit 5).",
    )
    train_memory_mb: int = Field(
        default=2048,
        ge=0,
        description="Feature matrices of a training run larger than this are memory-mapped "
        "from the run's cache folder instead of held in memory (0: always).",
    )
    run_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="A training run refreshes its heartbeat this often; one silent for three "
        "times as long (or whose process is gone) is marked abandoned.",
    )
    max_show_rows: int = Field(default=1000, ge=1, description="Upper bound for `show --limit`.")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_decompressed_bytes: int = Field(
        default=8 << 30,
        ge=1,
        description="A gzip may expand to at most this many bytes; checked while it streams.",
    )
    image_max_pixels: int = Field(
        default=89_478_485,
        ge=1,
        description="An image with more pixels is a decompression bomb: quarantined, not decoded.",
    )
    image_min_side: int = Field(
        default=8, ge=1, description="An image narrower or lower than this is quarantined."
    )
    json_max_depth: int = Field(
        default=64,
        ge=1,
        le=100,
        description="Deepest nesting a JSON record may have; at most 100, as Arrow's schema "
        "format (stored with every dataset) holds no more than about 120 levels.",
    )
    json_max_fields: int = Field(
        default=10_000,
        ge=1,
        description="Most keys a JSON record may hold (nested ones counted), and most columns "
        "a JSON file's records may add up to.",
    )
    fetch_allow_private: bool = Field(
        default=False,
        description="Let URL ingests fetch from loopback and private addresses (a lab's own "
        "file server, tests); link-local, multicast and reserved addresses stay refused.",
    )
    fetch_max_pages: int = Field(
        default=1000, ge=1, description="Most pages one paginated URL ingest follows."
    )
    fetch_retries: int = Field(
        default=4, ge=0, le=20, description="A page answering 429 or 5xx is asked again this often."
    )
    fetch_retry_wait_s: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="First wait before asking a page again, doubled each time; a Retry-After "
        "header is honoured instead (up to 60 s).",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Where `--engine spark` runs: local[N] (this machine, N cores) or a "
        "cluster's URL (spark://host:7077, yarn, k8s://...).",
    )
    spark_lake_url: str | None = Field(
        default=None,
        description="Where Spark's executors find the lake (s3a://bucket/lake, or a shared "
        "mount), laid out as the local one; default: the local lake folder.",
    )
    api_token: SecretStr | None = Field(default=None, description="Bearer token; env only.")
    pseudonym_key: SecretStr | None = Field(
        default=None, description="HMAC key for keyed pseudonyms; env only."
    )

    @field_validator("warehouse_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None or url.startswith(("duckdb://", "postgresql://", "postgres://")):
            return url
        scheme = url.split("://", 1)[0] if "://" in url else url[:20]
        raise ConfigError(
            f"HEADWATER_WAREHOUSE_URL with scheme {scheme!r} is not understood: "
            "use duckdb:///path/to/file.duckdb or postgresql://user@host:5432/db"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlWithoutSecrets(settings_cls, config_path()))

    @property
    def dialect(self) -> Dialect:
        return "postgres" if self.resolved_warehouse_url.startswith("postgres") else "duckdb"

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.home / 'warehouse.duckdb').resolve()}"

    @property
    def lake_root(self) -> Path:
        return self.home / "lake"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once; tests build `Settings(...)` directly instead."""
    return Settings()
