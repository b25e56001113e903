"""Hostile uploads: refused with a 4xx, in bounded memory, and the server keeps answering."""

from __future__ import annotations

import resource

from tests.faces.api.conftest import LiveApi


def test_json_nested_10000_deep_is_refused_and_the_server_keeps_answering(api: LiveApi) -> None:
    """It used to grow the API process to ~17 GB and crash it in libarrow."""
    deep = "[" + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "]"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused = api.upload("deep", "deep.json", deep.encode())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert refused.status_code == 422, refused.text
    assert "deeper than 64 levels" in refused.json()["detail"]
    assert grown_mb < 300, f"the server grew by {grown_mb:.0f} MB"
    assert api.client.get("/health").status_code == 200
    loaded = api.upload("shallow", "shallow.json", b'[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]')
    assert loaded.status_code in (200, 201), loaded.text
