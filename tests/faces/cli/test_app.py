"""The root command loads each command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys

from headwater.faces.cli.app import COMMAND_MODULES, command_group

HEAVY = ("torch", "sklearn", "onnx", "onnxruntime", "optuna", "fastapi", "matplotlib")


def test_every_module_registers_exactly_the_commands_the_root_names() -> None:
    for module in set(COMMAND_MODULES.values()):
        named = {name for name, where in COMMAND_MODULES.items() if where == module}
        assert set(command_group(module).commands) == named, module


def test_ingest_starts_without_importing_the_learning_stack() -> None:
    probe = (
        "import sys; from typer.testing import CliRunner; from headwater.faces.cli import app; "
        "done = CliRunner().invoke(app, ['ingest', '--help']); assert done.exit_code == 0; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
