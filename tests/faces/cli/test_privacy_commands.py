"""`headwater obfuscate` and `headwater pii scan`, run through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from headwater.errors import SchemaError
from headwater.faces.cli import privacy_commands


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    privacy_commands.register(root)
    return root


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(
        "id,name,email_address,postcode\n"
        "007,Alice Smith,alice@example.com,SW1A 1AA\n"
        "008,Bob Jones,bob@example.org,M1 1AE\n"
    )
    return path


runner = CliRunner()


def test_obfuscate_to_stdout(app: typer.Typer, people: Path) -> None:
    result = runner.invoke(
        app,
        [
            "obfuscate",
            str(people),
            "--pii-fields",
            "name,email_address",
            "--modes",
            "postcode=generalise",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "id,name,email_address,postcode\n007,***,***,SW1A\n008,***,***,M1\n"


def test_obfuscate_with_out_and_request(app: typer.Typer, people: Path, tmp_path: Path) -> None:
    out = tmp_path / "safe.csv"
    request = json.dumps(
        {"file_to_obfuscate": str(people), "pii_fields": ["postcode"], "mode": "generalise"}
    )
    result = runner.invoke(app, ["obfuscate", "--request", request, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[1:] == [
        "007,Alice Smith,alice@example.com,SW1A",
        "008,Bob Jones,bob@example.org,M1",
    ]
    assert "2 rows" in result.stderr


def test_errors_reach_the_root_handler_unchanged(app: typer.Typer, people: Path) -> None:
    result = runner.invoke(app, ["obfuscate", str(people), "--pii-fields", "phone"])
    assert isinstance(result.exception, SchemaError)
    assert result.stdout == ""


def test_pii_scan_table_and_json(app: typer.Typer, people: Path) -> None:
    table = runner.invoke(app, ["pii", "scan", str(people)])
    assert table.exit_code == 0, table.output
    assert "email_address" in table.stdout
    assert "headwater obfuscate" in table.stdout
    as_json = runner.invoke(app, ["pii", "scan", str(people), "--json"])
    found = {s["field"]: s["kind"] for s in json.loads(as_json.stdout)}
    assert found == {"name": "person_name", "email_address": "email", "postcode": "uk_postcode"}


@pytest.mark.parametrize("command", [["obfuscate"], ["pii"], ["pii", "scan"]])
def test_every_command_has_help_with_an_example(app: typer.Typer, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example: headwater " in result.stdout


def test_an_output_in_the_json_request_is_where_the_copy_goes(
    app: typer.Typer, people: Path, tmp_path: Path
) -> None:
    out = tmp_path / "safe.csv"
    request = {"file_to_obfuscate": str(people), "pii_fields": ["name"], "output": str(out)}
    result = runner.invoke(app, ["obfuscate", "--request", json.dumps(request)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[1] == "007,***,alice@example.com,SW1A 1AA"
