"""Settings: environment over config file over defaults; secrets never from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ConfigError
from headwater.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [
        "HEADWATER_HOME",
        "HEADWATER_WAREHOUSE_URL",
        "HEADWATER_WAREHOUSE_SCHEMA",
        "HEADWATER_API_TOKEN",
        "HEADWATER_INGEST_CHUNK_ROWS",
    ]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HEADWATER_CONFIG", str(tmp_path / "headwater.toml"))


def test_defaults_are_a_duckdb_file_in_the_home_folder() -> None:
    settings = Settings()
    assert settings.home == Path(".headwater")
    assert settings.dialect == "duckdb"
    assert settings.resolved_warehouse_url.endswith(".headwater/warehouse.duckdb")


def test_environment_wins_over_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "headwater.toml").write_text('home = "/from/file"\ningest_chunk_rows = 7\n')
    monkeypatch.setenv("HEADWATER_HOME", "/from/env")
    settings = Settings()
    assert settings.home == Path("/from/env") and settings.ingest_chunk_rows == 7


def test_postgres_url_switches_the_dialect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", "postgresql://u@h:5432/db")
    assert Settings().dialect == "postgres"


def test_unknown_warehouse_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        Settings(warehouse_url="mysql://root@localhost/db")


def test_secret_in_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "headwater.toml").write_text('api_token = "hunter2"\n')
    with pytest.raises(ConfigError, match="HEADWATER_API_TOKEN in the environment"):
        Settings()


def test_secret_from_environment_is_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_API_TOKEN", "hunter2")
    settings = Settings()
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)
