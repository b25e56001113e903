"""What a reader hands to the loader: one `Source` per batch, yielding Arrow record batches.

Readers never hold a whole file in memory when the format allows streaming
(IDX, CSV, JSON Lines, Parquet, image folders); a pickle or an ``.npz`` cannot be
streamed and is read whole.
"""

from __future__ import annotations

import gzip
import io
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, cast

import numpy as np
import pyarrow as pa

from headwater.errors import FormatError, SchemaError, UnsafeInput

__all__ = [
    "IMAGE_SCHEMA",
    "SPLITS",
    "Kind",
    "RawFile",
    "ReaderOptions",
    "Source",
    "check_file_name",
    "image_batch",
    "labelled_image_batches",
    "labels_as_text",
]

Kind = Literal["image", "tabular"]
SPLITS = ("train", "validation", "test", "unassigned")

IMAGE_SCHEMA = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("channels", pa.int16(), nullable=False),
        pa.field("pixel_dtype", pa.string(), nullable=False),
        pa.field("pixels", pa.binary(), nullable=False),
    ]
)

_SAFE_NAME = re.compile(r"^[\w][\w .()+-]*$")


@dataclass(frozen=True)
class RawFile:
    """A file a batch is made from; ``role`` says which part it plays (data, images, labels)."""

    path: Path
    role: str = "data"
    media_type: str = "application/octet-stream"
    size: int | None = None
    """Its size in bytes when the reader knows it already (no stat per file at the commit)."""


@dataclass(frozen=True)
class ReaderOptions:
    """How a file is read, and the limits that keep a hostile one from exhausting memory.

    Built from `headwater.settings.Settings` by the ingest flow; the defaults are
    the settings' defaults, so a reader called on its own is just as guarded.
    """

    encoding: str = "utf-8"
    json_max_depth: int = 64
    json_max_fields: int = 10_000
    max_decompressed_bytes: int = 8 << 30


@dataclass
class Source:
    """One batch to load: its files, its kind, and a way to stream its rows."""

    name: str
    kind: Kind
    files: list[RawFile]
    read: Callable[[], Iterator[pa.RecordBatch]]
    total_rows: int | None = None
    label_column: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    labels: list[str] | None = None
    """Every label the source holds, when known before reading (one label per API page): the
    contract inferred from the first chunk then allows them all, not only the first chunk's."""
    sha256s: list[str] | None = None
    """The files' sha256 in order, when the reader already has them (an image folder hashes
    its files in worker processes): the ingest then does not read every file again."""
    row_hashes: Callable[[pa.RecordBatch], pa.Array] | None = None
    """Each row's hash for the batch ``read`` just handed over, when the reader made them
    already (an image folder's workers do); the ingest hashes the rows itself otherwise."""
    raw_stored: bool = False
    """The reader has put every file's raw copy in the lake already (an image folder's
    workers do): the ingest neither copies nor looks for them, a file at a time."""
    set_aside: Callable[[], pa.Table] | None = None
    """Files the reader could not turn into rows (an image that does not decode), as
    quarantine rows (source_row, check_name, field, value_text, row_payload); asked for once
    every batch is read and recorded in the batch's transaction."""

    @property
    def primary(self) -> RawFile:
        return self.files[0]


def check_file_name(name: str, *, path: Path | str | None = None) -> str:
    """Refuse names that could climb out of a folder or do things in a shell."""
    shown = path if path is not None else name
    normal = unicodedata.normalize("NFC", name)
    if (
        not normal
        or len(normal) > 255
        or ".." in normal
        or not _SAFE_NAME.match(normal)
        or any(unicodedata.category(ch).startswith("C") for ch in normal)
    ):
        bad = sorted({ch for ch in normal if not (ch.isalnum() or ch in "_ .()+-")})
        what = f"characters {''.join(bad)!r}" if bad else "'..' or an empty name"
        raise UnsafeInput(
            f"file name {name!r} contains {what}; rename it to letters, digits, "
            "spaces and . _ - ( ) + only",
            path=shown,
        )
    return normal


def labels_as_text(labels: np.ndarray, *, path: Path, first_row: int) -> pa.Array:
    """Labels as text for `dim_label`; NaN or a fractional float label is a schema error."""
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size:
            row = first_row + int(bad[0])
            raise SchemaError(
                f"label is {labels[bad[0]]!r}; labels must be whole numbers "
                f"({bad.size} such row(s)). Fix or drop those rows and ingest again",
                path=path,
                row=row,
                field="label",
            )
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iuUSO":
        raise SchemaError(
            f"labels have dtype {labels.dtype}; expected integers or text", path=path, field="label"
        )
    return pa.array(labels).cast(pa.string())


def image_batch(
    pixels: np.ndarray,
    labels: pa.Array | None,
    *,
    split: str,
    first_row: int,
    path: Path,
) -> pa.RecordBatch:
    """Pack a stack of images (n, h, w[, c]) into the image record-batch layout.

    Pixels are kept as uint8 whenever that loses nothing (integers 0..255, or
    floats that are exactly k/255, as in the classic MNIST pickle); anything else
    (NaN, 300, other scalings) is kept as float32 so quality checks can see it.
    """
    n = pixels.shape[0]
    if pixels.ndim == 2:
        side = round(pixels.shape[1] ** 0.5)
        if side * side != pixels.shape[1]:
            raise SchemaError(
                f"rows have {pixels.shape[1]} values, which is not a square image; "
                "give images as (n, height, width)",
                path=path,
                field="pixels",
            )
        pixels = pixels.reshape(n, side, side)
    if pixels.ndim not in (3, 4):
        raise SchemaError(
            f"images have shape {pixels.shape}; expected (n, h, w) or (n, h, w, c)",
            path=path,
            field="pixels",
        )
    height, width = pixels.shape[1], pixels.shape[2]
    channels = pixels.shape[3] if pixels.ndim == 4 else 1
    stored, dtype_name = _compact_pixels(pixels, path=path)
    flat = np.ascontiguousarray(stored).reshape(n, -1)
    row_bytes = flat.shape[1] * flat.itemsize
    offsets = np.arange(0, (n + 1) * row_bytes, row_bytes, dtype=np.int32)
    pixel_array = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(flat.tobytes())]
    )
    label_array = labels if labels is not None else pa.nulls(n, pa.string())
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(n, split, dtype=object), pa.string()),
            label_array,
            pa.array(np.arange(first_row, first_row + n, dtype=np.int64)),
            pa.array(np.full(n, height, dtype=np.int32)),
            pa.array(np.full(n, width, dtype=np.int32)),
            pa.array(np.full(n, channels, dtype=np.int16)),
            pa.array(np.full(n, dtype_name, dtype=object), pa.string()),
            pixel_array,
        ],
        schema=IMAGE_SCHEMA,
    )


def open_decompressed(path: Path, limit: int | None = None) -> BinaryIO:
    """The file's bytes, decompressed when its name ends in ``.gz``.

    A gzip may expand a thousandfold, so what comes out of one is counted as it
    is read and refused past ``limit`` bytes (default: `ReaderOptions`' cap).
    """
    if path.name.lower().endswith(".gz"):
        cap = ReaderOptions.max_decompressed_bytes if limit is None else limit
        return cast(BinaryIO, _Capped(gzip.GzipFile(path, "rb"), path, cap))
    return path.open("rb")


_PIECE = 1 << 20


class _Capped(io.BufferedIOBase):
    """A decompressing stream that refuses to yield more than ``limit`` bytes in all."""

    def __init__(self, inner: gzip.GzipFile, path: Path, limit: int) -> None:
        super().__init__()
        self.inner, self.path, self.limit, self.total = inner, path, limit, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes, gathered 1 MB at a time: memory follows what arrives.

        A reader that trusts a length from the file (a pickle frame, a header) may ask
        for gigabytes; ``GzipFile.read`` would allocate all of it before decompressing.
        """
        room = self.limit - self.total + 1  # one byte past the cap is enough to know
        wanted = room if size is None or size < 0 else min(size, room)
        if wanted <= _PIECE:
            return self._count(self.inner.read(wanted))
        data = bytearray()
        while len(data) < wanted and (piece := self.inner.read(min(_PIECE, wanted - len(data)))):
            data += self._count(piece)
        return bytes(data)

    def read1(self, size: int = -1) -> bytes:
        room = self.limit - self.total + 1
        return self._count(self.inner.read1(room if size < 0 else min(size, room)))

    def readline(self, size: int | None = -1) -> bytes:
        room = self.limit - self.total + 1
        return self._count(self.inner.readline(room if size is None or size < 0 else size))

    def _count(self, data: bytes) -> bytes:
        self.total += len(data)
        if self.total > self.limit:
            raise FormatError(
                f"the file expands past {self.limit:,} bytes when decompressed; it was not "
                "read further (raise HEADWATER_MAX_DECOMPRESSED_BYTES if it is genuine)",
                path=self.path,
            )
        return data

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
        super().close()


class Rows(Protocol):
    """Rows handed out by slices, front to back: an array, or one read lazily from a file."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice, /) -> np.ndarray: ...


def labelled_image_batches(
    parts: Sequence[tuple[Rows, np.ndarray, str]], *, path: Path, chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """Chunks of (images, labels, split) arrays held in memory, rows numbered across splits."""
    first = 0
    for images, labels, split in parts:
        for start in range(0, len(images), chunk_rows):
            stop = min(start + chunk_rows, len(images))
            text = labels_as_text(labels[start:stop], path=path, first_row=first + start)
            yield image_batch(
                images[start:stop], text, split=split, first_row=first + start, path=path
            )
        first += len(images)


def _compact_pixels(pixels: np.ndarray, *, path: Path) -> tuple[np.ndarray, str]:
    if pixels.dtype == np.uint8:
        return pixels, "uint8"
    if pixels.dtype.kind in "iu":
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            return pixels.astype(np.float32), "float32"
        return pixels.astype(np.uint8), "uint8"
    if pixels.dtype.kind != "f":
        raise SchemaError(
            f"pixels have dtype {pixels.dtype}; expected numbers", path=path, field="pixels"
        )
    as_float = pixels.astype(np.float32, copy=False)
    if (
        np.isfinite(as_float).all()
        and as_float.min(initial=0) >= 0
        and as_float.max(initial=0) <= 1
    ):
        scaled = np.rint(as_float * 255.0).astype(np.uint8)
        if np.array_equal(scaled.astype(np.float32) / np.float32(255.0), as_float):
            return scaled, "uint8"
    return as_float, "float32"
