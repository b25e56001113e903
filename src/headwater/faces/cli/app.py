"""The root command, its global options, and the one place errors become exit codes.

Commands load lazily: `COMMAND_MODULES` names the module that registers each one, and only
that module is imported when the command runs. ``headwater ingest`` then starts without
importing torch, scikit-learn and ONNX (seconds on a small machine, before any work);
``headwater --help`` still lists every command, importing them all.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

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
from headwater.flows.lifecycle import sigterm_interrupts

__all__ = ["COMMAND_MODULES", "app", "command_group", "main"]

# Each top-level command (or group) and the module under headwater.faces.cli whose
# `register(app)` adds it, in the order `headwater --help` lists them.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(["ingest", "datasets", "show"], "data_commands"),
    **dict.fromkeys(["obfuscate", "pii"], "privacy_commands"),
    **dict.fromkeys(["quality", "quarantine", "contract", "anomalies"], "quality_commands"),
    **dict.fromkeys(
        ["train", "runs", "leaderboard", "evaluate", "predict", "serve-run"], "learning_commands"
    ),
    "serve": "serve_command",
    **dict.fromkeys(["pipeline", "schedule", "tune", "suggest", "monitor"], "pipeline_commands"),
    **dict.fromkeys(["synthesize", "synthesize-report"], "synth_commands"),
    "demo": "demo_commands",
    **dict.fromkeys(["images", "export", "tsne"], "image_commands"),
    "analyze": "sequence_commands",
    "profile": "engine_commands",
}


@functools.cache
def command_group(module: str) -> TyperGroup:
    """The commands one module registers, as a group of their own (imported on first use)."""
    commands = typer.Typer()
    importlib.import_module(f"headwater.faces.cli.{module}").register(commands)
    group = typer.main.get_group(commands)
    assert isinstance(group, TyperGroup)
    return group


class _LazyCommands(TyperGroup):
    """The root group: lists every command by name, imports a command's module only to run it."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = COMMAND_MODULES.get(cmd_name)
        return None if module is None else command_group(module).get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyCommands,
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
