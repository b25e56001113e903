"""`headwater quality`, `quarantine` and `contract`: can this data be trusted, what was held."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from headwater.data.quality import Contract
from headwater.faces.cli.output import console
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]

OUTCOME_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def register(app: typer.Typer) -> None:
    app.command()(quality)
    app.command()(quarantine)
    app.command()(contract)


def quality(
    dataset: str = typer.Argument(..., help="Dataset name."),
    batch: int | None = typer.Option(None, "--batch", help="One batch id; default all."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
) -> None:
    """Print the quality report of each batch: every check, its outcome and its counts.

    Example: headwater quality mnist --batch 2
    """
    with Workspace(get_settings()) as workspace:
        reports = workspace.quality(dataset, batch)
    if as_json:
        typer.echo(json.dumps([json.loads(r.to_json()) for r in reports]))
    else:
        for report in reports:
            table = Table(title=f"{report.dataset} batch {report.batch_id}: {report.status}")
            for column in ("check", "level", "outcome", "rows", "detail"):
                table.add_column(column)
            for check in report.checks:
                style = OUTCOME_STYLE[check.outcome]
                table.add_row(
                    check.name,
                    check.level,
                    f"[{style}]{check.outcome}[/]",
                    f"{check.count:,}",
                    check.detail,
                )
            console.print(table)
            console.print(
                f"{report.rows_read:,} read, {report.rows_loaded:,} loaded, "
                f"{report.rows_quarantined:,} quarantined, {report.rows_duplicate:,} duplicates"
            )
    if html is not None and reports:
        html.write_text(reports[-1].to_html())
        console.print(f"HTML report written to {html}")


def quarantine(
    dataset: str = typer.Argument(..., help="Dataset name."),
    release: int | None = typer.Option(None, "--release", help="Load this quarantined row."),
    drop: int | None = typer.Option(None, "--drop", help="Drop this quarantined row."),
    force: bool = typer.Option(False, "--force", help="Release even if it still fails."),
    note: str | None = typer.Option(None, "--note", help="Why; kept with the decision."),
    show_all: bool = typer.Option(False, "--all", help="Include released and dropped rows."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List quarantined rows, or release or drop one (the decision is recorded).

    Example: headwater quarantine mnist --release 3
    """
    with Workspace(get_settings()) as workspace:
        if release is not None:
            workspace.release(dataset, release, force=force)
            console.print(f"released quarantined row {release} into {dataset}")
            return
        if drop is not None:
            workspace.drop(dataset, drop, note=note)
            console.print(f"dropped quarantined row {drop}")
            return
        rows = workspace.quarantine(dataset, status=None if show_all else "quarantined")
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        console.print(f"nothing quarantined in {dataset}")
        return
    table = Table("id", "batch", "row", "check", "field", "value", "status")
    for r in rows:
        table.add_row(
            *(
                str(r[k])
                for k in ("id", "batch_id", "source_row", "check", "field", "value", "status")
            )
        )
    console.print(table)


def contract(
    dataset: str = typer.Argument(..., help="Dataset name."),
    approve: bool = typer.Option(False, "--approve", help="Approve the contract as it stands."),
    edit: Path | None = typer.Option(
        None, "--edit", help="Replace it with this JSON file, approved."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show the dataset's contract (inferred from its first batch), approve it or replace it.

    Example: headwater contract mnist --approve
    """
    with Workspace(get_settings()) as workspace:
        if edit is not None:
            found = workspace.approve_contract(dataset, Contract.from_json(edit.read_text()))
        elif approve:
            found = workspace.approve_contract(dataset)
        else:
            found = workspace.contract(dataset)
    if as_json:
        typer.echo(found.to_json())
        return
    state = (
        "approved" if found.approved else "inferred, not approved (headwater contract --approve)"
    )
    console.print(f"[bold]{dataset}[/] contract, {state}:")
    console.print_json(json.dumps(asdict(found)))
