"""The layer contract (storage -> data -> learning -> flows -> faces) and the public API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import headwater

ROOT = Path(__file__).resolve().parents[1]


def test_layers_import_downward_only() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency; run make install"
    done = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_public_names_are_exported() -> None:
    for name in headwater.__all__:
        assert hasattr(headwater, name), name
