"""Feature transforms declared once, fitted on training data, replayed identically at serving.

A model is only as reproducible as the numbers fed to it. If training standardised
``age`` with a mean learned from the training rows, serving must subtract *that*
mean, not one recomputed from the request. So a :class:`FeatureSpec` is a list of
declarative steps whose learned state (means, category lists, image shape) is
stored next to the model as JSON and reloaded with :meth:`FeatureSpec.from_json`.

Two kinds of input, both transformed with whole-column (vectorised) operations:

* images, a numpy array ``(n, h, w)`` or ``(n, h*w)``: the one step is :class:`Pixels`;
* tables, a ``pyarrow.Table``: one :class:`Numeric`, :class:`Categorical` or
  :class:`Timestamp` step per column used.

The output is always a ``float32`` matrix, ready for any estimator. Missing values
(null, NaN, or text such as ``"NA"`` and ``""``) are filled the way each step declares
(``impute``) from what it learned in training, so serving fills them identically.

Which columns of a table become steps, and why the others are left out (an
identifier, free text, a constant), is decided once, by :func:`choose_features`,
for every face that shows or trains on a table.

    spec = FeatureSpec([Numeric("amount"), Categorical("country"), Timestamp("ordered_at")])
    X = spec.fit(train).transform(train)
    (folder / "features.json").write_text(spec.to_json())
    X_live = FeatureSpec.from_json(text).transform(request_table)
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError, FormatError, ModelNotFitted, SchemaError

__all__ = [
    "DATETIME_PARTS",
    "DATE_PARTS",
    "MISSING_CATEGORY",
    "Categorical",
    "CategoryImpute",
    "ColumnChoice",
    "Encoding",
    "FeatureSpec",
    "FeatureStep",
    "Numeric",
    "NumericImpute",
    "Pixels",
    "Timestamp",
    "TimestampPart",
    "choose_features",
    "spec_from_choices",
]

Encoding = Literal["onehot", "label"]
NumericImpute = Literal["median", "mean"]
CategoryImpute = Literal["category", "most_frequent"]
TimestampPart = Literal[
    "year", "month", "day", "day_of_week", "hour", "minute", "second", "microsecond"
]
ALL_PARTS: tuple[TimestampPart, ...] = get_args(TimestampPart)
DATE_PARTS: tuple[TimestampPart, ...] = ("year", "month", "day", "day_of_week")
DATETIME_PARTS: tuple[TimestampPart, ...] = (*DATE_PARTS, "hour", "minute")
FORMAT = "headwater.features"
VERSION = 1
MISSING_PART = -1.0  # a null timestamp: no real year, month or hour is ever negative
MISSING_CATEGORY = "(missing)"
"""The category a missing value becomes under ``Categorical(impute="category")``."""
MISSING_TEXT = ("", "#n/a", "n/a", "na", "nan", "none", "null")
"""Text that means "no value" (compared trimmed, in lower case), as spreadsheets write it."""
MEDIAN_SAMPLE = 100_000
"""Values kept (a seeded reservoir) to learn a median: exact below it, memory bounded above."""

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pixels:
    """Images to ``float32`` in 0..1: integers are divided by 255, floats must already be 0..1.

    The rule depends on the dtype only, so a uint8 PNG at serving and a 0..1 float
    array at training land on the same scale. ``flatten`` gives ``(n, h*w)`` rows.
    """

    flatten: bool = True


@dataclass(frozen=True)
class Numeric:
    """Standardise a numeric column with the training mean and std.

    A missing value (null, NaN, ``"NA"``) becomes the training ``impute`` statistic,
    learned as ``fill``: the median by default, which an outlier does not drag. Text
    columns of numbers (a JSON request) are read as numbers.
    """

    column: str
    impute: NumericImpute = "median"


@dataclass(frozen=True)
class Categorical:
    """Encode a column's values against the categories seen in training.

    ``onehot`` gives one 0/1 column per category and all zeros for a value not seen in
    training; ``label`` gives one column of codes 1..k with 0 reserved for unseen values.
    Neither crashes on a new category at serving. A missing value (null, ``"NA"``,
    ``""``) is, by ``impute``, a category of its own (``"(missing)"``, last, when training
    had any) or the commonest training category (``most_frequent``).
    """

    column: str
    encoding: Encoding = "onehot"
    impute: CategoryImpute = "category"


@dataclass(frozen=True)
class Timestamp:
    """Split a timestamp column into calendar and clock parts; a missing one gives -1 in each.

    A zoned timestamp gives the wall-clock parts in its own zone; a date is its midnight;
    text is read as ISO 8601 (``2024-03-04``, ``2024-03-04T10:00:00+02:00``, in UTC if zoned).
    ``day_of_week`` is 0 for Monday. With ``standardise`` each part is standardised with
    its training mean and std (a missing one then becomes 0, the mean): a year of 2024
    beside standardised numbers would otherwise swamp a network's input scale.
    """

    column: str
    parts: tuple[TimestampPart, ...] = ALL_PARTS
    standardise: bool = False


FeatureStep = Pixels | Numeric | Categorical | Timestamp
Learned = dict[str, float | str | list[str] | list[int] | list[float]]


class FeatureSpec:
    """An ordered list of feature steps plus what they learned from the training data."""

    def __init__(self, steps: Sequence[FeatureStep], columns: Sequence[ColumnChoice] = ()) -> None:
        self.steps = tuple(steps)
        self.columns = tuple(columns)
        """What was decided for every column of the table, the left-out ones with why."""

    # -- fitting -------------------------------------------------------------------------

    def fit(self, data: pa.Table | npt.NDArray[np.generic]) -> FeatureSpec:
        """Learn means, categories or the image shape from training data; returns self."""
        return self.fit_chunks([data])

    def fit_chunks(self, chunks: Iterable[pa.Table | npt.NDArray[np.generic]]) -> FeatureSpec:
        """`fit` over training data that arrives in pieces, so it never has to fit in memory.

        Means and stds are merged exactly (Chan et al.'s pairwise update), categories
        are a union: the result is the one `fit` gives on all the rows at once.
        """
        self._check_steps()
        if self._is_image_spec():
            images = _require_array(next(iter(chunks), np.zeros((0, 0))))
            if images.ndim not in (2, 3, 4) or len(images) == 0:
                raise SchemaError(
                    "images must be a non-empty (n, h, w), (n, h, w, c) or (n, h*w) array, "
                    f"got {images.shape}",
                    field="pixels",
                )
            shape: Learned = {"shape": [int(d) for d in images.shape[1:]]}
            self.learned_: list[Learned] = [shape]
        else:
            fitters = [_ColumnFit(step) for step in self.steps]
            for chunk in chunks:
                table = _require_table(chunk)
                for fitter in fitters:
                    fitter.add(table)
            self.learned_ = [fitter.learned() for fitter in fitters]
        self.feature_names_out_ = self._names()
        return self

    def transform(self, data: pa.Table | npt.NDArray[np.generic]) -> FloatMatrix:
        """Apply the fitted steps; the same call serves training batches and live requests."""
        if not hasattr(self, "learned_"):
            raise ModelNotFitted("FeatureSpec")
        if self._is_image_spec():
            step = self.steps[0]
            assert isinstance(step, Pixels)
            return _pixels(step, self.learned_[0], _require_array(data))
        table = _require_table(data)
        blocks = [
            _transform_column(step, learned, table)
            for step, learned in zip(self.steps, self.learned_, strict=True)
        ]
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    def fit_transform(self, data: pa.Table | npt.NDArray[np.generic]) -> FloatMatrix:
        return self.fit(data).transform(data)

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> str:
        """The steps and, once fitted, their learned state; plain JSON, never code."""
        learned = getattr(self, "learned_", None)
        steps = []
        for i, step in enumerate(self.steps):
            entry: dict[str, object] = {"kind": _kind(step), **_step_fields(step)}
            if learned is not None:
                entry["learned"] = learned[i]
            steps.append(entry)
        doc: dict[str, object] = {
            "format": FORMAT,
            "version": VERSION,
            "fitted": learned is not None,
            "steps": steps,
        }
        if self.columns:
            doc["columns"] = [choice.to_dict() for choice in self.columns]
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Rebuild a spec saved by :meth:`to_json`; a fitted one transforms straight away."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"feature spec is not JSON: {exc}", field="features") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FormatError(f"not a {FORMAT} document", field="format")
        if doc.get("version") != VERSION:
            raise FormatError(
                f"feature spec version {doc.get('version')!r} is not supported; expected {VERSION}",
                field="version",
            )
        raw_steps = doc.get("steps")
        if not isinstance(raw_steps, list):
            raise FormatError("'steps' must be a list", field="steps")
        spec = cls(
            [_step_from_dict(entry, i) for i, entry in enumerate(raw_steps)],
            _choices_from(doc.get("columns", [])),
        )
        spec._check_steps()
        if doc.get("fitted"):
            learned = [entry.get("learned") for entry in raw_steps]
            if not all(isinstance(item, dict) for item in learned):
                raise FormatError("a fitted spec needs 'learned' on every step", field="learned")
            spec.learned_ = [dict(item) for item in learned]
            spec.feature_names_out_ = spec._names()
        return spec

    # -- internals -----------------------------------------------------------------------

    def _is_image_spec(self) -> bool:
        return any(isinstance(step, Pixels) for step in self.steps)

    def _check_steps(self) -> None:
        if not self.steps:
            raise ConfigError("FeatureSpec.steps is empty; give at least one feature step")
        if self._is_image_spec() and len(self.steps) != 1:
            raise ConfigError(
                "FeatureSpec.steps: Pixels works on whole image arrays and must be the only step"
            )
        columns = [getattr(step, "column", None) for step in self.steps]
        duplicates = sorted({c for c in columns if c is not None and columns.count(c) > 1})
        if duplicates:
            raise ConfigError(f"FeatureSpec.steps name column(s) twice: {', '.join(duplicates)}")
        for step in self.steps:
            if isinstance(step, Categorical) and step.encoding not in get_args(Encoding):
                raise ConfigError(
                    f"Categorical({step.column!r}).encoding must be 'onehot' or 'label', "
                    f"got {step.encoding!r}"
                )
            if isinstance(step, Categorical) and step.impute not in get_args(CategoryImpute):
                raise ConfigError(
                    f"Categorical({step.column!r}).impute must be 'category' or "
                    f"'most_frequent', got {step.impute!r}"
                )
            if isinstance(step, Numeric) and step.impute not in get_args(NumericImpute):
                raise ConfigError(
                    f"Numeric({step.column!r}).impute must be 'median' or 'mean', "
                    f"got {step.impute!r}"
                )
            if isinstance(step, Timestamp):
                bad = [p for p in step.parts if p not in ALL_PARTS]
                if bad or not step.parts:
                    raise ConfigError(
                        f"Timestamp({step.column!r}).parts must be a non-empty subset of "
                        f"{', '.join(ALL_PARTS)}; got {list(step.parts)}"
                    )

    def _names(self) -> list[str]:
        names: list[str] = []
        for step, learned in zip(self.steps, self.learned_, strict=True):
            if isinstance(step, Pixels):
                size = int(np.prod(np.asarray(_int_list(learned, "shape"))))
                names += [f"pixel_{i}" for i in range(size)]
            elif isinstance(step, Numeric):
                names.append(step.column)
            elif isinstance(step, Categorical):
                cats = _str_list(learned, "categories")
                if step.encoding == "onehot":
                    names += [f"{step.column}={c}" for c in cats]
                else:
                    names.append(f"{step.column}#code")
            else:
                names += [f"{step.column}.{part}" for part in step.parts]
        return names


# -- which columns become features -----------------------------------------------------------

UsedAs = Literal["number", "category", "date parts", "label"]
MIN_ROWS_FOR_UNIQUE = 20
"""Fewer rows than this and a column of all-different values may just be a small table."""
MAX_CATEGORIES = 100
"""More distinct values than this (or than half the rows) and one-hot columns stop helping."""
FREE_TEXT_WORDS = 3.0
"""Text columns of this many words a value on average, mostly distinct, are prose."""
DATE_SAMPLE = 200
"""Distinct values of a text column tried as ISO dates before calling it a date column."""
ID_WORDS = frozenset({"id", "uuid", "guid", "key"})


@dataclass(frozen=True)
class ColumnChoice:
    """One column of a table: used as a feature (``step``), the label, or left out and why."""

    column: str
    used_as: UsedAs | None
    reason: str
    step: FeatureStep | None = None

    @property
    def used(self) -> bool:
        return self.step is not None

    def to_dict(self) -> dict[str, str | None]:
        return {"column": self.column, "used_as": self.used_as, "reason": self.reason}


@dataclass(frozen=True)
class _Profile:
    """What the chooser needs to know of a column, measured on a sample of rows."""

    rows: int
    present: int
    distinct: int
    mean_words: float = 0.0
    dates: bool = False
    row_counter: bool = False


def choose_features(
    sample: pa.Table,
    *,
    label: str | None,
    split: str | None = "split",
    nested: Iterable[str] = (),
) -> list[ColumnChoice]:
    """The one rule that says which columns a model trains on; every face shows its answer.

    ``sample`` is a table's first rows (every column, the label too). Numbers are
    standardised, text with few values is one-hot, dates and ISO date text become
    calendar parts, and left out (with the reason) are: identifiers (a different value
    in every row, or a row counter), free text (many words, mostly distinct), text with
    too many values to be categories, constant or empty columns, nested values (objects
    and lists: Arrow's nested types, or the columns named in ``nested``, which the
    warehouse gives back as JSON text), and unsupported types.
    """
    objects = set(nested)
    choices = []
    for name in sample.column_names:
        column = sample.column(name)
        if name == label:
            choices.append(ColumnChoice(name, "label", "the label: what the model predicts"))
        elif name == split:
            choices.append(ColumnChoice(name, None, "the split column: it assigns the splits"))
        elif name in objects or pa.types.is_nested(column.type):
            why = "nested value (an object or a list): flatten it into columns to use it"
            choices.append(ColumnChoice(name, None, why))
        else:
            choices.append(_choose(name, column.type, _profile(column)))
    return choices


def _choose(name: str, kind: pa.DataType, p: _Profile) -> ColumnChoice:
    if p.present == 0:
        return ColumnChoice(name, None, "no values: every row is missing")
    if p.distinct == 1:
        return ColumnChoice(name, None, "the same value in every row")
    gaps = f"; {p.rows - p.present:,} of {p.rows:,} missing: " if p.present < p.rows else ""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or p.dates:
        parts = DATETIME_PARTS if pa.types.is_timestamp(kind) else DATE_PARTS
        why = ", ".join(parts) + ", standardised" + (f"{gaps}filled with the mean" if gaps else "")
        return ColumnChoice(name, "date parts", why, Timestamp(name, parts, standardise=True))
    unique = p.distinct == p.present and p.present >= MIN_ROWS_FOR_UNIQUE
    if pa.types.is_integer(kind) and unique and (_id_like(name) or p.row_counter):
        return ColumnChoice(name, None, "identifier: a different number in every row")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        why = "number, standardised" + (f"{gaps}filled with the training median" if gaps else "")
        return ColumnChoice(name, "number", why, Numeric(name))
    if pa.types.is_boolean(kind):
        why = "true/false as 1/0" + (f"{gaps}filled with the training median" if gaps else "")
        return ColumnChoice(name, "number", why, Numeric(name))
    if not _is_text(kind) and not pa.types.is_dictionary(kind):
        return ColumnChoice(name, None, f"its type ({kind}) is not one a model reads")
    many = p.distinct > MAX_CATEGORIES or (
        p.distinct > p.present / 2 and p.present >= MIN_ROWS_FOR_UNIQUE
    )
    if many and p.mean_words >= FREE_TEXT_WORDS:
        why = f"free text: {p.distinct:,} distinct values of {p.mean_words:.0f} words on average"
        return ColumnChoice(name, None, why)
    if unique:
        return ColumnChoice(name, None, "identifier: a different value in every row")
    if many:
        why = f"too many distinct values ({p.distinct:,}) to be categories"
        return ColumnChoice(name, None, why)
    why = f"{p.distinct} categories, one-hot" + (f"{gaps}a category of their own" if gaps else "")
    return ColumnChoice(name, "category", why, Categorical(name))


def _id_like(name: str) -> bool:
    """``id``, ``customer_id``, ``Order ID``, ``customerId``, ``uuid``: named as an identifier."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    camel = re.search(r"[a-z0-9]Id$", name) is not None
    return camel or (bool(words) and (words[-1] in ID_WORDS or words[0] == "id"))


def _profile(column: pa.ChunkedArray) -> _Profile:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
    if _is_text(column.type):
        column = _without_missing_text(column)
    elif pa.types.is_floating(kind):
        column = pc.if_else(pc.is_nan(column), None, column)
    present = column.drop_null()
    distinct = int(pc.count_distinct(present).as_py()) if len(present) else 0
    profile = _Profile(len(column), len(present), distinct)
    if _is_text(column.type) and len(present):
        words = pc.list_value_length(pc.utf8_split_whitespace(present))
        return dataclasses.replace(
            profile, mean_words=float(pc.mean(words).as_py() or 0.0), dates=_dates(present)
        )
    if pa.types.is_integer(kind) and distinct == len(present) and distinct > 1:
        low, high = pc.min_max(present).values()
        return dataclasses.replace(profile, row_counter=high.as_py() - low.as_py() + 1 == distinct)
    return profile


def _dates(text: pa.ChunkedArray) -> bool:
    """True when every one of the first distinct values reads as an ISO 8601 date."""
    values = pc.unique(text).slice(0, DATE_SAMPLE)
    if (
        not len(values)
        or not pc.all(pc.match_substring_regex(values, r"^\d{4}-\d{2}-\d{2}")).as_py()
    ):
        return False
    try:
        _parse_iso(pa.chunked_array([values]), "")
    except SchemaError:
        return False
    return True


def spec_from_choices(choices: Sequence[ColumnChoice], *, dataset: str) -> FeatureSpec:
    """A spec of the chosen columns' steps that remembers every choice (saved with the model)."""
    steps = [choice.step for choice in choices if choice.step is not None]
    if not steps:
        left = "; ".join(f"{c.column}: {c.reason}" for c in choices)
        raise SchemaError(f"dataset {dataset!r} has no usable feature columns ({left})")
    return FeatureSpec(steps, choices)


def _choices_from(raw: object) -> list[ColumnChoice]:
    if not isinstance(raw, list):
        raise FormatError("'columns' must be a list", field="columns")
    return [
        ColumnChoice(str(c.get("column")), c.get("used_as"), str(c.get("reason", "")))
        for c in raw
        if isinstance(c, dict)
    ]


# -- per-step work ---------------------------------------------------------------------------


class _ColumnFit:
    """What one table step learns, gathered a chunk at a time."""

    def __init__(self, step: FeatureStep) -> None:
        if isinstance(step, Pixels):
            raise ConfigError("Pixels is not a table step")
        self.step = step
        self.moments = _Moments(len(step.parts) if isinstance(step, Timestamp) else 1)
        self.sample = _Reservoir(MEDIAN_SAMPLE)
        self.categories: dict[str, int] = {}
        self.missing = 0

    def add(self, table: pa.Table) -> None:
        step = self.step
        if isinstance(step, Numeric):
            values = _numeric(table, step.column)
            values = values[~np.isnan(values)]
            self.moments.add(values[:, None])
            if step.impute == "median":
                self.sample.add(values)
        elif isinstance(step, Categorical):
            strings = _strings(table, step.column)
            self.missing += strings.null_count
            for found in pc.value_counts(strings.drop_null()).to_pylist():
                value = str(found["values"])
                self.categories[value] = self.categories.get(value, 0) + int(found["counts"])
        elif isinstance(step, Timestamp):
            parts = _timestamp_parts(step, table)
            if step.standardise:
                self.moments.add(parts)

    def learned(self) -> Learned:
        step = self.step
        if isinstance(step, Numeric):
            if self.moments.count[0] == 0:
                raise SchemaError(
                    "numeric column has no non-null values to learn a mean from",
                    field=step.column,
                )
            mean, std = self.moments.mean[0], self.moments.std()[0]
            fill = self.sample.median() if step.impute == "median" else mean
            return {"mean": mean, "std": std, "fill": fill}
        if isinstance(step, Categorical):
            categories = sorted(self.categories)
            if step.impute == "most_frequent":
                commonest = max(categories, key=lambda c: (self.categories[c], c), default="")
                return {"categories": categories, "fill": commonest}
            if self.missing:
                categories.append(MISSING_CATEGORY)
            return {"categories": categories}
        if isinstance(step, Timestamp) and step.standardise:
            return {"mean": self.moments.mean.tolist(), "std": self.moments.std().tolist()}
        return {}


class _Moments:
    """Per-column count, mean and sum of squared deviations, merged chunk by chunk exactly.

    NaN is a missing value and is skipped. The merge is Chan et al.'s pairwise update,
    so chunks give what one pass over all the rows gives.
    """

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width, dtype=np.int64)
        self.mean = np.zeros(width, dtype=np.float64)
        self.m2 = np.zeros(width, dtype=np.float64)

    def add(self, matrix: npt.NDArray[np.float64]) -> None:
        for j in range(matrix.shape[1]):
            values = matrix[:, j][~np.isnan(matrix[:, j])]
            if len(values) == 0:
                continue
            mean = float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            total = int(self.count[j]) + len(values)
            delta = mean - float(self.mean[j])
            self.m2[j] += m2 + delta * delta * int(self.count[j]) * len(values) / total
            self.mean[j] += delta * len(values) / total
            self.count[j] = total

    def std(self) -> npt.NDArray[np.float64]:
        """Population std per column; 1 where it is 0 (a constant) so dividing is safe."""
        std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        return np.where(std > 0, std, 1.0)


class _Reservoir:
    """A seeded uniform sample of at most ``size`` values from a stream (Vitter's algorithm R)."""

    def __init__(self, size: int) -> None:
        self.size, self.seen = size, 0
        self.values = np.empty(0, dtype=np.float64)
        self.rng = np.random.default_rng(0)

    def add(self, values: npt.NDArray[np.float64]) -> None:
        room = max(self.size - len(self.values), 0)
        self.values = np.concatenate([self.values, values[:room]])
        rest = values[room:]
        if len(rest):
            seen = self.seen + room + np.arange(1, len(rest) + 1)
            slots = (self.rng.random(len(rest)) * seen).astype(np.int64)
            keep = slots < self.size
            self.values[slots[keep]] = rest[keep]  # later values win a shared slot, as in R
        self.seen += len(values)

    def median(self) -> float:
        return float(np.median(self.values))


def _transform_column(step: FeatureStep, learned: Learned, table: pa.Table) -> FloatMatrix:
    if isinstance(step, Numeric):
        mean, std = _float(learned, "mean"), _float(learned, "std")
        values = _numeric(table, step.column)
        fill = _float(learned, "fill") if "fill" in learned else mean  # specs from before imputing
        out = (np.where(np.isnan(values), fill, values) - mean) / std
        return out.astype(np.float32)[:, None]
    if isinstance(step, Categorical):
        return _encode_categories(step, learned, _strings(table, step.column))
    if isinstance(step, Timestamp):
        parts = _timestamp_parts(step, table)
        if step.standardise:  # a missing part becomes the training mean, 0 once standardised
            centre = np.asarray(_float_list(learned, "mean"))
            scale = np.asarray(_float_list(learned, "std"))
            standard: FloatMatrix = np.nan_to_num((parts - centre) / scale, nan=0.0).astype(
                np.float32
            )
            return standard
        return np.nan_to_num(parts, nan=MISSING_PART).astype(np.float32)
    raise ConfigError(f"{type(step).__name__} is not a table step")


def _timestamp_parts(step: Timestamp, table: pa.Table) -> npt.NDArray[np.float64]:
    """(rows, parts) as float64, NaN where the timestamp is missing."""
    stamps = _timestamps(table, step.column)
    columns = [
        pc.cast(_part(stamps, part), pa.float64()).to_numpy(zero_copy_only=False)
        for part in step.parts
    ]
    out = np.empty((len(stamps), len(columns)), dtype=np.float64)
    for j, values in enumerate(columns):
        out[:, j] = values
    return out


def _encode_categories(
    step: Categorical, learned: Learned, strings: pa.ChunkedArray
) -> FloatMatrix:
    categories = _str_list(learned, "categories")
    if step.impute == "most_frequent" and "fill" in learned:
        strings = strings.fill_null(str(learned["fill"]))
    elif MISSING_CATEGORY in categories:
        strings = strings.fill_null(MISSING_CATEGORY)
    codes = pc.index_in(strings, value_set=pa.array(categories, pa.string()))
    index = np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    if step.encoding == "label":
        return (index + 1).astype(np.float32)[:, None]
    onehot = np.zeros((len(index), len(categories)), dtype=np.float32)
    known = np.flatnonzero(index >= 0)
    onehot[known, index[known]] = 1.0
    return onehot


def _part(stamps: pa.ChunkedArray, part: TimestampPart) -> pa.ChunkedArray:
    """One calendar or clock part; ``microsecond`` is 0..999999 as in ``datetime``.

    Arrow's own ``microsecond`` is only the part below the millisecond (0..999).
    """
    if part == "microsecond":
        return pc.add(pc.multiply(pc.millisecond(stamps), 1000), pc.microsecond(stamps))
    return getattr(pc, part)(stamps)


def _pixels(step: Pixels, learned: Learned, images: npt.NDArray[np.generic]) -> FloatMatrix:
    shape = tuple(_int_list(learned, "shape"))
    if images.shape[1:] != shape:
        raise SchemaError(
            f"images have shape {images.shape[1:]} per row, the spec was fitted on {shape}",
            field="pixels",
        )
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise SchemaError("integer pixels must lie in 0..255", field="pixels")
        out = images.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(images.dtype, np.floating):
        out = images.astype(np.float32, copy=False)
        if out.size and not (np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0):
            raise SchemaError(
                "float pixels must be finite and in 0..1; pass uint8 images to have them scaled",
                field="pixels",
            )
    else:
        raise SchemaError(f"pixels must be integers or floats, got {images.dtype}", field="pixels")
    if step.flatten:
        out = out.reshape(len(out), -1)
    return np.ascontiguousarray(out, dtype=np.float32)


# -- column access ---------------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise SchemaError(
            f"column is missing; the table has {', '.join(table.column_names) or 'no columns'}",
            field=name,
        )
    return table.column(name)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _without_missing_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text that means "no value" ("NA", "", "null", ...) as a null."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.if_else(pc.is_in(lowered, value_set=pa.array(MISSING_TEXT)), None, column)


def _numeric(table: pa.Table, name: str) -> npt.NDArray[np.float64]:
    """Numbers as float64 with NaN where a value is missing; text of numbers is parsed."""
    column = _column(table, name)
    kind = column.type
    if _is_text(kind):
        column = _without_missing_text(column)
        try:
            column = pc.cast(column, pa.float64())
        except pa.ArrowInvalid as exc:
            raise SchemaError(f"expected numbers, got text: {exc}", field=name) from exc
    elif not (
        pa.types.is_integer(kind)
        or pa.types.is_null(kind)  # a file to score whose column is empty in every row
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    ):
        raise SchemaError(f"expected a numeric column, got {kind}", field=name)
    values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:  # caught here, by the user's column name, not later as the matrix "X"
        raise SchemaError(
            f"{values[infinite[0]]} is not a value a model can use; give a finite number "
            "or leave the cell empty",
            row=int(infinite[0]),
            field=name,
        )
    return values


def _strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = _column(table, name)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    try:
        text = pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"cannot read {column.type} as categories: {exc}", field=name) from exc
    return _without_missing_text(text)


def _timestamps(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = _column(table, name)
    if _is_text(column.type):
        return _parse_iso(_without_missing_text(column), name)
    kind = column.type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_null(kind)):
        raise SchemaError(
            f"expected a timestamp, a date or ISO 8601 text, got {column.type}",
            field=name,
        )
    if pa.types.is_date(column.type) or pa.types.is_null(column.type):  # a date: its midnight
        return pc.cast(column, pa.timestamp("s"))
    return column


def _parse_iso(text: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """ISO 8601 text as timestamps: wall-clock when it names no zone, else in UTC."""
    for kind in (pa.timestamp("us"), pa.timestamp("us", tz="UTC")):
        try:
            return pc.cast(text, kind)
        except pa.ArrowInvalid:
            continue
    raise SchemaError(
        "expected ISO 8601 dates (2024-03-04 or 2024-03-04T10:00:00), found other text",
        field=name,
    )


def _require_table(data: pa.Table | npt.NDArray[np.generic]) -> pa.Table:
    if not isinstance(data, pa.Table):
        raise ConfigError(
            "this FeatureSpec has column steps and needs a pyarrow.Table, "
            f"got {type(data).__name__}"
        )
    return data


def _require_array(data: pa.Table | npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    if not isinstance(data, np.ndarray):
        raise ConfigError(
            f"a FeatureSpec with Pixels needs a numpy image array, got {type(data).__name__}"
        )
    return data


# -- JSON helpers ----------------------------------------------------------------------------


def _kind(step: FeatureStep) -> str:
    return type(step).__name__.lower()


def _step_fields(step: FeatureStep) -> dict[str, object]:
    if isinstance(step, Pixels):
        return {"flatten": step.flatten}
    if isinstance(step, Numeric):
        return {"column": step.column, "impute": step.impute}
    if isinstance(step, Categorical):
        return {"column": step.column, "encoding": step.encoding, "impute": step.impute}
    return {"column": step.column, "parts": list(step.parts), "standardise": step.standardise}


def _step_from_dict(entry: object, index: int) -> FeatureStep:
    if not isinstance(entry, dict):
        raise FormatError("each step must be an object", row=index, field="steps")
    kind = entry.get("kind")
    column = entry.get("column")
    if kind == "pixels":
        return Pixels(flatten=bool(entry.get("flatten", True)))
    if not isinstance(column, str):
        raise FormatError(f"a {kind} step needs a string 'column'", row=index, field="column")
    if kind == "numeric":  # a spec saved before imputing filled with the mean
        return Numeric(column, entry.get("impute", "mean"))
    if kind == "categorical":
        return Categorical(column, entry.get("encoding", "onehot"), entry.get("impute", "category"))
    if kind == "timestamp":
        parts = tuple(entry.get("parts", ALL_PARTS))
        return Timestamp(column, parts, bool(entry.get("standardise", False)))
    raise FormatError(
        f"unknown step kind {kind!r}; expected pixels, numeric, categorical or timestamp",
        row=index,
        field="kind",
    )


def _float(learned: Learned, key: str) -> float:
    value = learned.get(key)
    if not isinstance(value, int | float):
        raise FormatError(f"learned {key!r} must be a number", field=key)
    return float(value)


def _str_list(learned: Learned, key: str) -> list[str]:
    value = learned.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f"learned {key!r} must be a list of strings", field=key)
    return [str(v) for v in value]


def _float_list(learned: Learned, key: str) -> list[float]:
    value = learned.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        raise FormatError(f"learned {key!r} must be a list of numbers", field=key)
    return [float(v) for v in value]


def _int_list(learned: Learned, key: str) -> list[int]:
    value = learned.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise FormatError(f"learned {key!r} must be a list of integers", field=key)
    return [int(v) for v in value]
