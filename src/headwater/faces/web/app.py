"""Mounting the web UI on the API's app: its routers, its static files, its templates."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from headwater.faces.web.context import WebState
from headwater.faces.web.routes import (
    datasets,
    draw,
    leaderboard,
    login,
    maps,
    pipelines,
    predict,
    runs,
    sequences,
    synthesis,
)
from headwater.flows.lifecycle import RUN_NAME_PATTERN
from headwater.flows.workspace import DATASET_NAME_PATTERN

__all__ = ["ROUTERS", "UPLOAD_PATH_PATTERN", "mount"]

HERE = Path(__file__).resolve().parent
MISSING = "\N{EN DASH}"

ROUTERS: tuple[APIRouter, ...] = (
    login.router,
    datasets.router,
    runs.router,
    leaderboard.router,
    predict.router,
    sequences.router,
    draw.router,
    pipelines.router,
    maps.router,
    synthesis.router,
)

UPLOAD_PATH_PATTERN = r"^/ui/(datasets/upload|predict/file)/?$"
"""Web paths that take a file: their body limit is the upload limit (HEADWATER_MAX_UPLOAD_BYTES)."""


def _percent(value: object, digits: int = 1) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return MISSING
    return f"{100 * value:.{digits}f}%"


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return MISSING if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else MISSING
    return str(value)


def _bytes(value: object) -> str:
    if not isinstance(value, int):
        return str(value)
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024
    return str(value)


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo else "")
    return MISSING if value is None else str(value)


def templates() -> Jinja2Templates:
    """The page templates, with the few formatting filters they share."""
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters["percent"] = _percent
    found.env.filters["number"] = _number
    found.env.filters["when"] = _when
    found.env.filters["bytes"] = _bytes
    # HTML's pattern attribute is anchored already; the core's rule, without its anchors
    found.env.globals["dataset_name_pattern"] = DATASET_NAME_PATTERN.strip("^$")
    found.env.globals["run_name_pattern"] = RUN_NAME_PATTERN.strip("^$")
    return found


def mount(app: FastAPI) -> None:
    """Add the pages at ``/`` and ``/ui/...`` and their files at ``/ui/static``."""
    app.state.web = WebState(templates())
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="web-static")
