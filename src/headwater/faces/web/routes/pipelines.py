"""Pipelines: each declared pipeline, a Start button with live steps, its history and chart.

Start posts the form; the page's script (static/pipelines.js) sends it as a fetch and
then polls the run's steps (``/ui/pipelines/{name}/runs/{id}``, JSON) until it ends,
and reloads the page, whose history and chart then hold the new run. Without the
script the form still works: it redirects to the page, which shows the run's steps.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from headwater.faces.http import RunId
from headwater.faces.web.charts import monitor_svg
from headwater.faces.web.context import PageDep, WebRoute, json_message
from headwater.flows.pipelines import pipeline_run_dict

__all__ = ["router", "step_summary"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

PipelineName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


def _score(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"


def step_summary(step: str, outcome: dict[str, object]) -> str:
    """One line of what a step found, for the progress list."""
    if not outcome:
        return ""
    if step == "ingest":
        batches, carried = outcome.get("batch_ids"), outcome.get("carried_over")
        kept = len(carried) if isinstance(carried, list) else 0
        count = (len(batches) if isinstance(batches, list) else 0) - kept
        again = f", {kept} from a run that did not finish" if kept else ""
        return f"{outcome.get('rows_loaded', 0)} rows in {count} new batch(es){again}"
    if step == "quality":
        found = outcome.get("batches")
        return f"{len(found)} batch(es) checked" if isinstance(found, dict) else ""
    if step == "train":
        trials = f", best of {outcome['trials']} trials" if "trials" in outcome else ""
        return f"run {outcome.get('run_id')}{trials}"
    if step == "evaluate":
        return f"accuracy {_score(outcome.get('accuracy'))} on {outcome.get('rows')} test rows"
    if step == "compare":
        if outcome.get("champion") is None:
            return "no model served yet"
        return (
            f"challenger {_score(outcome.get('challenger_score'))} vs champion "
            f"{_score(outcome.get('champion_score'))} ({outcome.get('metric')})"
        )
    if step == "images-ingest":
        return (
            f"{outcome.get('rows_loaded', 0)} new of {outcome.get('images_found', 0)} images, "
            f"{outcome.get('rejected', 0)} set aside"
        )
    if step == "embed":
        return f"{outcome.get('rows', 0)} new vectors ({outcome.get('model')})"
    if step == "export":
        return (
            f"{outcome.get('rows', 0)} rows in {outcome.get('parts', 0)} parts, "
            f"{outcome.get('parts_written', 0)} files written"
        )
    if step == "promote":
        return (
            f"promoted; serving {outcome.get('serving')}"
            if outcome.get("promoted")
            else (f"not promoted ({outcome.get('policy')}); serving {outcome.get('serving')}")
        )
    return ""


def _run_view(found: dict[str, object]) -> dict[str, object]:
    """A run as the page and its script show it: each step with a one-line summary."""
    steps = found.get("steps")
    shown = [
        {**s, "summary": step_summary(str(s["step"]), s.get("outcome") or {})}
        for s in (steps if isinstance(steps, list) else [])
    ]
    return {**found, "steps": shown}


@router.get("/pipelines")
def pipelines_page(page: PageDep, run: RunId | None = None) -> Response:
    """Every declared pipeline: schedule, next fire, Start, steps, history and chart."""
    views = page.service.pipelines.overview()
    shown = []
    for view in views:
        last = view.summary.get("last_run")
        shown.append(
            {
                "summary": view.summary,
                "last": _run_view(last) if isinstance(last, dict) else None,
                "history": view.history,
                "chart": monitor_svg(view.monitor) if view.monitor is not None else None,
            }
        )
    notice = None
    for view in views:
        for past in view.history:
            if past.pipeline_run_id == run:
                notice = f"Pipeline run {run} of {past.pipeline}: {past.status}" + (
                    f" ({past.outcome})" if past.outcome else ""
                )
    return page.render(
        "pipelines.html", title="Pipelines", section="pipelines", pipelines=shown, notice=notice
    )


@router.post("/pipelines/{name}/start")
async def start(name: PipelineName, request: Request, page: PageDep) -> Response:
    """Start the pipeline now; the script follows it, a plain form goes back to the page."""
    page.require_write("/ui/pipelines")
    form = await request.form(max_files=0, max_fields=4)
    force = str(form.get("force", "")) == "on"
    run = await anyio.to_thread.run_sync(lambda: page.service.pipelines.start(name, force=force))
    status_url = f"/ui/pipelines/{name}/runs/{run.pipeline_run_id}"
    if "application/json" in request.headers.get("accept", ""):
        return json_message(
            {"pipeline_run_id": run.pipeline_run_id, "status_url": status_url}, status=202
        )
    return RedirectResponse(f"/ui/pipelines?run={run.pipeline_run_id}", status_code=303)


@router.get("/pipelines/{name}/runs/{run_id}")
def run_status(name: PipelineName, run_id: RunId, page: PageDep) -> Response:
    """A run's status and every step's, as JSON for the page's script."""
    found = pipeline_run_dict(page.service.pipelines.run(name, run_id), every_step=True)
    return json_message(_run_view(found))
