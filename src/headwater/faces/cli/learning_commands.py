"""`headwater train`, `runs`, `leaderboard`, `evaluate` and `predict`."""

from __future__ import annotations

import inspect
import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic.fields import FieldInfo
from rich.table import Table

from headwater.faces.cli.output import console, print_feature_choices
from headwater.faces.cli.page_options import MAX_PAGES, PAGINATE, RECORDS
from headwater.faces.cli.progress import epoch_bar
from headwater.flows.params import (
    COMMON_FIELDS,
    PARAMS,
    SEQUENCE_PARAMS,
    allowed,
    changed_params,
    checked_params,
    param_kind,
    trainable,
)
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


def _models_help() -> str:
    return (
        "One of: "
        + ", ".join(
            f"{name} ({kind.model_config.get('title')})"
            for name, kind in {**PARAMS, **SEQUENCE_PARAMS}.items()
        )
        + ". On a sequence dataset (keystroke pages) lstm reads each sequence; the others "
        "its per-attempt features."
    )


def _param_help(uses: list[tuple[str, FieldInfo]]) -> str:
    """Per meaning: the models that take it, what it does, its range and default(s)."""
    groups: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for model, field in uses:
        default = "none" if field.default is None else field.default
        groups.setdefault((field.description or "", allowed(field)), []).append((model, default))
    lines = []
    for (description, rule), found in groups.items():
        models = ", ".join(model for model, _ in found)
        defaults = {str(default) for _, default in found}
        default = (
            defaults.pop()
            if len(defaults) == 1
            else ", ".join(f"{value} ({model})" for model, value in found)
        )
        lines.append(f"{models}: {description} {_sentence(rule)}; default {default}.")
    return " | ".join(lines)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _param_options() -> list[inspect.Parameter]:
    """One option per parameter name across the models, generated from the parameter models.

    The option is typed as loosely as the models that share it need; the chosen model's
    parameter model checks the value (`flows.params.checked_params`), so ranges live there.
    """
    uses: dict[str, list[tuple[str, FieldInfo]]] = {}
    for model in [*PARAMS, *SEQUENCE_PARAMS]:
        for name, field in trainable(model).items():
            uses.setdefault(name, []).append((model, field))
    options = []
    for name, found in uses.items():
        kinds = {param_kind(field)[0] for _, field in found}
        kind: type = str if "choice" in kinds else float if "float" in kinds else int
        option = typer.Option(
            None,
            "--" + name.replace("_", "-"),
            help=_param_help(found),
            rich_help_panel="Model parameters (each model takes its own; see --model)",
            show_default=False,
        )
        options.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None
            )
        )
    return options


def train_command(
    dataset: str,
    model: str,
    seed: int,
    holdout: float | None,
    cv: int | None,
    task: str | None,
    name: str | None,
    as_json: bool,
    **values: object,
) -> None:
    """Train a model on a dataset, evaluate it on the test split and register the run.

    Every model parameter has its own option (see below); unset ones keep the model's defaults.
    Example: headwater train --dataset mnist --model mlp --density 35 --epochs 20

    Example: headwater train --dataset typing --model lstm --holdout 0.2 --name typing_lstm
    """
    from headwater.flows import runs as run_flows
    from headwater.flows.training import TrainRequest, train

    given = {name: value for name, value in values.items() if value is not None}
    params = checked_params(model, {**given, "seed": seed})
    request = TrainRequest(
        dataset, model, params, seed=seed, holdout=holdout, cv=cv, task=task, name=name
    )
    with Workspace(get_settings()) as workspace, _epoch_bar(enabled=not as_json) as on_epoch:
        run = train(workspace, request, on_epoch=on_epoch)
        detail = run_flows.run_detail(workspace, run.run_id)
    if as_json:
        typer.echo(json.dumps(detail.to_dict()))
        return
    metrics = run.metrics
    if metrics.get("task") == "regression":
        console.print(
            f"[green]run {run.run_id}[/] {run.model} on {run.dataset}: test RMSE "
            f"[bold]{float(str(metrics['test_rmse'])):.4g}[/], MAE "
            f"{float(str(metrics['test_mae'])):.4g}, R² {float(str(metrics['test_r2'])):.4f}, "
            f"trained in {run.train_seconds or 0:.1f} s"
        )
        for name, path in detail.plots().items():
            console.print(f"  {name}: {path}")
        return
    console.print(
        f"[green]run {run.run_id}[/] {run.model} on {run.dataset}: test accuracy "
        f"[bold]{float(str(metrics['test_accuracy'])):.2%}[/], macro F1 "
        f"{float(str(metrics['test_macro_f1'])):.4f}, trained in {run.train_seconds or 0:.1f} s"
    )
    for name, path in detail.plots().items():
        console.print(f"  {name}: {path}")


def _train_signature() -> tuple[inspect.Signature, dict[str, object]]:
    """The train command's options: the common ones, then one per model parameter."""
    seed = COMMON_FIELDS["seed"]
    common = {
        "dataset": (str, typer.Option(..., "--dataset", "-d", help="Dataset to learn from.")),
        "model": (str, typer.Option("mlp", "--model", "-m", help=_models_help())),
        "seed": (
            int,
            typer.Option(
                seed.default, "--seed", help=f"{seed.description} {_sentence(allowed(seed))}."
            ),
        ),
        "holdout": (
            float | None,
            typer.Option(None, help="Hold out this fraction of train for validation."),
        ),
        "cv": (int | None, typer.Option(None, help="Also run k-fold cross-validation, K folds.")),
        "task": (
            str | None,
            typer.Option(
                None,
                "--task",
                help="classification or regression; by default inferred from the label "
                "(text or at most 20 distinct whole numbers: classification). "
                "The model must be for it.",
            ),
        ),
        "name": (
            str | None,
            typer.Option(
                None, "--name", help="A name for the run, kept as an alias: headwater predict NAME"
            ),
        ),
        "as_json": (bool, typer.Option(False, "--json", help="Print the run as JSON.")),
    }
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, (kind, option) in common.items()
    ]
    parameters += _param_options()
    annotations: dict[str, object] = {p.name: p.annotation for p in parameters}
    return inspect.Signature(parameters, return_annotation=None), {**annotations, "return": None}


train_command.__signature__, train_command.__annotations__ = _train_signature()  # type: ignore[attr-defined]


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
    hint = f"headwater train --dataset {dataset}" if dataset else "headwater train --dataset NAME"
    _print_runs(found, as_json=as_json, title="runs", hint=hint)


def leaderboard(
    dataset: str = typer.Argument(..., help="Dataset name."),
    metric: str | None = typer.Option(
        None, help="Metric to rank by; test_rmse for a regression, else test_accuracy."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Rank a dataset's finished runs, best first (errors such as RMSE: lowest first).

    Example: headwater leaderboard mnist
    """
    from headwater.flows import runs as run_flows

    with Workspace(get_settings()) as workspace:
        metric = metric or run_flows.default_metric(workspace, dataset)
        ranked = run_flows.leaderboard(workspace, dataset, metric=metric)
    _print_runs(
        ranked,
        as_json=as_json,
        title=f"leaderboard of {dataset} by {metric} ({run_flows.ranking_order(metric)})",
        hint=f"headwater train --dataset {dataset}",
        metric=metric,
    )


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
    if run.metrics.get("task") == "regression" and isinstance(test, dict):
        mape = test.get("mape")
        console.print(
            f"  test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, R² {test['r2']:.4f}, "
            + (f"MAPE {mape:.2%}" if isinstance(mape, float) else "MAPE - (a true value is 0)")
            + f" on {test['n']:,} rows"
        )
    elif not isinstance(test, dict):  # a detector: no classes, a threshold and flag rates
        headline = run_flows.run_summary(run)["metrics"]
        assert isinstance(headline, dict)
        console.print("  " + ", ".join(f"{name} {value:.4g}" for name, value in headline.items()))
    else:
        table = Table(
            "class", "precision", "recall", title=f"test accuracy {test.get('accuracy', 0):.4f}"
        )
        precision, recall = test.get("precision", {}), test.get("recall", {})
        names = run.metrics.get("classes") or {}  # code -> class name, for text labels
        assert isinstance(names, dict)
        for label in precision:
            name = str(names.get(label, label))
            table.add_row(name, f"{precision[label]:.4f}", f"{recall[label]:.4f}")
        console.print(table)
    print_feature_choices(run.metrics.get("features"))
    for data in detail.data:
        console.print(
            f"  {data.role}: {data.row_count:,} rows from batches {data.batch_ids}, "
            f"rows hash {data.rows_hash[:16]}"
        )
    for name, path in detail.plots().items():
        console.print(f"  {name}: {path}")


def predict(
    run_id: str = typer.Argument(..., help="Run id (or --name given to train) that scores."),
    source: str = typer.Argument(
        ..., help="CSV, Parquet, IDX or pickle file; for a model of sequences a URL or JSON page."
    ),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", help="CSV to write."),
    records: str | None = RECORDS,
    label: str | None = typer.Option(
        None, "--label", help="Path of each page's label (kept beside the prediction)."
    ),
    paginate: str | None = PAGINATE,
    max_pages: int | None = MAX_PAGES,
    engine: str = typer.Option(
        "local", "--engine", help="local, or spark (Parquet on HEADWATER_SPARK_MASTER)."
    ),
) -> None:
    """Score a source with a registered model and write the predictions as CSV.

    A model trained on sequences writes one row per sequence (attempt): its label when
    the pages carry one, whether it passed its check, the prediction and each probability.

    Example: headwater predict 3f2a9c1d0b7e data/mnist.pkl.gz --out predictions.csv

    Example: headwater predict typing_lstm http://127.0.0.1:8765/test/user_1.json
    --records user_data --label user_label --out who.csv

    Example: headwater predict 3f2a9c1d0b7e .headwater/lake/curated/mnist --engine spark
    """
    from headwater.flows import scoring
    from headwater.flows.engines import check_engine

    with Workspace(get_settings()) as workspace:
        written = scoring.predict_source(
            workspace, run_id, source, out, records=records, label=label,
            paginate=paginate, max_pages=max_pages, engine=check_engine(engine),
        )  # fmt: skip
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


def _print_runs(
    found: list[RunRow], *, as_json: bool, title: str, hint: str, metric: str | None = None
) -> None:
    from headwater.flows.runs import run_summary

    if metric is not None and metric not in {"test_accuracy", "test_macro_f1"}:
        _print_ranked(found, as_json=as_json, title=title, hint=hint, metric=metric)
        return
    if as_json:
        typer.echo(json.dumps([run_summary(r) for r in found]))
        return
    if not found:
        console.print(f"no finished runs yet; train one: {hint}")
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
        params = ", ".join(f"{k}={v}" for k, v in changed_params(r.model, r.params).items())
        table.add_row(
            r.run_id,
            r.dataset,
            r.model,
            params,
            _status(r),
            f"{float(str(acc)):.4f}" if acc is not None else "-",
            f"{float(str(f1)):.4f}" if f1 is not None else "-",
            f"{r.train_seconds:.1f}" if r.train_seconds else "-",
        )
    console.print(table)


def _status(run: RunRow) -> str:
    """A run's status; a pruned one with the epoch its search stopped it at."""
    epoch = run.progress.get("epoch")
    return (
        f"pruned at epoch {epoch}" if run.status == "pruned" and epoch is not None else run.status
    )


def _print_ranked(
    found: list[RunRow], *, as_json: bool, title: str, hint: str, metric: str
) -> None:
    """A leaderboard by another metric (a regression's RMSE): that metric's column."""
    from headwater.flows.runs import run_summary

    if as_json:
        typer.echo(json.dumps([run_summary(r) for r in found]))
        return
    if not found:
        console.print(f"no finished runs yet; train one: {hint}")
        return
    table = Table("run", "dataset", "model", "params", metric, "seconds", title=title)
    for r in found:
        params = ", ".join(f"{k}={v}" for k, v in changed_params(r.model, r.params).items())
        value = r.metrics.get(metric)
        shown = f"{float(str(value)):.4g}" if isinstance(value, int | float) else "-"
        seconds = f"{r.train_seconds:.1f}" if r.train_seconds else "-"
        table.add_row(r.run_id, r.dataset, r.model, params, shown, seconds)
    console.print(table)


def _epoch_bar(*, enabled: bool) -> AbstractContextManager[EpochFn | None]:
    """One bar over the epochs, showing the last loss and validation accuracy."""

    def describe(epoch: int, metrics: dict[str, float]) -> str:
        text = f"epoch {epoch}: loss {metrics.get('loss', 0):.4f}"
        if "val_accuracy" in metrics:
            text += f", val acc {metrics['val_accuracy']:.4f}"
        return text

    return epoch_bar(enabled, "training", describe)
