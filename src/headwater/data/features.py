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

The output is always a ``float32`` matrix, ready for any estimator.

    spec = FeatureSpec([Numeric("amount"), Categorical("country"), Timestamp("ordered_at")])
    X = spec.fit(train).transform(train)
    (folder / "features.json").write_text(spec.to_json())
    X_live = FeatureSpec.from_json(text).transform(request_table)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError, FormatError, ModelNotFitted, SchemaError

__all__ = [
    "Categorical",
    "Encoding",
    "FeatureSpec",
    "FeatureStep",
    "Numeric",
    "Pixels",
    "Timestamp",
    "TimestampPart",
]

Encoding = Literal["onehot", "label"]
TimestampPart = Literal["year", "month", "day", "hour", "minute", "second", "microsecond"]
ALL_PARTS: tuple[TimestampPart, ...] = get_args(TimestampPart)
FORMAT = "headwater.features"
VERSION = 1
MISSING_PART = -1.0  # a null timestamp: no real year, month or hour is ever negative

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
    """Standardise a numeric column with the training mean and std; nulls become the mean."""

    column: str


@dataclass(frozen=True)
class Categorical:
    """Encode a column's values against the categories seen in training.

    ``onehot`` gives one 0/1 column per category and all zeros for a value not seen in
    training; ``label`` gives one column of codes 1..k with 0 reserved for unseen values
    and nulls. Neither crashes on a new category at serving.
    """

    column: str
    encoding: Encoding = "onehot"


@dataclass(frozen=True)
class Timestamp:
    """Split a timestamp column into calendar and clock parts; a null gives -1 in each part.

    A zoned timestamp gives the wall-clock parts in its own zone; a date is its midnight.
    """

    column: str
    parts: tuple[TimestampPart, ...] = ALL_PARTS


FeatureStep = Pixels | Numeric | Categorical | Timestamp
Learned = dict[str, float | list[str] | list[int]]


class FeatureSpec:
    """An ordered list of feature steps plus what they learned from the training data."""

    def __init__(self, steps: Sequence[FeatureStep]) -> None:
        self.steps = tuple(steps)

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
            if images.ndim not in (2, 3) or len(images) == 0:
                raise SchemaError(
                    f"images must be a non-empty (n, h, w) or (n, h*w) array, got {images.shape}",
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
        return json.dumps(
            {"format": FORMAT, "version": VERSION, "fitted": learned is not None, "steps": steps},
            indent=2,
            sort_keys=True,
        )

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
        spec = cls([_step_from_dict(entry, i) for i, entry in enumerate(raw_steps)])
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


# -- per-step work ---------------------------------------------------------------------------


class _ColumnFit:
    """What one table step learns, gathered a chunk at a time."""

    def __init__(self, step: FeatureStep) -> None:
        if isinstance(step, Pixels):
            raise ConfigError("Pixels is not a table step")
        self.step = step
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.categories: set[str] = set()

    def add(self, table: pa.Table) -> None:
        step = self.step
        if isinstance(step, Numeric):
            values = _numeric(table, step.column)
            values = values[~np.isnan(values)]
            if len(values) == 0:
                return
            mean = float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            total = self.count + len(values)
            delta = mean - self.mean
            self.mean += delta * len(values) / total
            self.m2 += m2 + delta * delta * self.count * len(values) / total
            self.count = total
        elif isinstance(step, Categorical):
            values = pc.unique(_strings(table, step.column)).drop_null().to_pylist()
            self.categories.update(str(v) for v in values)
        elif isinstance(step, Timestamp):
            _timestamps(table, step.column)

    def learned(self) -> Learned:
        step = self.step
        if isinstance(step, Numeric):
            if self.count == 0:
                raise SchemaError(
                    "numeric column has no non-null values to learn a mean from",
                    field=step.column,
                )
            std = float(np.sqrt(self.m2 / self.count))
            return {"mean": self.mean, "std": std if std > 0 else 1.0}
        if isinstance(step, Categorical):
            return {"categories": sorted(self.categories)}
        return {}


def _transform_column(step: FeatureStep, learned: Learned, table: pa.Table) -> FloatMatrix:
    if isinstance(step, Numeric):
        mean, std = _float(learned, "mean"), _float(learned, "std")
        out = (_numeric(table, step.column) - mean) / std
        return np.nan_to_num(out, nan=0.0).astype(np.float32)[:, None]
    if isinstance(step, Categorical):
        categories = _str_list(learned, "categories")
        codes = pc.index_in(
            _strings(table, step.column), value_set=pa.array(categories, pa.string())
        )
        index = np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if step.encoding == "label":
            return (index + 1).astype(np.float32)[:, None]
        onehot = np.zeros((len(index), len(categories)), dtype=np.float32)
        known = np.flatnonzero(index >= 0)
        onehot[known, index[known]] = 1.0
        return onehot
    if isinstance(step, Timestamp):
        stamps = _timestamps(table, step.column)
        parts = [
            _part(stamps, part).fill_null(MISSING_PART).to_numpy(zero_copy_only=False)
            for part in step.parts
        ]
        return np.column_stack(parts).astype(np.float32)
    raise ConfigError(f"{type(step).__name__} is not a table step")


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


def _numeric(table: pa.Table, name: str) -> npt.NDArray[np.float64]:
    column = _column(table, name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise SchemaError(f"expected a numeric column, got {column.type}", field=name)
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = _column(table, name)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"cannot read {column.type} as categories: {exc}", field=name) from exc


def _timestamps(table: pa.Table, name: str) -> pa.ChunkedArray:
    column = _column(table, name)
    if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        raise SchemaError(
            f"expected a timestamp or date column, got {column.type}; parse it at ingest",
            field=name,
        )
    if pa.types.is_date(column.type):  # a date is its midnight: clock parts are 0
        return pc.cast(column, pa.timestamp("s"))
    return column


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
        return {"column": step.column}
    if isinstance(step, Categorical):
        return {"column": step.column, "encoding": step.encoding}
    return {"column": step.column, "parts": list(step.parts)}


def _step_from_dict(entry: object, index: int) -> FeatureStep:
    if not isinstance(entry, dict):
        raise FormatError("each step must be an object", row=index, field="steps")
    kind = entry.get("kind")
    column = entry.get("column")
    if kind == "pixels":
        return Pixels(flatten=bool(entry.get("flatten", True)))
    if not isinstance(column, str):
        raise FormatError(f"a {kind} step needs a string 'column'", row=index, field="column")
    if kind == "numeric":
        return Numeric(column)
    if kind == "categorical":
        return Categorical(column, entry.get("encoding", "onehot"))
    if kind == "timestamp":
        return Timestamp(column, tuple(entry.get("parts", ALL_PARTS)))
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


def _int_list(learned: Learned, key: str) -> list[int]:
    value = learned.get(key)
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise FormatError(f"learned {key!r} must be a list of integers", field=key)
    return [int(v) for v in value]
