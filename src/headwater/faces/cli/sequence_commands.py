"""`headwater analyze`: a source of sequences, as a model would see it."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from headwater.faces.cli.output import console
from headwater.faces.cli.page_options import MAX_PAGES, PAGINATE, RECORDS
from headwater.flows.sequences import MAX_FIRST, Analysis, analyze_source
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(analyze)


def analyze(
    source: str = typer.Argument(..., help="A URL of pages of sequences, or a dataset name."),
    records: str | None = RECORDS,
    label: str | None = typer.Option(None, "--label", help="Path of each page's label."),
    paginate: str | None = PAGINATE,
    max_pages: int | None = MAX_PAGES,
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset to load a URL into; default from the URL."
    ),
    expect: str | None = typer.Option(
        None, "--expect", help="Text each sequence must spell; default: what most spell."
    ),
    first: int = typer.Option(
        20, "--first", "-n", min=1, max=MAX_FIRST, help=f"Records to show (at most {MAX_FIRST})."
    ),
    refresh: bool = typer.Option(
        False, "--refresh", help="Fetch a URL analyzed before again (only changes load)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """Show a source's first records, the features a model trains on, and invalid sequences.

    A URL is fetched and loaded once; analyzing it again reads the warehouse.

    Example: headwater analyze http://127.0.0.1:8765/train/user_1.json --records user_data
    --label user_label --first 1000
    """
    with Workspace(get_settings()) as workspace:
        found = analyze_source(
            workspace, source, records=records, label=label, paginate=paginate,
            max_pages=max_pages, dataset=dataset, expect=expect, first=first, refresh=refresh,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(found.to_dict(), default=str))
        return
    _print(found)


def _print(found: Analysis) -> None:
    how = "fetched and loaded" if found.fetched else "read from the warehouse (not fetched again)"
    console.print(f"[bold]{found.dataset}[/]: {found.source}, {how}")
    console.print(f"sequences: {found.counts}; expected text: {found.expected!r}")
    if found.records:
        records = Table(*found.records[0])
        for row in found.records:
            records.add_row(*(str(v) for v in row.values()))
        console.print(records)
    used = [f for f in found.features if f["used_as"]]
    console.print(f"{len(used)} features per attempt: {', '.join(str(f['column']) for f in used)}")
    for f in found.features:
        if not f["used_as"]:
            console.print(f"  left out: {f['column']}: {f['reason']}")
    if found.invalid:
        bad = Table("sequence", "label", "reason", title="quarantined sequences")
        for row in found.invalid:
            bad.add_row(str(row["group_id"]), str(row["label"]), str(row["reason"]))
        console.print(bad)
