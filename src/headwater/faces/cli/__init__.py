"""The `headwater` command: a thin loop over flows, one module per group of commands."""

from __future__ import annotations

from headwater.faces.cli.app import app, main

__all__ = ["app", "main"]
