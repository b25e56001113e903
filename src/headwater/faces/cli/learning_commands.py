"""`headwater train`, `runs`, `leaderboard`, `evaluate` and `predict`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from headwater.faces.cli.output import console
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

if TYPE_CHECKING:  # the learning stack (torch, onnx) loads only when a command needs it
    from headwater.flows.runs import RunRow
    from headwater.flows.training import EpochFn

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command()(runs)
    app.command()(leaderboard)
    app.command()(evaluate)
    app.command()(predict)
    app.command()(serve_run)


def train_command(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset to learn from."),
    model: str = typer.Option(
        "mlp",
        "--model",
        "-m",
        help="mlp, cnn, logistic_regression, random_forest, adaboost or hist_gradient_boosting.",
    ),
    density: int | None = typer.Option(None, help="MLP: width of the first hidden layer (35)."),
    dropout: float | None = typer.Option(None, help="Neural nets: dropout in [0, 1) (0.3)."),
    l2: float | None = typer.Option(None, help="MLP: L2 on the second hidden layer (0.01)."),
    epochs: int | None = typer.Option(None, help="Neural nets: passes over the data."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Neural nets: rows per step."),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", help="Neural nets: Adam's rate."
    ),
    seed: int = typer.Option(0, help="Seed: the same seed and data give the same metrics."),
    holdout: float | None = typer.Option(
        None, help="Hold out this fraction of train for validation."
    ),
    cv: int | None = typer.Option(None, help="Also run k-fold cross-validation with K folds."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Train a model on a dataset, evaluate it on the test split and register the run.

    Example: headwater train --dataset mnist --model mlp --density 35 --epochs 20
    """
    from headwater.flows import runs as run_flows
    from headwater.flows.training import TrainRequest, train

    params = {
        k: v
        for k, v in {
            "density": density,
            "dropout": dropout,
            "l2": l2,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
        }.items()
        if v is not None
    }
    request = TrainRequest(dataset, model, params, seed=seed, holdout=holdout, cv=cv)
    with Workspace(get_settings()) as workspace, _epoch_bar(enabled=not as_json) as on_epoch:
        run = train(workspace, request, on_epoch=on_epoch)
        detail = run_flows.run_detail(workspace, run.run_id)
    if as_json:
        typer.echo(json.dumps(detail.to_dict()))
        return
    metrics = run.metrics
    console.print(
        f"[green]run {run.run_id}[/] {run.model} on {run.dataset}: test accuracy "
        f"[bold]{float(str(metrics['test_accuracy'])):.2%}[/], macro F1 "
        f"{float(str(metrics['test_macro_f1'])):.4f}, trained in {run.train_seconds or 0:.1f} s"
    )
    for name, path in detail.plots().items():
        console.print(f"  {name}: {path}")


def runs(
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Only this dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List training runs with their parameters and final metrics.

    Example: headwater runs --dataset mnist --json
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        found = run_flows.list_runs(workspace, dataset)
    _print_runs(found, as_json=as_json, title="runs")


def leaderboard(
    dataset: str = typer.Argument(..., help="Dataset name."),
    metric: str = typer.Option("test_accuracy", help="Metric to rank by."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Rank a dataset's finished runs, best first.

    Example: headwater leaderboard mnist
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        ranked = run_flows.leaderboard(workspace, dataset, metric=metric)
    _print_runs(ranked, as_json=as_json, title=f"leaderboard of {dataset} by {metric}")


def evaluate(
    run_id: str = typer.Argument(..., help="Run id (see headwater runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show a run's evaluation: metrics, per-class precision and recall, data lineage, plots.

    Example: headwater evaluate 3f2a9c1d0b7e
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        detail = run_flows.run_detail(workspace, run_id)
    if as_json:
        typer.echo(json.dumps(detail.to_dict(), default=str))
        return
    run = detail.run
    console.print(
        f"[bold]run {run.run_id}[/] {run.model} on {run.dataset} ({run.status}), "
        f"params {json.dumps(run.params)}, seed {run.seed}, code {run.code_version}"
    )
    test = run.metrics.get("test")
    if not isinstance(test, dict):  # a detector: no classes, a threshold and flag rates
        headline = run_flows.run_summary(run)["metrics"]
        assert isinstance(headline, dict)
        console.print("  " + ", ".join(f"{name} {value:.4g}" for name, value in headline.items()))
    else:
        table = Table(
            "class", "precision", "recall", title=f"test accuracy {test.get('accuracy', 0):.4f}"
        )
        precision, recall = test.get("precision", {}), test.get("recall", {})
        for label in precision:
            table.add_row(label, f"{precision[label]:.4f}", f"{recall[label]:.4f}")
        console.print(table)
    for data in detail.data:
        console.print(
            f"  {data.role}: {data.row_count:,} rows from batches {data.batch_ids}, "
            f"rows hash {data.rows_hash[:16]}"
        )
    for name, path in detail.plots().items():
        console.print(f"  {name}: {path}")


def predict(
    run_id: str = typer.Argument(..., help="Run id whose model scores the file."),
    path: Path = typer.Argument(..., help="CSV, Parquet, IDX or pickle file to score."),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", help="CSV to write."),
) -> None:
    """Score every row of a file with a registered model and write the predictions as CSV.

    Example: headwater predict 3f2a9c1d0b7e data/mnist.pkl.gz --out predictions.csv
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        written = run_flows.predict_file(workspace, run_id, path, out)
    console.print(f"{written:,} predictions written to {out}")


def serve_run(
    run_id: str = typer.Argument(..., help="Run to serve as its dataset's 'best'."),
) -> None:
    """Mark a run as the one served for its dataset (the 'best' alias).

    Example: headwater serve-run 3f2a9c1d0b7e
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        run_flows.set_alias(workspace, run_id, "best")
    console.print(f"run {run_id} is now served as 'best'")


def _print_runs(found: list[RunRow], *, as_json: bool, title: str) -> None:
    from headwater.flows.runs import run_summary

    if as_json:
        typer.echo(json.dumps([run_summary(r) for r in found]))
        return
    if not found:
        console.print("no runs yet; train one: headwater train --dataset mnist")
        return
    table = Table(
        "run",
        "dataset",
        "model",
        "params",
        "status",
        "test acc",
        "macro F1",
        "seconds",
        title=title,
    )
    for r in found:
        acc, f1 = r.metrics.get("test_accuracy"), r.metrics.get("test_macro_f1")
        params = ", ".join(
            f"{k}={v}"
            for k, v in r.params.items()
            if k in {"density", "dropout", "l2", "epochs", "n_estimators"}
        )
        table.add_row(
            r.run_id,
            r.dataset,
            r.model,
            params,
            r.status,
            f"{float(str(acc)):.4f}" if acc is not None else "-",
            f"{float(str(f1)):.4f}" if f1 is not None else "-",
            f"{r.train_seconds:.1f}" if r.train_seconds else "-",
        )
    console.print(table)


@contextmanager
def _epoch_bar(*, enabled: bool) -> Iterator[EpochFn | None]:
    """One bar over the epochs, showing the last loss and validation accuracy."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task: list[TaskID] = []

    def update(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if not task:
            task.append(bar.add_task("training", total=epochs))
        text = f"epoch {epoch}: loss {metrics.get('loss', 0):.4f}"
        if "val_accuracy" in metrics:
            text += f", val acc {metrics['val_accuracy']:.4f}"
        bar.update(task[0], completed=epoch, description=text)

    with bar:
        yield update
