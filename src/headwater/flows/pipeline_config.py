"""Pipelines declared in ``headwater.toml``: one pydantic model, checked when the file is read.

A data team writes what should happen to new data once::

    [pipelines.orders_daily]
    source = "incoming/"            # a file, a folder, a glob or an http(s) URL
    dataset = "orders"
    label = "churned"
    model = "logistic"
    params = { c = 0.5 }            # or: tune = 20 (trials of a search instead)
    schedule = "0 7 * * *"          # cron: minute hour day month weekday
    timezone = "Europe/London"
    on_new_data = true              # also run when a new file lands (polled every poll_s)
    promote = "if-better"           # or "always", "never"
    metric = "accuracy"             # or "macro_f1"

and everything else (the CLI, the scheduler) reads it through `load_pipelines`. A
mistake (a bad cron, an unknown model or parameter, a key that means nothing) is
refused when the file is read, naming the file, the key and what would be accepted,
not at 07:00 the next morning.
"""

from __future__ import annotations

import glob
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from headwater.data.ingest import validate_dataset_name
from headwater.errors import ConfigError, NotFound
from headwater.learning.params import model_params, validate_params
from headwater.settings import config_path
from headwater.storage.fetch import is_url

__all__ = ["PipelineConfig", "cron_trigger", "load_pipelines", "pipeline_config"]

Promote = Literal["if-better", "always", "never"]
Metric = Literal["accuracy", "macro_f1"]
ParamScalar = bool | int | float | str
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """APScheduler's cron trigger for a crontab line in a time zone; ValueError says why not."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/London' or 'UTC'"
        ) from error
    try:
        return CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as error:
        raise ValueError(
            f"{expression!r} is not a cron expression ({error}); write five fields: "
            "minute hour day-of-month month day-of-week, e.g. '0 7 * * *' for 07:00 daily"
        ) from error


class PipelineConfig(BaseModel):
    """One ``[pipelines.NAME]`` table; see the module docstring for the keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str = Field(description="A file, folder, glob or http(s) URL to ingest from.")
    dataset: str
    label: str | None = None
    model: str = "mlp"
    params: dict[str, ParamScalar] = Field(default_factory=dict)
    tune: int | None = Field(default=None, ge=1, le=1000, description="Search trials.")
    seed: int = Field(default=0, ge=0)
    timezone: str = "UTC"
    schedule: str | None = Field(default=None, description="Cron expression, e.g. 0 7 * * *.")
    on_new_data: bool = False
    poll_s: float = Field(default=60.0, gt=0, le=86_400, description="Seconds between polls.")
    promote: Promote = "if-better"
    metric: Metric = "accuracy"

    @field_validator("dataset")
    @classmethod
    def _dataset_name(cls, value: str) -> str:
        try:
            return validate_dataset_name(value)
        except ConfigError as error:
            raise ValueError(str(error)) from error

    @field_validator("source")
    @classmethod
    def _source_kind(cls, value: str) -> str:
        if value.startswith("s3://"):
            raise ValueError(
                "s3:// sources are not watched by pipelines yet; sync the prefix to a folder "
                "and point source at it"
            )
        if "://" in value and not is_url(value):
            raise ValueError(f"{value!r}: use a local path or an http(s) URL")
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        try:
            model_params(value)
        except ConfigError as error:
            raise ValueError(str(error)) from error
        return value

    @field_validator("params")
    @classmethod
    def _model_params(
        cls, value: dict[str, ParamScalar], info: ValidationInfo
    ) -> dict[str, ParamScalar]:
        model = info.data.get("model")
        if model is not None:
            try:
                validate_params(model, value, owner=model)
            except ConfigError as error:
                raise ValueError(str(error)) from error
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        cron_trigger("0 0 * * *", value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            cron_trigger(value, info.data.get("timezone") or "UTC")
        return value

    def trigger(self) -> CronTrigger | None:
        return cron_trigger(self.schedule, self.timezone) if self.schedule else None

    def next_fire(self, now: datetime) -> datetime | None:
        """The first scheduled fire strictly after ``now`` (aware), or None when unscheduled."""
        trigger = self.trigger()
        if trigger is None:
            return None
        fire: datetime | None = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
        return fire

    def latest_fire(self, since: datetime, now: datetime) -> datetime | None:
        """The last scheduled fire in (since, now]: missed fires coalesce into this one."""
        trigger = self.trigger()
        if trigger is None:
            return None
        found = None
        fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
        while fire is not None and fire <= now:
            found = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        return found

    def watched_files(self) -> list[Path]:
        """The files the source names now (a folder's files, a glob's matches, the file)."""
        if is_url(self.source):
            return []
        path = Path(self.source)
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if glob.has_magic(self.source):
            return sorted(Path(p) for p in glob.glob(self.source, recursive=True))
        return [path] if path.exists() else []


def _hint(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    key = ".".join(str(part) for part in loc) or "(table)"
    if kind == "extra_forbidden":
        known = ", ".join(k for k in PipelineConfig.model_fields if k != "name")
        return f"key {key!r} is not understood; a pipeline takes: {known}"
    return f"key {key!r}: {message.removeprefix('Value error, ')}"


def _parse(name: str, table: object, file: Path) -> PipelineConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: pipelines.{name} must be a table ([pipelines.{name}])")
    source = table.get("source")
    if isinstance(source, str) and not is_url(source) and not Path(source).is_absolute():
        table = {**table, "source": str(file.parent / source)}  # relative to the file
    try:
        return PipelineConfig.model_validate({**table, "name": name})
    except ValidationError as error:
        problems = [_hint(e["loc"], e["type"], e["msg"]) for e in error.errors()]
        raise ConfigError(f"{file}: pipelines.{name}: " + "; ".join(problems)) from error


def load_pipelines(file: Path | None = None) -> dict[str, PipelineConfig]:
    """Every pipeline the config file declares (none when there is no file), checked."""
    file = file or config_path()
    if not file.is_file():
        return {}
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from error
    tables = document.get("pipelines", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{file}: pipelines must be tables, e.g. [pipelines.daily]")
    for name in tables:
        if not _NAME.match(name):
            raise ConfigError(
                f"{file}: pipelines.{name}: a pipeline name uses 1-63 lowercase letters, "
                "digits and _, starting with a letter (e.g. orders_daily)"
            )
    return {name: _parse(name, table, file) for name, table in tables.items()}


def pipeline_config(name: str, file: Path | None = None) -> PipelineConfig:
    """One declared pipeline, or NotFound naming the ones there are."""
    found = load_pipelines(file)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise NotFound(
            f"no pipeline {name!r} in {file or config_path()}; declared pipelines: {known}"
        )
    return found[name]
