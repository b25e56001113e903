"""The bytes of an Arrow binary column as numpy arrays, without a Python loop or a copy.

Image pixels, row hashes and fixed-width text are stored as Arrow ``binary``,
``large_binary``, ``fixed_size_binary`` or ``string`` values. Reading them through
``array.buffers()`` by hand is easy to get wrong: a sliced array (``arr.slice(3, 5)``, a
record batch cut from a larger one) starts at a non-zero ``offset``, and the data buffer
then still begins with the bytes of the rows before it. Every reader of such a column goes
through these three functions instead, which account for the offset and for each type's
layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import FormatError

__all__ = ["equal_width_bytes", "pixel_array", "value_bytes"]

Bytes = npt.NDArray[np.uint8]


def value_bytes(array: pa.Array | pa.ChunkedArray) -> tuple[Bytes, npt.NDArray[np.int64]]:
    """Every value's bytes laid end to end, and the ``len + 1`` offsets of the values in them.

    The offsets start at 0 whatever the array's own offset; ``data[o[i]:o[i + 1]]`` is value
    ``i``. A null reads as the bytes its slot holds (empty for variable-width types).
    """
    array = _one_chunk(array)
    n = len(array)
    if pa.types.is_fixed_size_binary(array.type):
        width = array.type.byte_width
        data = _frombuffer(array.buffers()[1], np.dtype(np.uint8), n * width, array.offset * width)
        return data, np.arange(n + 1, dtype=np.int64) * width
    if pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type):
        offset_type: np.dtype[Any] = np.dtype(np.int64)
    elif pa.types.is_binary(array.type) or pa.types.is_string(array.type):
        offset_type = np.dtype(np.int32)
    else:
        raise TypeError(f"expected a binary or string array, got {array.type}")
    if n == 0:
        return np.empty(0, np.uint8), np.zeros(1, np.int64)
    _, offsets_buffer, data_buffer = array.buffers()
    raw = _frombuffer(offsets_buffer, offset_type, n + 1, array.offset)
    offsets = raw.astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = _frombuffer(data_buffer, np.dtype(np.uint8), end - start, start)
    return data, offsets - start


def equal_width_bytes(array: pa.Array | pa.ChunkedArray) -> Bytes | None:
    """The values as one ``(rows, width)`` uint8 array, or None when their lengths differ."""
    data, offsets = value_bytes(array)
    lengths = np.diff(offsets)
    if len(lengths) == 0:
        width = _one_chunk(array).type.byte_width if _is_fixed(array) else 0
        return np.empty((0, width), np.uint8)
    width = int(lengths[0])
    if (lengths != width).any():
        return None
    return data.reshape(len(lengths), width)


def pixel_array(
    array: pa.Array | pa.ChunkedArray, dtype: npt.DTypeLike, shape: Sequence[int] = ()
) -> npt.NDArray[Any]:
    """A pixel column as one ``(rows, *shape)`` array of ``dtype`` (``(rows, values)`` without
    a shape): a view of the Arrow buffer, not a copy. Raises `FormatError` (field ``pixels``)
    when the images differ in size or do not hold ``shape`` values of ``dtype``."""
    kind = np.dtype(dtype)
    rows = equal_width_bytes(array)
    if rows is None:
        raise FormatError("images of different byte sizes in one batch", field="pixels")
    n, width = rows.shape
    if n == 0:
        return np.empty((0, *shape) if shape else (0, 0), kind)
    values = int(np.prod(shape)) if shape else (width // kind.itemsize if kind.itemsize else 0)
    if width != values * kind.itemsize:
        raise FormatError(
            f"an image holds {width} bytes, not {values} values of {kind} "
            f"(shape {tuple(shape) or '(any)'})",
            field="pixels",
        )
    flat = rows.reshape(-1).view(kind)
    return flat.reshape(n, *shape) if shape else flat.reshape(n, values)


def _one_chunk(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _is_fixed(array: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pa.types.is_fixed_size_binary(array.type))


def _frombuffer(buffer: pa.Buffer | None, dtype: np.dtype[Any], count: int, first: int) -> Any:
    """``count`` items of ``dtype`` from item ``first`` on; empty for a missing buffer."""
    if buffer is None or count == 0:
        return np.empty(0, dtype)
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=first * dtype.itemsize)
