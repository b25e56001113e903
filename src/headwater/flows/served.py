"""A batch of rows scored by a served model: what every engine runs per batch.

Spark's executors import this module (and `headwater.flows.spark_tasks`) in every
Python worker they start; it names no reader and no warehouse of its own.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.flows import inputs
from headwater.flows.runs import ServedModel, prediction_rows
from headwater.storage.binary import pixel_array

__all__ = ["IMAGE_COLUMNS", "score_batch"]


def _row_ids(kind: str, batch: pa.RecordBatch, first: int) -> list[object]:
    """The file's own ``row_id`` column, an image reader's source rows, or first, first + 1, ..."""
    for column in (inputs.ROW_ID, "source_row" if kind == "image" else None):
        if column is not None and column in batch.schema.names:
            ids: list[object] = batch.column(column).to_pylist()
            return ids
    return list(range(first, first + batch.num_rows))


IMAGE_COLUMNS = frozenset({"pixels", "height", "width", "pixel_dtype"})
"""A batch with these columns holds images (an image reader's, or a curated image dataset's)."""


def _image_rows(batch: pa.RecordBatch) -> npt.NDArray[np.generic]:
    """A reader's image batch (one ``pixels`` blob per row) as an (n, h, w) array."""
    dtype = np.dtype(batch.column("pixel_dtype")[0].as_py())
    h, w = batch.column("height")[0].as_py(), batch.column("width")[0].as_py()
    return pixel_array(batch.column("pixels"), dtype, (h, w))


def score_batch(
    model: ServedModel, batch: pa.RecordBatch, *, kind: str, name: str, first: int
) -> list[list[str]]:
    """One batch's rows scored; ``first`` is the position of its first row in the file.

    The one place a batch becomes prediction rows, for the local engine and for Spark's
    executors alike, so both engines write the same rows.
    """
    if kind == "image" or set(batch.schema.names) >= IMAGE_COLUMNS:
        data: inputs.ModelInput = _image_rows(batch)
    else:
        data = inputs.from_batch(model, batch, name=name, first=first)
    return list(prediction_rows(model, data, _row_ids(kind, batch, first)))
