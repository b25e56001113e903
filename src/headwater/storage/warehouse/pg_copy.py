"""Encode an Arrow table as PostgreSQL's binary COPY stream, vectorised with numpy.

For a table whose every value has a fixed width (numbers, timestamps, equal-length
bytes such as image pixels or hex hashes, and no NULLs), each row has the same
layout, so the whole stream is one numpy structured array filled column by
column: no Python loop over rows. Anything else goes through Arrow's CSV writer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.storage.binary import equal_width_bytes

__all__ = ["HEADER", "TRAILER", "encode_fixed_width"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)

# PostgreSQL column type -> numpy big-endian dtype of its binary form.
_FIXED = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "real": ">f4",
    "double precision": ">f8",
    "boolean": "u1",
}


def encode_fixed_width(data: pa.Table, pg_types: list[str]) -> bytes | None:
    """The rows of ``data`` as binary COPY tuples, or None when some value is not fixed-width."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    fillers: list[tuple[str, np.ndarray]] = []
    for i, (column, pg_type) in enumerate(zip(data.columns, pg_types, strict=True)):
        if column.null_count:
            return None
        values = _fixed_values(column, pg_type)
        if values is None:
            return None
        fields += [(f"l{i}", ">i4"), (f"v{i}", values.dtype.str)]
        fillers.append((f"v{i}", values))
    rows = np.empty(data.num_rows, dtype=np.dtype(fields))
    rows["n"] = data.num_columns
    for i, (name, values) in enumerate(fillers):
        rows[f"l{i}"] = values.dtype.itemsize
        rows[name] = values
    return rows.tobytes()


def _fixed_values(column: pa.ChunkedArray, pg_type: str) -> np.ndarray | None:
    arrow_type = column.type
    if pg_type in _FIXED and (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
    ):
        values: np.ndarray = column.to_numpy().astype(_FIXED[pg_type])
        return values
    if pg_type.startswith("timestamp") and pa.types.is_timestamp(arrow_type):
        micros = pc.cast(column, pa.timestamp("us", tz=arrow_type.tz)).cast(pa.int64())
        shifted: np.ndarray = (micros.to_numpy() - _PG_EPOCH_US).astype(">i8")
        return shifted
    if pg_type in {"bytea", "text"} and (
        pa.types.is_binary(arrow_type) or pa.types.is_string(arrow_type)
    ):
        return _equal_length_bytes(column)
    return None


def _equal_length_bytes(column: pa.ChunkedArray) -> np.ndarray | None:
    """View equal-length binary values as one (rows,) array of void items, without copying each."""
    rows = equal_width_bytes(column)
    return None if rows is None or rows.size == 0 else rows.view(f"V{rows.shape[1]}")[:, 0]
