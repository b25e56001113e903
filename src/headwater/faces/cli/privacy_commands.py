"""`headwater obfuscate` and `headwater pii scan`: handing data out without the people in it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from headwater.errors import ConfigError

__all__ = ["register"]

err = Console(stderr=True)

pii_app = typer.Typer(
    name="pii",
    help="Find personal data in a file. Example: headwater pii scan customers.csv",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `obfuscate` and the `pii` group to the root command."""
    app.command("obfuscate")(obfuscate)
    app.add_typer(pii_app, name="pii")


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _modes(text: str | None) -> dict[str, str]:
    pairs = {}
    for item in _split(text):
        name, sep, mode = item.partition("=")
        if not sep or not name.strip() or not mode.strip():
            raise ConfigError(
                f"--modes item {item!r} is not FIELD=MODE; "
                "e.g. --modes name=pseudonym,dob=generalise"
            )
        pairs[name.strip()] = mode.strip()
    return pairs


def obfuscate(
    source: str | None = typer.Argument(
        None,
        help="Local path or s3://bucket/key of a .csv/.tsv, .json, .jsonl (each may be .gz) "
        "or .parquet file.",
    ),
    pii_fields: str | None = typer.Option(
        None, "--pii-fields", "-f", help="Comma-separated fields to obfuscate."
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        "-m",
        help="Mode for every field: mask (default), pseudonym, drop or generalise.",
    ),
    modes: str | None = typer.Option(
        None, "--modes", help="Per-field modes, e.g. name=pseudonym,dob=generalise."
    ),
    out: str | None = typer.Option(
        None, "--out", "-o", help="Write to this path or s3:// URL instead of stdout."
    ),
    request: str | None = typer.Option(
        None, "--request", help="A JSON request; SOURCE and the options above override its keys."
    ),
) -> None:
    """Write a copy of a file with its personal fields obfuscated; the source is not touched.

    Example: headwater obfuscate s3://bucket/file1.csv --pii-fields name,email --out safe.csv
    """
    from headwater.flows import privacy  # boto3 loads only when a privacy command runs

    parsed = privacy.request_from_options(
        source, _split(pii_fields), mode=mode, modes=_modes(modes), request_json=request
    )
    out = out or parsed.output
    stdout = sys.stdout.buffer
    if not out and stdout.isatty() and parsed.source.lower().endswith((".parquet", ".pq", ".gz")):
        raise ConfigError(
            f"{parsed.source}: the output is binary (Parquet or gzip); "
            "pass --out FILE or redirect stdout"
        )
    with _rows_progress(f"obfuscating {parsed.source}") as progress:
        if not out:
            privacy.obfuscate_to_stream(parsed, stdout, progress=progress)
            return
        report = privacy.obfuscate_to_destination(parsed, out, progress=progress)
    err.print(f"{report.summary()} -> {out}", highlight=False, soft_wrap=True)


@contextmanager
def _rows_progress(what: str) -> Iterator[Callable[[int], None]]:
    """A spinner with a running row count on stderr (drawn only on a terminal), then gone."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(what, total=None)
    with bar:
        yield lambda rows: bar.update(task, completed=rows)


@pii_app.command("scan")
def scan(
    location: str = typer.Argument(..., help="Local path or s3://bucket/key to scan."),
    sample_rows: int = typer.Option(10_000, "--sample-rows", help="Rows to read from the start."),
    min_share: float = typer.Option(
        0.5, "--min-share", help="Share of values that must match to suggest a field."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the suggestions as JSON."),
) -> None:
    """Suggest which fields hold personal data, from a sample of their values.

    Example: headwater pii scan s3://bucket/new_data/file1.csv --json
    """
    from headwater.flows import privacy

    found = privacy.scan_pii(location, sample_rows=sample_rows, min_share=min_share)
    if as_json:
        typer.echo(json.dumps([suggestion.to_dict() for suggestion in found]))
        return
    console = Console()
    if not found:
        console.print(f"No field of {location} looks personal in the first {sample_rows:,} rows.")
        return
    table = Table("field", "looks like", "matched", "share", "suggested mode")
    for suggestion in found:
        table.add_row(
            suggestion.field,
            suggestion.kind.replace("_", " "),
            f"{suggestion.matched:,} / {suggestion.sampled:,}",
            f"{suggestion.share:.0%}",
            suggestion.suggested_mode,
        )
    console.print(table)
    fields = ",".join(s.field for s in found)
    by_field = ",".join(f"{s.field}={s.suggested_mode}" for s in found)
    console.print(
        f"Suggestions only; you decide. To obfuscate: headwater obfuscate {location} "
        f"--pii-fields {fields} --modes {by_field} --out SAFE_COPY",
        highlight=False,
        soft_wrap=True,
    )
