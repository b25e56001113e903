"""Bodies of ``/sequences``: pages of sequences named by URL, their analysis, predictions.

The limits (at most `MAX_FIRST` records or predictions shown) and the run-name rule are
the flows' own, so the API, the CLI and the web forms refuse the same things.
"""

from __future__ import annotations

from typing import Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, JsonValue

from headwater.faces.api.page_fields import MaxPages, Paginate, RecordsPath
from headwater.faces.http import RUN_ID_PATTERN
from headwater.flows.sequences import MAX_FIRST, Analysis, PredictionTable
from headwater.flows.service import PageSource
from headwater.flows.workspace import DATASET_NAME_PATTERN

__all__ = ["AnalysisOut", "AnalyzeIn", "PagesIn", "SequencePredictIn", "SequencePredictionsOut"]

_PATH = Field(default=None, min_length=1, max_length=200)


class PagesIn(BaseModel):
    """Where the pages are and how to read them; every page is fetched by the SSRF-guarded
    fetcher (private and loopback addresses refused unless the server allows them)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="The first page, http(s).")
    records: RecordsPath = None
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Path of each page's label, e.g. user_label.",
        examples=["user_label"],
    )
    paginate: Paginate = None
    max_pages: MaxPages = None
    first: int = Field(
        default=100, ge=1, le=MAX_FIRST, description=f"Rows to answer (at most {MAX_FIRST})."
    )

    def source(self) -> PageSource:
        return PageSource(str(self.url), self.records, self.label, self.paginate, self.max_pages)


class AnalyzeIn(PagesIn):
    dataset: str | None = Field(
        default=None,
        pattern=DATASET_NAME_PATTERN,
        description="Dataset to load the pages into; default from the URL's last segment.",
    )
    expect: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Text each sequence must spell; default: what most of them spell.",
    )
    refresh: bool = Field(
        default=False, description="Fetch a URL analyzed before again; only changes load."
    )


class AnalysisOut(BaseModel):
    """A source as sequences: its first events, the per-sequence features, the invalid ones."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    source: str
    fetched: bool = Field(description="False: the URL was analyzed before; nothing fetched.")
    expected: str | None = Field(description="The text every valid sequence spells.")
    counts: dict[str, int] = Field(description="Sequences per status (valid, quarantined).")
    records: list[dict[str, JsonValue]] = Field(description="The first events, in order.")
    features: list[dict[str, str | None]] = Field(
        description="Each feature a model trains on (used_as set), or left out and why."
    )
    feature_rows: list[dict[str, JsonValue]] = Field(
        description="The features of the first valid sequences."
    )
    invalid: list[dict[str, JsonValue]] = Field(
        description="Quarantined sequences with the reason each was left out of training."
    )

    @classmethod
    def from_core(cls, found: Analysis) -> Self:
        return cls.model_validate(found.to_dict())


class SequencePredictIn(PagesIn):
    model: str = Field(
        pattern=RUN_ID_PATTERN,
        description="A run id, or the name a run was trained under (POST /runs' name).",
        examples=["typing_lstm"],
    )


class SequencePredictionsOut(BaseModel):
    """One prediction per sequence: ``sequence, [label,] status, predicted, p_<class>...``."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    header: list[str]
    rows: list[list[str]] = Field(description="The first predictions, as the CSV has them.")
    total: int = Field(description="Predictions in all (one per sequence of the pages).")
    accuracy: float | None = Field(
        description="Share of valid sequences predicted right, where the pages carry labels."
    )

    @classmethod
    def from_core(cls, table: PredictionTable) -> Self:
        return cls.model_validate(table.to_dict())
