"""Request and response bodies: what the OpenAPI document promises, field by field.

Built from the core's own summaries with ``from_core`` so routes stay one line.
Server-side paths never appear: a batch shows its file name, and its origin only
when that was a URL the client gave.
"""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, Union

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from headwater.faces.api.page_fields import MaxPages, Paginate, RecordsPath
from headwater.faces.http import scrub
from headwater.flows.inputs import JsonScalar
from headwater.flows.lifecycle import RUN_NAME_PATTERN
from headwater.flows.params import COMMON_PARAMS, PARAMS, SEQUENCE_PARAMS, Params, Seed
from headwater.flows.pipelines import PipelineRunRow, pipeline_run_dict
from headwater.flows.reports import BatchReport, IngestReport, QualityReport
from headwater.flows.runs import RunDetail, RunRow, ranking_order, run_summary, run_task
from headwater.flows.serving import Prediction
from headwater.flows.synthesis import SynthesisRequest
from headwater.flows.synthesis_status import SynthesisStatus
from headwater.flows.training import TrainRequest
from headwater.flows.tuning import Suggestion
from headwater.flows.workspace import DATASET_NAME_PATTERN, BatchSummary, DatasetSummary

__all__ = [
    "AliasIn",
    "AliasOut",
    "BatchOut",
    "DatasetDetailOut",
    "DatasetListOut",
    "DatasetOut",
    "HealthOut",
    "IngestOut",
    "LeaderboardOut",
    "PipelineAcceptedOut",
    "PipelineHistoryOut",
    "PipelineListOut",
    "PipelineOut",
    "PipelineRunOut",
    "PipelineStartIn",
    "PipelineStepOut",
    "PredictIn",
    "PredictOut",
    "PredictionOut",
    "QualityCheckOut",
    "QualityReportOut",
    "QuarantineOut",
    "QuarantineRowOut",
    "QuarantineStatus",
    "RankedRunOut",
    "RowsOut",
    "RunAcceptedOut",
    "RunDetailOut",
    "RunIn",
    "RunListOut",
    "RunOut",
    "SourceIn",
    "SuggestionOut",
    "SynthesisIn",
    "SynthesisOut",
]

QuarantineStatus = Literal["quarantined", "released", "dropped", "all"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class HealthOut(_Out):
    status: Literal["ok"] = "ok"
    version: str
    warehouse: Literal["duckdb", "postgres"]
    datasets: int = Field(ge=0, description="How many datasets the warehouse holds.")


class DatasetOut(_Out):
    name: str
    kind: str = Field(description="tabular or image.")
    rows: int = Field(ge=0)
    splits: dict[str, int] = Field(description="Rows per split (train, validation, test...).")
    label_column: str | None
    task: Literal["classification", "regression"] | None = Field(
        default=None, description="What the label is, as inferred (train's task overrides it)."
    )
    task_reason: str | None = Field(default=None, description="Why that task.")
    columns: dict[str, str] = Field(description="Column name to Arrow type, tabular data only.")
    last_batch_at: datetime | None

    @classmethod
    def from_core(cls, summary: DatasetSummary) -> Self:
        return cls(
            name=summary.name,
            kind=summary.kind,
            rows=summary.rows,
            splits=summary.splits,
            label_column=summary.label_column,
            task=summary.task.task if summary.task else None,
            task_reason=summary.task.reason if summary.task else None,
            columns=summary.columns,
            last_batch_at=summary.last_batch_at,
        )


class DatasetListOut(_Out):
    datasets: list[DatasetOut]


class BatchOut(_Out):
    batch_id: int
    file_name: str
    origin_url: str | None = Field(description="The URL it was fetched from, if any.")
    raw_sha256: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    status: str = Field(description="succeeded, or failed (a batch refused by its checks).")

    @classmethod
    def from_core(cls, batch: BatchSummary) -> Self:
        return cls(
            batch_id=batch.batch_id,
            file_name=batch.file_name,
            origin_url=batch.origin_url,
            raw_sha256=batch.raw_sha256,
            started_at=batch.started_at,
            finished_at=batch.finished_at,
            rows_read=batch.rows_read,
            rows_loaded=batch.rows_loaded,
            rows_duplicate=batch.rows_duplicate,
            status=batch.status,
        )


class DatasetDetailOut(DatasetOut):
    labels: dict[str, dict[str, int]] = Field(description="Split to label to row count.")
    batches: list[BatchOut]

    @classmethod
    def from_core(cls, summary: DatasetSummary) -> Self:
        return cls(
            **DatasetOut.from_core(summary).model_dump(),
            labels=summary.labels,
            batches=[BatchOut.from_core(b) for b in summary.batches],
        )


class RowsOut(_Out):
    dataset: str
    limit: int
    offset: int
    rows: list[dict[str, JsonValue]] = Field(
        description="Rows as objects; binary values (pixels) as base64, timestamps ISO 8601."
    )

    @classmethod
    def from_core(
        cls, dataset: str, rows: list[dict[str, object]], *, limit: int, offset: int
    ) -> Self:
        return cls(
            dataset=dataset,
            limit=limit,
            offset=offset,
            rows=[{k: _json_value(v) for k, v in row.items()} for row in rows],
        )


def _json_value(value: object) -> JsonValue:
    """What JSON can carry: NaN and infinities become null, the rest text where needed."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


class SourceIn(BaseModel):
    """A file at a URL; with records, paginate or max_pages, the first page of a JSON API."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(
        description="An http(s) URL ending in the file name, or the first page of a JSON API."
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Label column of a tabular file; with pages, its path in each page.",
    )
    records: RecordsPath = None
    paginate: Paginate = None
    max_pages: MaxPages = None


class BatchIngestOut(_Out):
    file_name: str
    batch_id: int | None
    status: Literal["loaded", "unchanged"]
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    quality: str = Field(description="passed or warned (a failed batch is refused).")
    seconds: float
    splits: dict[str, int]

    @classmethod
    def from_core(cls, report: BatchReport) -> Self:
        return cls(
            file_name=report.file_name,
            batch_id=report.batch_id,
            status=report.status,
            rows_read=report.rows_read,
            rows_loaded=report.rows_loaded,
            rows_duplicate=report.rows_duplicate,
            rows_quarantined=report.rows_quarantined,
            quality=report.quality,
            seconds=round(report.seconds, 3),
            splits=report.splits,
        )


class IngestOut(_Out):
    dataset: str
    status: Literal["loaded", "unchanged"]
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    batch_ids: list[int | None]
    seconds: float
    batches: list[BatchIngestOut]

    @classmethod
    def from_core(cls, report: IngestReport) -> Self:
        return cls(
            dataset=report.dataset,
            status="unchanged" if report.unchanged else "loaded",
            rows_loaded=report.rows_loaded,
            rows_duplicate=report.rows_duplicate,
            rows_quarantined=report.rows_quarantined,
            batch_ids=[b.batch_id for b in report.batches],
            seconds=round(report.seconds, 3),
            batches=[BatchIngestOut.from_core(b) for b in report.batches],
        )


class QualityCheckOut(_Out):
    name: str
    level: Literal["row", "batch"]
    outcome: Literal["pass", "warn", "fail"]
    count: int
    detail: str


class QualityReportOut(_Out):
    dataset: str
    batch_id: int
    status: Literal["passed", "warned", "failed"]
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    contract_approved: bool
    checks: list[QualityCheckOut]

    @classmethod
    def from_core(cls, report: QualityReport) -> Self:
        return cls(
            dataset=report.dataset,
            batch_id=report.batch_id,
            status=report.status,
            rows_read=report.rows_read,
            rows_loaded=report.rows_loaded,
            rows_quarantined=report.rows_quarantined,
            rows_duplicate=report.rows_duplicate,
            contract_approved=report.contract_approved,
            checks=[
                QualityCheckOut(
                    name=c.name, level=c.level, outcome=c.outcome, count=c.count, detail=c.detail
                )
                for c in report.checks
            ],
        )


class QuarantineRowOut(_Out):
    id: int
    batch_id: int
    source_row: int
    check: str
    field: str | None
    value: str | None
    status: str
    quarantined_at: datetime
    decided_at: datetime | None
    note: str | None


class QuarantineOut(_Out):
    dataset: str
    status: QuarantineStatus
    rows: list[QuarantineRowOut]

    @classmethod
    def from_core(
        cls, dataset: str, status: QuarantineStatus, rows: list[dict[str, object]]
    ) -> Self:
        return cls(
            dataset=dataset,
            status=status,
            rows=[QuarantineRowOut.model_validate(r) for r in rows],
        )


# -- runs ------------------------------------------------------------------------------------

LeaderboardMetric = Literal[
    "test_accuracy",
    "test_macro_f1",
    "validation_accuracy",
    "cv_mean_accuracy",
    "test_rmse",
    "test_mae",
    "test_r2",
    "test_mape",
    "validation_rmse",
    "cv_mean_rmse",
]
ServedAlias = Literal["best", "latest"]


_ONE_EVALUATION: dict[str, JsonValue] = {
    "not": {
        "required": ["cv", "holdout"],
        "properties": {"cv": {"type": "integer"}, "holdout": {"type": "number"}},
    },
}
"""cv and holdout exclude each other: give at most one (in the schema, for clients too)."""


class _RunCommon(BaseModel):
    """What every train request carries besides its model's own parameters."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_EVALUATION)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        """Lax pydantic reads ``true`` as 1; no field here is a yes/no, so refuse it."""
        if isinstance(value, bool):
            raise ValueError("expected a number or text, got a boolean")
        return value

    dataset: str = Field(pattern=DATASET_NAME_PATTERN, examples=["mnist"])
    model: str
    holdout: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Hold out this fraction of train for validation; not with cv.",
    )
    cv: int | None = Field(
        default=None, ge=2, le=100, description="Also cross-validate, K folds; not with holdout."
    )
    task: Literal["classification", "regression"] | None = Field(
        default=None,
        description="What the label is: inferred from it (text or a few whole numbers: "
        "classification; other numbers: regression) unless given; the model must be for it.",
    )
    name: str | None = Field(
        default=None,
        pattern=RUN_NAME_PATTERN,
        description="A name for the run, kept as an alias on its dataset (never a file name): "
        "POST /sequences/predictions takes it as the model.",
        examples=["typing_lstm"],
    )

    @field_validator("cv")
    @classmethod
    def _cv_or_holdout(cls, cv: int | None, info: ValidationInfo) -> int | None:
        """The core refuses both too, but in the CLI's words; here they are the body's fields."""
        if cv is not None and info.data.get("holdout") is not None:
            raise ValueError("give cv or holdout, not both")
        return cv

    def to_core(self) -> TrainRequest:
        """Only the parameters the request gave; the others keep the model's defaults."""
        own = set(type(self).model_fields) - set(_RunCommon.model_fields) - COMMON_PARAMS
        params = self.model_dump(include=own & self.model_fields_set)
        seed = int(getattr(self, "seed", 0))
        return TrainRequest(
            self.dataset,
            self.model,
            params,
            seed=seed,
            holdout=self.holdout,
            cv=self.cv,
            task=self.task,
            name=self.name,
        )


def _run_in(model: str, params: type[Params]) -> type[_RunCommon]:
    """The request body that trains ``model``: its parameter model's fields, flat."""
    title = str(params.model_config.get("title") or model)
    tag = Literal[model]  # type: ignore[valid-type]  # a Literal built per model
    chosen = Field(
        default=model if model == "mlp" else ...,
        description=f"{title}." + (" The default model." if model == "mlp" else ""),
    )
    bases: tuple[type[Any], ...] = (_RunCommon, params)
    made: type[_RunCommon] = create_model(
        "RunIn" + "".join(part.title() for part in model.split("_")),
        __base__=bases,
        __doc__=f"Train a {title}; unset parameters take its defaults. "
        "cv and holdout exclude each other: give at most one.",
        model=(tag, chosen),
    )
    return made


def _model_of(body: object) -> str:
    """The request's ``model`` (``mlp`` when it names none), choosing its body schema."""
    if isinstance(body, dict):
        return str(body.get("model", "mlp"))
    return str(getattr(body, "model", "mlp"))


RUN_IN_MODELS: dict[str, type[_RunCommon]] = {
    model: _run_in(model, params) for model, params in {**PARAMS, **SEQUENCE_PARAMS}.items()
}
"""One request schema per model, generated from its parameter model (ranges, defaults, help);
the sequence models (``lstm``) train on sequence datasets only (409 on a table)."""

if TYPE_CHECKING:  # what a handler gets: one of the models above, all with to_core()
    RunIn = _RunCommon
else:
    RunIn = Annotated[
        Union[tuple(Annotated[kind, Tag(model)] for model, kind in RUN_IN_MODELS.items())],  # noqa: UP007
        Discriminator(
            _model_of,
            custom_error_type="unknown_model",
            custom_error_message=f"unknown model; known models: {', '.join(RUN_IN_MODELS)}",
        ),
    ]
"""The parameters of `headwater train`: ``model`` picks which parameters the body may hold."""


class RunAcceptedOut(_Out):
    run_id: str
    status: Literal["queued"] = "queued"
    url: str = Field(description="Where its status, progress and metrics can be read.")


class ProgressOut(_Out):
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = Field(default=None, description="Training loss of the last epoch.")
    accuracy: float | None = Field(default=None, description="Training accuracy, last epoch.")
    val_loss: float | None = None
    val_accuracy: float | None = None


class RunOut(_Out):
    run_id: str
    dataset: str
    model: str
    task: str | None = Field(default=None, description="classification or regression.")
    params: dict[str, JsonValue]
    seed: int
    evaluation: str
    status: str = Field(
        description="queued, running, succeeded, failed, interrupted, abandoned or pruned "
        "(a tuning trial its search stopped early)."
    )
    progress: ProgressOut = Field(description="The last finished epoch (neural nets only).")
    metrics: dict[str, JsonValue] = Field(description="Headline metrics, once it succeeded.")
    train_seconds: float | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    url: str

    @classmethod
    def from_core(cls, run: RunRow) -> Self:
        summary = run_summary(run)
        progress = {
            k: _finite(run.progress.get(k)) for k in ProgressOut.model_fields if k in run.progress
        }
        return cls(
            run_id=run.run_id,
            dataset=run.dataset,
            model=run.model,
            task=run_task(run),
            params={str(k): _json_value(v) for k, v in run.params.items()},
            seed=run.seed,
            evaluation=run.evaluation,
            status=run.status,
            progress=ProgressOut.model_validate(progress),
            metrics=_json_dict(summary["metrics"]),
            train_seconds=run.train_seconds,
            created_at=run.created_at,
            finished_at=run.finished_at,
            error=scrub(run.error) if run.error else None,
            url=f"/runs/{run.run_id}",
        )


class RunListOut(_Out):
    runs: list[RunOut]


class DataUsedOut(_Out):
    role: str = Field(description="train, validation or test.")
    rows: int
    batch_ids: list[int]


class RunDetailOut(RunOut):
    all_metrics: dict[str, JsonValue] = Field(
        description="Every metric recorded: per-class precision and recall, confusion matrix."
    )
    epochs: list[dict[str, JsonValue]] = Field(description="Metrics after each epoch.")
    plots: dict[str, str] = Field(description="Plot name to its URL (PNG).")
    data: list[DataUsedOut] = Field(description="The rows each role saw, by batch.")

    @classmethod
    def from_detail(cls, detail: RunDetail) -> Self:
        run = detail.run
        return cls(
            **RunOut.from_core(run).model_dump(),
            all_metrics=_json_dict(run.metrics),
            epochs=[_json_dict(e) for e in detail.epochs],
            plots={name: f"/runs/{run.run_id}/plots/{name}" for name in sorted(detail.plots())},
            data=[
                DataUsedOut(role=d.role, rows=d.row_count, batch_ids=list(d.batch_ids))
                for d in detail.data
            ],
        )


class RankedRunOut(RunOut):
    rank: int = Field(ge=1)
    score: float | None = Field(description="The run's value of the ranking metric.")


class LeaderboardOut(_Out):
    dataset: str
    metric: LeaderboardMetric
    order: Literal["lower is better", "higher is better"] = Field(
        description="How the metric ranks: errors (RMSE, MAE, MAPE) lower first."
    )
    runs: list[RankedRunOut]

    @classmethod
    def from_core(cls, dataset: str, metric: str, runs: list[RunRow]) -> Self:
        return cls(
            dataset=dataset,
            metric=metric,  # type: ignore[arg-type]  # one of LEADERBOARD_METRICS, checked by flows
            order=ranking_order(metric),  # type: ignore[arg-type]  # one of the two
            runs=[
                RankedRunOut(
                    **RunOut.from_core(run).model_dump(),
                    rank=rank,
                    score=_finite(run.metrics.get(metric)),
                )
                for rank, run in enumerate(runs, start=1)
            ],
        )


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A succeeded run.")


class AliasOut(_Out):
    dataset: str
    alias: ServedAlias
    run_id: str


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _json_dict(value: object) -> dict[str, JsonValue]:
    return {str(k): _json_value(v) for k, v in value.items()} if isinstance(value, dict) else {}


# -- predictions -----------------------------------------------------------------------------


class PredictIn(BaseModel):
    """Exactly one of: table rows, flat pixel rows, or one base64 PNG.

    Strict: an unknown field is refused, and so is ``true`` where a number belongs;
    each 422 names the field's path (``pixels.0.3``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[dict[str, JsonScalar]] | None = Field(
        default=None,
        description="Tabular models: one object per row, column name to value.",
        examples=[[{"price": 3.5, "name": "item 2"}]],
    )
    pixels: list[list[float]] | None = Field(
        default=None,
        description="Image models: one flat row-major list per image (784 numbers for 28x28). "
        "Whole numbers 0..255, or 0..1 floats when no value is above 1.",
    )
    image_base64: str | None = Field(
        default=None,
        max_length=1_500_000,
        description="Image models: one PNG of the model's size (28x28 for MNIST), base64.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("rows", "pixels", "image_base64") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "send exactly one of 'rows', 'pixels' or 'image_base64'"
                + (f"; got {', '.join(given)}" if given else "")
            )
        return self


class PredictionOut(_Out):
    label: str = Field(description="The most probable class (a regressor: its number as text).")
    probabilities: dict[str, float] = Field(
        description="Class to probability; sums to 1 (empty for a regressor)."
    )
    value: float | None = Field(default=None, description="A regressor's predicted number.")
    lower: float | None = Field(
        default=None,
        description="Low end of the regressor's prediction interval (see coverage); "
        "absent for a model that gives none (ridge, MLP).",
    )
    upper: float | None = Field(default=None, description="High end of the interval.")


class PredictOut(_Out):
    run_id: str = Field(description="The run whose model answered (an alias resolved).")
    classes: list[str]
    coverage: float | None = Field(
        default=None,
        description="Share of outcomes a prediction's lower..upper interval should hold "
        "(0.9); null when the model gives no interval.",
    )
    predictions: list[PredictionOut] = Field(description="One per row or image, in order.")

    @classmethod
    def from_core(cls, prediction: Prediction) -> Self:
        classes = prediction.classes
        if prediction.values is not None:
            values = prediction.values.tolist()
            no_ends: list[float | None] = [None] * len(values)
            lower = no_ends if prediction.lower is None else prediction.lower.tolist()
            upper = no_ends if prediction.upper is None else prediction.upper.tolist()
            return cls(
                run_id=prediction.run_id,
                classes=[],
                coverage=prediction.coverage,
                predictions=[
                    PredictionOut(label=f"{v:.6g}", probabilities={}, value=v, lower=lo, upper=hi)
                    for v, lo, hi in zip(values, lower, upper, strict=True)
                ],
            )
        return cls(
            run_id=prediction.run_id,
            classes=classes,
            predictions=[
                PredictionOut(label=label, probabilities=dict(zip(classes, row, strict=True)))
                for label, row in zip(prediction.labels, prediction.proba.tolist(), strict=True)
            ],
        )


# -- pipelines and suggestions ---------------------------------------------------------------

PipelineStatus = Literal["running", "succeeded", "failed", "skipped", "abandoned"]
StepStatus = Literal["running", "succeeded", "failed", "pending", "not run"]


class PipelineStepOut(_Out):
    step: Literal[
        "ingest",
        "quality",
        "train",
        "evaluate",
        "compare",
        "promote",
        "images-ingest",
        "embed",
        "export",
    ] = Field(description="A table pipeline's six steps, or an image pipeline's three.")
    status: StepStatus = Field(
        description="pending (not reached yet), running, succeeded, failed, or not run (the "
        "run ended before it: no new data, or an earlier step failed)."
    )
    seconds: float | None = Field(description="How long it took, once it ended.")
    outcome: dict[str, JsonValue] = Field(
        description="What it found: batches loaded, quality, the run trained, the scores "
        "compared, whether it promoted."
    )
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


class PipelineRunOut(_Out):
    pipeline_run_id: str
    pipeline: str
    dataset: str
    trigger: str = Field(description="manual, schedule or new-data.")
    status: PipelineStatus
    outcome: str | None = Field(
        description="promoted, kept champion, no new data, no new images, vectors exported "
        "or failed."
    )
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    batch_ids: list[int] = Field(description="The batches its ingest loaded.")
    run_ids: list[str] = Field(description="The training runs it made.")
    champion_run_id: str | None = Field(description="The run served when it started.")
    challenger_run_id: str | None = Field(description="The run it trained to compare.")
    promoted: bool
    steps: list[PipelineStepOut] = Field(
        description="Every step, in order: six for a table pipeline, three for an image one."
    )
    url: str

    @classmethod
    def from_core(cls, run: PipelineRunRow) -> Self:
        return cls.from_dict(pipeline_run_dict(run, every_step=True))

    @classmethod
    def from_dict(cls, found: dict[str, object]) -> Self:
        """From `flows.pipelines.pipeline_run_dict` (every step), errors cut of server paths."""
        steps = found["steps"]
        assert isinstance(steps, list)
        error = found["error"]
        return cls.model_validate(
            {
                **found,
                "error": scrub(str(error)) if error else None,
                "steps": [
                    {
                        **step,
                        "outcome": _json_dict(step["outcome"]),
                        "error": scrub(step["error"]) if step["error"] else None,
                    }
                    for step in steps
                ],
                "url": f"/pipelines/{found['pipeline']}/runs/{found['pipeline_run_id']}",
            }
        )


class PipelineOut(_Out):
    name: str
    kind: Literal["table", "images"] = Field(
        description="table (ingest, quality, train, evaluate, compare, promote) or images "
        "(images-ingest, embed, export)."
    )
    dataset: str
    model: str = Field(description="The model trained, or an image pipeline's embedding model.")
    schedule: str | None = Field(description="Cron expression, or null when only run by hand.")
    timezone: str = Field(description="The IANA time zone the schedule is read in.")
    on_new_data: bool = Field(description="Also run when new data lands in its source.")
    promote: Literal["if-better", "always", "never"]
    next_fire: datetime | None = Field(description="The next scheduled fire (UTC offset shown).")
    last_run: PipelineRunOut | None

    @classmethod
    def from_core(cls, summary: dict[str, object]) -> Self:
        """From `flows.pipelines.pipeline_summaries` (with every step of the last run)."""
        last = summary["last_run"]
        return cls.model_validate(
            {
                **{k: summary[k] for k in cls.model_fields if k != "last_run"},
                "last_run": PipelineRunOut.from_dict(last) if isinstance(last, dict) else None,
            }
        )


class PipelineListOut(_Out):
    pipelines: list[PipelineOut] = Field(description="Each pipeline headwater.toml declares.")


class PipelineHistoryOut(_Out):
    pipeline: str
    runs: list[PipelineRunOut] = Field(description="Newest first.")


class PipelineStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(
        default=False,
        description="Train (an image pipeline: embed and export) even when the ingest finds "
        "no new data.",
    )


class PipelineAcceptedOut(_Out):
    pipeline_run_id: str
    status: Literal["running"] = "running"
    url: str = Field(description="Where its steps can be followed.")


class SuggestionOut(_Out):
    dataset: str
    model: str
    params: dict[str, JsonValue] | None = Field(
        description="The best parameters found so far, or null before any search completed."
    )
    run_id: str | None = Field(description="The trial run that scored best.")
    validation_accuracy: float | None
    test_accuracy: float | None
    trials: int = Field(ge=0, description="Trials the study has recorded.")
    searching: bool = Field(description="A short search started by the web UI is running.")

    @classmethod
    def from_core(cls, found: Suggestion) -> Self:
        values = found.to_dict()
        values["params"] = _json_dict(found.params) if found.params is not None else None
        return cls.model_validate(values)


# -- synthesis -------------------------------------------------------------------------------

SynthesisMethod = Literal["pca", "vae", "copula"]


class SynthesisIn(BaseModel):
    """Make a synthetic copy of a dataset, in the background; poll its URL for the report."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=DATASET_NAME_PATTERN, description="The real dataset to learn.")
    method: SynthesisMethod = Field(
        default="pca",
        description="pca (components and a Gaussian mixture), vae (a conditional VAE) or "
        "copula (per-column marginals with a Gaussian copula, the baseline). Images: pca or vae.",
    )
    rows: int = Field(ge=1, le=10_000_000, description="How many synthetic rows to make.")
    into: str | None = Field(
        default=None,
        pattern=DATASET_NAME_PATTERN,
        description="Name of the new dataset; by default <dataset>_<method>_<run id>.",
    )
    seed: Seed = Field(default=0, description="Seed of the holdout, the fit and the sample.")
    force: bool = Field(default=False, description="Allow more than 10x the source's rows.")

    def to_core(self) -> SynthesisRequest:
        return SynthesisRequest(
            self.dataset, self.method, self.rows, self.into or "", seed=self.seed, force=self.force
        )


class SynthesisOut(_Out):
    run_id: str
    status: str = Field(description="queued, running, succeeded, failed, interrupted or abandoned.")
    dataset: str = Field(description="The real dataset learned from.")
    method: str
    rows: int
    into: str = Field(description="The synthetic dataset it makes (exists once it succeeded).")
    seed: int
    progress: dict[str, JsonValue] = Field(
        description="stage (fitting, sampling and measuring, ingesting) and the last epoch."
    )
    error: str | None
    report: dict[str, JsonValue] | None = Field(
        description="Once succeeded: fidelity (overall 0-100, SDMetrics-comparable), utility "
        "(TSTR vs TRTR), detectability (ROC-AUC), privacy (closest-record distances, copies)."
    )
    links: dict[str, str] = Field(description="The HTML report and its picture (PNG), by URL.")
    url: str

    @classmethod
    def from_core(cls, status: SynthesisStatus) -> Self:
        base = f"/syntheses/{status.run_id}"
        return cls(
            run_id=status.run_id,
            status=status.status,
            dataset=status.source,
            method=status.method,
            rows=status.rows,
            into=status.into,
            seed=status.seed,
            progress=_json_dict(status.progress),
            error=scrub(status.error) if status.error else None,
            report=None if status.report is None else _json_dict(status.report),
            links={name.split(".")[0]: f"{base}/files/{name}" for name in status.files},
            url=base,
        )
