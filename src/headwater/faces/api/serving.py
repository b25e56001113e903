"""Models behind /models: a fast path for loaded runs, and request bodies made model input.

A prediction for one row costs about 50 µs in ONNX Runtime, less than a hop to
a worker thread. So a run id whose model is already loaded, or an alias looked
up less than its time-to-live ago, is answered on the event loop
(`ModelService.hot`), touching neither the warehouse nor the disk; anything
that may need them (an alias due for a fresh look-up, a model loaded the first
time, an unknown id) goes through `ModelService.load` in a worker thread.

Input is checked against what the model was trained on before ONNX Runtime
sees it: the image size, the pixel scale, the columns a table model needs. Each
refusal is a `DataError` naming the field (and row), so it leaves as a 422.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import threading
import time
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from headwater.data.features import Categorical, Numeric, Pixels, Timestamp
from headwater.errors import FormatError, SchemaError
from headwater.faces.api.problems import Problem
from headwater.faces.api.schemas import JsonScalar, PredictIn, PredictionOut, PredictOut
from headwater.flows.runs import ServedModel
from headwater.flows.serving import ModelCache

__all__ = [
    "ALIASES",
    "ModelInput",
    "ModelService",
    "answer",
    "image_shape",
    "input_from_json",
    "input_from_png",
    "pixel_matrix",
    "table_columns",
]

ALIASES = frozenset({"best", "latest"})
"""References resolved per dataset; anything else is a run id."""

ModelInput: TypeAlias = npt.NDArray[np.generic] | pa.Table


class ModelService:
    """The process's `ModelCache`, plus what it can answer without I/O.

    The cache decides what an alias means; this only remembers, for the same
    time-to-live, which run the cache last gave for it, so a fresh answer needs
    no thread. `invalidate` forgets both.
    """

    def __init__(self, cache: ModelCache, *, alias_ttl_s: float) -> None:
        self._cache = cache
        self._ttl = alias_ttl_s
        self._loaded: set[str] = set()
        self._aliases: dict[tuple[str | None, str], tuple[str, float]] = {}
        self._resolving = threading.Lock()

    def hot(self, reference: str, dataset: str | None) -> ServedModel | None:
        """A loaded model, or None; never blocks, so it may run on the event loop."""
        if reference in ALIASES:
            found = self._aliases.get((dataset, reference))
            if found is None or time.monotonic() - found[1] >= self._ttl:
                return None
            reference = found[0]
        if reference not in self._loaded:
            return None
        return self._cache.model(reference)

    def load(self, reference: str, dataset: str | None) -> ServedModel:
        """Resolve an alias and load the model if needed; may read the registry (a thread).

        Alias look-ups take turns: when a burst arrives with the alias due, one
        thread asks the registry and the others reuse its answer, instead of every
        request opening its own warehouse connection for the same question.
        """
        run_id = reference
        if reference in ALIASES:
            with self._resolving:
                key = (dataset, reference)
                found = self._aliases.get(key)
                if found is not None and time.monotonic() - found[1] < self._ttl:
                    run_id = found[0]
                else:
                    now = time.monotonic()
                    run_id = self._cache.resolve(reference, dataset)
                    self._aliases[key] = (run_id, now)
        served = self._cache.model(run_id)
        self._loaded.add(run_id)
        return served

    def invalidate(self) -> None:
        """A run finished or an alias moved: look aliases up again (loaded models stay)."""
        self._aliases.clear()
        self._cache.invalidate()


def image_shape(served: ServedModel) -> tuple[int, ...] | None:
    """(h, w) of the images a model takes, or None for a table model."""
    steps = served.features.steps
    if len(steps) != 1 or not isinstance(steps[0], Pixels):
        return None
    learned = served.features.learned_[0]["shape"]
    assert isinstance(learned, list)
    return tuple(int(d) for d in learned)


def _size(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def check_rows(count: int, limit: int) -> None:
    if count > limit:
        raise Problem(
            413,
            "Too many rows",
            f"{count} rows in one request is over the {limit}-row limit "
            "(HEADWATER_API_MAX_PREDICT_ROWS); split the request or score a file with "
            "POST /models/{ref}/score",
            limit=limit,
            setting="HEADWATER_API_MAX_PREDICT_ROWS",
        )


def input_from_json(served: ServedModel, body: PredictIn, *, max_rows: int) -> ModelInput:
    """Rows, pixel rows or a base64 PNG, as the array or table the model's features take."""
    shape = image_shape(served)
    if body.rows is not None:
        if shape is not None:
            raise SchemaError(
                f"this model takes {_size(shape)} images; send 'pixels', 'image_base64' or a PNG",
                field="rows",
            )
        check_rows(len(body.rows), max_rows)
        return rows_table(served, body.rows)
    if shape is None:
        raise SchemaError("this model takes table rows; send 'rows'", field="pixels")
    if body.image_base64 is not None:
        try:
            png = base64.b64decode(body.image_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError(f"not valid base64: {exc}", field="image_base64") from exc
        return input_from_png(served, png, field="image_base64")
    assert body.pixels is not None
    check_rows(len(body.pixels), max_rows)
    return pixel_matrix(body.pixels, shape)


def pixel_matrix(pixels: list[list[float]], shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
    """Flat pixel rows as images: 0..255 whole numbers as uint8, else 0..1 floats as given."""
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


def input_from_png(
    served: ServedModel, data: bytes, *, field: str = "body"
) -> npt.NDArray[np.uint8]:
    """One PNG of the model's image size as a (1, h, w) uint8 array; anything else is 422.

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


def table_columns(served: ServedModel) -> dict[str, pa.DataType | None]:
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


def rows_table(served: ServedModel, rows: list[dict[str, JsonScalar]]) -> pa.Table:
    """JSON rows as a table with the columns the model needs, each cast to its feature type."""
    if not rows:
        raise SchemaError("send at least one row", field="rows")
    needed = table_columns(served)
    for index, row in enumerate(rows):
        missing = needed.keys() - row.keys()
        if missing:
            raise SchemaError(
                f"the row has no {', '.join(sorted(missing))}; the model needs "
                f"{', '.join(needed)} (null for unknown)",
                row=index,
                field=sorted(missing)[0],
            )
        unknown = [name for name in row if name not in needed]
        if unknown:
            raise SchemaError(
                f"the model takes no {unknown[0]!r}; it reads {', '.join(needed)} and nothing else",
                row=index,
                field=unknown[0],
            )
    columns: dict[str, pa.Array] = {}
    for name, kind in needed.items():
        values = [row[name] for row in rows]
        columns[name] = _column(name, values, kind)
    return pa.table(columns)


def _column(name: str, values: list[JsonScalar], kind: pa.DataType | None) -> pa.Array:
    try:
        if kind == pa.float64():
            for row, value in enumerate(values):
                if isinstance(value, str | bool):
                    got = "text" if isinstance(value, str) else f"{str(value).lower()}"
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


def answer(served: ServedModel, proba: npt.NDArray[np.float32]) -> PredictOut:
    classes = served.classes
    best = np.argmax(proba, axis=1).tolist()
    return PredictOut(
        run_id=served.run_id,
        classes=classes,
        predictions=[
            PredictionOut(label=classes[top], probabilities=dict(zip(classes, row, strict=True)))
            for top, row in zip(best, proba.tolist(), strict=True)
        ],
    )
