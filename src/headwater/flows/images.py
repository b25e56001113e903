"""Image folders at scale: the parallel ingest, and the daily chain ingest → embed → export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from headwater.data.export import ExportReport, Format
from headwater.data.images import (
    CategoryProgress,
    ImageIngestReport,
    ImageOptions,
    ingest_image_folder,
)
from headwater.flows.engines import Engine
from headwater.flows.export import export
from headwater.flows.workspace import Workspace

if TYPE_CHECKING:  # torch and the models: only `run_images` needs them, at call time
    from headwater.flows.embeddings import EmbedProgress, EmbedResult

__all__ = [
    "CategoryProgress",
    "ImageChain",
    "ImageIngestReport",
    "ImageRunReport",
    "ingest_images",
    "run_images",
]


def ingest_images(
    workspace: Workspace,
    root: Path,
    *,
    dataset: str,
    workers: int = 1,
    size: int = 64,
    progress: CategoryProgress | None = None,
) -> ImageIngestReport:
    """Decode the new images of ``root/<category>/**`` with ``workers`` processes; one batch."""
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


@dataclass(frozen=True)
class ImageChain:
    """What ingest → embed → export of one image folder needs: `headwater images run`'s
    options and a declared image pipeline's keys, so both work the same three steps."""

    root: Path
    dataset: str
    dest: str
    workers: int = 1
    size: int = 64
    dim: int = 512
    model_run: str | None = None
    onnx_path: Path | None = None
    output: str | None = None
    epochs: int | None = None
    fmt: Format = "parquet"
    part_rows: int = 10_001
    engine: Engine = "local"
    """Where the steps that grow with the data run: embed and export (the ingest is local)."""

    def ingest(
        self, workspace: Workspace, progress: CategoryProgress | None = None
    ) -> ImageIngestReport:
        """Decode and load the images the dataset has not seen (none new: no batch)."""
        return ingest_images(
            workspace,
            self.root,
            dataset=self.dataset,
            workers=self.workers,
            size=self.size,
            progress=progress,
        )

    def embed(self, workspace: Workspace, progress: EmbedProgress | None = None) -> EmbedResult:
        """Vectors for the images ``<dataset>_embeddings`` lacks, from the model the earlier
        ones came from (the first run trains Headwater's CNN unless a model is given)."""
        from headwater.flows.embeddings import embed_images

        return embed_images(
            workspace,
            self.dataset,
            model_run=self.model_run,
            onnx_path=self.onnx_path,
            dim=self.dim,
            output=self.output,
            epochs=self.epochs,
            on_progress=progress,
            engine=self.engine,
        )

    def export(self, workspace: Workspace) -> ExportReport:
        """The embeddings (id, label, f0…) to ``dest``: only parts whose bytes changed."""
        from headwater.flows.embeddings import embeddings_name

        vectors = embeddings_name(self.dataset)
        return export(
            workspace,
            vectors,
            self.dest,
            fmt=self.fmt,
            part_rows=self.part_rows,
            engine=self.engine,
        )


@dataclass
class ImageRunReport:
    """One run of the chain: what was ingested, embedded and exported."""

    ingest: ImageIngestReport
    embed: EmbedResult
    export: ExportReport

    def to_dict(self) -> dict[str, object]:
        return {
            "ingest": self.ingest.to_dict(),
            "embed": self.embed.to_dict(),
            "export": self.export.to_dict(),
        }


def run_images(
    workspace: Workspace,
    chain: ImageChain,
    *,
    progress: CategoryProgress | None = None,
    embed_progress: EmbedProgress | None = None,
) -> ImageRunReport:
    """Ingest → embed → export, each step per image, so a daily run over the same folder
    does only what the new images need.

    The ingest decodes only files the dataset has not seen; the embed scores only images
    ``<dataset>_embeddings`` lacks, with the model the earlier vectors came from (the
    first run trains Headwater's CNN unless a run or an ONNX file is given); the export of
    the embeddings (id, label, f0…) writes only the parts whose bytes changed: the new
    rows come last, so a few parts at the end, then the manifest. A declared image
    pipeline (`flows.image_pipeline`) works the same three steps, one recorded step each.
    """
    ingested = chain.ingest(workspace, progress)
    embedded = chain.embed(workspace, embed_progress)
    return ImageRunReport(ingested, embedded, chain.export(workspace))
