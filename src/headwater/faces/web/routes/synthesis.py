"""Synthesis: the form, a synthesis run's page with live progress, then its report.

The page polls a small JSON status (``/ui/syntheses/{id}/status``) about twice a
second while the run is queued or running, showing its stage and epochs; once it
ended it fetches the report section as an HTML fragment. Everything is read from the
registry through the flows, so a page opened later shows the same report.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import RedirectResponse, Response

from headwater.errors import HeadwaterError
from headwater.faces.http import DATASET_NAME_PATTERN, RunId
from headwater.faces.web.context import Page, PageDep, WebRoute, describe, finite
from headwater.flows.params import Seed
from headwater.flows.synthesis import SynthesisRequest
from headwater.flows.synthesis_status import METHODS, SynthesisStatus

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

METHOD_HELP = {
    "pca": "PCA: principal components, a Gaussian mixture over them (fast)",
    "vae": "VAE: a conditional variational autoencoder (slower; learns in epochs)",
    "copula": "Copula: each column's own distribution joined by a Gaussian copula (baseline)",
}
FileName = Annotated[
    Literal["report.html", "worst_columns.png", "samples.png"], Path(description="A file.")
]


class SynthesisForm(BaseModel):
    """The form's fields; the flow checks the rest (the method for images, too many rows)."""

    dataset: str = Field(pattern=DATASET_NAME_PATTERN)
    method: Literal["pca", "vae", "copula"] = "pca"
    rows: int = Field(default=1000, ge=1, le=10_000_000)
    seed: Seed = 0

    def to_core(self) -> SynthesisRequest:
        return SynthesisRequest(self.dataset, self.method, self.rows, "", seed=self.seed)


def _form_page(
    page: Page, values: dict[str, object], *, error: str | None = None, status: int = 200
) -> Response:
    return page.render(
        "synthesize.html",
        status=status,
        title="Synthesize a dataset",
        section="synthesize",
        datasets=page.service.datasets(),
        methods=[(m, METHOD_HELP.get(m, m)) for m in METHODS],
        values=values,
        error=error,
    )


@router.get("/synthesize")
def synthesize_form(page: PageDep, dataset: str | None = None) -> Response:
    """The form, with ``?dataset=`` preselected."""
    return _form_page(page, {"dataset": dataset, "method": "pca", "rows": 1000, "seed": ""})


@router.post("/synthesize")
async def submit(request: Request, page: PageDep) -> Response:
    """Queue the synthesis and go to its page, which follows it live."""
    page.require_write("/ui/synthesize")
    form = await request.form(max_files=0, max_fields=8)
    values: dict[str, object] = {k: str(v) for k, v in form.items() if str(v).strip() != ""}
    try:
        core = SynthesisForm.model_validate(values).to_core()
        run_id = await anyio.to_thread.run_sync(page.service.runs.submit_synthesis, core)
    except (ValidationError, HeadwaterError) as error:
        status, message = describe(error) if isinstance(error, HeadwaterError) else (422, "")
        if isinstance(error, ValidationError):
            message = "Check the form. " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
        return await anyio.to_thread.run_sync(
            lambda: _form_page(page, values, error=message, status=status)
        )
    return RedirectResponse(f"/ui/syntheses/{run_id}", status_code=303)


def _view(status: SynthesisStatus) -> dict[str, object]:
    report = status.report or {}
    fidelity = report.get("fidelity") if isinstance(report.get("fidelity"), dict) else {}
    columns = fidelity.get("columns") if isinstance(fidelity, dict) else None
    worst = sorted(columns.items(), key=lambda kv: kv[1])[:8] if isinstance(columns, dict) else []
    return {
        "synthesis": status,
        "report": report,
        "fidelity": fidelity,
        "worst": worst,
        "base": f"/ui/syntheses/{status.run_id}",
    }


@router.get("/syntheses/{run_id}")
def synthesis_page(run_id: RunId, page: PageDep) -> Response:
    """A synthesis: what was asked, its progress while it runs, then its report."""
    status = page.service.runs.synthesis(run_id)
    return page.render(
        "synthesis.html",
        _view(status),
        title=f"Synthesis {run_id}",
        section="synthesize",
        live=not status.finished,
    )


@router.get("/syntheses/{run_id}/status")
def synthesis_status(run_id: RunId, page: PageDep) -> Response:
    """What the page polls: status, stage and the last epoch (no report)."""
    status = page.service.runs.synthesis(run_id)
    return JSONResponse(
        finite(
            {
                "status": status.status,
                "finished": status.finished,
                "progress": status.progress,
                "error": status.error,
            }
        )
    )


@router.get("/syntheses/{run_id}/result")
def synthesis_result(run_id: RunId, page: PageDep) -> Response:
    """The report section alone, fetched by the page once the run ended."""
    return page.render("synthesis_result.html", _view(page.service.runs.synthesis(run_id)))


@router.get("/syntheses/{run_id}/files/{name}")
def synthesis_file(run_id: RunId, name: FileName, page: PageDep) -> Response:
    media = "image/png" if name.endswith(".png") else "text/html; charset=utf-8"
    return FileResponse(page.service.runs.synthesis_file(run_id, name), media_type=media)
