"""Who gets a login URL from `headwater serve`: loopback without a token only."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from headwater.faces.cli.serve_command import _announcement, _with_token, is_loopback, login_url
from headwater.settings import Settings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("::", False),
        ("example.org", False),
    ],
)
def test_only_loopback_addresses_count_as_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_without_a_token_gets_one_made_for_the_run(tmp_path: Path) -> None:
    settings, token = _with_token(Settings(home=tmp_path), "127.0.0.1")
    assert token is not None and len(token) >= 32
    assert settings.api_token is not None and settings.api_token.get_secret_value() == token
    _, other = _with_token(Settings(home=tmp_path), "127.0.0.1")
    assert other != token  # a new one each start
    said = _announcement(settings, "127.0.0.1", 8000, token)
    assert said.endswith(f"http://127.0.0.1:8000/?token={token}")
    assert login_url("::1", 8000, "t") == "http://[::1]:8000/?token=t"


def test_any_other_address_without_a_token_stays_read_only(tmp_path: Path) -> None:
    settings, token = _with_token(Settings(home=tmp_path), "0.0.0.0")
    assert token is None and settings.api_token is None
    assert "read-only" in _announcement(settings, "0.0.0.0", 8000, None)


def test_a_configured_token_is_kept_and_never_printed(tmp_path: Path) -> None:
    mine = SecretStr("a-token-chosen-by-its-owner-0123")
    settings, token = _with_token(Settings(home=tmp_path, api_token=mine), "127.0.0.1")
    assert token is None and settings.api_token == mine
    said = _announcement(settings, "127.0.0.1", 8000, None)
    assert "/ui/login" in said and mine.get_secret_value() not in said
