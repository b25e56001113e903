"""An image folder ``ROOT/<category>/**`` decoded, converted and resized in a process pool.

One core cannot keep up with a million photos, so decoding runs in worker processes:
one task per category and, for a large category, per slice of it. Results come back
slice by slice and at most ``2 x workers`` slices are in flight, so memory stays
bounded whatever the folder size; they are consumed in task order, so any number of
workers gives the same rows in the same order. Every image gets a stable id (the
sha256 of its bytes); a file that cannot be decoded, is truncated, is a decompression
bomb or is too small is set aside with its reason and never stops the run. Exact
duplicates (same id) are loaded once; near duplicates (difference hashes a few bits
apart) are reported. The kept images are loaded through `ingest_source`: one batch,
one transaction, the same checks and quarantine as any other ingest.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from headwater.data.ingest import IngestReport, ingest_source
from headwater.errors import FormatError
from headwater.storage.lake import Lake
from headwater.storage.readers.base import RawFile, Source, check_file_name, image_batch
from headwater.storage.readers.image_folder import IMAGE_SUFFIXES
from headwater.storage.warehouse import Warehouse

__all__ = [
    "CategoryProgress",
    "ImageIngestReport",
    "ImageOptions",
    "decode_folder",
    "ingest_image_folder",
]

NEAR_BITS = 4
"""Difference hashes at most this many bits apart (of 64) are near duplicates."""

CategoryProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImageOptions:
    """How images are decoded: target side, pool size, slice size and the hostile-input limits."""

    size: int = 64
    workers: int = 1
    slice_size: int = 256
    max_pixels: int = 89_478_485
    min_side: int = 8


@dataclass(frozen=True)
class Decoded:
    """One file's outcome: pixels (size x size x 3) or the reason it was set aside."""

    path: str
    category: str
    image_id: str
    dhash: int
    pixels: np.ndarray | None
    reason: str | None


@dataclass
class ImageIngestReport:
    """What an image-folder ingest loaded, set aside and found twice."""

    dataset: str
    images_found: int = 0
    images_loaded: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    near_duplicates: list[tuple[str, str, int]] = field(default_factory=list)
    per_category: dict[str, int] = field(default_factory=dict)
    index: str | None = None
    ingest: IngestReport | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "images_found": self.images_found,
            "images_loaded": self.images_loaded,
            "per_category": self.per_category,
            "rejected": [{"file": f, "reason": r} for f, r in self.rejected],
            "duplicates": [{"file": f, "same_as": o} for f, o in self.duplicates],
            "near_duplicates": [
                {"file": f, "like": o, "bits_apart": d} for f, o, d in self.near_duplicates
            ],
            "index": self.index,
            "ingest": self.ingest.to_dict() if self.ingest else None,
        }


def scan(root: Path) -> list[tuple[str, list[Path]]]:
    """Every category folder with its image files (any depth below it), in a stable order."""
    if not root.is_dir():
        raise FormatError("not a folder; expected ROOT/<category>/**/*.png", path=root)
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        check_file_name(folder.name, path=folder)
        files = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if files:
            found.append((folder.name, files))
    if not found:
        raise FormatError("no images found; expected ROOT/<category>/**/*.png", path=root)
    return found


def _dhash(image: Image.Image) -> int:
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def _decode_one(path: Path, category: str, options: ImageOptions) -> Decoded:
    data = path.read_bytes()
    image_id = hashlib.sha256(data).hexdigest()

    def rejected(reason: str) -> Decoded:
        return Decoded(str(path), category, image_id, 0, None, reason)

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if min(width, height) < options.min_side:
                return rejected(f"too small ({width}x{height}, under {options.min_side} px)")
            image.seek(0)  # a GIF's first frame
            image.load()
            rgb = image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return rejected(f"decompression bomb ({exc})")
    except UnidentifiedImageError:
        return rejected("unreadable (not an image format Pillow can identify)")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        what = "truncated" if "truncated" in str(exc).lower() else "unreadable"
        return rejected(f"{what} ({exc})")
    small = rgb.resize((options.size, options.size), Image.Resampling.BILINEAR)
    pixels = np.asarray(small, np.uint8)
    return Decoded(str(path), category, image_id, _dhash(rgb), pixels, None)


def _decode_slice(category: str, paths: list[Path], options: ImageOptions) -> list[Decoded]:
    """One task: a slice of one category, decoded under the settings' pixel limit."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return [_decode_one(p, category, options) for p in paths]
    finally:
        Image.MAX_IMAGE_PIXELS = before


def decode_folder(
    folders: list[tuple[str, list[Path]]],
    options: ImageOptions,
    progress: CategoryProgress | None = None,
) -> Iterator[Decoded]:
    """Every image decoded, in folder order; at most ``2 x workers`` slices held at once."""
    tasks = [
        (category, files[i : i + options.slice_size])
        for category, files in folders
        for i in range(0, len(files), options.slice_size)
    ]
    totals = {category: len(files) for category, files in folders}
    done = dict.fromkeys(totals, 0)

    def report(category: str, results: list[Decoded]) -> Iterator[Decoded]:
        done[category] += len(results)
        if progress is not None:
            progress(category, done[category], totals[category])
        yield from results

    if options.workers <= 1:
        for category, paths in tasks:
            yield from report(category, _decode_slice(category, paths, options))
        return
    with ProcessPoolExecutor(max_workers=options.workers) as pool:
        pending: deque[tuple[str, Future[list[Decoded]]]] = deque()
        queue = iter(tasks)
        for category, paths in queue:
            pending.append((category, pool.submit(_decode_slice, category, paths, options)))
            if len(pending) >= 2 * options.workers:
                name, future = pending.popleft()
                yield from report(name, future.result())
        while pending:
            name, future = pending.popleft()
            yield from report(name, future.result())


class _Collector:
    """Turns decoded images into record batches, noting rejects and duplicates on the way."""

    def __init__(self, report: ImageIngestReport, chunk_rows: int) -> None:
        self.report, self.chunk_rows = report, chunk_rows
        self.reset()

    def reset(self) -> None:
        """A fresh start: the ingest reads the source again when another writer got in first."""
        self.report.images_found = self.report.images_loaded = 0
        self.report.rejected, self.report.duplicates, self.report.near_duplicates = [], [], []
        self.report.per_category = {}
        self.seen: dict[str, str] = {}
        self.bands: list[dict[int, list[int]]] = [{} for _ in range(4)]
        self.hashes: list[tuple[str, int]] = []
        self.index: list[tuple[str, str, str, int]] = []

    def batches(self, decoded: Iterator[Decoded], root: Path) -> Iterator[pa.RecordBatch]:
        self.reset()
        chunk: list[Decoded] = []
        row = 0
        for item in decoded:
            if not self._keep(item):
                continue
            chunk.append(item)
            if len(chunk) >= self.chunk_rows:
                yield self._batch(chunk, row, root)
                row += len(chunk)
                chunk = []
        if chunk:
            yield self._batch(chunk, row, root)

    def _keep(self, item: Decoded) -> bool:
        self.report.images_found += 1
        if item.pixels is None:
            self.report.rejected.append((item.path, item.reason or "unreadable"))
            return False
        if item.image_id in self.seen:
            self.report.duplicates.append((item.path, self.seen[item.image_id]))
            return False
        self.seen[item.image_id] = item.path
        self._near(item)
        return True

    def _near(self, item: Decoded) -> None:
        """Candidates share one of four 16-bit bands (LSH), so no all-pairs comparison."""
        mine = len(self.hashes)
        close: dict[int, int] = {}
        for band, table in enumerate(self.bands):
            key = (item.dhash >> (16 * band)) & 0xFFFF
            for other in table.get(key, []):
                distance = (item.dhash ^ self.hashes[other][1]).bit_count()
                if distance <= NEAR_BITS:
                    close[other] = distance
            table.setdefault(key, []).append(mine)
        for other, distance in sorted(close.items())[:1]:
            self.report.near_duplicates.append((item.path, self.hashes[other][0], distance))
        self.hashes.append((item.path, item.dhash))

    def _batch(self, chunk: list[Decoded], first_row: int, root: Path) -> pa.RecordBatch:
        for offset, item in enumerate(chunk):
            self.index.append((item.image_id, item.category, item.path, first_row + offset))
            self.report.per_category[item.category] = (
                self.report.per_category.get(item.category, 0) + 1
            )
        self.report.images_loaded += len(chunk)
        labels = pa.array([item.category for item in chunk], pa.string())
        stack = np.stack([item.pixels for item in chunk if item.pixels is not None])
        return image_batch(stack, labels, split="unassigned", first_row=first_row, path=root)


def ingest_image_folder(
    root: Path,
    *,
    dataset: str,
    warehouse: Warehouse,
    lake: Lake,
    options: ImageOptions,
    chunk_rows: int = 4096,
    progress: CategoryProgress | None = None,
) -> ImageIngestReport:
    """Decode ``root`` in parallel and load the kept images as one batch of ``dataset``.

    The id of each loaded row (sha256 of the file) is written beside the lake's data as
    ``images/<dataset>.parquet`` (id, label, file, source_row): the warehouse's image
    layout has no id column.
    """
    folders = scan(root)
    report = ImageIngestReport(dataset)
    collector = _Collector(report, chunk_rows)
    source = Source(
        name=root.name,
        kind="image",
        files=[
            RawFile(p, f"unassigned/{c}", "image/" + p.suffix.lower().lstrip("."))
            for c, files in folders
            for p in files
        ],
        read=lambda: collector.batches(decode_folder(folders, options, progress), root),
        total_rows=sum(len(files) for _, files in folders),
        label_column="label",
    )
    report.ingest = ingest_source(
        source, warehouse=warehouse, lake=lake, dataset=dataset, origin=str(root.resolve())
    )
    if collector.index:
        report.index = str(_write_index(lake, dataset, collector.index))
    return report


def _write_index(lake: Lake, dataset: str, rows: list[tuple[str, str, str, int]]) -> Path:
    target = lake.root / "images" / f"{dataset}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "file": [r[2] for r in rows],
            "source_row": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    partial = target.with_suffix(".parquet.partial")
    pq.write_table(table, partial)
    partial.replace(target)
    return target
