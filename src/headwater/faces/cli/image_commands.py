"""`headwater images ingest`: an image folder decoded in parallel and loaded as one batch."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from headwater.faces.cli.output import console
from headwater.flows.export import export as run_export
from headwater.flows.images import ImageIngestReport, ingest_images
from headwater.flows.workspace import Workspace
from headwater.settings import get_settings

__all__ = ["register"]

images_app = typer.Typer(help="Image folders: parallel ingest with quarantine and duplicates.")


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
    app.command()(export)


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

    def progress(category: str, done: int, total: int) -> None:
        if not as_json:
            console.print(f"{category}: {done}/{total}", highlight=False)

    with Workspace(get_settings()) as workspace:
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
        f"({', '.join(f'{k} {v}' for k, v in report.per_category.items())})",
        highlight=False,
    )
    for file, reason in report.rejected:
        console.print(f"quarantined {file}: {reason}", highlight=False)
    for file, same in report.duplicates:
        console.print(f"duplicate {file} = {same}", highlight=False)
    for file, like, bits in report.near_duplicates:
        console.print(f"near duplicate {file} ~ {like} ({bits} bits apart)", highlight=False)


def export(
    dataset: str = typer.Argument(..., help="Dataset to export."),
    to: str = typer.Option(..., "--to", help="A folder or s3://bucket/prefix/."),
    fmt: str = typer.Option("parquet", "--format", help="csv or parquet."),
    part_rows: int = typer.Option(10_001, "--part-rows", min=1, help="Rows per part."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a dataset's rows in parts, then a manifest (rows and sha256 of each part).

    Example: headwater export photos --to s3://bucket/photos/ --format parquet
    """
    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("--format must be csv or parquet")
    with Workspace(get_settings()) as workspace:
        report = run_export(
            workspace, dataset, to, fmt="csv" if fmt == "csv" else "parquet", part_rows=part_rows
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console.print(
        f"{dataset}: {report.rows} rows in {len(report.parts)} parts at {report.where} "
        f"({report.written} files written)",
        highlight=False,
    )
