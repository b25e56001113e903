"""What a served model takes, and request data made into it: JSON rows, pixel rows, a PNG.

The model's features decide: a `Pixels` step means images of the shape learned in
training, anything else means table columns, each read as the type its step needs
(numbers, text, timestamps). Every refusal is a `DataError` naming the field (and
row), so every face reports it the same way (the API as a 422).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from headwater.data.features import Categorical, Numeric, Pixels, Timestamp
from headwater.errors import FormatError, SchemaError

if TYPE_CHECKING:
    from headwater.flows.runs import ServedModel

__all__ = [
    "IGNORED_COLUMNS",
    "ROW_ID",
    "JsonScalar",
    "ModelInput",
    "from_base64_png",
    "from_batch",
    "from_pixels",
    "from_png",
    "from_rows",
    "image_shape",
    "input_columns",
    "model_input",
    "scaled_pixels",
]

ModelInput: TypeAlias = npt.NDArray[np.generic] | pa.Table
JsonScalar: TypeAlias = str | int | float | bool | None

ROW_ID = "row_id"
"""A column that names the rows of a scored file; it is never a feature."""
IGNORED_COLUMNS = frozenset({ROW_ID, "label"})
"""Columns of a pixel file that are not pixels."""


def image_shape(served: ServedModel) -> tuple[int, ...] | None:
    """(h, w) of the images a model takes, or None for a table model."""
    steps = served.features.steps
    if len(steps) != 1 or not isinstance(steps[0], Pixels):
        return None
    learned = served.features.learned_[0]["shape"]
    assert isinstance(learned, list)
    return tuple(int(d) for d in learned)


def input_columns(served: ServedModel) -> dict[str, pa.DataType | None]:
    """Feature columns of a table model and the Arrow type each is read as (None: as found)."""
    types: dict[str, pa.DataType | None] = {}
    for step in served.features.steps:
        if isinstance(step, Numeric):
            types[step.column] = pa.float64()
        elif isinstance(step, Categorical):
            types[step.column] = pa.string()
        elif isinstance(step, Timestamp):
            types[step.column] = None
    return types


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _image_model(served: ServedModel, field: str) -> tuple[int, ...]:
    shape = image_shape(served)
    if shape is None:
        raise SchemaError("this model takes table rows; send 'rows'", field=field)
    return shape


def from_rows(served: ServedModel, rows: Sequence[Mapping[str, JsonScalar]]) -> pa.Table:
    """JSON rows as a table of exactly the columns the model reads, each cast to its type."""
    shape = image_shape(served)
    if shape is not None:
        raise SchemaError(
            f"this model takes {_size(shape)} images; send 'pixels', 'image_base64' or a PNG",
            field="rows",
        )
    if not rows:
        raise SchemaError("send at least one row", field="rows")
    needed = input_columns(served)
    known = {choice.column for choice in served.features.columns}
    for index, row in enumerate(rows):
        missing = needed.keys() - row.keys()
        if missing:
            raise SchemaError(
                f"the row has no {', '.join(sorted(missing))}; the model needs "
                f"{', '.join(needed)} (null for unknown)",
                row=index,
                field=sorted(missing)[0],
            )
        unknown = [name for name in row if name not in needed and name not in known]
        if unknown:
            raise SchemaError(
                f"the model takes no {unknown[0]!r}; it reads {', '.join(needed)} (the "
                "dataset's other columns are accepted and left out)",
                row=index,
                field=unknown[0],
            )
    flags = _yes_no_columns(served)
    return pa.table(
        {
            name: _column(name, [r[name] for r in rows], kind, yes_no=name in flags)
            for name, kind in needed.items()
        }
    )


def _yes_no_columns(served: ServedModel) -> set[str]:
    """Columns trained on as true/false (read as 1/0): only there is a JSON boolean a number."""
    return {c.column for c in served.features.columns if c.reason.startswith("true/false")}


def _column(
    name: str, values: list[JsonScalar], kind: pa.DataType | None, *, yes_no: bool = False
) -> pa.Array:
    try:
        if kind == pa.float64():
            for row, value in enumerate(values):
                if isinstance(value, str) or (isinstance(value, bool) and not yes_no):
                    got = "text" if isinstance(value, str) else str(value).lower()
                    raise SchemaError(
                        f"expected a number (or null), got {got}", row=row, field=name
                    )
            return pa.array([None if v is None else float(v) for v in values], pa.float64())
        if kind == pa.string():
            return pa.array([None if v is None else str(v) for v in values], pa.string())
        texts = pa.array([None if v is None else str(v) for v in values], pa.string())
        try:
            return pc.cast(texts, pa.timestamp("us"))
        except pa.ArrowInvalid:
            return pc.cast(texts, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"cannot read the values as {kind or 'timestamps'}: {exc}", field=name
        ) from exc


def from_pixels(served: ServedModel, pixels: Sequence[Sequence[float]]) -> npt.NDArray[np.generic]:
    """Flat pixel rows as images: 0..255 whole numbers as uint8, else 0..1 floats as given."""
    shape = _image_model(served, "pixels")
    width = math.prod(shape)
    for row, values in enumerate(pixels):
        if len(values) != width:
            raise SchemaError(
                f"each image needs {width} numbers ({_size(shape)}, row-major); this one has "
                f"{len(values)}",
                row=row,
                field="pixels",
            )
    if not pixels:
        raise SchemaError("send at least one image", field="pixels")
    flat = np.asarray(pixels, dtype=np.float32)
    return scaled_pixels(flat, field="pixels").reshape(len(flat), *shape)


def scaled_pixels(flat: npt.NDArray[np.generic], *, field: str) -> npt.NDArray[np.generic]:
    """Numbers above 1 mean the 0..255 scale: they must then be whole and at most 255."""
    if flat.dtype.kind in "iu" or float(flat.max()) > 1.0:
        if flat.dtype.kind == "f" and not np.array_equal(flat, np.floor(flat)):
            raise SchemaError(
                "pixels above 1 are read as 0..255 and must be whole numbers; send 0..1 floats "
                "or 0..255 integers, not a mix",
                field=field,
            )
        if float(flat.min()) < 0 or float(flat.max()) > 255:
            raise SchemaError("pixels must lie in 0..255 (or 0..1)", field=field)
        return flat.astype(np.uint8)
    return flat


def from_base64_png(served: ServedModel, text: str) -> npt.NDArray[np.uint8]:
    """One base64 PNG, as `from_png` reads it."""
    _image_model(served, "image_base64")
    try:
        png = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"not valid base64: {exc}", field="image_base64") from exc
    return from_png(served, png, field="image_base64")


def from_png(served: ServedModel, data: bytes, *, field: str = "body") -> npt.NDArray[np.uint8]:
    """One PNG of the model's image size as a (1, h, w) uint8 array; anything else is refused.

    The size is read from the header before a pixel is decoded, so a small file that
    claims to be huge (a decompression bomb) costs nothing.
    """
    shape = image_shape(served)
    if shape is None:
        raise SchemaError("this model takes table rows, not images; send JSON 'rows'", field=field)
    if len(shape) != 2:
        raise SchemaError(
            f"this model takes {_size(shape)} arrays; send them as 'pixels'", field=field
        )
    height, width = shape
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.size != (width, height):
                raise SchemaError(
                    f"the PNG is {image.width}x{image.height} pixels; this model takes "
                    f"{width}x{height} images",
                    field=field,
                )
            gray = np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise FormatError("not a PNG image; send one PNG file", field=field) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"the PNG is truncated or corrupt ({exc})", field=field) from exc
    return gray.reshape(1, height, width)


def from_batch(served: ServedModel, batch: pa.RecordBatch, *, name: str, first: int) -> ModelInput:
    """A batch of a tabular file as the model's input.

    A table model gets its columns (others are left alone); an image model reads
    every column but ``row_id`` and ``label`` as one pixel, in file order.
    """
    shape = image_shape(served)
    if shape is None:
        return pa.Table.from_batches([batch])
    pixels = [i for i, f in enumerate(batch.schema) if f.name not in IGNORED_COLUMNS]
    width = math.prod(shape)
    if len(pixels) != width:
        raise SchemaError(
            f"the file has {len(pixels)} pixel columns; this model takes {width} "
            f"({_size(shape)}, row-major), plus optional row_id and label columns",
            path=name,
        )
    columns = []
    for i in pixels:
        column = batch.column(i)
        field = batch.schema.field(i)
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            raise SchemaError(
                f"pixels must be numbers, got {field.type}", path=name, field=field.name
            )
        if column.null_count:
            raise SchemaError("a pixel is empty", path=name, field=field.name, row=first)
        columns.append(column.to_numpy(zero_copy_only=False))
    matrix = np.column_stack(columns) if columns else np.empty((0, width))
    if len(matrix) == 0:
        return matrix.reshape(0, *shape)
    return scaled_pixels(matrix, field="pixels").reshape(len(matrix), *shape)


def model_input(
    served: ServedModel,
    *,
    rows: Sequence[Mapping[str, JsonScalar]] | None = None,
    pixels: Sequence[Sequence[float]] | None = None,
    image_base64: str | None = None,
    png: bytes | None = None,
) -> ModelInput:
    """Whichever one of table rows, pixel rows, a base64 PNG or a PNG was sent, as model input."""
    if png is not None:
        return from_png(served, png)
    if rows is not None:
        return from_rows(served, rows)
    if image_base64 is not None:
        return from_base64_png(served, image_base64)
    if pixels is not None:
        return from_pixels(served, pixels)
    raise SchemaError("send one of 'rows', 'pixels' or 'image_base64'", field="body")
