"""IDX files (the official MNIST format), gzipped or not, streamed image by image block.

The header says how many items follow; it is checked against the bytes that
actually arrive, never trusted to size an allocation.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from headwater.errors import FormatError, SchemaError
from headwater.storage.readers.base import (
    RawFile,
    ReaderOptions,
    Source,
    image_batch,
    labels_as_text,
    open_decompressed,
)

__all__ = ["IDX_NAME", "find_idx_pairs", "read_idx_pair"]

IDX_NAME = re.compile(
    r"^(?P<prefix>.+?)[-_.](?P<what>images|labels)[-_.]idx(?P<dims>[13])[-_.]ubyte(?:\.gz)?$"
)
_MAX_SIDE = 16384
_DEFAULTS = ReaderOptions()
_SPLIT_OF_PREFIX = {
    "train": "train",
    "t10k": "test",
    "test": "test",
    "val": "validation",
    "validation": "validation",
}


_PIECE = 1 << 20
"""Bytes read at a time: what is held grows with what arrives, never with what is claimed."""


def _read_exact(handle: BinaryIO, size: int, path: Path, what: str) -> bytes:
    data = bytearray()
    try:
        while len(data) < size and (piece := handle.read(min(_PIECE, size - len(data)))):
            data += piece
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FormatError(
            f"the file is truncated or corrupt while reading {what} ({exc})", path=path
        ) from exc
    if len(data) != size:
        raise FormatError(
            f"the file ends early while reading {what}: wanted {size} bytes, got {len(data)}",
            path=path,
        )
    return bytes(data)


def _header(handle: BinaryIO, path: Path, dims: int) -> tuple[int, ...]:
    magic = _read_exact(handle, 4, path, "the IDX header")
    if magic[:3] != b"\x00\x00\x08" or magic[3] != dims:
        raise FormatError(
            f"not an unsigned-byte IDX file with {dims} dimension(s) (magic {magic.hex()})",
            path=path,
        )
    return struct.unpack(f">{dims}I", _read_exact(handle, 4 * dims, path, "the IDX header"))


def _claimed_fits(
    path: Path, count: int, item_bytes: int, header_bytes: int, *, limit: int
) -> None:
    """Refuse a header that claims more than the file holds, or than a gzip may expand to.

    An uncompressed file's size is known; a gzip's is not until it is read, so its
    claim is held to ``max_decompressed_bytes`` here and to the bytes that actually
    arrive while it streams (`_read_exact`).
    """
    if path.name.endswith(".gz"):
        if count * item_bytes > limit:
            what = "images" if item_bytes > 1 else "labels"
            raise FormatError(
                f"the IDX header claims {count:,} {what} ({count * item_bytes:,} bytes "
                f"decompressed), past the {limit:,}-byte limit "
                "(HEADWATER_MAX_DECOMPRESSED_BYTES); it was not read",
                path=path,
            )
        return
    actual = path.stat().st_size - header_bytes
    if actual != count * item_bytes:
        raise FormatError(
            f"the IDX header claims {count:,} items ({count * item_bytes:,} bytes) but the "
            f"file holds {actual:,} bytes of data",
            path=path,
        )


def find_idx_pairs(folder: Path) -> list[tuple[Path, Path | None, str]]:
    """Pair every images file in a folder with its labels file: (images, labels, split)."""
    found_by_prefix: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        if m := IDX_NAME.match(p.name):
            found_by_prefix.setdefault(m["prefix"], {})[m["what"]] = p
    pairs = []
    for prefix, found in sorted(found_by_prefix.items()):
        if "images" not in found:
            raise FormatError(
                f"labels file without an images file (expected {prefix}-images-idx3-ubyte)",
                path=found["labels"],
            )
        split = _SPLIT_OF_PREFIX.get(prefix.lower().split("-")[-1], "unassigned")
        pairs.append((found["images"], found.get("labels"), split))
    return pairs


def _checked_claims(images: Path, labels: Path | None, limit: int) -> tuple[int, int, int]:
    """(count, height, width) from the headers, once every claim is held to what is possible."""
    with open_decompressed(images, limit) as handle:
        count, height, width = _header(handle, images, 3)
    if not (0 < height <= _MAX_SIDE and 0 < width <= _MAX_SIDE):
        raise FormatError(f"the IDX header claims {height}x{width} images", path=images)
    _claimed_fits(images, count, height * width, 16, limit=limit)
    if labels is not None:
        with open_decompressed(labels, limit) as handle:
            (label_count,) = _header(handle, labels, 1)
        _claimed_fits(labels, label_count, 1, 8, limit=limit)
        if label_count != count:
            raise SchemaError(
                f"{label_count:,} labels for {count:,} images in {images.name}",
                path=labels,
                field="label",
            )
    return count, height, width


def read_idx_pair(
    images: Path,
    labels: Path | None,
    split: str,
    *,
    chunk_rows: int,
    options: ReaderOptions = _DEFAULTS,
) -> Source:
    limit = options.max_decompressed_bytes
    count, height, width = _checked_claims(images, labels, limit)

    def batches() -> Iterator[pa.RecordBatch]:
        with (
            open_decompressed(images, limit) as image_handle,
            open_decompressed(labels or images, limit) as label_handle,
        ):
            _header(image_handle, images, 3)
            if labels is not None:
                _header(label_handle, labels, 1)
            for start in range(0, count, chunk_rows):
                n = min(chunk_rows, count - start)
                what = f"images {start:,}..{start + n:,} of {count:,}"
                block = _read_exact(image_handle, n * height * width, images, what)
                pixels = np.frombuffer(block, dtype=np.uint8).reshape(n, height, width)
                text = None
                if labels is not None:
                    raw = _read_exact(label_handle, n, labels, f"labels {start:,}..{start + n:,}")
                    text = labels_as_text(
                        np.frombuffer(raw, dtype=np.uint8), path=labels, first_row=start
                    )
                yield image_batch(pixels, text, split=split, first_row=start, path=images)
            if image_handle.read(1):
                raise FormatError(
                    f"extra bytes after the {count:,} images the header claims", path=images
                )

    files = [RawFile(images, "images", "application/x-idx")]
    if labels is not None:
        files.append(RawFile(labels, "labels", "application/x-idx"))
    return Source(
        name=images.name,
        kind="image",
        files=files,
        read=batches,
        total_rows=count,
        label_column="label" if labels is not None else None,
    )
