"""Predict: a model scores a dataset split or an uploaded CSV/Parquet file.

The page shows the first rows with their probabilities; "download all" gives
every row as CSV in the same layout as the API's ``/score`` and the CLI's
``predict`` (``row_id, predicted, p_<class>...``), with cells that start with
``=``, ``+``, ``-`` or ``@`` escaped by the flows so a spreadsheet shows them as
text instead of running them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from headwater.errors import HeadwaterError
from headwater.faces.http import DATASET_NAME_PATTERN, RUN_ID_PATTERN
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute, describe
from headwater.faces.web.results import StoredResult
from headwater.faces.web.routes.leaderboard import served_run
from headwater.flows import exploration, scoring
from headwater.flows.exploration import SPLITS
from headwater.flows.runs import RunRow, ServedModel
from headwater.flows.service import ESTIMATORS

__all__ = ["model_choices", "router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

ModelChoice = Annotated[str | None, Query(pattern=RUN_ID_PATTERN)]
DatasetChoice = Annotated[str | None, Query(pattern=DATASET_NAME_PATTERN)]
SplitChoice = Annotated[str | None, Query(pattern="^(" + "|".join(SPLITS) + ")$")]
RowCount = Annotated[int, Query(ge=1, le=1000)]


@dataclass(frozen=True)
class Choice:
    run: RunRow
    served: bool

    @property
    def caption(self) -> str:
        accuracy, rmse = self.run.metrics.get("test_accuracy"), self.run.metrics.get("test_rmse")
        score = f" · test accuracy {100 * accuracy:.1f}%" if isinstance(accuracy, float) else ""
        score += f" · test RMSE {rmse:.4g}" if isinstance(rmse, float) else ""
        mark = " · served" if self.served else ""
        return f"{self.run.run_id} · {self.run.dataset} · {self.run.model}{score}{mark}"


def model_choices(page: Page, *, kinds: frozenset[str] | None = None) -> list[Choice]:
    """Succeeded classifier runs, newest first, the served run of each dataset marked.

    ``kinds`` keeps only runs of datasets of those kinds (``image`` for drawing).
    """
    kind_of = {d.name: d.kind for d in page.service.datasets()}
    runs = [
        r
        for r in page.service.runs.runs(None)
        if r.status == "succeeded"
        and r.model in ESTIMATORS
        and (kinds is None or kind_of.get(r.dataset) in kinds)
    ]
    served = {name: served_run(page, name) for name in {r.dataset for r in runs}}
    return [Choice(r, served[r.dataset] == r.run_id) for r in reversed(runs)]


def default_choice(choices: list[Choice], wanted: str | None) -> Choice | None:
    for choice in choices:
        if choice.run.run_id == wanted:
            return choice
    return next((c for c in choices if c.served), choices[0] if choices else None)


@dataclass(frozen=True)
class Shown:
    """What the results table shows: the CSV header, the first rows, their true labels."""

    header: list[str]
    rows: list[list[str]]
    labels: list[str | None] | None
    total: int
    accuracy: float | None
    download: str
    source: str
    regression: bool = False
    coverage: float | None = None
    """A regressor's interval coverage (0.9): the columns after ``predicted`` are its ends."""


def _page(
    page: Page,
    *,
    model: str | None,
    dataset: str | None,
    split: str | None,
    rows: int,
    shown: Shown | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    choices = model_choices(page)
    chosen = default_choice(choices, model)
    return page.render(
        "predict.html",
        status=status,
        title="Predict",
        section="predict",
        choices=choices,
        chosen=chosen,
        datasets=page.service.datasets(),
        dataset=dataset or (chosen.run.dataset if chosen else None),
        splits=SPLITS,
        split=split or "test",
        rows=rows,
        shown=shown,
        error=error,
    )


def _load(page: Page, run_id: str) -> ServedModel:
    return page.service.models.load(run_id, None)


def _split_shown(page: Page, run_id: str, dataset: str, split: str, rows: int) -> Shown:
    served = _load(page, run_id)
    scored = exploration.score_split(page.workspace, served, dataset, split)
    query = f"model={run_id}&dataset={dataset}&split={split}"
    return Shown(
        scored.header,
        scored.rows[:rows],
        scored.labels[:rows],
        len(scored.rows),
        scored.accuracy,
        f"/ui/predict/predictions.csv?{query}",
        f"the {split} split of {dataset}",
        served.regression,
        served.coverage,
    )


@router.get("/predict")
async def predict_page(
    page: PageDep,
    model: ModelChoice = None,
    dataset: DatasetChoice = None,
    split: SplitChoice = None,
    rows: RowCount = 20,
) -> Response:
    """The two forms; with ``model``, ``dataset`` and ``split`` given, that split's results."""
    shown = None
    if model and dataset and split:
        try:
            shown = await anyio.to_thread.run_sync(_split_shown, page, model, dataset, split, rows)
        except HeadwaterError as error:
            status, message = describe(error)
            return await anyio.to_thread.run_sync(
                lambda: _page(
                    page,
                    model=model,
                    dataset=dataset,
                    split=split,
                    rows=rows,
                    error=message,
                    status=status,
                )
            )
    return await anyio.to_thread.run_sync(
        lambda: _page(page, model=model, dataset=dataset, split=split, rows=rows, shown=shown)
    )


def _csv_lines(header: list[str], rows: list[list[str]]) -> Iterator[str]:
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(header)
    for start in range(0, len(rows), 2048):
        writer.writerows(rows[start : start + 2048])
        yield sink.getvalue()
        sink.seek(0)
        sink.truncate()
    yield sink.getvalue()


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@router.get("/predict/predictions.csv")
async def download_split(
    page: PageDep,
    model: Annotated[str, Query(pattern=RUN_ID_PATTERN)],
    dataset: Annotated[str, Query(pattern=DATASET_NAME_PATTERN)],
    split: Annotated[str, Query(pattern="^(" + "|".join(SPLITS) + ")$")],
) -> Response:
    """Every row of the split scored, as CSV (formula cells escaped)."""

    def score() -> exploration.ScoredSplit:
        return exploration.score_split(page.workspace, _load(page, model), dataset, split)

    scored = await anyio.to_thread.run_sync(score)
    return StreamingResponse(
        _csv_lines(scored.header, scored.rows),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"predictions-{model}-{dataset}-{split}.csv"),
    )


def _score_upload(page: Page, run_id: str, upload: UploadFile, rows: int) -> Shown:
    served = _load(page, run_id)
    filename = upload.filename or "upload.csv"
    staged = scoring.stage(iter(lambda: upload.file.read(1 << 20), b""), filename)
    scored = scoring.score_preview(page.workspace, served, staged, rows=rows)
    if not page.web.results.fits(len(scored.csv)):
        raise WebError(
            f"The predictions for {filename} are too large to keep for download here; "
            f"score the file with the API instead: POST /models/{run_id}/score",
            status=413,
        )
    key = page.web.results.put(StoredResult(f"predictions-{run_id}.csv", scored.csv))
    return Shown(
        scored.header,
        scored.rows,
        None,
        scored.total,
        None,
        f"/ui/predict/results/{key}.csv",
        filename,
        served.regression,
        served.coverage,
    )


@router.post("/predict/file")
async def predict_file(request: Request, page: PageDep) -> Response:
    """Score an uploaded CSV or Parquet file; its predictions stay downloadable for a while."""
    form = await request.form(max_files=1, max_fields=8)
    model = str(form.get("model") or "")
    text_rows = str(form.get("rows") or "20")
    rows = int(text_rows) if text_rows.isdigit() and 1 <= int(text_rows) <= 1000 else 20
    upload = form.get("file")
    try:
        if not model:
            raise WebError("Choose a model first; train one on the Train page if there is none.")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise WebError("Choose a CSV or Parquet file to score.")
        shown = await anyio.to_thread.run_sync(_score_upload, page, model, upload, rows)
    except (HeadwaterError, WebError) as error:
        status, message = describe(error)
        return await anyio.to_thread.run_sync(
            lambda: _page(
                page, model=model, dataset=None, split=None, rows=rows, error=message, status=status
            )
        )
    finally:
        await form.close()
    return await anyio.to_thread.run_sync(
        lambda: _page(page, model=model, dataset=None, split=None, rows=rows, shown=shown)
    )


ResultKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{10,64}$")]


@router.get("/predict/results/{key}.csv")
def download_result(key: ResultKey, page: PageDep) -> Response:
    found = page.web.results.get(key)
    if found is None:
        raise WebError(
            "These predictions are no longer kept (the server keeps the last few); "
            "score the file again.",
            status=404,
        )
    return Response(
        found.csv, media_type="text/csv; charset=utf-8", headers=_attachment(found.filename)
    )
