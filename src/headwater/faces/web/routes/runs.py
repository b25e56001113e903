"""Training: the form, a run's page with live progress, its plots and final metrics.

Progress reaches the page as server-sent events: one ``epoch`` event per epoch
the registry has recorded (sent one by one even when several landed between two
looks, so none is skipped), a ``status`` event when the run starts, and a
``done`` event once it succeeded or failed, after which the page fetches the
metrics and plots as an HTML fragment. The registry is read, not the training
thread, so a page opened on another machine, or reloaded, shows the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from starlette.responses import RedirectResponse, Response

from headwater.errors import HeadwaterError
from headwater.faces.http import DATASET_NAME_PATTERN, RunId
from headwater.faces.web.context import (
    Page,
    PageDep,
    WebRoute,
    describe,
    finite,
    json_message,
)
from headwater.flows.params import (
    COMMON_FIELDS,
    PARAMS,
    Params,
    Seed,
    allowed,
    checked_params,
    param_kind,
    trainable,
)
from headwater.flows.runs import ENDED, RunDetail
from headwater.flows.training import TrainRequest

__all__ = ["PARAM_SEPARATOR", "form_params", "model_views", "router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

FINISHED = frozenset(ENDED)
"""A run in one of these has ended (``pruned`` too: a search stopped it): the page stops
following it, and its event stream says ``done``."""
POLL_S = 0.25
STREAM_S = 15 * 60.0
"""One event stream lasts at most this long; the browser reconnects and resumes after it."""
PARAM_SEPARATOR = "-"
"""A model's parameter is the form field ``<model>-<name>`` (``mlp-density``): models share
names (``learning_rate``) with their own ranges, and only the chosen model's are read."""


def form_params(model: str, fields: Mapping[str, object]) -> dict[str, object]:
    """The fields ``<model>-<name>`` the form filled in, by name (blank: the default)."""
    prefix = model + PARAM_SEPARATOR
    return {
        key.removeprefix(prefix): value
        for key, value in fields.items()
        if key.startswith(prefix) and str(value).strip() != ""
    }


class TrainForm(BaseModel):
    """The train form: the common fields here, each model's parameters as ``<model>-<name>``.

    The parameters are checked by the model's parameter model (`flows.params`), the same
    rules as the CLI and the API, so this form has no ranges of its own.
    """

    model_config = ConfigDict(extra="allow")

    dataset: str = Field(pattern=DATASET_NAME_PATTERN)
    model: str = "mlp"
    seed: Seed = 0
    evaluation: Literal["holdout", "cv"] = "holdout"
    holdout: float = Field(default=0.1, gt=0, lt=1)
    cv: int = Field(default=5, ge=2, le=20)
    task: Literal["", "classification", "regression"] = ""
    """Empty: the task inferred from the label; the model must be for the task either way."""

    def params(self) -> dict[str, object]:
        """The chosen model's parameters the form filled in (blank ones keep the default)."""
        return form_params(self.model, self.model_extra or {})

    def to_core(self) -> TrainRequest:
        params = checked_params(self.model, {**self.params(), "seed": self.seed})
        return TrainRequest(
            self.dataset,
            self.model,
            params,
            seed=self.seed,
            holdout=self.holdout if self.evaluation == "holdout" else None,
            cv=self.cv if self.evaluation == "cv" else None,
            task=self.task or None,
        )


MAX_FIELDS = len(TrainForm.model_fields) + sum(len(trainable(m)) for m in PARAMS) + 8


@dataclass(frozen=True)
class FieldView:
    """One parameter as the form shows it: input attributes and help, from its field."""

    id: str
    label: str
    kind: str
    value: object
    help: str
    low: object = None
    high: object = None
    choices: tuple[str, ...] = ()
    slider: tuple[object, object] | None = None

    @property
    def step(self) -> str:
        return "1" if self.kind == "int" else "any"


def _label(name: str) -> str:
    words = name.replace("_", " ")
    return words.upper() if len(name) <= 2 else words[:1].upper() + words[1:]


def _field_view(model: str, name: str, field: FieldInfo, value: object) -> FieldView:
    kind, choices, _ = param_kind(field)
    default = "none" if field.default is None else field.default
    bounds = {
        attr: getattr(item, attr)
        for item in field.metadata
        for attr in ("ge", "gt", "le", "lt")
        if getattr(item, attr, None) is not None
    }
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    search = extra.get("x-search")
    slider = (
        (search["low"], search["high"])
        if extra.get("x-slider") and isinstance(search, dict)
        else None
    )
    rule = allowed(field)
    return FieldView(
        id=f"{model}{PARAM_SEPARATOR}{name}",
        label=_label(name),
        kind=kind,
        value="" if value is None else value,
        help=f"{field.description} {rule[:1].upper()}{rule[1:]}; default {default}.",
        low=bounds.get("ge", bounds.get("gt")),
        high=bounds.get("le", bounds.get("lt")),
        choices=choices,
        slider=slider,
    )


def model_views(
    values: Mapping[str, object], models: Mapping[str, type[Params]] = PARAMS
) -> list[dict[str, object]]:
    """Each model with its parameters' fields, showing ``values`` where the form sent some."""
    views: list[dict[str, object]] = []
    for model, kind in models.items():
        fields = [
            _field_view(
                model,
                name,
                field,
                values.get(f"{model}{PARAM_SEPARATOR}{name}", field.default),
            )
            for name, field in trainable(model).items()
        ]
        views.append({"name": model, "title": kind.model_config.get("title"), "fields": fields})
    return views


def _form_defaults() -> dict[str, object]:
    return {
        name: field.default
        for name, field in TrainForm.model_fields.items()
        if field.default is not PydanticUndefined
    }


def _form_error(error: ValidationError) -> str:
    parts = []
    for issue in error.errors():
        where = ".".join(str(p) for p in issue.get("loc", ()))
        parts.append(f"{where.replace('_', ' ')}: {issue.get('msg', 'is invalid')}")
    return "Check the form. " + "; ".join(parts)


def _train_page(
    page: Page, *, values: Mapping[str, object], error: str | None = None, status: int = 200
) -> Response:
    datasets = page.service.datasets()
    seed = COMMON_FIELDS["seed"]
    return page.render(
        "train.html",
        status=status,
        title="Train a model",
        section="train",
        datasets=datasets,
        models=model_views(values),
        seed_help=f"{seed.description} {allowed(seed)[:1].upper()}{allowed(seed)[1:]}.",
        values=values,
        error=error,
    )


@router.get("/train")
def train_form(page: PageDep, dataset: str | None = None) -> Response:
    """The train form, with ``?dataset=`` preselected."""
    return _train_page(page, values={**_form_defaults(), "dataset": dataset})


MODEL_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


@router.get("/train/suggestion")
def suggestion(
    page: PageDep,
    dataset: Annotated[str, Query(pattern=DATASET_NAME_PATTERN)],
    model: Annotated[str, Query(pattern=MODEL_PATTERN)],
) -> Response:
    """The best parameters the searches of this dataset and model found so far (JSON),
    the same answer as ``GET /datasets/{name}/suggestion``; ``searching`` while a short
    search the form started is going on."""
    return json_message(page.service.suggestions.get(dataset, model).to_dict())


@router.post("/train/suggestion")
async def start_search(
    page: PageDep,
    dataset: Annotated[str, Form(pattern=DATASET_NAME_PATTERN)],
    model: Annotated[str, Form(pattern=MODEL_PATTERN)],
) -> Response:
    """No parameters found yet: start a short search (a few trials, a minute at most)."""
    page.require_write("/ui/train")
    found = await anyio.to_thread.run_sync(page.service.suggestions.search, dataset, model)
    return json_message(found.to_dict(), status=202)


@router.post("/train")
async def submit(request: Request, page: PageDep) -> Response:
    """Queue the run and go to its page, which follows the training live."""
    page.require_write("/ui/train")
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    values: dict[str, object] = {k: str(v) for k, v in form.items() if str(v).strip() != ""}
    try:
        request_ = TrainForm.model_validate(values).to_core()
        run_id = await anyio.to_thread.run_sync(page.service.runs.submit, request_)
    except (ValidationError, HeadwaterError) as error:
        status, message = (
            (422, _form_error(error)) if isinstance(error, ValidationError) else describe(error)
        )
        shown = {**_form_defaults(), **values}
        return await anyio.to_thread.run_sync(
            lambda: _train_page(page, values=shown, error=message, status=status)
        )
    return RedirectResponse(f"/ui/runs/{run_id}", status_code=303)


def _epochs_of(detail: RunDetail) -> int | None:
    total = detail.run.progress.get("epochs") or detail.run.params.get("epochs")
    return int(str(total)) if total is not None else None


def _result_context(detail: RunDetail) -> dict[str, object]:
    metrics = detail.run.metrics
    plots = sorted(detail.plots())
    order = {"learning_curves.png": 0, "confusion_matrix.png": 1, "predictions.png": 2}
    return {
        "run": detail.run,
        "detail": detail,
        "metrics": metrics,
        "test": metrics.get("test") if isinstance(metrics.get("test"), dict) else None,
        "plots": sorted(plots, key=lambda p: order.get(p, 9)),
        "batches": sorted({b for d in detail.data for b in d.batch_ids}),
    }


@router.get("/runs/{run_id}")
def run_page(run_id: RunId, page: PageDep) -> Response:
    """A run: parameters, then live progress while it trains, then metrics and plots."""
    detail = page.service.runs.detail(run_id)
    live = detail.run.status not in FINISHED
    return page.render(
        "run.html",
        _result_context(detail),
        title=f"Run {run_id}",
        section="train",
        live=live,
        epochs=[] if live else detail.epochs,
        total_epochs=_epochs_of(detail),
    )


@router.get("/runs/{run_id}/result")
def run_result(run_id: RunId, page: PageDep) -> Response:
    """The metrics and plots section alone, fetched by the page when the run is done."""
    detail = page.service.runs.detail(run_id)
    return page.render("run_result.html", _result_context(detail))


PlotName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


@router.get("/runs/{run_id}/plots/{plot}.png")
def run_plot(run_id: RunId, plot: PlotName, page: PageDep) -> Response:
    return FileResponse(page.service.runs.plot(run_id, f"{plot}.png"), media_type="image/png")


def _event(kind: str, payload: Mapping[str, object], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(finite(payload), allow_nan=False)}\n\n"


@router.get("/runs/{run_id}/events")
async def run_events(run_id: RunId, request: Request, page: PageDep) -> Response:
    """Server-sent events: each recorded epoch once, status changes, then ``done``."""
    first = await anyio.to_thread.run_sync(page.service.runs.detail, run_id)
    last_seen = request.headers.get("last-event-id", "")
    sent = int(last_seen) if last_seen.isdigit() else 0

    async def stream() -> AsyncIterator[str]:
        nonlocal sent
        detail, status = first, ""
        deadline = time.monotonic() + STREAM_S
        yield "retry: 1000\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            run = detail.run
            if run.status != status:
                status = run.status
                yield _event("status", {"status": status, "epochs": _epochs_of(detail)})
            for epoch in detail.epochs:
                number = int(str(epoch.get("epoch", 0)))
                if number > sent:
                    sent = number
                    payload = {**epoch, "epochs": _epochs_of(detail)}
                    yield _event("epoch", payload, event_id=number)
            if status in FINISHED:
                yield _event("done", {"status": status, "error": run.error})
                return
            await anyio.sleep(POLL_S)
            detail = await anyio.to_thread.run_sync(page.service.runs.detail, run_id)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
