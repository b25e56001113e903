"""The CLI's consoles: wide enough for a table when piped to a file or a CI log."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["console", "errors"]

PIPED_WIDTH = 140

console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH, soft_wrap=False)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)
