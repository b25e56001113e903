"""`headwater ingest`, `datasets` and `show`: loading data and looking at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.progress import (
    TaskID,
)
from rich.table import Table

from headwater.faces.cli.output import console, print_rows
from headwater.faces.cli.page_options import MAX_PAGES, PAGINATE, RECORDS
from headwater.faces.cli.progress import new_bar, watching
from headwater.flows.reports import IngestReport, ProgressFn
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(datasets)
    app.command()(show)


def ingest(
    source: str = typer.Argument(..., help="A file, a folder (IDX pairs, <label>/*.png) or a URL."),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset name; default from the file name."
    ),
    label: str | None = typer.Option(
        None, "--label", help="Label column of a tabular file; with pages, a path in each page."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help="Text encoding of a CSV or JSON file, e.g. latin-1, cp1252."
    ),
    paginate: str | None = PAGINATE,
    records: str | None = RECORDS,
    max_pages: int | None = MAX_PAGES,
    expect: str | None = typer.Option(
        None,
        "--expect",
        help="Text every sequence (attempt) must spell, backspaces applied; by default the "
        "one most attempts of the first batch spell. Others are quarantined.",
    ),
) -> None:
    """Load a raw file into the lake and the warehouse.

    Example: headwater ingest data/mnist.pkl.gz --dataset mnist

    Example: headwater ingest https://api.example.org/u/1 --records user_data --label user_label
    """
    with Workspace(get_settings()) as workspace, _progress(enabled=not as_json) as progress:
        report = workspace.ingest_from(
            source, dataset=dataset, label=label, paginate=paginate, records=records,
            max_pages=max_pages, expect=expect, progress=progress, encoding=encoding,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    _print_report(report)


def datasets(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List datasets with row counts per split.

    Example: headwater datasets --json
    """
    with Workspace(get_settings()) as workspace:
        found = workspace.datasets()
    if as_json:
        typer.echo(json.dumps([d.to_dict(with_batches=False) for d in found]))
        return
    if not found:
        console.print("No datasets yet. Load one with: headwater ingest data/mnist.pkl.gz")
        return
    table = Table(
        "dataset", "kind", "rows", "train", "validation", "test", "unassigned", "last batch"
    )
    for d in found:
        table.add_row(
            d.name,
            d.kind,
            f"{d.rows:,}",
            *(f"{d.splits.get(s, 0):,}" for s in ("train", "validation", "test", "unassigned")),
            d.last_batch_at.strftime("%Y-%m-%d %H:%M:%S") if d.last_batch_at else "-",
        )
    console.print(table)


def show(
    dataset: str = typer.Argument(..., help="Dataset name."),
    limit: int = typer.Option(10, "--limit", "-n", help="Rows to show (1 to 1000)."),
    offset: int = typer.Option(0, "--offset", help="Rows to skip."),
    columns: str | None = typer.Option(
        None, "--columns", "-c", help="Only these columns, comma-separated: --columns age,city"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON (pixels base64)."),
) -> None:
    """Show the first rows of a dataset; a table wider than the terminal, one record per block.

    Example: headwater show orders --limit 5 --columns "customer_id,Annual income (EUR)"
    """
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with Workspace(get_settings()) as workspace:
        rows = workspace.rows(dataset, limit=limit, offset=offset, columns=chosen)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        console.print(f"{dataset} has no rows at offset {offset}")
        return
    print_rows(rows, first=offset + 1)


def _print_report(report: IngestReport) -> None:
    for batch in report.batches:
        if batch.status == "unchanged":
            console.print(
                f"[yellow]unchanged[/] {batch.source}: already loaded as batch {batch.batch_id}"
            )
        else:
            splits = ", ".join(f"{k} {v:,}" for k, v in batch.splits.items())
            console.print(
                f"[green]loaded[/] {batch.source}: {batch.rows_loaded:,} rows ({splits}), "
                f"{batch.rows_duplicate:,} duplicates, batch {batch.batch_id}, "
                f"{batch.seconds:.2f} s"
            )
    console.print(
        f"dataset [bold]{report.dataset}[/]: {report.rows_loaded:,} rows loaded, "
        f"{report.rows_duplicate:,} duplicates in {report.seconds:.2f} s"
        + (" (unchanged)" if report.unchanged else "")
    )


@contextmanager
def _progress(*, enabled: bool) -> Iterator[ProgressFn | None]:
    """A rich progress bar on stderr, one task per file, when a person is watching."""
    if not watching(enabled):
        yield None
        return
    bar = new_bar(remaining=True)
    tasks: dict[str, TaskID] = {}

    def update(what: str, done: int, total: int | None) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(f"loading {what}", total=total)
        bar.update(tasks[what], completed=done)

    with bar:
        yield update
