"""A declared image pipeline's steps: images-ingest → embed → export.

The same three steps as `headwater images run` (`flows.images.ImageChain`), each
recorded as a pipeline step, so a daily run over a folder that grew by three images
ingests, embeds and exports those three. An ingest that finds no new image ends the run
``skipped`` when the pipeline's last completed run succeeded (everything loaded was
embedded and exported then); after a failed or abandoned run, or a run by hand of
`images ingest`, the embed and export run anyway and do what is missing. An image
pipeline trains no challenger and moves no alias: if it trains Headwater's CNN for its
vectors, that run is listed among the pipeline run's runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from headwater.flows.images import ImageChain
from headwater.flows.pipeline_config import PipelineConfig
from headwater.flows.pipelines import IMAGE_STEPS
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import pipelines as store
from headwater.storage.warehouse.pipelines import PipelineRunRow

__all__ = ["ImageSteps"]

JsonDict = dict[str, object]
Step = tuple[str, Callable[[], JsonDict]]


class ImageSteps:
    """The steps of one run of an image pipeline; ``run`` holds what they found so far."""

    def __init__(
        self, ws: Workspace, config: PipelineConfig, run: PipelineRunRow, *, force: bool
    ) -> None:
        self.ws, self.config, self.run, self.force = ws, config, run, force
        self.chain: ImageChain = config.image_chain()
        self.rows = 0

    def steps(self) -> Iterator[Step]:
        """Each step in turn; after an ingest with nothing to do, no more."""
        yield IMAGE_STEPS[0], self.ingest
        if self.run.status == "skipped":
            return
        yield IMAGE_STEPS[1], self.embed
        yield IMAGE_STEPS[2], self.export
        self.run = replace(
            self.run,
            status="succeeded",
            outcome=f"{self.rows} vectors exported",  # where: the config says, not the API
        )

    def ingest(self) -> JsonDict:
        report = self.chain.ingest(self.ws)
        batches = [
            b.batch_id
            for b in (report.ingest.batches if report.ingest else [])
            if b.status == "loaded" and b.batch_id
        ]
        self.run = replace(self.run, batch_ids=batches)
        if not batches and not self.force and self._last_run_succeeded():
            self.run = replace(self.run, status="skipped", outcome="no new images")
        return {
            "batch_ids": batches,
            "rows_loaded": report.images_loaded,
            "new_data": bool(batches),
            "images_found": report.images_found,
            "images_known": report.images_known,
            "rejected": len(report.rejected),
            "duplicates": len(report.duplicates),
        }

    def embed(self) -> JsonDict:
        result = self.chain.embed(self.ws)
        if result.trained and result.model_run:
            self.run = replace(self.run, run_ids=[result.model_run])
        return {
            "embeddings": result.embeddings,
            "model": result.model,
            "model_run": result.model_run,
            "trained": result.trained,
            "dim": result.dim,
            "rows": result.rows,
            "already_embedded": result.skipped,
        }

    def export(self) -> JsonDict:
        report = self.chain.export(self.ws)
        self.rows = report.rows
        return {
            "rows": report.rows,
            "parts": len(report.parts),
            "parts_written": report.written,
        }

    def _last_run_succeeded(self) -> bool:
        """Whether the pipeline's latest run that did work (not skipped) succeeded."""
        for past in store.list_runs(self.ws.warehouse, self.config.name, limit=50):
            if past.pipeline_run_id == self.run.pipeline_run_id or past.status == "skipped":
                continue
            return past.status == "succeeded"
        return False
