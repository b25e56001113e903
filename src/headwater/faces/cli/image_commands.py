"""`headwater images ingest|embed`: an image folder loaded in parallel; its feature vectors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from headwater.faces.cli.output import console
from headwater.faces.cli.progress import category_bars, new_bar, watching
from headwater.flows.embeddings import EmbedResult, embed_images
from headwater.flows.engines import check_engine
from headwater.flows.export import export as run_export
from headwater.flows.images import ImageChain, ImageIngestReport, ingest_images, run_images
from headwater.flows.params import MAX_SEED
from headwater.flows.tsne import TsneResult, tsne_map
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]

images_app = typer.Typer(help="Image folders: parallel ingest with quarantine and duplicates.")


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
    app.command()(export)
    app.command("tsne")(tsne)


@images_app.command("ingest")
def ingest(
    root: Path = typer.Argument(..., help="A folder laid out ROOT/<category>/**/*.png|jpg|..."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name."),
    workers: int = typer.Option(1, "--workers", min=1, help="Decoding processes."),
    size: int = typer.Option(64, "--size", min=1, help="Side of the square images stored."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Decode, convert and resize every image; set aside bad files; report duplicates.

    Example: headwater images ingest photos/ --dataset photos --workers 2
    """

    with category_bars(not as_json) as progress, Workspace(get_settings()) as workspace:
        report = ingest_images(
            workspace, root, dataset=dataset, workers=workers, size=size, progress=progress
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    _print(report)


def _print(report: ImageIngestReport) -> None:
    console.print(
        f"{report.dataset}: {report.images_loaded} of {report.images_found} images loaded "
        f"({', '.join(f'{k} {v}' for k, v in report.per_category.items())}); "
        f"{report.images_known} seen before",
        highlight=False,
    )
    for file, reason in report.rejected:
        console.print(f"quarantined {file}: {reason}", highlight=False)
    for file, same in report.duplicates:
        console.print(f"duplicate {file} = {same}", highlight=False)
    for file, like, bits in report.near_duplicates:
        console.print(f"near duplicate {file} ~ {like} ({bits} bits apart)", highlight=False)


@images_app.command("embed")
def embed(
    dataset: str = typer.Argument(..., help="An image dataset."),
    model: str | None = typer.Option(
        None, "--model", help="A run id (or best/latest) or an .onnx file; default: train a CNN."
    ),
    output: str | None = typer.Option(
        None, "--output", help="The ONNX tensor to read (default: the last 2-D output)."
    ),
    dim: int = typer.Option(512, "--dim", min=1, help="Penultimate width of the CNN trained."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs of that CNN."),
    engine: str = typer.Option(
        "local", "--engine", help="local (here) or spark (HEADWATER_SPARK_MASTER) scores."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """A feature vector per image from a CNN's penultimate layer, as NAME_embeddings.

    No pretrained weights can be downloaded here: without --model Headwater trains its
    CNN on the dataset's own labels. Example: headwater images embed photos --dim 512
    (add --engine spark to score the lake's images on Spark)
    """
    onnx_path = (
        Path(model) if model and (model.endswith(".onnx") or Path(model).is_file()) else None
    )
    run = None if onnx_path is not None else model
    bar = new_bar(remaining=True)
    task = bar.add_task(f"embedding {dataset}", total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with Workspace(get_settings()) as workspace, bar if watching(not as_json) else _quiet():
        result = embed_images(
            workspace,
            dataset,
            model_run=run,
            onnx_path=onnx_path,
            dim=dim,
            output=output,
            epochs=epochs,
            on_progress=progress,
            engine=check_engine(engine),
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_embed(result)


@contextmanager
def _quiet() -> Iterator[None]:
    yield


def _print_embed(result: EmbedResult) -> None:
    trained = " (trained on the dataset)" if result.trained else ""
    console.print(
        f"{result.embeddings}: {result.rows} vectors of {result.dim} features from "
        f"{result.model}{trained}, output {result.output}; {result.skipped} already embedded",
        highlight=False,
    )
    quality = result.quality
    categories = quality.get("categories", {})
    assert isinstance(categories, dict)
    for label, counts in categories.items():
        console.print(
            f"  {label}: {counts['kept']} kept, {counts['set_aside']} set aside "
            f"of {counts['images']}",
            highlight=False,
        )
    aside = quality.get("set_aside", [])
    assert isinstance(aside, list)
    for row in aside:
        console.print(f"set aside {row['id']} ({row['label']}): {row['reason']}", highlight=False)


@images_app.command("run")
def run(
    root: Path = typer.Argument(..., help="A folder laid out ROOT/<category>/**/*.png|jpg|..."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name."),
    to: str = typer.Option(..., "--to", help="A folder or s3://bucket/prefix/."),
    workers: int = typer.Option(1, "--workers", min=1, help="Decoding processes."),
    size: int = typer.Option(64, "--size", min=1, help="Side of the square images stored."),
    model: str | None = typer.Option(
        None, "--model", help="A run id or an .onnx file; default: the earlier one, or train."
    ),
    dim: int = typer.Option(512, "--dim", min=1, help="Features per image (a trained CNN)."),
    fmt: str = typer.Option("parquet", "--format", help="csv or parquet."),
    part_rows: int = typer.Option(10_001, "--part-rows", min=1, help="Rows per part."),
    engine: str = typer.Option(
        "local", "--engine", help="local, or spark (HEADWATER_SPARK_MASTER) embeds and exports."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Ingest the new images, embed them, export the vectors: run it daily, it redoes nothing.

    Example: headwater images run photos/ --dataset photos --to s3://bucket/photos/ --workers 2
    """
    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("--format must be csv or parquet")
    onnx_path = (
        Path(model) if model and (model.endswith(".onnx") or Path(model).is_file()) else None
    )
    with category_bars(not as_json) as progress, Workspace(get_settings()) as workspace:
        chain = ImageChain(
            root,
            dataset,
            to,
            workers=workers,
            size=size,
            dim=dim,
            model_run=None if onnx_path is not None else model,
            onnx_path=onnx_path,
            fmt="csv" if fmt == "csv" else "parquet",
            part_rows=part_rows,
            engine=check_engine(engine),
        )
        report = run_images(workspace, chain, progress=progress)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    _print(report.ingest)
    _print_embed(report.embed)
    exported = report.export
    console.print(
        f"{exported.dataset}: {exported.rows} rows in {len(exported.parts)} parts at "
        f"{exported.where} ({exported.written} files written)",
        highlight=False,
    )


def export(
    dataset: str = typer.Argument(..., help="Dataset to export."),
    to: str = typer.Option(..., "--to", help="A folder or s3://bucket/prefix/."),
    fmt: str = typer.Option("parquet", "--format", help="csv or parquet."),
    part_rows: int = typer.Option(10_001, "--part-rows", min=1, help="Rows per part."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    engine: str = typer.Option(
        "local", "--engine", help="local, or spark (parts stored by HEADWATER_SPARK_MASTER's)."
    ),
) -> None:
    """Write a dataset's rows in parts, then a manifest (rows and sha256 of each part).

    Example: headwater export photos --to s3://bucket/photos/ --format parquet
    Example: headwater export photos --to out/ --engine spark
    """
    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("--format must be csv or parquet")
    with Workspace(get_settings()) as workspace:
        report = run_export(
            workspace,
            dataset,
            to,
            fmt="csv" if fmt == "csv" else "parquet",
            part_rows=part_rows,
            engine=check_engine(engine),
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console.print(
        f"{dataset}: {report.rows} rows in {len(report.parts)} parts at {report.where} "
        f"({report.written} files written)",
        highlight=False,
    )


def tsne(
    dataset: str = typer.Argument(..., help="An image dataset, or its NAME_embeddings."),
    sample: int = typer.Option(20_000, "--sample", min=10, help="Points on the map."),
    out: Path | None = typer.Option(None, "--out", help="Where to write the PNG."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=MAX_SEED, help="Seed of the sample and the map."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """A t-SNE map of a dataset's pixels or embeddings: a PNG and the web UI's scatter.

    A sample stratified by label keeps every class; PCA to 50 dimensions, then openTSNE.
    Example: headwater tsne mnist --sample 20000 --out mnist.png
    """
    bar = new_bar()
    task = bar.add_task(f"mapping {dataset}", total=None)

    def stage(what: str) -> None:
        bar.update(task, description=f"{dataset}: {what}")

    with Workspace(get_settings()) as workspace, bar if watching(not as_json) else _quiet():
        result = tsne_map(workspace, dataset, sample=sample, out=out, seed=seed, on_stage=stage)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_tsne(result)


def _print_tsne(result: TsneResult) -> None:
    console.print(
        f"{result.dataset} ({result.source}): {result.points} of {result.rows} points, "
        f"trustworthiness {result.trustworthiness:.3f} at k=10 ({result.trust_points} points), "
        f"{result.engine}, {result.seconds['total']:.1f} s",
        highlight=False,
    )
    for label, kept in result.classes.items():
        console.print(
            f"  {label}: kept {kept['kept']:.0f} of {kept['rows']:.0f} ({kept['share']:.0%})",
            highlight=False,
        )
    console.print(f"map: {result.png}; web: /ui/datasets/{result.image_dataset}/map")
