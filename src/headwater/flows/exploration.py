"""Looking at a dataset before and after training: column summaries, labels, samples, scores.

The web UI's "analyze" page and its predict and draw-a-digit pages ask these
questions; the answers are plain dataclasses and arrays, so any face can show
them. Summaries are column expressions over Arrow (one pass per column, no row
loops); image datasets are summarised by their pixels and labels.

`digit_from_drawing` turns a drawing (dark ink on a light canvas, any size) into
what an MNIST model expects, the way MNIST itself was made: the ink's bounding
box scaled into 20x20 with area averaging (anti-aliased), then placed in 28x28
so that its centre of mass is the image centre.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from headwater.errors import FormatError, NotFound, SchemaError
from headwater.flows.runs import ServedModel, prediction_header, prediction_rows
from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat

__all__ = [
    "SPLITS",
    "ColumnSummary",
    "SampleImage",
    "ScoredSplit",
    "column_summaries",
    "digit_from_drawing",
    "label_distribution",
    "read_drawing",
    "sample_images",
    "score_split",
    "split_input",
]

SPLITS = ("train", "validation", "test", "unassigned")
MAX_DRAWING_SIDE = 2048
"""A drawing larger than this (per side) is refused before its pixels are decoded."""

ModelInput: TypeAlias = npt.NDArray[np.generic] | pa.Table


@dataclass(frozen=True)
class ColumnSummary:
    """One column: how many values, how many missing, and its spread or its commonest value."""

    name: str
    type: str
    count: int
    missing: int
    distinct: int | None = None
    minimum: str | None = None
    maximum: str | None = None
    mean: float | None = None
    std: float | None = None
    top: str | None = None

    @property
    def missing_fraction(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


@dataclass(frozen=True)
class SampleImage:
    row_id: int
    split: str
    label: str | None
    png: bytes


@dataclass(frozen=True)
class ScoredSplit:
    """Predictions for every row of a split, as CSV rows (formula cells escaped), and truth."""

    header: list[str]
    rows: list[list[str]]
    labels: list[str | None]
    regression: bool = False

    @property
    def accuracy(self) -> float | None:
        """The share of predictions equal to their label; None for a regressor's numbers."""
        if self.regression:
            return None
        known = [(row[1], label) for row, label in zip(self.rows, self.labels, strict=True)]
        scored = [(p, t) for p, t in known if t is not None]
        if not scored:
            return None
        return sum(p == t for p, t in scored) / len(scored)


def _tabular_splits(ws: Workspace, dataset: cat.DatasetRow) -> dict[str, pa.Table]:
    tables = {s: cat.tabular_rows(ws.warehouse, dataset, s) for s in SPLITS}
    return {s: t for s, t in tables.items() if t.num_rows}


def _scalar(value: pa.Scalar) -> str | None:
    found = value.as_py()
    return None if found is None else str(found)


def _summarise(name: str, column: pa.ChunkedArray) -> ColumnSummary:
    kind = column.type
    missing = column.null_count
    if pa.types.is_floating(kind):
        missing += int(pc.sum(pc.is_nan(column)).as_py() or 0)
        column = pc.drop_null(pc.if_else(pc.is_nan(column), None, column))
    count = len(column) - column.null_count
    distinct = int(pc.count_distinct(column).as_py())
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if numeric and count:
        bounds = pc.min_max(column)
        return ColumnSummary(
            name,
            str(kind),
            count,
            missing,
            distinct,
            _scalar(bounds["min"]),
            _scalar(bounds["max"]),
            float(pc.mean(column).as_py()),
            float(pc.stddev(column, ddof=1).as_py() or 0.0) if count > 1 else 0.0,
        )
    orderable = pa.types.is_temporal(kind) or pa.types.is_boolean(kind)
    if orderable and count:
        bounds = pc.min_max(column)
        return ColumnSummary(
            name,
            str(kind),
            count,
            missing,
            distinct,
            _scalar(bounds["min"]),
            _scalar(bounds["max"]),
        )
    top = None
    if count and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        found = pc.value_counts(pc.drop_null(column))
        counts = found.field("counts")
        commonest = int(pc.index(counts, pc.max(counts)).as_py())
        top = str(found.field("values")[commonest].as_py())
    return ColumnSummary(name, str(kind), count, missing, distinct, top=top)


def column_summaries(ws: Workspace, dataset: str) -> list[ColumnSummary]:
    """Per column over every split: count, missing (null or NaN), distinct, range, mean, std.

    An image dataset has two: its labels, and its pixel values over all images.
    """
    found = cat.get_dataset(ws.warehouse, dataset)
    if found.kind == "image":
        return _image_summaries(ws, found)
    tables = list(_tabular_splits(ws, found).values())
    if not tables:
        return []
    table = pa.concat_tables(tables).drop_columns(["hw_row_key", "hw_batch_key"])
    return [_summarise(name, table.column(name)) for name in table.column_names]


def _image_summaries(ws: Workspace, dataset: cat.DatasetRow) -> list[ColumnSummary]:
    """Labels, and pixel values through a running histogram: memory stays one split's pixels."""
    labels: list[str | None] = []
    histogram = np.zeros(256, dtype=np.int64)
    moments = np.zeros(3, dtype=np.float64)  # count, sum, sum of squares (non-uint8 pixels)
    low, high = math.inf, -math.inf
    shapes: set[str] = set()
    for split in SPLITS:
        arrays = cat.image_arrays(ws.warehouse, dataset, split)
        if len(arrays.row_keys) == 0:
            continue
        labels.extend(arrays.labels)
        pixels = arrays.pixels
        shapes.add("x".join(str(d) for d in pixels.shape[1:]) + f" {pixels.dtype}")
        low, high = min(low, float(pixels.min())), max(high, float(pixels.max()))
        if pixels.dtype == np.uint8:
            histogram += np.bincount(pixels.reshape(-1), minlength=256)
            continue
        for start in range(0, len(pixels), 4096):  # bounded float64 copies
            chunk = pixels[start : start + 4096].astype(np.float64)
            moments += (chunk.size, float(chunk.sum()), float(np.square(chunk).sum()))
    if not labels:
        return []
    values = np.arange(256, dtype=np.float64)
    count = float(histogram.sum()) + moments[0]
    total = float(histogram @ values) + moments[1]
    squares = float(histogram @ np.square(values)) + moments[2]
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    pixels_summary = ColumnSummary(
        "pixels",
        "images " + ", ".join(sorted(shapes)),
        int(count),
        0,
        None,
        f"{low:g}",
        f"{high:g}",
        mean,
        std,
    )
    label_column = pa.chunked_array([pa.array(labels, pa.string())])
    return [_summarise("label", label_column), pixels_summary]


def label_distribution(ws: Workspace, dataset: str) -> dict[str, dict[str, int]]:
    """Rows per label per split, labels in natural order (numbers as numbers); {} unlabelled."""
    found = cat.get_dataset(ws.warehouse, dataset)
    if found.kind == "image":
        counts = cat.label_counts(ws.warehouse, found)
    elif found.label_column is None:
        return {}
    else:
        counts = {}
        for split, table in _tabular_splits(ws, found).items():
            values = pc.value_counts(table.column(found.label_column).cast(pa.string()))
            counts[split] = {
                "(missing)" if v["values"] is None else str(v["values"]): int(v["counts"])
                for v in values.to_pylist()
            }
    return {
        split: dict(sorted(counts[split].items(), key=_label_order))
        for split in SPLITS
        if counts.get(split)
    }


def _label_order(item: tuple[str, int]) -> tuple[int, float, str]:
    label = item[0]
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def sample_images(ws: Workspace, dataset: str, *, limit: int = 24) -> list[SampleImage]:
    """The first images of a dataset as PNGs with their labels; [] for a tabular dataset."""
    found = cat.get_dataset(ws.warehouse, dataset)
    if found.kind != "image":
        return []
    table = cat.sample_rows(ws.warehouse, found, limit=limit)
    samples = []
    for row in table.to_pylist():  # at most `limit` small images: one PNG each
        shape = (int(row["height"]), int(row["width"]), int(row["channels"]))
        pixels = np.frombuffer(row["pixels"], dtype=np.dtype(row["pixel_dtype"])).reshape(shape)
        samples.append(
            SampleImage(
                int(row["row_id"]),
                str(row["split"]),
                None if row["label"] is None else str(row["label"]),
                _png(pixels),
            )
        )
    return samples


def png_of(pixels: npt.NDArray[np.generic]) -> bytes:
    """One image ``(h, w, c)`` as PNG bytes (floats in 0..1 scaled to 0..255)."""
    return _png(pixels)


def _png(pixels: npt.NDArray[np.generic]) -> bytes:
    data = pixels.astype(np.float64)
    if pixels.dtype.kind == "f" and float(data.max(initial=0.0)) <= 1.0:
        data = data * 255.0
    image = np.clip(np.round(data), 0, 255).astype(np.uint8)
    mode_image = image[..., 0] if image.shape[-1] == 1 else image
    sink = io.BytesIO()
    Image.fromarray(mode_image).save(sink, format="PNG")
    return sink.getvalue()


def split_input(
    ws: Workspace, dataset: str, split: str
) -> tuple[ModelInput, list[object], list[str | None]]:
    """A split as model input, its row ids and its true labels (None where unlabelled)."""
    found = cat.get_dataset(ws.warehouse, dataset)
    if split not in SPLITS:
        raise NotFound(f"there is no split {split!r}; choose one of {', '.join(SPLITS)}")
    known = cat.split_counts(ws.warehouse, found)
    if not known.get(split):
        raise NotFound(
            f"dataset {dataset!r} has no {split!r} rows; it has: {', '.join(known) or 'none'}"
        )
    if found.kind == "image":
        arrays = cat.image_arrays(ws.warehouse, found, split)
        pixels = arrays.pixels
        images = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        return images, arrays.row_keys.tolist(), arrays.labels
    table = cat.tabular_rows(ws.warehouse, found, split)
    row_ids: list[object] = table.column("hw_row_key").to_pylist()
    drop = ["hw_row_key", "hw_batch_key"]
    labels: list[str | None] = [None] * table.num_rows
    if found.label_column is not None:
        labels = [None if v is None else str(v) for v in table[found.label_column].to_pylist()]
        drop.append(found.label_column)
    return table.drop_columns(drop), row_ids, labels


def score_split(ws: Workspace, model: ServedModel, dataset: str, split: str) -> ScoredSplit:
    """Every row of a split scored by a model; rows as `prediction_rows` writes them."""
    data, row_ids, labels = split_input(ws, dataset, split)
    header = prediction_header(model)
    rows = list(prediction_rows(model, data, row_ids))
    return ScoredSplit(header, rows, labels, regression=model.regression)


def read_drawing(png: bytes) -> npt.NDArray[np.uint8]:
    """A PNG (a canvas snapshot) as a 2-D uint8 grey image; transparency counts as paper."""
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            if max(image.size) > MAX_DRAWING_SIDE:
                raise SchemaError(
                    f"the drawing is {image.width}x{image.height} pixels; send at most "
                    f"{MAX_DRAWING_SIDE}x{MAX_DRAWING_SIDE}",
                    field="drawing",
                )
            rgba = image.convert("RGBA")
            paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            grey = Image.alpha_composite(paper, rgba).convert("L")
            return np.asarray(grey, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise FormatError("the drawing is not a PNG image", field="drawing") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"the drawing PNG is corrupt ({exc})", field="drawing") from exc


def digit_from_drawing(
    grey: npt.NDArray[np.uint8], *, side: int = 28, box: int = 20
) -> npt.NDArray[np.uint8]:
    """Dark ink on light paper -> a ``side``x``side`` MNIST-style digit (light ink on black).

    The ink's bounding box is scaled (aspect kept) so its longer side is ``box``
    pixels, averaging the covered area of each output pixel (anti-aliasing), then
    placed so its centre of mass sits at the centre; the result is stretched to
    use the full 0..255 range, as MNIST's strokes do.
    """
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise SchemaError(f"expected a 2-D grey image, got shape {grey.shape}", field="drawing")
    if not 1 <= box <= side:
        raise SchemaError(f"box must be between 1 and side={side}, got {box}", field="box")
    ink = 255.0 - grey.astype(np.float32)
    ink[ink < 8.0] = 0.0  # paper texture and JPEG-ish noise are not ink
    rows, cols = np.nonzero(ink)
    if len(rows) == 0:
        raise SchemaError("the drawing is empty; draw a digit first", field="drawing")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    scale = box / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = np.asarray(
        Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.BOX),
        dtype=np.float32,
    )
    mass = float(small.sum())
    ys, xs = np.indices(small.shape)
    centre_y, centre_x = float((ys * small).sum()) / mass, float((xs * small).sum()) / mass
    top = min(max(round(side / 2 - centre_y - 0.5), 0), side - new_h)
    left = min(max(round(side / 2 - centre_x - 0.5), 0), side - new_w)
    out = np.zeros((side, side), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = small
    out *= 255.0 / float(out.max())
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
