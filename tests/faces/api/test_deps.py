"""Access: writes need the configured bearer token; with none configured they are off."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from headwater.errors import ConfigError
from headwater.faces.api import create_app
from headwater.settings import Settings
from tests.builders import write_csv
from tests.faces.api.conftest import AUTH, TOKEN, LiveApi, Serve, snapshot


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "longer", "basic", "empty"],
)
def test_writes_without_the_right_token_are_refused(
    api: LiveApi, tmp_path: Path, headers: dict[str, str]
) -> None:
    before = snapshot(api.settings)
    csv = write_csv(tmp_path / "orders.csv", 3).read_bytes()
    upload = api.upload("orders", "orders.csv", csv, headers=headers)
    source = api.client.post(
        "/datasets/orders/sources", json={"url": "http://example.com/a.csv"}, headers=headers
    )
    for refused in (upload, source):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"
        assert TOKEN not in refused.text
    assert snapshot(api.settings) == before
    assert api.client.get("/datasets").status_code == 200  # reads stay open


def test_no_token_configured_turns_writes_off(serve: Serve, tmp_path: Path) -> None:
    api = serve(token=None)
    csv = write_csv(tmp_path / "orders.csv", 3).read_bytes()
    refused = api.upload("orders", "orders.csv", csv)
    assert refused.status_code == 503
    assert "HEADWATER_API_TOKEN" in refused.json()["detail"]
    assert api.client.get("/datasets").json() == {"datasets": []}


def test_reads_can_require_the_token(serve: Serve) -> None:
    api = serve(read_requires_token=True)
    assert api.client.get("/datasets").status_code == 401
    assert api.client.get("/datasets/x/rows").status_code == 401
    assert api.client.get("/datasets", headers=AUTH).status_code == 200
    assert api.client.get("/health").status_code == 200  # probes stay open


def test_the_token_is_never_in_the_openapi_or_config_repr(serve: Serve) -> None:
    api = serve(token=SecretStr(TOKEN))
    assert TOKEN not in api.client.get("/openapi.json").text
    assert TOKEN not in repr(api.config)


@pytest.mark.parametrize("token", ["short", "changethis-in-production", "a" * 32])
def test_weak_tokens_stop_the_app_from_being_built(tmp_path: Path, token: str) -> None:
    weak = Settings(home=tmp_path, api_token=SecretStr(token))
    with pytest.raises(ConfigError, match="HEADWATER_API_TOKEN must be at least 16"):
        create_app(weak)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/runs", b"{not json"),
        ("POST", "/runs", b'{"dataset": 3, "seed": "x"}'),
        ("PUT", "/datasets/mnist/aliases/best", b"{not json"),
        ("POST", "/datasets/mnist/sources", b'{"url": 1}'),
        ("POST", "/models/best/predict", b'{"pixels": "x", "bogus": 1}'),
        ("POST", "/models/best/predict", b"{not json"),
    ],
)
def test_no_token_is_401_before_the_body_is_judged(
    serve: Serve, method: str, path: str, body: bytes
) -> None:
    api = serve(read_requires_token=True)
    refused = api.client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 401, refused.text


def test_reads_say_the_token_is_optional_when_it_is(serve: Serve) -> None:
    open_reads = serve().client.get("/openapi.json").json()["paths"]
    assert {"token": []} in open_reads["/runs"]["post"]["security"]
    assert {} not in open_reads["/runs"]["post"]["security"]
    assert {} in open_reads["/runs"]["get"]["security"]
    assert {} in open_reads["/models/{ref}/predict"]["post"]["security"]
    closed = serve(read_requires_token=True).client.get("/openapi.json").json()["paths"]
    assert closed["/runs"]["get"]["security"] == [{"token": []}]
    assert closed["/models/{ref}/predict"]["post"]["security"] == [{"token": []}]
