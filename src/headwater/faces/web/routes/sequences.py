"""Sequences, URL first: analyze a training URL, train a named model, predict from a test URL.

What the keystroke app did, in three forms on one page. Analyze shows the first N
events, the features a model learns from and the invalid sequences; Train queues a run
(the LSTM, AdaBoost or another classifier, on one holdout) and the page then compares
every model of that dataset, reloading itself while one trains; Predict shows the first
N predictions of a test URL's pages and keeps all of them for a "Download CSV" link
(the store the Predict page uses for uploads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import RedirectResponse, Response

from headwater.errors import HeadwaterError
from headwater.faces.http import DATASET_NAME_PATTERN, RUN_ID_PATTERN
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute, describe
from headwater.faces.web.results import StoredResult
from headwater.faces.web.routes.runs import form_params, model_views
from headwater.flows.lifecycle import RUN_NAME_PATTERN
from headwater.flows.named_runs import UNFINISHED
from headwater.flows.params import PARAMS, SEQUENCE_PARAMS, Seed, checked_params, trainable
from headwater.flows.sequences import MAX_FIRST, SEQUENCE_MODELS
from headwater.flows.service import PageSource
from headwater.flows.training import TrainRequest

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

MODELS = {m: {**PARAMS, **SEQUENCE_PARAMS}[m] for m in SEQUENCE_MODELS}
MAX_FIELDS = 16 + sum(len(trainable(m)) for m in MODELS)
REFRESH_S = 2
"""While a model of the compared dataset trains, the page reloads itself this often."""


class PagesForm(BaseModel):
    """A URL of pages and how to read them; the rules are the flows' (N at most MAX_FIRST)."""

    model_config = ConfigDict(extra="allow")

    url: AnyHttpUrl | None = None
    records: str | None = Field(default=None, max_length=200)
    label: str | None = Field(default=None, max_length=200)
    paginate: str | None = Field(default=None, max_length=200)
    first: int = Field(default=20, ge=1, le=MAX_FIRST)

    def source(self) -> PageSource:
        if self.url is None:
            raise WebError("Enter the URL of the first page.")
        return PageSource(str(self.url), self.records, self.label, self.paginate)


class AnalyzeForm(PagesForm):
    dataset: str | None = Field(default=None, pattern=DATASET_NAME_PATTERN)


class SequenceTrainForm(PagesForm):
    """A URL (loaded once; it wins over ``dataset``) or a sequence dataset, the model and its
    parameters, a name."""

    dataset: str | None = Field(default=None, pattern=DATASET_NAME_PATTERN)
    model: str = "lstm"
    holdout: float = Field(default=0.2, gt=0, lt=1)
    name: str | None = Field(default=None, pattern=RUN_NAME_PATTERN)
    seed: Seed = 0

    def to_core(self) -> tuple[TrainRequest, PageSource | None]:
        if self.model not in MODELS:
            raise WebError(f"Choose one of the models: {', '.join(MODELS)}.")
        if self.url is None and not self.dataset:
            raise WebError("Enter a training URL or choose a dataset.")
        params = form_params(self.model, self.model_extra or {})
        request = TrainRequest(
            "" if self.url is not None else str(self.dataset),
            self.model,
            checked_params(self.model, {**params, "seed": self.seed}),
            seed=self.seed,
            holdout=self.holdout,
            name=self.name,
        )
        return request, (self.source() if self.url is not None else None)


class PredictForm(PagesForm):
    model: str = Field(pattern=RUN_ID_PATTERN)


DatasetChoice = Annotated[str | None, Query(pattern=DATASET_NAME_PATTERN)]


def _page(
    page: Page,
    *,
    values: Mapping[str, object],
    dataset: str | None = None,
    status: int = 200,
    **shown: object,
) -> Response:
    """The three forms, the comparison of ``dataset``'s models, and what a form asked for."""
    datasets = page.service.sequence_datasets()
    chosen = dataset if dataset in datasets else (datasets[0] if datasets else None)
    compared = page.service.compare_runs(chosen) if chosen else []
    reload = page.request.method == "GET"  # a form's answer is not fetched again by itself
    return page.render(
        "sequences.html",
        shown,
        status=status,
        title="Sequences from a URL",
        section="sequences",
        values={"first": 20, "holdout": 0.2, "model": "lstm", "seed": 0, **values},
        datasets=datasets,
        chosen=chosen,
        compared=compared,
        refresh=REFRESH_S if reload and any(r.run.status in UNFINISHED for r in compared) else None,
        runs=page.service.sequence_runs(),
        models=model_views(values, MODELS),
        max_first=MAX_FIRST,
    )


async def _form(request: Request) -> dict[str, object]:
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    return {k: str(v).strip() for k, v in form.items() if str(v).strip() != ""}


async def _refused(
    page: Page, values: Mapping[str, object], error: Exception, form: str
) -> Response:
    if isinstance(error, ValidationError):
        status, message = (
            422,
            "Check the form. "
            + "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                for e in error.errors()
            ),
        )
    else:
        status, message = describe(error)
    return await anyio.to_thread.run_sync(
        lambda: _page(page, values=values, status=status, error=message, form=form)
    )


@router.get("/sequences")
def sequences_page(page: PageDep, dataset: DatasetChoice = None) -> Response:
    """The forms, and every model trained on ``dataset`` (default: the first sequence set)."""
    return _page(page, values={"dataset": dataset} if dataset else {}, dataset=dataset)


@router.post("/sequences/analyze")
async def analyze(request: Request, page: PageDep) -> Response:
    """Load the URL's pages (once) and show its first N events, features and invalid ones."""
    page.require_write("/ui/sequences")
    values = await _form(request)
    try:
        form = AnalyzeForm.model_validate(values)
        found = await anyio.to_thread.run_sync(
            lambda: page.service.analyze(form.source(), dataset=form.dataset, first=form.first)
        )
    except (ValidationError, HeadwaterError, WebError) as error:
        return await _refused(page, values, error, "analyze")
    shown = {**values, "dataset": found.dataset}
    return await anyio.to_thread.run_sync(
        lambda: _page(page, values=shown, dataset=found.dataset, analysis=found, form="analyze")
    )


@router.post("/sequences/train")
async def train(request: Request, page: PageDep) -> Response:
    """Queue the run, then show the comparison of every model of its dataset."""
    page.require_write("/ui/sequences")
    values = await _form(request)
    try:
        core, source = SequenceTrainForm.model_validate(values).to_core()
        run_id = await anyio.to_thread.run_sync(page.service.train_sequences, core, source)
        dataset = (await anyio.to_thread.run_sync(page.service.runs.detail, run_id)).run.dataset
    except (ValidationError, HeadwaterError, WebError) as error:
        return await _refused(page, values, error, "train")
    return RedirectResponse(f"/ui/sequences?dataset={quote(dataset)}#compare", status_code=303)


@router.post("/sequences/predict")
async def predict(request: Request, page: PageDep) -> Response:
    """The first N predictions of a test URL's pages; all of them kept for download."""
    page.require_write("/ui/sequences")
    values = await _form(request)
    try:
        form = PredictForm.model_validate(values)
        table = await anyio.to_thread.run_sync(
            lambda: page.service.predict_sequences(
                form.model, form.source(), first=form.first, as_csv=True
            )
        )
        if not page.web.results.fits(len(table.csv)):
            raise WebError(
                "These predictions are too large to keep for download here; ask the API: "
                "POST /sequences/predictions.csv",
                status=413,
            )
    except (ValidationError, HeadwaterError, WebError) as error:
        return await _refused(page, values, error, "predict")
    key = page.web.results.put(StoredResult(f"predictions-{table.run_id}.csv", table.csv))
    return await anyio.to_thread.run_sync(
        lambda: _page(
            page,
            values=values,
            predictions=table,
            download=f"/ui/predict/results/{key}.csv",
            form="predict",
        )
    )
