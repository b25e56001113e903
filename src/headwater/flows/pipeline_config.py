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

An image folder (``ROOT/<category>/**``) is declared with ``kind = "images"``: its
steps are the ingest, embed and export of `headwater images run` (`flows.images.ImageChain`)::

    [pipelines.photos_daily]
    kind = "images"
    source = "photos/"              # ROOT/<category>/**/*.png|jpg|...
    dataset = "photos"
    embed = { dim = 128 }           # or { model = "RUN" }, { onnx = "f.onnx", output = "t" }
    export = "s3://bucket/photos/"  # or a folder
    format = "parquet"
    part_rows = 10001
    workers = 2
    schedule = "0 7 * * *"

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
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from headwater.data.export import Format
from headwater.data.ingest import validate_dataset_name
from headwater.errors import ConfigError, NotFound
from headwater.flows.engines import Engine
from headwater.learning.params import Seed, model_params, validate_params
from headwater.settings import config_path
from headwater.storage.fetch import is_url

if TYPE_CHECKING:  # the image steps load PIL and the lake's writers: only when run
    from headwater.flows.images import ImageChain

__all__ = ["EmbedConfig", "PipelineConfig", "cron_trigger", "load_pipelines", "pipeline_config"]

Promote = Literal["if-better", "always", "never"]
Metric = Literal["accuracy", "macro_f1"]
Kind = Literal["table", "images"]
ParamScalar = bool | int | float | str
TABLE_KEYS = ("label", "model", "params", "tune", "seed", "promote", "metric")
"""Keys only a table pipeline reads (it trains and promotes a model)."""
IMAGE_KEYS = ("export", "format", "part_rows", "workers", "size", "embed", "engine")
"""Keys only an image pipeline reads (`headwater images run`'s options)."""
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


class EmbedConfig(BaseModel):
    """An image pipeline's ``embed`` table: where the vectors come from (`images embed`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, description="A registered run, best or latest.")
    onnx: str | None = Field(default=None, description="An ONNX file, relative to the config.")
    output: str | None = Field(default=None, description="The ONNX tensor to read.")
    dim: int = Field(default=512, ge=1, le=100_000, description="Features of a trained CNN.")
    epochs: int | None = Field(default=None, ge=1, le=1000, description="A trained CNN's.")

    @model_validator(mode="after")
    def _one_model(self) -> EmbedConfig:
        if self.model is not None and self.onnx is not None:
            raise ValueError("give embed.model (a run) or embed.onnx (a file), not both")
        return self


def _kind_keys(data: object) -> object:
    """Keys of the other kind refused by name, and an image pipeline's export required."""
    if not isinstance(data, dict):
        return data
    kind = data.get("kind", "table")
    if kind == "images":
        wrong = [key for key in TABLE_KEYS if key in data]
        if wrong:
            raise ValueError(
                f"key {wrong[0]!r} belongs to a table pipeline; an image pipeline (kind = "
                '"images") trains no model of its own: give its embedding model as embed = '
                '{ model = "RUN" } or { onnx = "model.onnx" }, or leave embed out to train a CNN'
            )
        if "export" not in data:
            raise ValueError(
                "key 'export' is missing: an image pipeline exports its vectors; add export = "
                '"out/" (a folder, relative to this file) or "s3://bucket/prefix/"'
            )
    elif kind == "table":
        wrong = [key for key in IMAGE_KEYS if key in data]
        if wrong:
            raise ValueError(
                f'key {wrong[0]!r} is read by an image pipeline only; add kind = "images" '
                "if the source is a folder of category folders of images"
            )
    return data


class PipelineConfig(BaseModel):
    """One ``[pipelines.NAME]`` table; see the module docstring for the keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str = Field(description="A file, folder, glob or http(s) URL to ingest from.")
    kind: Kind = Field(default="table", description="table, or images (an image folder).")
    dataset: str
    label: str | None = None
    model: str = "mlp"
    params: dict[str, ParamScalar] = Field(default_factory=dict)
    tune: int | None = Field(default=None, ge=1, le=1000, description="Search trials.")
    seed: Seed = 0
    timezone: str = "UTC"
    schedule: str | None = Field(default=None, description="Cron expression, e.g. 0 7 * * *.")
    on_new_data: bool = False
    poll_s: float = Field(default=60.0, gt=0, le=86_400, description="Seconds between polls.")
    promote: Promote = "if-better"
    metric: Metric = "accuracy"
    export: str | None = Field(default=None, description="Images: a folder or s3:// prefix.")
    format: Format = "parquet"
    part_rows: int = Field(default=10_001, ge=1, description="Rows per exported part.")
    workers: int = Field(default=1, ge=1, le=256, description="Image decoding processes.")
    size: int = Field(default=64, ge=1, le=4096, description="Side of the stored images.")
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    engine: Engine = Field(default="local", description="Images: where embed and export run.")

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: object) -> object:
        return _kind_keys(data)

    @model_validator(mode="after")
    def _image_source(self) -> PipelineConfig:
        if self.kind == "images" and (is_url(self.source) or glob.has_magic(self.source)):
            raise ValueError(
                f"key 'source': an image pipeline reads a folder laid out "
                f"ROOT/<category>/**, not {self.source!r}"
            )
        return self

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

    @field_validator("export")
    @classmethod
    def _export_dest(cls, value: str | None) -> str | None:
        bucket = value.removeprefix("s3://").split("/")[0] if value else ""
        if value is not None and "://" in value and not (value.startswith("s3://") and bucket):
            raise ValueError(f"{value!r}: export to a folder or to s3://bucket/prefix/")
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

    def model_shown(self) -> str:
        """The model in words: what a table pipeline trains, what an image one embeds with."""
        embed = self.embed
        if self.kind == "table":
            return self.model
        if embed.onnx:
            return f"ONNX {Path(embed.onnx).name}"
        return f"run {embed.model}" if embed.model else f"cnn (trained here, {embed.dim} features)"

    def image_chain(self) -> ImageChain:
        """An image pipeline's ingest → embed → export, as `headwater images run` works it."""
        from headwater.flows.images import ImageChain

        if self.kind != "images" or self.export is None:
            raise ConfigError(f'pipeline {self.name!r} is not an image pipeline (kind = "images")')
        embed = self.embed
        return ImageChain(
            Path(self.source),
            self.dataset,
            self.export,
            workers=self.workers,
            size=self.size,
            dim=embed.dim,
            model_run=embed.model,
            onnx_path=Path(embed.onnx) if embed.onnx else None,
            output=embed.output,
            epochs=embed.epochs,
            fmt=self.format,
            part_rows=self.part_rows,
            engine=self.engine,
        )

    def watched_files(self) -> list[Path]:
        """The files the source names now (a folder's files, a glob's matches, the file)."""
        if is_url(self.source):
            return []
        path = Path(self.source)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if self.kind == "images":  # into the category folders, images only
                from headwater.storage.readers.image_folder import IMAGE_SUFFIXES

                found = (p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
            return sorted(found)
        if glob.has_magic(self.source):
            return sorted(Path(p) for p in glob.glob(self.source, recursive=True))
        return [path] if path.exists() else []


def _hint(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    if not loc:  # a check of the whole table names its key itself
        return message.removeprefix("Value error, ")
    key = ".".join(str(part) for part in loc)
    if kind == "extra_forbidden" and loc[0] == "embed":
        known = ", ".join(EmbedConfig.model_fields)
        return f"key {key!r} is not understood; embed takes: {known}"
    if kind == "extra_forbidden":
        known = ", ".join(k for k in PipelineConfig.model_fields if k != "name")
        return f"key {key!r} is not understood; a pipeline takes: {known}"
    return f"key {key!r}: {message.removeprefix('Value error, ')}"


def _parse(name: str, table: object, file: Path) -> PipelineConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: pipelines.{name} must be a table ([pipelines.{name}])")
    table = _relative_to(file, table)
    try:
        return PipelineConfig.model_validate({**table, "name": name})
    except ValidationError as error:
        problems = [_hint(e["loc"], e["type"], e["msg"]) for e in error.errors()]
        raise ConfigError(f"{file}: pipelines.{name}: " + "; ".join(problems)) from error


def _relative_to(file: Path, table: dict[str, object]) -> dict[str, object]:
    """Local paths (source, export, embed.onnx) read relative to the config file."""

    def local(value: object) -> bool:
        return isinstance(value, str) and "://" not in value and not Path(value).is_absolute()

    out = dict(table)
    for key in ("source", "export"):
        if local(out.get(key)):
            out[key] = str(file.parent / str(out[key]))
    embed = out.get("embed")
    if isinstance(embed, dict) and local(embed.get("onnx")):
        out["embed"] = {**embed, "onnx": str(file.parent / str(embed["onnx"]))}
    return out


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
