"""A table as a numeric matrix and back, with every column's type restored.

Every synthesizer learns on the same matrix: numbers (integers and dates too) go
through their own empirical quantiles to a standard normal score (integers are
spread over their unit interval first, so ties do not pile up), categories become
one-hot blocks whose missing value is a category of its own. Decoding reverses it:
scores go back through the quantiles, integers are rounded, every value is clipped
to the range seen, categories are decoded (drawn from the block's weights, or its
largest), missing numbers are re-inserted at the rate seen, dates come back as dates
of the original Arrow type. A column of one value is kept as that value.

The state is plain arrays (saved as safetensors) plus JSON, never pickle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from headwater.errors import SchemaError

__all__ = ["Block", "ColumnCodec", "TableCodec", "column_kind", "text_array"]

Kind = Literal["number", "integer", "date", "category", "constant"]
FloatMatrix = npt.NDArray[np.float64]
QUANTILES = 1000
"""Points of the empirical distribution kept per number column."""
_EDGE = 1e-4
"""Scores stay inside the normal's (0.01%, 99.99%) quantiles, so none is infinite."""


def column_kind(kind: pa.DataType) -> Kind | None:
    """How a column of this Arrow type is modelled; None for a type synthesis cannot make."""
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return "date"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
        return "category"
    if pa.types.is_dictionary(kind):
        return "category"
    return None


@dataclass
class ColumnCodec:
    """One column's learned state: its kind, type, range, missing rate, categories."""

    name: str
    kind: Kind
    arrow_type: str
    missing_rate: float = 0.0
    low: float = 0.0
    high: float = 0.0
    categories: list[str | None] = field(default_factory=list)
    constant: str | float | None = None


@dataclass(frozen=True)
class Block:
    """Where a column lives in the matrix: ``width`` 1 for a number, one per category else."""

    column: str
    start: int
    width: int
    kind: Kind


class TableCodec:
    """Fitted on a table's columns; ``encode`` gives the matrix, ``decode`` the table back."""

    def __init__(self) -> None:
        self.columns: list[ColumnCodec] = []
        self.quantiles: dict[str, npt.NDArray[np.float64]] = {}
        self.types: dict[str, pa.DataType] = {}

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, table: pa.Table, rng: np.random.Generator) -> TableCodec:
        for name in table.column_names:
            column = table.column(name)
            kind = column_kind(column.type)
            if kind is None:
                raise SchemaError(
                    f"column {name!r} has type {column.type}, which synthesis cannot make",
                    field=name,
                )
            self.types[name] = column.type
            self.columns.append(self._fit_column(name, kind, column, rng))
        return self

    def _fit_column(
        self, name: str, kind: Kind, column: pa.ChunkedArray, rng: np.random.Generator
    ) -> ColumnCodec:
        rows = max(len(column), 1)
        if kind == "category":
            text = text_array(column)
            found = sorted(str(v) for v in pc.unique(text).drop_null().to_pylist())
            cats: list[str | None] = list(found) + ([None] if text.null_count else [])
            if len(cats) == 1:
                return ColumnCodec(name, "constant", str(column.type), constant=cats[0])
            return ColumnCodec(name, kind, str(column.type), categories=cats)
        numbers = _numbers(column)
        seen = numbers[~np.isnan(numbers)]
        rate = 1.0 - len(seen) / rows
        if len(seen) == 0 or float(seen.min()) == float(seen.max()):
            value = None if len(seen) == 0 else float(seen[0])
            return ColumnCodec(name, "constant", str(column.type), rate, constant=value)
        spread = _spread(seen, kind, rng)
        self.quantiles[name] = np.quantile(spread, np.linspace(0.0, 1.0, QUANTILES))
        return ColumnCodec(name, kind, str(column.type), rate, float(seen.min()), float(seen.max()))

    # ---- the matrix ----------------------------------------------------------------------
    @property
    def blocks(self) -> list[Block]:
        out, start = [], 0
        for c in self.columns:
            if c.kind == "constant":
                continue
            width = len(c.categories) if c.kind == "category" else 1
            out.append(Block(c.name, start, width, c.kind))
            start += width
        return out

    @property
    def width(self) -> int:
        return sum(b.width for b in self.blocks)

    def encode(self, table: pa.Table, rng: np.random.Generator) -> FloatMatrix:
        """Numbers as normal scores (missing: 0, the median), categories one-hot."""
        out = np.zeros((table.num_rows, self.width))
        for block, codec in zip(self.blocks, self._modelled(), strict=True):
            column = table.column(block.column)
            if block.kind == "category":
                codes = _codes(column, codec.categories)
                known = codes >= 0
                out[np.flatnonzero(known), block.start + codes[known]] = 1.0
            else:
                x = _numbers(column)
                missing = np.isnan(x)
                x[~missing] = _spread(x[~missing], block.kind, rng)
                scores = self._to_scores(block.column, x)
                scores[missing] = 0.0
                out[:, block.start] = scores
        return out

    def decode(
        self, matrix: FloatMatrix, rng: np.random.Generator, *, draw: bool = True
    ) -> pa.Table:
        """The table ``matrix`` stands for; ``draw``: categories by weight, else the largest."""
        rows = matrix.shape[0]
        blocks = {b.column: b for b in self.blocks}
        arrays = []
        for codec in self.columns:
            kind = self.types[codec.name]
            if codec.kind == "constant":
                arrays.append(_constant(codec, kind, rows))
                continue
            block = blocks[codec.name]
            part = matrix[:, block.start : block.start + block.width]
            if codec.kind == "category":
                arrays.append(_categories(codec, kind, part, rng, draw=draw))
            else:
                arrays.append(self._numbers_back(codec, kind, part[:, 0], rng))
        return pa.table(arrays, names=[c.name for c in self.columns])

    def _modelled(self) -> list[ColumnCodec]:
        return [c for c in self.columns if c.kind != "constant"]

    def _to_scores(self, name: str, x: FloatMatrix) -> FloatMatrix:
        q = self.quantiles[name]
        p = np.linspace(0.0, 1.0, len(q))
        # ties in the quantiles: average the lowest and highest place (as sklearn does)
        up = np.interp(x, q, p)
        down = 1.0 - np.interp(-x, -q[::-1], p)
        u = np.clip((up + down) / 2.0, _EDGE, 1.0 - _EDGE)
        scores: FloatMatrix = stats.norm.ppf(u)
        return scores

    def _numbers_back(
        self, codec: ColumnCodec, kind: pa.DataType, scores: FloatMatrix, rng: np.random.Generator
    ) -> pa.Array:
        q = self.quantiles[codec.name]
        x = np.interp(stats.norm.cdf(scores), np.linspace(0.0, 1.0, len(q)), q)
        if codec.kind != "number":
            x = np.round(x)
        x = np.clip(x, codec.low, codec.high)
        missing = rng.random(len(x)) < codec.missing_rate
        return _as_arrow(x, missing, kind)

    # ---- saving ----------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, object], dict[str, npt.NDArray[np.float64]]]:
        meta: dict[str, object] = {"columns": [asdict(c) for c in self.columns]}
        meta["types"] = {n: _type_text(t) for n, t in self.types.items()}
        return meta, {f"codec.{n}": q for n, q in self.quantiles.items()}

    @classmethod
    def from_state(
        cls, meta: dict[str, object], tensors: dict[str, npt.NDArray[np.float64]]
    ) -> TableCodec:
        codec = cls()
        columns = meta["columns"]
        types = meta["types"]
        assert isinstance(columns, list)
        assert isinstance(types, dict)
        codec.columns = [ColumnCodec(**c) for c in columns]
        codec.types = {str(n): _type_of(str(t)) for n, t in types.items()}
        codec.quantiles = {
            k[len("codec.") :]: v for k, v in tensors.items() if k.startswith("codec.")
        }
        return codec


def text_array(column: pa.ChunkedArray) -> pa.Array:
    """A category column as one string array (booleans as ``True``/``False``), nulls kept."""
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if pa.types.is_boolean(column.type):
        column = pc.if_else(column, "True", "False")
    return pc.cast(column, pa.string()).combine_chunks()


def _codes(column: pa.ChunkedArray, categories: list[str | None]) -> npt.NDArray[np.int64]:
    """Each row's index in ``categories`` (missing: the None category's), -1 when unseen."""
    text = text_array(column)
    named = [c for c in categories if c is not None]
    index = pc.index_in(text, value_set=pa.array(named, pa.string()))
    codes = np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    if None in categories:
        codes[np.asarray(text.is_null().to_numpy(zero_copy_only=False))] = categories.index(None)
    return codes


def _numbers(column: pa.ChunkedArray) -> FloatMatrix:
    kind = column.type
    if pa.types.is_date(kind):
        column = pc.cast(pc.cast(column, pa.date32()), pa.int32())
    elif pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.int64())
    elif pa.types.is_decimal(kind):
        column = pc.cast(column, pa.float64())
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.float64)


def _spread(x: FloatMatrix, kind: Kind, rng: np.random.Generator) -> FloatMatrix:
    """Whole numbers spread over their unit interval, so their quantiles are all distinct."""
    if kind in ("integer", "date"):
        return x + rng.uniform(-0.5, 0.5, size=x.shape)
    return x


def _as_arrow(x: FloatMatrix, missing: npt.NDArray[np.bool_], kind: pa.DataType) -> pa.Array:
    if pa.types.is_date(kind):
        days = pa.array(x.astype(np.int32), pa.int32(), mask=missing)
        return pc.cast(pc.cast(days, pa.date32()), kind)
    if pa.types.is_timestamp(kind):
        return pa.array(x.astype(np.int64), pa.int64(), mask=missing).cast(kind)
    if pa.types.is_integer(kind):
        return pa.array(x.astype(np.int64), pa.int64(), mask=missing).cast(kind)
    return pa.array(x, pa.float64(), mask=missing).cast(kind)


def _constant(codec: ColumnCodec, kind: pa.DataType, rows: int) -> pa.Array:
    target = _plain(kind)
    if codec.constant is None:
        return pa.nulls(rows, target)
    if column_kind(kind) == "category":
        values = pa.array([str(codec.constant)] * rows, pa.string())
        return pc.equal(values, "True") if pa.types.is_boolean(target) else pc.cast(values, target)
    return _as_arrow(np.full(rows, float(codec.constant)), np.zeros(rows, dtype=bool), kind)


def _categories(
    codec: ColumnCodec,
    kind: pa.DataType,
    part: FloatMatrix,
    rng: np.random.Generator,
    *,
    draw: bool,
) -> pa.Array:
    if draw:
        weights = np.clip(part, 0.0, None) + 1e-9
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        codes = (cumulative < rng.random((len(part), 1))).sum(axis=1)
        codes = np.minimum(codes, part.shape[1] - 1)
    else:
        codes = np.argmax(part, axis=1)
    values = pa.array(codec.categories, pa.string()).take(pa.array(codes))
    target = _plain(kind)
    if pa.types.is_boolean(target):
        return pc.equal(values, "True")
    return pc.cast(values, target)


def _plain(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _type_text(kind: pa.DataType) -> str:
    return str(kind)


_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "bool": pa.bool_(),
    "double": pa.float64(),
    "float": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "int16": pa.int16(),
    "int8": pa.int8(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "date32[day]": pa.date32(),
    "date64[ms]": pa.date64(),
}


def _type_of(text: str) -> pa.DataType:
    """An Arrow type back from its name (the few kinds synthesis makes)."""
    if text in _TYPES:
        return _TYPES[text]
    if text.startswith("timestamp["):
        inner = text[len("timestamp[") : -1].split(", tz=")
        return pa.timestamp(inner[0], tz=inner[1] if len(inner) > 1 else None)
    if text.startswith("dictionary<"):
        return pa.string()
    raise SchemaError(f"a saved synthesizer names a column type it cannot read back: {text}")
