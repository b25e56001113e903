"""`headwater pipeline run|list|history` and `headwater schedule`: declared pipelines."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import typer
from rich.table import Table

from headwater.errors import ConfigError
from headwater.faces.cli.output import console
from headwater.flows.params import MAX_SEED
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]

pipeline_app = typer.Typer(
    help="Pipelines declared in headwater.toml ([pipelines.NAME]): run one, list, history.",
    no_args_is_help=True,
)

STATUS_STYLE = {
    "succeeded": "green",
    "skipped": "dim",
    "running": "yellow",
    "failed": "bold red",
    "abandoned": "red",
}


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
    app.command()(schedule)
    app.command()(tune)
    app.command()(suggest)
    app.command()(monitor)


@pipeline_app.command("run")
def run_command(
    name: str = typer.Argument(..., help="Pipeline name, as in [pipelines.NAME]."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Train (images: embed, export) even with no new data."
    ),
) -> None:
    """Run a pipeline now: ingest, quality, train, evaluate, compare, promote (an image
    pipeline: images-ingest, embed, export).

    Exits 1 when a step failed (the served model is left as it was).
    Example: headwater pipeline run orders_daily
    """
    from headwater.flows.pipeline_config import pipeline_config
    from headwater.flows.pipelines import pipeline_run_dict, run_pipeline

    config = pipeline_config(name)

    def said(step: str, status: str, outcome: dict[str, object]) -> None:
        if status != "running":
            style = STATUS_STYLE.get(status, "")
            console.print(f"  {step}: [{style}]{status}[/] {json.dumps(outcome, default=str)}")

    with Workspace(get_settings()) as workspace:
        run = run_pipeline(workspace, config, force=force, on_step=None if as_json else said)
    assert run is not None  # a manual run claims no fire
    if as_json:
        typer.echo(json.dumps(pipeline_run_dict(run), default=str))
    else:
        style = STATUS_STYLE.get(run.status, "")
        console.print(
            f"pipeline {name} run {run.pipeline_run_id}: [{style}]{run.status}[/]"
            f" ({run.outcome}){': ' + run.error if run.error else ''}"
        )
    if run.status == "failed":
        raise typer.Exit(1)


@pipeline_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Each declared pipeline: schedule, next fire time, last run and its outcome."""
    from headwater.flows.pipeline_config import load_pipelines
    from headwater.flows.pipelines import pipeline_summaries

    configs = load_pipelines()
    with Workspace(get_settings()) as workspace:
        found = pipeline_summaries(workspace, configs, datetime.now(UTC))
    if as_json:
        typer.echo(json.dumps(found, default=str))
        return
    if not found:
        console.print("no pipelines declared; add [pipelines.NAME] to headwater.toml")
        return
    table = Table("pipeline", "dataset", "schedule", "next fire", "last run", "outcome")
    for item in found:
        last = item["last_run"] if isinstance(item["last_run"], dict) else {}
        schedule = f"{item['schedule']} {item['timezone']}" if item["schedule"] else "-"
        if item["on_new_data"]:
            schedule += " + new data"
        table.add_row(
            str(item["name"]),
            str(item["dataset"]),
            schedule,
            str(item["next_fire"] or "-"),
            str(last.get("started_at", "never")),
            f"{last.get('status', '-')} {last.get('outcome') or ''}".strip(),
        )
    console.print(table)


@pipeline_app.command("history")
def history_command(
    name: str = typer.Argument(..., help="Pipeline name."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="Most runs shown."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """A pipeline's runs, newest first: trigger, status, steps, batches and models."""
    from headwater.flows.pipelines import pipeline_history, pipeline_run_dict

    with Workspace(get_settings()) as workspace:
        runs = pipeline_history(workspace, name, limit=limit)
    if as_json:
        typer.echo(json.dumps([pipeline_run_dict(r) for r in runs], default=str))
        return
    table = Table(
        "run", "started", "trigger", "status", "steps", "batches", "challenger", "promoted"
    )
    for run in runs:
        style = STATUS_STYLE.get(run.status, "")
        steps = " ".join(f"{s.step}:{s.status[0]}" for s in run.steps)
        table.add_row(
            run.pipeline_run_id,
            run.started_at.isoformat(timespec="seconds"),
            run.trigger,
            f"[{style}]{run.status}[/]" + (f" {run.error}" if run.error else ""),
            steps,
            ",".join(map(str, run.batch_ids)),
            run.challenger_run_id or "-",
            "yes" if run.promoted else "no",
        )
    console.print(table)


def schedule(
    lease_s: float = typer.Option(
        300.0, "--lease-s", min=5, help="Seconds a run's lease lasts unless renewed."
    ),
) -> None:
    """Run declared pipelines on their cron schedule and when new data lands, until stopped.

    A fire missed while no scheduler ran is run once on start. Two schedulers on one
    warehouse run each fire once. Stop with Ctrl-C or SIGTERM.

    Example: headwater schedule
    """
    from headwater.flows.scheduler import run_scheduler

    stop = threading.Event()

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, stop_on)
    console.print("scheduling the pipelines of headwater.toml; Ctrl-C stops")
    try:
        run_scheduler(get_settings(), stop, lease_s=lease_s)
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fixed(values: list[str]) -> dict[str, str]:
    fixed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--fix takes NAME=VALUE (e.g. --fix epochs=5), got {item!r}")
        fixed[name.strip()] = value.strip()
    return fixed


def tune(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name."),
    model: str = typer.Option("mlp", "--model", help="Model to tune."),
    trials: int = typer.Option(20, "--trials", min=1, help="Trials to run (more if resumed)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop starting trials after S s."),
    fix: list[str] = typer.Option([], "--fix", help="Hold a parameter, e.g. --fix epochs=5."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=MAX_SEED, help="Seed of the sampler and of every run."
    ),
    no_prune: bool = typer.Option(False, "--no-prune", help="Never stop a trial early."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search a model's parameters (Optuna TPE; median pruning on validation accuracy).

    Every trial is a registered run; a search of the same dataset and model resumes
    from the trials recorded before. Example: headwater tune --dataset mnist --trials 20
    """
    from headwater.flows.tuning import TrialRow, TuneRequest, fixed_params
    from headwater.flows.tuning import tune as run_search

    params = fixed_params(model, _fixed(fix))
    request = TuneRequest(dataset, model, trials, timeout, seed, params, prune=not no_prune)

    def said(trial: TrialRow) -> None:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        console.print(f"  trial {trial.number} {trial.state} {value} {json.dumps(trial.params)}")

    with Workspace(get_settings()) as workspace:
        result = run_search(workspace, request, on_trial=None if as_json else said)
    found = result.to_dict()
    if as_json:
        typer.echo(json.dumps(found, default=str))
        return
    console.print(
        f"best run {found['best_run_id']}: validation {found['best_validation_accuracy']}, "
        f"test {found['best_test_accuracy']}, params {json.dumps(found['best_params'])}; "
        f"{found['complete']} complete, {found['pruned']} pruned in {found['seconds']} s"
    )


def suggest(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name."),
    model: str = typer.Option("mlp", "--model", help="Model whose parameters to suggest."),
    as_json: bool = typer.Option(False, "--json", help="Print the suggestion as JSON."),
) -> None:
    """The best parameters the searches of a dataset and model found so far (what the web
    form's Suggest fills in, and GET /datasets/NAME/suggestion answers); exits 1 with none.

    Example: headwater suggest --dataset mnist --model mlp
    """
    from headwater.flows.tuning import suggestion

    with Workspace(get_settings()) as workspace:
        found = suggestion(workspace, dataset, model)
    if as_json:
        typer.echo(json.dumps(found.to_dict(), default=str))
    elif found.params is None:
        console.print(
            f"no search of {model} on {dataset} has completed a trial yet; run "
            f"headwater tune --dataset {dataset} --model {model} --trials 10"
        )
    else:
        console.print(
            f"best of {found.trials} trials: run {found.run_id}, validation "
            f"{found.validation_accuracy}, test {found.test_accuracy}; "
            f"params {json.dumps(found.params)}"
        )
    if found.params is None:
        raise typer.Exit(1)


def monitor(
    dataset: str = typer.Argument(..., help="Dataset name."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    as_json: bool = typer.Option(False, "--json", help="Also print the chart's data as JSON."),
) -> None:
    """Chart a dataset over time: each run's test accuracy, the served model's score after
    each pipeline run, rows and quarantine rate per batch.

    Example: headwater monitor orders --out orders.png
    """
    from headwater.flows.monitoring import monitor_chart

    with Workspace(get_settings()) as workspace:
        data = monitor_chart(workspace, dataset, out)
    if as_json:
        typer.echo(json.dumps(data.to_dict(), default=str))
    else:
        console.print(
            f"{out}: {len(data.runs)} runs, {len(data.served)} pipeline runs, "
            f"{len(data.batches)} batches"
        )
