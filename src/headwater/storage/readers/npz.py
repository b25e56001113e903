"""NumPy ``.npz`` archives of images and labels, read with ``allow_pickle=False``."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers.base import RawFile, Source, labelled_image_batches

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
    """A lazy source: arrays are only decompressed when rows are read."""

    def batches() -> Iterator[pa.RecordBatch]:
        arrays = _load_arrays(path)
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


def _load_arrays(path: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    try:
        archive = np.load(path, allow_pickle=False)
        names = set(archive.files)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FormatError(f"not a readable .npz archive ({exc})", path=path) from exc
    parts = _pick_layout(names, path)
    arrays: list[tuple[np.ndarray, np.ndarray, str]] = []
    for images_key, labels_key, split in parts:
        try:
            images, labels = archive[images_key], archive[labels_key]
        except ValueError as exc:  # object arrays need pickle, which we refuse
            raise UnsafeInput(
                f"array {images_key!r} or {labels_key!r} holds Python objects; "
                "only numeric arrays are read",
                path=path,
            ) from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FormatError(f"the archive is truncated or corrupt ({exc})", path=path) from exc
        if len(images) != len(labels):
            raise SchemaError(
                f"{images_key} has {len(images)} rows but {labels_key} has {len(labels)}",
                path=path,
                field=labels_key,
            )
        arrays.append((images, labels, split))

    return arrays


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
