"""Sequence datasets: rows that are events of ordered sequences, grouped, ordered and checked.

A keystroke API hands out attempts, each a list of events (a character and when it was
typed). Ingested as pages (`headwater.storage.pages`), every event is a row of the
dataset's fact table with its ``page``, ``attempt`` and ``position``. This module says
what those rows mean as sequences:

* `SequenceSpec`: which columns identify a sequence (the group), order it (position),
  time it and name its symbol, which column is its label, and the expected text;
  detected from the columns at the first batch and stored (``dataset_sequence``);
* `index_batch`: one batch's events grouped into sequences (one ``dim_sequence`` row
  each, its ``fact_event`` rows in order), with the corrections applied (a backspace
  erases the symbol before it) and the quality check: a sequence whose text is not
  the expected one, whose time is missing or runs backwards, is ``quarantined`` with
  the reason, counted in the batch's quality report and left out of training.

The expected text is the spec's, set with ``--expect``; without one, the text most
sequences of the first batch spell (when more than half agree) is taken and stored,
as a contract is inferred from a first batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from headwater.data.ingest import AfterLoad
from headwater.data.quality import CheckOutcome
from headwater.errors import FormatError
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import sequences as seq_store

__all__ = [
    "BACKSPACE",
    "SequenceSpec",
    "Sequences",
    "apply_corrections",
    "detect_spec",
    "find_spec",
    "group_sequences",
    "index_batch",
    "sequence_step",
    "sequences_of",
]

BACKSPACE = "[backspace]"
"""The token a keystroke API writes for the backspace key."""
_ERASE = "\x08"
_ERASED = re.compile("[^\x08]\x08")  # a symbol, then the erase mark
_TIME_NAME = re.compile(r"(time|_at$|^at$|date|stamp)", re.IGNORECASE)
MIN_AGREEMENT = 0.5
"""Share of a first batch's sequences that must spell one text for it to become the expected."""


@dataclass(frozen=True)
class SequenceSpec:
    """How a dataset's rows form sequences; stored as JSON beside the dataset."""

    group: tuple[str, ...]
    position: str
    time: str
    symbol: str
    label: str | None = None
    expected: str | None = None
    backspace: str = BACKSPACE

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SequenceSpec:
        raw = json.loads(text)
        raw["group"] = tuple(raw["group"])
        return cls(**raw)

    @property
    def columns(self) -> list[str]:
        """The dataset columns a sequence is built from, each once."""
        wanted = [*self.group, self.position, self.time, self.symbol, self.label]
        return list(dict.fromkeys(c for c in wanted if c is not None))


def detect_spec(
    schema: pa.Schema, *, label: str | None, expected: str | None = None
) -> SequenceSpec | None:
    """A spec for rows that came from nested records (``attempt`` and ``position``), else None.

    The time column is the first whose name says so (``typed_at``, ``timestamp``); the
    symbol the first other text column that is not the label.
    """
    names = schema.names
    if "attempt" not in names or "position" not in names:
        return None
    group = tuple(c for c in ("page", "attempt") if c in names)
    taken = {*group, "position", label}
    free = [f for f in schema if f.name not in taken]
    times = [
        f.name
        for f in free
        if _TIME_NAME.search(f.name)
        and (pa.types.is_string(f.type) or pa.types.is_timestamp(f.type))
    ]
    symbols = [f.name for f in free if pa.types.is_string(f.type) and f.name not in times]
    if not times or not symbols:
        return None
    return SequenceSpec(group, "position", times[0], symbols[0], label, expected)


def find_spec(wh: Warehouse, dataset: cat.DatasetRow) -> SequenceSpec | None:
    """The dataset's stored spec; None for a dataset whose rows are not sequences."""
    text = seq_store.get_spec(wh, dataset.key)
    return None if text is None else SequenceSpec.from_json(text)


def apply_corrections(texts: pd.Series) -> pd.Series:
    """Each text with its erase marks applied: a mark removes the symbol before it."""

    def corrected(text: str) -> str:
        while True:
            shorter = _ERASED.sub("", text)
            if shorter == text:
                return text.replace(_ERASE, "")  # a mark at the start erases nothing
            text = shorter

    return texts.map(corrected)


def group_sequences(events: pd.DataFrame, spec: SequenceSpec) -> pd.DataFrame:
    """Events sorted into their sequences, with ``seq`` (0..), ``pos``, ``at`` and ``interval_us``.

    ``at`` is the event's time in UTC (a time without a zone is read as UTC); the
    interval is to the previous event of the same sequence (NaN for the first).
    """
    frame = events.sort_values([*spec.group, spec.position], kind="stable").reset_index(drop=True)
    frame["seq"] = frame.groupby(list(spec.group), sort=False).ngroup()
    frame["pos"] = frame.groupby("seq").cumcount()
    stamps = frame[spec.time]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        stamps = pd.to_datetime(stamps, utc=True, format="ISO8601", errors="coerce")
    elif stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize(UTC)
    frame["at"] = stamps.dt.tz_convert(UTC).astype("datetime64[us, UTC]")
    micros = frame["at"].astype("int64").where(frame["at"].notna())
    frame["interval_us"] = micros.groupby(frame["seq"]).diff()
    return frame


def _texts(frame: pd.DataFrame, spec: SequenceSpec) -> pd.Series:
    marks = frame[spec.symbol].fillna("").astype(str).where(frame[spec.symbol] != spec.backspace)
    joined = marks.fillna(_ERASE).groupby(frame["seq"]).agg("".join)
    return apply_corrections(joined)


def _reasons(frame: pd.DataFrame, typed: pd.Series, expected: str | None) -> pd.Series:
    """Why each sequence is left out ('' when it is kept), the first problem found."""
    if expected is None:
        reason = pd.Series("", index=typed.index, dtype=object)
    else:
        reason = typed.map(lambda t: "" if t == expected else _difference(t, expected))
    backwards = (frame["interval_us"] < 0).groupby(frame["seq"]).any()
    reason[(reason == "") & backwards] = "keystroke times run backwards"
    missing = frame["at"].isna().groupby(frame["seq"]).any()
    reason[(reason == "") & missing] = "a keystroke time is missing or not ISO 8601"
    return reason


def _difference(typed: str, expected: str) -> str:
    """Where a typed text first departs from the expected one, in words."""
    at = next((i for i, (a, b) in enumerate(zip(typed, expected, strict=False)) if a != b), None)
    if at is None:
        longer = "longer" if len(typed) > len(expected) else "shorter"
        return f"typed {typed!r}: {longer} than the expected {expected!r}"
    return (
        f"typed {typed!r}: character {at + 1} is {typed[at]!r}, expected {expected[at]!r} "
        f"(the expected text is {expected!r})"
    )


def _expected(typed: pd.Series, spec: SequenceSpec) -> str | None:
    if spec.expected is not None or typed.empty:
        return spec.expected
    counts = typed.value_counts()
    return str(counts.index[0]) if counts.iloc[0] > MIN_AGREEMENT * len(typed) else None


@dataclass(frozen=True)
class Sequences:
    """Rows read as sequences: their events in order and one row per sequence."""

    events: pd.DataFrame
    """``sequence_key`` (0.. here), ``position``, ``occurred_at``, ``interval_us``, ``symbol``,
    ``hw_row_key`` when the rows came from the warehouse."""
    table: pd.DataFrame
    """Per sequence: ``sequence_key``, ``group_id``, ``label``, ``events``, ``started_at``,
    ``duration_us``, ``typed``, ``status`` (valid or quarantined), ``reason``."""
    spec: SequenceSpec


def sequences_of(rows: pd.DataFrame, spec: SequenceSpec) -> Sequences:
    """Rows (one per event, the spec's columns) as checked sequences; the spec comes back
    with its expected text once inferred (see the module docstring)."""
    frame = group_sequences(rows, spec)
    typed = _texts(frame, spec)
    spec = SequenceSpec(**{**asdict(spec), "group": spec.group, "expected": _expected(typed, spec)})
    reason = _reasons(frame, typed, spec.expected)
    first = frame.groupby("seq").first()
    span = frame.groupby("seq")["at"].agg(["min", "max"])
    table = pd.DataFrame(
        {
            "sequence_key": first.index.to_numpy(),
            "group_id": first[list(spec.group)].astype(str).agg("/".join, axis="columns"),
            "label": first[spec.label].astype(str) if spec.label else None,
            "events": frame.groupby("seq").size(),
            "started_at": span["min"],
            "duration_us": (span["max"] - span["min"]).dt.total_seconds().mul(1e6).round(),
            "typed": typed,
            "status": np.where(reason == "", "valid", "quarantined"),
            "reason": reason,
        }
    ).reset_index(drop=True)
    events = pd.DataFrame(
        {
            "sequence_key": frame["seq"].to_numpy(),
            "position": frame["pos"].to_numpy(),
            "occurred_at": frame["at"],
            "interval_us": frame["interval_us"],
            "symbol": frame[spec.symbol].astype(object),
        }
    )
    if "hw_row_key" in frame.columns:
        events["hw_row_key"] = frame["hw_row_key"].to_numpy()
    return Sequences(events, table, spec)


def index_batch(
    wh: Warehouse, dataset: cat.DatasetRow, batch_key: int, spec: SequenceSpec
) -> tuple[SequenceSpec, CheckOutcome]:
    """Group one loaded batch's events into sequences, check them, write both tables.

    Returns the spec (with the expected text, once inferred) and the check's outcome.
    """
    stored = cat.fact_columns(dataset)
    raw = seq_store.batch_rows(wh, dataset.fact_table, batch_key, [stored[c] for c in spec.columns])
    found = sequences_of(raw.rename_columns(["hw_row_key", *spec.columns]).to_pandas(), spec)
    keys = np.asarray(seq_store.next_sequence_keys(wh, len(found.table)), dtype=np.int64)
    labels = _label_keys(wh, dataset, found.table, found.spec)
    seq_store.write_sequences(
        wh, _dim(dataset, batch_key, found.table, keys, labels),
        _facts(dataset, batch_key, found.events, keys),
    )  # fmt: skip
    return found.spec, _outcome(found.table["reason"], found.spec)


def _label_keys(
    wh: Warehouse, dataset: cat.DatasetRow, table: pd.DataFrame, spec: SequenceSpec
) -> pa.Array:
    if spec.label is None:
        return pa.nulls(len(table), pa.int64())
    names = table["label"].astype(str)
    keys = cat.label_keys(wh, dataset.key, names.unique().tolist())
    return pa.array(names.map(keys).to_numpy(dtype=np.int64), pa.int64())


def _dim(
    dataset: cat.DatasetRow, batch_key: int, table: pd.DataFrame, keys: np.ndarray, labels: pa.Array
) -> pa.Table:
    n = len(keys)
    reason = table["reason"]
    return pa.table(
        {
            "sequence_key": pa.array(keys, pa.int64()),
            "dataset_key": pa.repeat(pa.scalar(dataset.key, pa.int64()), n),
            "batch_key": pa.repeat(pa.scalar(batch_key, pa.int64()), n),
            "label_key": labels,
            "group_id": pa.array(table["group_id"].to_numpy(dtype=object), pa.string()),
            "events": pa.array(table["events"].to_numpy(), pa.int32()),
            "started_at": pa.array(table["started_at"], pa.timestamp("us", tz="UTC")),
            "duration_us": pa.array(table["duration_us"].astype("Int64"), pa.int64()),
            "typed": pa.array(table["typed"].to_numpy(dtype=object), pa.string()),
            "status": pa.array(table["status"].to_numpy(dtype=object), pa.string()),
            "reason": pa.array(
                reason.to_numpy(dtype=object), pa.string(), mask=(reason == "").to_numpy()
            ),
        }
    )


def _facts(
    dataset: cat.DatasetRow, batch_key: int, events: pd.DataFrame, keys: np.ndarray
) -> pa.Table:
    n = len(events)
    return pa.table(
        {
            "dataset_key": pa.repeat(pa.scalar(dataset.key, pa.int64()), n),
            "batch_key": pa.repeat(pa.scalar(batch_key, pa.int64()), n),
            "sequence_key": pa.array(keys[events["sequence_key"].to_numpy()], pa.int64()),
            "position": pa.array(events["position"].to_numpy(), pa.int32()),
            "occurred_at": pa.array(events["occurred_at"], pa.timestamp("us", tz="UTC")),
            "interval_us": pa.array(events["interval_us"].astype("Int64"), pa.int64()),
            "symbol": pa.array(events["symbol"], pa.string()),
            "row_key": pa.array(events["hw_row_key"].to_numpy(), pa.int64()),
        }
    )


def _outcome(reason: pd.Series, spec: SequenceSpec) -> CheckOutcome:
    bad = int((reason != "").sum())
    what = f"spell {spec.expected!r}" if spec.expected else "have ordered, complete times"
    detail = (
        f"{bad} of {len(reason)} sequences do not {what} (corrections applied); quarantined "
        "and left out of training"
        if bad
        else f"all {len(reason)} sequences {what}"
    )
    return CheckOutcome("expected_sequence", "batch", "warn" if bad else "pass", bad, detail)


def sequence_step(*, label: str | None, expected: str | None = None) -> AfterLoad:
    """The ingest step that indexes a batch of nested records as sequences (see module doc).

    A dataset whose rows are not events (no ``attempt`` and ``position``) is left alone.
    """

    def index(wh: Warehouse, dataset: cat.DatasetRow, batch_key: int) -> list[CheckOutcome]:
        spec = find_spec(wh, dataset)
        if spec is None:
            if dataset.schema is None:
                return []
            spec = detect_spec(dataset.schema, label=label, expected=expected)
            if spec is None:
                return []
        elif expected is not None and expected != spec.expected:
            spec = SequenceSpec(**{**asdict(spec), "group": spec.group, "expected": expected})
        try:
            spec, outcome = index_batch(wh, dataset, batch_key, spec)
        except (KeyError, ValueError) as exc:
            raise FormatError(
                f"the events of batch {batch_key} do not form sequences ({exc})",
                path=dataset.name,
            ) from exc
        seq_store.save_spec(wh, dataset.key, spec.to_json(), now=datetime.now(UTC))
        return [outcome]

    return index
