"""`headwater quality`, `quarantine`, `contract` and `anomalies`: can this data be trusted?"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from headwater.errors import ConfigError
from headwater.faces.cli.output import console
from headwater.flows.params import MAX_SEED
from headwater.flows.reports import Contract
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

if TYPE_CHECKING:  # the learning stack (torch, onnx) loads only when `anomalies` runs
    from headwater.flows.anomaly import AnomalyReport

__all__ = ["register"]

OUTCOME_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def register(app: typer.Typer) -> None:
    app.command()(quality)
    app.command()(quarantine)
    app.command()(contract)
    app.command()(anomalies)


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


def anomalies(
    dataset: str = typer.Argument(..., help="Dataset name (images)."),
    train: bool = typer.Option(
        False, "--train", help="Train an autoencoder detector on the dataset's accepted rows."
    ),
    batch: int | None = typer.Option(
        None, "--batch", help="Score this batch and add the result to its quality report."
    ),
    run: str | None = typer.Option(
        None, "--run", help="Score with this detector run; default the latest."
    ),
    epochs: int | None = typer.Option(None, help="Training passes over the rows (10)."),
    seed: int = typer.Option(
        0, min=0, max=MAX_SEED, help="Seed: the same seed and rows give the same detector."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Train an anomaly detector, or flag the rows of a batch it cannot rebuild, worst first.

    Rows scoring above the 99th percentile of the training rows are flagged and
    recorded in the batch's quality report, with a PNG grid of the worst rows.

    Example: headwater anomalies mnist --train --batch 2
    """
    from headwater.flows import anomaly
    from headwater.flows.runs import run_summary

    if not train and batch is None:
        raise ConfigError("give --train, --batch ID or both: headwater anomalies mnist --train")
    out: dict[str, object] = {}
    with Workspace(get_settings()) as workspace:
        if train:
            trained = anomaly.train_detector(workspace, dataset, seed=seed, epochs=epochs)
            run = trained.run_id
            out["run"] = run_summary(trained)
            if not as_json:
                rows = trained.metrics.get("rows", {})
                console.print(
                    f"[green]detector run {trained.run_id}[/] on {dataset}: threshold "
                    f"{float(str(trained.metrics['threshold'])):.4f}, trained on "
                    f"{rows.get('train', 0) if isinstance(rows, dict) else 0:,} rows in "
                    f"{trained.train_seconds or 0:.1f} s"
                )
        if batch is not None:
            report = anomaly.score_batch(workspace, dataset, batch, run_id=run)
            out["report"] = report.to_dict()
            if not as_json:
                _print_anomalies(report)
    if as_json:
        typer.echo(json.dumps(out, default=str))


def _print_anomalies(report: AnomalyReport) -> None:
    console.print(
        f"batch {report.batch_id} of {report.dataset}: [bold]{report.n_flagged:,}[/] of "
        f"{report.n_rows:,} rows above {report.threshold:.4f} (detector run {report.run_id})"
    )
    if report.top:
        table = Table("rank", "source row", "row id", "score", title="most anomalous first")
        for rank, row in enumerate(report.top, start=1):
            table.add_row(str(rank), str(row.source_row), str(row.row_id), f"{row.score:.4f}")
        console.print(table)
    if report.n_flagged > len(report.top):
        console.print(f"  ... and {report.n_flagged - len(report.top):,} more")
    if report.grid is not None:
        console.print(f"  grid: {report.grid}")
