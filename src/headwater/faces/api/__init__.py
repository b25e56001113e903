"""The HTTP API: a thin face over `headwater.flows`, built by `create_app`."""

from __future__ import annotations

from headwater.faces.api.app import create_app
from headwater.faces.config import ApiConfig

__all__ = ["ApiConfig", "create_app"]
