"""`headwater synthesize` and `headwater synthesize-report`."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import typer

from headwater.faces.cli.output import console
from headwater.faces.cli.progress import epoch_bar
from headwater.flows.params import MAX_SEED
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

if TYPE_CHECKING:
    from headwater.flows.synthesis import ProgressFn

__all__ = ["register"]

HEADLINE = ("dataset", "rows", "method", "fidelity", "utility", "detectability", "privacy")


def register(app: typer.Typer) -> None:
    app.command("synthesize")(synthesize_command)
    app.command("synthesize-report")(synthesize_report_command)


def synthesize_command(
    dataset: str = typer.Argument(..., help="The real dataset to learn from."),
    method: str = typer.Option("pca", "--method", "-m", help="pca, vae or copula (the baseline)."),
    rows: int = typer.Option(..., "--rows", "-n", help="How many synthetic rows to make."),
    into: str = typer.Option(..., "--into", help="Name of the new synthetic dataset."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=MAX_SEED, help="Seed of the holdout, the fit and the sample."
    ),
    force: bool = typer.Option(False, "--force", help="Allow more than 10x the source's rows."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's headline as JSON."),
) -> None:
    """Make a synthetic copy of a tabular dataset, measure it against a real holdout, ingest it.

    Identifier and free-text columns are left out (and said so), never copied.
    Example: headwater synthesize customers --method pca --rows 5000 --into customers_synth
    """
    from headwater.flows.synthesis import SynthesisRequest, synthesize

    request = SynthesisRequest(dataset, method, rows, into, seed=seed, force=force)
    with Workspace(get_settings()) as workspace, _bar(enabled=not as_json) as on_epoch:
        report = synthesize(workspace, request, on_epoch=on_epoch)
    if as_json:
        typer.echo(json.dumps({k: report[k] for k in (*HEADLINE, "run_id", "left_out")}))
        return
    _print(report)


def synthesize_report_command(
    name: str = typer.Argument(..., help="A dataset made by `headwater synthesize`."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
) -> None:
    """Show the report of the synthesis run that made a dataset, and where its HTML is.

    Example: headwater synthesize-report customers_synth --json
    """
    from headwater.flows.synthesis import synthesis_report_of

    with Workspace(get_settings()) as workspace:
        report = synthesis_report_of(workspace, name)
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    _print(report)


def _print(report: dict[str, object]) -> None:
    fidelity, privacy = report["fidelity"], report["privacy"]
    utility, detect = report["utility"], report["detectability"]
    assert isinstance(fidelity, dict)
    assert isinstance(privacy, dict)
    assert isinstance(detect, dict)
    console.print(
        f"[green]{report['dataset']}[/]: {report['rows']:,} rows by {report['method']} from "
        f"{report['source']} (run {report['run_id']})"
    )
    console.print(
        f"  fidelity [bold]{fidelity['overall']:.1f}[/]/100 (column shapes "
        f"{fidelity['column_shapes']:.1f}, pair trends {fidelity['column_pair_trends']:.1f})"
    )
    if isinstance(utility, dict):
        console.print(
            f"  utility: accuracy trained on synthetic {utility['tstr_accuracy']:.2%}, "
            f"on real {utility['trtr_accuracy']:.2%} (both tested on the real holdout)"
        )
    console.print(f"  detectability: ROC-AUC {detect['roc_auc']:.3f} (0.5: indistinguishable)")
    console.print(
        f"  privacy: {privacy['closer_than_holdout_p5']:.1%} of rows closer to a training row "
        f"than the holdout's 5th percentile; exact copies {privacy['exact_copies']}"
    )
    left_out = report.get("left_out")
    if isinstance(left_out, dict):
        for column, reason in left_out.items():
            console.print(f"  left out [yellow]{column}[/]: {reason}")
    if report.get("html"):
        console.print(f"  report: {report['html']}")


def _bar(*, enabled: bool) -> AbstractContextManager[ProgressFn | None]:
    """A bar over the fit's epochs (one for PCA and the copula), on a terminal only."""

    def describe(epoch: int, metrics: dict[str, float]) -> str:
        loss = metrics.get("loss")
        return f"fitting, epoch {epoch}" + (f": loss {loss:.4f}" if loss is not None else "")

    return epoch_bar(enabled, "fitting", describe)
