"""`headwater profile`: the steps that grow with the data, on ``--engine local|spark``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from headwater.faces.cli.output import console
from headwater.flows.engines import check_engine
from headwater.flows.profile import Profile, profile
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_command)


def profile_command(
    dataset: str = typer.Argument(..., help="Dataset to profile."),
    engine: str = typer.Option(
        "local", "--engine", help="local (streamed here) or spark (HEADWATER_SPARK_MASTER)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> None:
    """Rows per label and, per column, count, nulls, min, max, mean and std.

    Example: headwater profile mnist --engine spark --json
    """
    with Workspace(get_settings()) as workspace:
        found = profile(workspace, dataset, engine=check_engine(engine))
    if as_json:
        typer.echo(json.dumps(found.to_dict()))
        return
    _render(found)


def _render(found: Profile) -> None:
    console.print(f"{found.dataset}: {found.rows:,} rows ({found.engine} engine)", highlight=False)
    if found.labels:
        counts = ", ".join(f"{k}: {v:,}" for k, v in found.labels.items())
        console.print(f"per {found.label}: {counts}", highlight=False)
    table = Table("column", "kind", "count", "nulls", "min", "max", "mean", "std")
    for c in found.columns:
        table.add_row(
            c.name,
            c.type,
            f"{c.count:,}",
            f"{c.nulls:,}",
            _cell(c.min),
            _cell(c.max),
            _cell(c.mean),
            _cell(c.std),
        )
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."
