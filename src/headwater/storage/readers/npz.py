"""NumPy ``.npz`` archives of images and labels, read with ``allow_pickle=False``."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers.base import RawFile, Rows, Source, labelled_image_batches

__all__ = ["read_npz"]

# Array-name layouts we recognise, as (images key, labels key, split).
_LAYOUTS: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (
        ("x_train", "y_train", "train"),
        ("x_val", "y_val", "validation"),
        ("x_test", "y_test", "test"),
    ),
    (
        ("X_train", "y_train", "train"),
        ("X_val", "y_val", "validation"),
        ("X_test", "y_test", "test"),
    ),
    (("images", "labels", "unassigned"),),
    (("x", "y", "unassigned"),),
    (("X", "y", "unassigned"),),
)


def read_npz(path: Path, *, chunk_rows: int) -> Source:
    """A lazy source: image rows are decompressed chunk by chunk as they are read."""

    def batches() -> Iterator[pa.RecordBatch]:
        with _open_archive(path) as archive:
            arrays = _arrays(archive, path)
            source.total_rows = sum(len(images) for images, _, _ in arrays)
            yield from labelled_image_batches(arrays, path=path, chunk_rows=chunk_rows)

    source = Source(
        name=path.name,
        kind="image",
        files=[RawFile(path, "data", "application/x-npz")],
        read=batches,
        label_column="label",
    )
    return source


def _open_archive(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FormatError(f"not a readable .npz archive ({exc})", path=path) from exc


def _arrays(archive: zipfile.ZipFile, path: Path) -> list[tuple[Rows, np.ndarray, str]]:
    members = {name.removesuffix(".npy"): name for name in archive.namelist()}
    arrays: list[tuple[Rows, np.ndarray, str]] = []
    for images_key, labels_key, split in _pick_layout(set(members), path):
        images = _NpyRows(archive, members[images_key], path)
        labels = _NpyRows(archive, members[labels_key], path).read_all()
        if len(images) != len(labels):
            raise SchemaError(
                f"{images_key} has {len(images)} rows but {labels_key} has {len(labels)}",
                path=path,
                field=labels_key,
            )
        arrays.append((images, labels, split))
    return arrays


class _NpyRows:
    """The rows of one ``.npy`` member, decompressed in order as they are sliced.

    ``np.load`` would inflate a whole array before the first row is used; this
    reads the header (never a pickle: object dtypes are refused), checks that
    the member really holds the bytes the header claims, then hands out rows as
    ``labelled_image_batches`` asks for them, front to back.
    """

    def __init__(self, archive: zipfile.ZipFile, member: str, path: Path) -> None:
        self.path, self.name = path, member.removesuffix(".npy")
        try:
            self._handle = archive.open(member)
            version = np.lib.format.read_magic(self._handle)
            header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = header(self._handle)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise FormatError(
                f"array {self.name!r} is not a readable .npy member ({exc})", path=path
            ) from exc
        if dtype.hasobject:
            raise UnsafeInput(
                f"array {self.name!r} holds Python objects; only numeric arrays are read",
                path=path,
            )
        if not shape:
            raise SchemaError(f"array {self.name!r} is a scalar, expected rows", path=path)
        self.shape, self.dtype, self._fortran = shape, dtype, fortran
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        claimed = shape[0] * self._row_bytes
        held = archive.getinfo(member).file_size - self._handle.tell()
        if claimed != held:
            raise FormatError(
                f"array {self.name!r} claims shape {shape} ({claimed:,} bytes) "
                f"but the archive holds {held:,} bytes for it",
                path=path,
            )
        self._next = 0
        self._whole: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self))
        if start != self._next:
            raise RuntimeError(f"{self.name}: rows are read in order, asked for {start}")
        if self._fortran:  # column-major: no row is contiguous, so read it whole once
            if self._whole is None:
                self._whole = self.read_all()
            self._next = stop
            return self._whole[start:stop]
        data = self._read((stop - start) * self._row_bytes)
        self._next = stop
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - start, *self.shape[1:]))

    def read_all(self) -> np.ndarray:
        values = np.frombuffer(self._read(len(self) * self._row_bytes), dtype=self.dtype)
        return values.reshape(self.shape, order="F" if self._fortran else "C")

    def _read(self, size: int) -> bytes:
        try:
            data = self._handle.read(size)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise FormatError(
                f"array {self.name!r} is truncated or corrupt ({exc})", path=self.path
            ) from exc
        if len(data) != size:
            raise FormatError(f"array {self.name!r} is truncated", path=self.path)
        return data


def _pick_layout(names: set[str], path: Path) -> list[tuple[str, str, str]]:
    for layout in _LAYOUTS:
        present = [part for part in layout if part[0] in names and part[1] in names]
        if present:
            return present
    raise SchemaError(
        f"the archive holds arrays {sorted(names)}; expected x_train/y_train[/x_val/y_val]"
        "/x_test/y_test, images/labels, or x/y",
        path=path,
    )
