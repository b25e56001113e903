"""The t-SNE map page: an SVG point per sample with its image key and label; thumbnails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from headwater.flows.tsne import tsne_map
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from tests.blobs import write_blobs_npz
from tests.faces.api.conftest import TOKEN
from tests.faces.web.conftest import Site, _serve

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


@pytest.fixture
def map_site(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    settings = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with Workspace(settings) as workspace:
        workspace.ingest(write_blobs_npz(tmp_path / "blobs.npz", {0: 60, 1: 30, 2: 10}))
        tsne_map(workspace, "blobs", sample=50)
    yield from _serve(settings)


def test_the_map_renders_points_with_hover_data_and_thumbnails(map_site: Site) -> None:
    client = map_site.client()
    client.post("/ui/login", data={"token": TOKEN})
    page = client.get("/ui/datasets/blobs/map")
    assert page.status_code == 200
    dots = re.findall(
        r'<circle cx="[\d.]+" cy="[\d.]+" r="2.5" fill="#[0-9a-f]{6}" '
        r'data-key="(\d+)" data-label="(\d)">',
        page.text,
    )
    assert len(dots) == 50 and {label for _, label in dots} == {"0", "1", "2"}
    assert 'data-images="/ui/datasets/blobs/images/"' in page.text
    assert "/ui/static/map.js" in page.text and "Trustworthiness" in page.text
    assert "100.0%" in page.text  # the tiny class, kept whole
    thumb = client.get(f"/ui/datasets/blobs/images/{dots[0][0]}.png")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert thumb.content.startswith(b"\x89PNG")
    assert client.get("/ui/static/map.js").status_code == 200
    assert client.get("/ui/datasets/blobs/images/999999.png").status_code == 404
    assert "Map (t-SNE)" in client.get("/ui/datasets/blobs").text
