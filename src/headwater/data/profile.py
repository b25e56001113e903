"""A dataset's profile: rows per label and, per column, count, nulls, min, max, mean, std.

Two engines compute the same numbers. `profile_parts` streams Parquet files record
batch by record batch within their row groups and folds each batch into running
moments (Chan's pairwise update of mean and sum of squared deviations, the one
Spark's own ``stddev_samp`` uses), so memory holds one batch whatever the size.
`profile_frame` asks Spark for the same aggregates in one pass. ``std`` is the
sample standard deviation (n - 1), null below two values; ``mean`` and ``std`` are
given for numbers only, ``min`` and ``max`` for anything ordered (numbers, text,
times), and binary columns (pixels) get their counts alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["NULL_LABEL", "ColumnStats", "Profile", "profile_frame", "profile_parts"]

NULL_LABEL = "<null>"
"""How rows without a label are counted."""
BATCH_ROWS = 65_536


@dataclass
class ColumnStats:
    name: str
    type: str
    count: int = 0
    nulls: int = 0
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None


@dataclass
class Profile:
    dataset: str
    engine: str
    rows: int
    label: str | None
    labels: dict[str, int] = field(default_factory=dict)
    columns: list[ColumnStats] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _kind(kind: pa.DataType) -> str:
    """What a column holds, in words both engines agree on."""
    checks = (
        ("number", pa.types.is_integer(kind) or pa.types.is_floating(kind)),
        ("number", pa.types.is_decimal(kind)),
        ("text", pa.types.is_string(kind) or pa.types.is_large_string(kind)),
        ("time", pa.types.is_temporal(kind)),
        ("bool", pa.types.is_boolean(kind)),
        ("binary", pa.types.is_binary(kind) or pa.types.is_large_binary(kind)),
    )
    return next((name for name, holds in checks if holds), "other")


ORDERED = frozenset({"number", "text", "time", "bool"})
"""Kinds that have a min and a max."""


def _plain(value: object) -> object:
    """A value as JSON holds it, the same from either engine (times as ISO text)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)  # Spark hands back UTC, naive
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _label_key(value: object) -> str:
    return NULL_LABEL if value is None else str(value)


class _Running:
    """One column's counts, extremes and moments, folded batch by batch."""

    def __init__(self, name: str, kind: pa.DataType) -> None:
        self.kind = _kind(kind)
        self.stats = ColumnStats(name, self.kind)
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, column: pa.Array) -> None:
        present = len(column) - column.null_count
        self.stats.count += present
        self.stats.nulls += column.null_count
        if not present or self.kind not in ORDERED:
            return
        low, high = pc.min_max(column).values()
        self._extremes(low.as_py(), high.as_py())
        if self.kind == "number":
            values = pc.cast(column, pa.float64())
            mean = float(pc.mean(values).as_py())
            m2 = float(pc.variance(values, ddof=0).as_py()) * present
            total = self.n + present
            delta = mean - self.mean
            self.mean += delta * present / total
            self.m2 += m2 + delta * delta * self.n * present / total
            self.n = total

    def _extremes(self, low: object, high: object) -> None:
        if low is not None and (self.stats.min is None or low < self.stats.min):
            self.stats.min = low
        if high is not None and (self.stats.max is None or high > self.stats.max):
            self.stats.max = high

    def result(self) -> ColumnStats:
        out = ColumnStats(**asdict(self.stats))
        out.min, out.max = _plain(out.min), _plain(out.max)
        if self.kind == "number" and self.n:
            out.mean = self.mean
            out.std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
        return out


def profile_parts(
    dataset: str, parts: Sequence[Path], *, label: str | None, batch_rows: int = BATCH_ROWS
) -> Profile:
    """The profile of Parquet files, streamed: one record batch in memory at a time."""
    profile = Profile(dataset, "local", 0, label)
    running: dict[str, _Running] = {}
    for part in parts:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=batch_rows):
            profile.rows += batch.num_rows
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                running.setdefault(name, _Running(name, column.type)).add(column)
            if label is not None and label in batch.schema.names:
                _count_labels(profile.labels, batch.column(label))
    profile.columns = [r.result() for r in running.values()]
    profile.labels = dict(sorted(profile.labels.items()))
    return profile


def _count_labels(counts: dict[str, int], column: pa.Array) -> None:
    for item in pc.value_counts(column).to_pylist():
        key = _label_key(item["values"])
        counts[key] = counts.get(key, 0) + int(item["counts"])


def profile_frame(dataset: str, frame: DataFrame, *, label: str | None) -> Profile:
    """The same profile computed by Spark over a DataFrame of the same files, in one pass."""
    from pyspark.sql import functions as F

    names = frame.columns
    kinds = {f.name: _spark_kind(f.dataType.typeName()) for f in frame.schema.fields}
    renamed = frame.toDF(*(f"c{i}" for i in range(len(names))))  # any column name is safe
    aggregates: list[Any] = [F.count(F.lit(1))]
    for i, name in enumerate(names):
        col = F.col(f"c{i}")
        aggregates += [F.count(col), F.count_if(col.isNull())]
        if kinds[name] in ORDERED:
            aggregates += [F.min(col), F.max(col)]
        if kinds[name] == "number":
            aggregates += [F.avg(col.cast("double")), F.stddev_samp(col.cast("double"))]
    values = iter(renamed.agg(*aggregates).first() or ())
    profile = Profile(dataset, "spark", int(next(values)), label)
    for name in names:
        stats = ColumnStats(name, kinds[name], int(next(values)), int(next(values)))
        if kinds[name] in ORDERED:
            stats.min, stats.max = _plain(next(values)), _plain(next(values))
        if kinds[name] == "number":
            stats.mean, stats.std = next(values), next(values)
        profile.columns.append(stats)
    if label is not None and label in names:
        at = f"c{names.index(label)}"
        rows: Iterable[Any] = renamed.groupBy(at).count().collect()
        profile.labels = dict(sorted((_label_key(r[0]), int(r[1])) for r in rows))
    return profile


def _spark_kind(type_name: str) -> str:
    """`_kind` for a Spark type's name."""
    numbers = {"byte", "short", "integer", "long", "float", "double"}
    if type_name in numbers or type_name.startswith("decimal"):
        return "number"
    named = {
        "string": "text",
        "boolean": "bool",
        "binary": "binary",
        "date": "time",
        "timestamp": "time",
        "timestamp_ntz": "time",
    }
    return named.get(type_name, "other")
