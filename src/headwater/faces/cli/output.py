"""The CLI's consoles (wide enough for a table when piped to a file or a CI log) and rows."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["console", "errors", "print_feature_choices", "print_rows"]

HIDDEN_COLUMNS = frozenset({"pixels", "row_hash"})
"""Bytes no reader can read in a terminal; `--json` has them."""
UNBOUNDED = 1_000_000

PIPED_WIDTH = 140

console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH, soft_wrap=False)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def print_rows(rows: Sequence[dict[str, object]], *, first: int = 1) -> None:
    """Rows as one table when it fits the terminal, else one record per block (column: value).

    A table squeezed below its natural width cuts every value to a few characters, which
    shows nothing; a record per block keeps every value whole, however wide the dataset.
    """
    names = [c for c in rows[0] if c not in HIDDEN_COLUMNS]
    table = Table(*names)
    for row in rows:
        table.add_row(*(_cell(row[name]) for name in names))
    unbounded = console.options.update(width=UNBOUNDED)  # measure is clamped to the width
    if console.measure(table, options=unbounded).maximum <= console.width:
        console.print(table)
        return
    width = max(len(name) for name in names)
    for number, row in enumerate(rows, start=first):
        console.rule(f"record {number}", align="left")
        block = Table.grid(padding=(0, 2))
        block.add_column(style="bold", min_width=width, no_wrap=True)
        block.add_column(overflow="fold")
        for name in names:
            block.add_row(Text(name), _cell(row[name]))
        console.print(block)


def _cell(value: object) -> Text:
    """A value as plain text (never rich markup); a missing one as a dim "null"."""
    return Text("null", style="dim") if value is None else Text(str(value))


def print_feature_choices(choices: object) -> None:
    """A run's columns: what each was used as, or why it was left out (nothing for old runs)."""
    if not isinstance(choices, list) or not choices:
        return
    table = Table("column", "used as", "why", title="the features the model trained on")
    for choice in choices:
        if isinstance(choice, dict):
            used = choice.get("used_as")
            table.add_row(
                Text(str(choice.get("column"))),
                Text(str(used)) if used else Text("left out", style="yellow"),
                Text(str(choice.get("reason", ""))),
            )
    console.print(table)
