"""Content hashes: of files (sha256, for the lake) and of rows (for duplicate detection).

A row's hash covers what the row *says*, not where it came from: two identical
images with the same label are one example, whichever file or split brought them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from headwater.storage.binary import value_bytes

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc from Python 3.12

__all__ = ["fingerprint", "image_row_hash", "image_row_hashes", "tabular_row_hashes"]


def fingerprint(files: list[tuple[str, str]]) -> str:
    """One hash for a batch made of several files: (role, sha256) pairs, order-free."""
    if len(files) == 1:
        return files[0][1]
    lines = "".join(f"{role}\t{sha}\n" for role, sha in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def image_row_hash(
    height: int, width: int, channels: int, dtype: str, label: str | None, pixels: Buffer
) -> str:
    """blake2b-128 over one image's shape, dtype, label and pixel bytes: its row hash.

    The one rule for an image row's identity: `image_row_hashes` applies it to a batch,
    and an image folder's workers to each image they decode (the parent then need not).
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{height}x{width}x{channels}:{dtype}:{label}\0".encode())
    digest.update(pixels)
    return digest.hexdigest()


def image_row_hashes(batch: pa.RecordBatch) -> pa.Array:
    """`image_row_hash` of each row of an image batch."""
    pixels = batch.column("pixels")
    values, offsets = value_bytes(pixels)
    data = values.data
    heights = batch.column("height").to_pylist()
    widths = batch.column("width").to_pylist()
    channels = batch.column("channels").to_pylist()
    dtypes = batch.column("pixel_dtype").to_pylist()
    labels = batch.column("label").to_pylist()
    out = [
        image_row_hash(
            heights[i],
            widths[i],
            channels[i],
            dtypes[i],
            labels[i],
            data[offsets[i] : offsets[i + 1]],
        )
        for i in range(batch.num_rows)
    ]
    return pa.array(out, pa.string())


def tabular_row_hashes(batch: pa.RecordBatch) -> pa.Array:
    """md5 of each row as JSON, computed by DuckDB in one vectorised pass."""
    con = duckdb.connect()
    try:
        con.register("batch_rows", pa.Table.from_batches([batch]))
        hashes = con.sql("SELECT md5(to_json(batch_rows)) AS h FROM batch_rows").to_arrow_table()
    finally:
        con.close()
    return hashes.column("h").combine_chunks()
