"""A folder of images laid out ``root/<label>/*.png`` or ``root/<split>/<label>/*.png``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from headwater.errors import FormatError, SchemaError
from headwater.storage.readers.base import SPLITS, RawFile, Source, check_file_name, image_batch

__all__ = ["IMAGE_SUFFIXES", "looks_like_image_folder", "read_image_folder"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})


def _label_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def looks_like_image_folder(folder: Path) -> bool:
    return any(_images_in(d) for d in _label_dirs(folder)) or any(
        _images_in(label) for split in _label_dirs(folder) for label in _label_dirs(split)
    )


def _layout(root: Path) -> list[tuple[str, str, Path]]:
    """Every image as (split, label, path), in a stable order."""
    entries: list[tuple[str, str, Path]] = []
    top = _label_dirs(root)
    has_splits = bool(top) and all(d.name in SPLITS for d in top)
    groups = [(d.name, d) for d in top] if has_splits else [("unassigned", root)]
    for split, folder in groups:
        for label_dir in _label_dirs(folder):
            check_file_name(label_dir.name, path=label_dir)
            entries += [(split, label_dir.name, p) for p in _images_in(label_dir)]
    if not entries:
        raise FormatError(
            "no images found; expected root/<label>/*.png or root/<split>/<label>/*.png",
            path=root,
        )
    return entries


def _load(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            mode = "L" if image.mode in {"L", "1", "I;16", "I", "F"} else "RGB"
            return np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise FormatError(f"not a readable image ({exc})", path=path) from exc


def read_image_folder(root: Path, *, chunk_rows: int) -> Source:
    entries = _layout(root)

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(entries), chunk_rows):
            chunk = entries[start : start + chunk_rows]
            images = [_load(path) for _, _, path in chunk]
            shapes = {image.shape for image in images}
            if len(shapes) != 1:
                odd = next(
                    p
                    for (_, _, p), im in zip(chunk, images, strict=True)
                    if im.shape != images[0].shape
                )
                raise SchemaError(
                    f"image is {_load(odd).shape} but others are {images[0].shape}; "
                    "all images of a dataset must have one size",
                    path=odd,
                    field="pixels",
                )
            for split in dict.fromkeys(s for s, _, _ in chunk):
                rows = [i for i, (s, _, _) in enumerate(chunk) if s == split]
                labels = pa.array([chunk[i][1] for i in rows], pa.string())
                stack = np.stack([images[i] for i in rows])
                yield image_batch(stack, labels, split=split, first_row=start + rows[0], path=root)

    return Source(
        name=root.name,
        kind="image",
        files=[
            RawFile(p, f"{split}/{label}", "image/" + p.suffix.lower().lstrip("."))
            for split, label, p in entries
        ],
        read=batches,
        total_rows=len(entries),
        label_column="label",
    )
