"""The root command, its global options, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import typer
from rich.console import Console

from headwater.errors import (
    AccessDenied,
    ConfigError,
    DataError,
    HeadwaterError,
    IntegrityError,
    ModelNotFitted,
    NotFound,
    QueueFull,
    StorageError,
    TaskMismatch,
    WarehouseError,
)
from headwater.faces.cli import (
    data_commands,
    demo_commands,
    image_commands,
    learning_commands,
    pipeline_commands,
    privacy_commands,
    quality_commands,
    sequence_commands,
    serve_command,
    synth_commands,
)
from headwater.flows.lifecycle import sigterm_interrupts

__all__ = ["app", "main"]

app = typer.Typer(
    name="headwater",
    help="From a raw file to a served prediction. Start with: headwater ingest data/mnist.pkl.gz",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Most specific first: the first class an error is an instance of decides (README table).
EXIT_CODES: dict[type[HeadwaterError], int] = {
    TaskMismatch: 2,
    ConfigError: 2,
    ModelNotFitted: 2,
    NotFound: 3,
    DataError: 4,
    WarehouseError: 5,
    StorageError: 5,
    IntegrityError: 5,
    QueueFull: 5,
    AccessDenied: 6,
}


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


data_commands.register(app)
privacy_commands.register(app)
quality_commands.register(app)
learning_commands.register(app)
serve_command.register(app)
pipeline_commands.register(app)
synth_commands.register(app)
demo_commands.register(app)
image_commands.register(app)
sequence_commands.register(app)


def exit_code(error: HeadwaterError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return 1


def main() -> None:
    """Entry point of the `headwater` script: Headwater errors print one line, never a trace.

    Typer runs standalone: an unknown command or option, or a bad value, prints the usage
    and the problem and exits 2; Ctrl-C exits 130. Typer bundles its own copy of click,
    so catching the ``click`` package's exceptions here would miss every one of them.
    """
    err = Console(stderr=True)
    try:
        with sigterm_interrupts() as terminated:
            try:
                app(prog_name="headwater")
            except BaseException:
                if terminated.is_set():  # typer made the interrupt exit 130, a driver an error
                    _exit_terminated(err)
                raise
    except HeadwaterError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(exit_code(error))


def _exit_terminated(err: Console) -> NoReturn:
    """Exit 143 at once: every transaction has rolled back and every run is recorded by now.

    The interpreter's own shutdown is skipped on purpose: collecting what a run left (torch,
    DuckDB objects) at finalization has been seen to hang, and a process told to stop must.
    """
    err.print("stopped: SIGTERM (nothing half-written was kept)")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(143)
