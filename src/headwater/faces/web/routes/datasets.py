"""Datasets: the list with ingest forms (upload, URL), and a dataset's "analyze" page."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, BinaryIO
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from headwater.errors import HeadwaterError
from headwater.faces.http import DATASET_NAME_PATTERN, DatasetName
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute, describe, json_message
from headwater.flows import exploration
from headwater.flows.reports import IngestReport, dataset_name_for
from headwater.flows.training_data import dataset_features

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

CHUNK_BYTES = 1024 * 1024
HIDDEN_COLUMNS = frozenset({"pixels", "row_hash"})
"""Shown as thumbnails (pixels) or of no use to a reader (row_hash) in the rows table."""


@router.get("/")
def list_datasets(page: PageDep) -> Response:
    """Every dataset with its rows, splits and last batch; the ingest forms below."""
    return page.render(
        "datasets.html",
        title="Datasets",
        section="datasets",
        datasets=page.service.datasets(),
        max_upload_bytes=page.config.max_upload_bytes,
    )


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while piece := source.read(CHUNK_BYTES):
        yield piece


class IngestForm(BaseModel):
    """The fields beside the file or URL: where to load it and which column is the label."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    dataset: str = ""
    label: str = ""
    url: str = ""
    records: str = ""
    """With a URL: follow the pages of a JSON API, each page's records at this path."""
    paginate: str = ""

    def dataset_for(self, filename: str) -> str:
        """The name typed, or one made from the file's name; a bad name is refused here."""
        if not self.dataset:
            return dataset_name_for(Path(filename))
        if not re.fullmatch(DATASET_NAME_PATTERN, self.dataset):
            raise WebError(
                f"{self.dataset[:70]!r} is not a dataset name: use lowercase letters, digits "
                "and _, starting with a letter (e.g. orders_2024)."
            )
        return self.dataset

    @property
    def label_column(self) -> str | None:
        return self.label[:200] or None

    def shown(self) -> dict[str, str]:
        return self.model_dump()


def _fields(form: FormData) -> IngestForm:
    """The form's text fields (the file is not one) as an `IngestForm`."""
    return IngestForm.model_validate({k: v for k, v in form.items() if isinstance(v, str)})


def _loaded(report: IngestReport) -> str:
    query = {
        "loaded": report.rows_loaded,
        "duplicates": report.rows_duplicate,
        "quarantined": report.rows_quarantined,
    }
    return f"/ui/datasets/{report.dataset}?{urlencode(query)}"


def _refused(page: Page, error: Exception, *, form: dict[str, str]) -> Response:
    """The datasets page again with the message at the top (JSON for the upload script)."""
    status, message = describe(error)
    if "application/json" in page.request.headers.get("accept", ""):
        return json_message({"error": message}, status=status)
    return page.render(
        "datasets.html",
        status=status,
        title="Datasets",
        section="datasets",
        datasets=page.service.datasets(),
        max_upload_bytes=page.config.max_upload_bytes,
        error=message,
        form=form,
    )


@router.post("/ui/datasets/upload")
async def upload(request: Request, page: PageDep) -> Response:
    """Load an uploaded file as a new batch; the page script shows the upload's progress."""
    page.require_write("/")
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file")
    fields = IngestForm()
    try:
        fields = _fields(form)
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise WebError("Choose a file to upload first.")
        filename = upload.filename
        dataset, label = fields.dataset_for(filename), fields.label_column
        source = upload.file

        def ingest() -> IngestReport:
            return page.service.ingest_stream(
                _chunks(source), filename, dataset=dataset, label=label
            )

        report = await anyio.to_thread.run_sync(ingest)
    except (HeadwaterError, WebError) as error:
        return await anyio.to_thread.run_sync(partial(_refused, page, error, form=fields.shown()))
    finally:
        await form.close()
    target = _loaded(report)
    if "application/json" in request.headers.get("accept", ""):
        return json_message({"redirect": target})
    return RedirectResponse(target, status_code=303)


@router.post("/ui/datasets/fetch")
async def fetch(request: Request, page: PageDep) -> Response:
    """Download an http(s) URL on the server and load it (public addresses only, as the API);
    with a records path, every page of a paginated JSON API, as one batch."""
    page.require_write("/")
    form = await request.form(max_files=0, max_fields=8)
    fields = IngestForm()
    try:
        fields = _fields(form)
        url = fields.url
        if not url.startswith(("http://", "https://")):
            raise WebError("Give an http:// or https:// URL of a file to load.")
        dataset = fields.dataset_for(url.rsplit("/", 1)[-1].split("?")[0])
        label = fields.label_column
        records, paginate = fields.records[:200] or None, fields.paginate[:200] or None
        report = await anyio.to_thread.run_sync(
            lambda: page.service.ingest_url(
                url, dataset=dataset, label=label, records=records, paginate=paginate
            )
        )
    except (HeadwaterError, WebError) as error:
        return await anyio.to_thread.run_sync(partial(_refused, page, error, form=fields.shown()))
    return RedirectResponse(_loaded(report), status_code=303)


RowCount = Annotated[int, Query(ge=1, le=1000, description="How many first rows to show.")]


@router.get("/ui/datasets/{name}")
def analyze(
    name: DatasetName,
    page: PageDep,
    rows: RowCount = 20,
    loaded: int | None = None,
    duplicates: int = 0,
    quarantined: int = 0,
) -> Response:
    """Schema, first rows, column summaries, the features a model will train on (and the
    columns left out, with why), labels, sample images, batches and their quality."""
    workspace = page.workspace
    summary = page.service.dataset(name)
    limit = min(rows, workspace.settings.max_show_rows)
    first = workspace.rows(name, limit=limit) if summary.rows else []
    columns = [c for c in (first[0] if first else {}) if c not in HIDDEN_COLUMNS]
    reports = {r.batch_id: r for r in workspace.quality(name)}
    distribution = exploration.label_distribution(workspace, name)
    samples = [
        (s, "data:image/png;base64," + base64.b64encode(s.png).decode())
        for s in exploration.sample_images(workspace, name, limit=24)
    ]
    notice = None
    if loaded is not None:
        notice = f"Loaded {loaded:,} new rows ({duplicates:,} duplicates skipped"
        notice += f", {quarantined:,} quarantined)." if quarantined else ")."
    return page.render(
        "dataset.html",
        title=f"Dataset {name}",
        section="datasets",
        dataset=summary,
        rows=first,
        row_columns=columns,
        row_limit=limit,
        max_rows=min(1000, workspace.settings.max_show_rows),
        summaries=exploration.column_summaries(workspace, name),
        features=dataset_features(workspace, name) if summary.kind != "image" else [],
        distribution=distribution,
        samples=samples,
        reports=reports,
        notice=notice,
    )
