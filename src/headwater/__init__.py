"""Headwater: from a raw file to a served prediction, on one laptop or a cluster."""

from __future__ import annotations

from headwater.errors import HeadwaterError
from headwater.settings import Settings, get_settings

__all__ = ["HeadwaterError", "Settings", "__version__", "get_settings"]

__version__ = "0.1.0"
