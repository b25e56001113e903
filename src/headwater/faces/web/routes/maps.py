"""An image dataset's t-SNE map: a server-drawn SVG scatter; hovering a point shows its image."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from starlette.responses import Response

from headwater.faces.http import DatasetName
from headwater.faces.web.context import PageDep, WebRoute
from headwater.flows.tsne import MapPoints, image_png, saved_map

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

SIDE = 800
MARGIN = 10


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    colour: str
    key: int
    label: str


def _dots(found: MapPoints) -> list[Dot]:
    """Points scaled into the SVG's square, y pointing up as in the PNG."""
    low_x, high_x = min(found.x), max(found.x)
    low_y, high_y = min(found.y), max(found.y)
    scale = (SIDE - 2 * MARGIN) / max(high_x - low_x, high_y - low_y, 1e-9)
    return [
        Dot(
            round(MARGIN + (x - low_x) * scale, 1),
            round(SIDE - MARGIN - (y - low_y) * scale, 1),
            found.colours[label],
            key,
            label,
        )
        for x, y, key, label in zip(found.x, found.y, found.image_keys, found.labels, strict=True)
    ]


@router.get("/ui/datasets/{name}/map")
def dataset_map(name: DatasetName, page: PageDep) -> Response:
    """The latest `headwater tsne` map of the dataset's pixels or embeddings."""
    found = saved_map(page.workspace, name)
    return page.render(
        "map.html",
        title=f"Map of {name}",
        section="datasets",
        name=name,
        found=found,
        dots=_dots(found) if found and found.x else [],
        side=SIDE,
    )


@router.get("/ui/datasets/{name}/images/{key}.png")
def image(name: DatasetName, key: int, page: PageDep) -> Response:
    """One image as PNG (the map's hover thumbnail)."""
    png, _ = image_png(page.workspace, name, key)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
