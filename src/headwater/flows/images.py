"""Image folders at scale: the parallel ingest, configured from the settings."""

from __future__ import annotations

from pathlib import Path

from headwater.data.images import (
    CategoryProgress,
    ImageIngestReport,
    ImageOptions,
    ingest_image_folder,
)
from headwater.flows.workspace import Workspace

__all__ = ["CategoryProgress", "ImageIngestReport", "ingest_images"]


def ingest_images(
    workspace: Workspace,
    root: Path,
    *,
    dataset: str,
    workers: int = 1,
    size: int = 64,
    progress: CategoryProgress | None = None,
) -> ImageIngestReport:
    """Decode ``root/<category>/**`` with ``workers`` processes and load it as one batch."""
    settings = workspace.settings
    options = ImageOptions(
        size=size,
        workers=workers,
        max_pixels=settings.image_max_pixels,
        min_side=settings.image_min_side,
    )
    return ingest_image_folder(
        root,
        dataset=dataset,
        warehouse=workspace.warehouse,
        lake=workspace.lake,
        options=options,
        chunk_rows=settings.ingest_chunk_rows,
        progress=progress,
    )
