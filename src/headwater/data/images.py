"""An image folder ``ROOT/<category>/**`` decoded, converted and resized in a process pool.

One core cannot keep up with a million photos, so the work per file runs in worker
processes, in slices of a category: first every file is hashed (its sha256 is its
stable id), then only the files this dataset has not seen are decoded. A daily run
over a folder that grew by three images decodes and loads three. Results come back in
task order, at most ``4 x workers`` slices ahead of the parent, so memory stays
bounded whatever the folder size and any number of workers gives the same rows in the
same order. A file that cannot be decoded, is truncated, is a decompression bomb or is
too small is set aside with its reason, never stops the run, and lands in the
warehouse quarantine (check ``image_file``, the file and the reason) with the batch.
Exact duplicates (same id) are loaded once; near duplicates (difference hashes a few
bits apart, also against earlier runs) are reported. The kept images are loaded
through `ingest_source`: one batch, one transaction, the same checks as any ingest.

Beside the lake, ``images/<dataset>.parquet`` indexes every loaded image (id, label,
file, batch_id, source_row, dhash) and ``images/<dataset>.rejected.parquet`` every file
set aside (id, label, file, reason); both are rewritten after the batch commits.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from headwater.data.hashing import image_row_hash, image_row_hashes
from headwater.data.ingest import IngestReport, ingest_source
from headwater.errors import FormatError
from headwater.storage.lake import Lake, sha256_file
from headwater.storage.readers.base import RawFile, Source, check_file_name, image_batch
from headwater.storage.readers.image_folder import IMAGE_SUFFIXES
from headwater.storage.warehouse import Warehouse

__all__ = [
    "IMAGE_FILE_CHECK",
    "CategoryProgress",
    "ImageIngestReport",
    "ImageOptions",
    "decode_folder",
    "ingest_image_folder",
    "worker_pool",
]

NEAR_BITS = 4
"""Difference hashes at most this many bits apart (of 64) are near duplicates."""

NEAR_CANDIDATES = 8
"""Near duplicates are looked for among the latest images sharing a hash band, at most this
many per band: a folder of look-alikes (MNIST's ones) cannot make the parent's work grow
with the square of the folder while the workers wait (at 32, this search was a quarter of
the parent's time on 2,000 MNIST digits)."""

IMAGE_FILE_CHECK = "image_file"
"""The quarantine's check name for a file that did not decode (field: the file)."""

WHOLE_READ_BYTES = 16 << 20
"""Files up to this size are read once, hashed and stored from memory; larger ones stream."""

AHEAD = 4
"""Slices queued per worker: the workers keep decoding while the parent loads a chunk."""

CategoryProgress = Callable[[str, int, int], None]
Task = tuple[str, list[Path]]
T = TypeVar("T")

INDEX_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("label", pa.string()),
        ("file", pa.string()),
        ("batch_id", pa.int64()),
        ("source_row", pa.int64()),
        ("dhash", pa.uint64()),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [("id", pa.string()), ("label", pa.string()), ("file", pa.string()), ("reason", pa.string())]
)


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
    row_hash: str = ""
    """`image_row_hash` of the stored row, made here in the worker: the parent's ingest
    hashed every pixel again, a fifth of its serial work."""


@dataclass
class ImageIngestReport:
    """What an image-folder ingest found, loaded, already had, set aside and found twice."""

    dataset: str
    images_found: int = 0
    images_known: int = 0
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
            "images_known": self.images_known,
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


def scan(root: Path) -> list[Task]:
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
    """One file decoded; a grey image's pixels keep one channel (see `_Slice`)."""
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
            # grey stays grey until it is small: the same pixels, a third of the resizing
            source = image if image.mode == "L" else image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return rejected(f"decompression bomb ({exc})")
    except UnidentifiedImageError:
        return rejected("unreadable (not an image format Pillow can identify)")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        what = "truncated" if "truncated" in str(exc).lower() else "unreadable"
        return rejected(f"{what} ({exc})")
    small = np.asarray(source.resize((options.size, options.size), Image.Resampling.BILINEAR))
    pixels = small.reshape(options.size, options.size, -1)
    if pixels.shape[-1] == 3 and (pixels == pixels[..., :1]).all():
        pixels = pixels[..., :1]  # grey stored as colour (WebP has no grey): one channel will do
    return Decoded(str(path), category, image_id, _dhash(source), pixels, None)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """Images (n x h x w x 1 or 3) with three channels: grey ones repeated, at numpy speed."""
    return pixels if pixels.shape[-1] == 3 else np.concatenate([pixels] * 3, axis=-1)


@dataclass(frozen=True)
class _Slice:
    """A slice's outcomes as they travel from a worker: the grey images' pixels in one
    array of one channel, the colour images' in another.

    Each image pickled on its own, as three channels, made the pipe carry three copies
    of every grey pixel and the parent unpickle thousands of small arrays. The row
    hashes are made here, in the worker, of the three-channel pixels the ingest stores
    (`image_row_hash`, the one rule): the parent hashed every pixel again, a fifth of
    its serial work.
    """

    outcomes: list[Decoded]
    """Without their pixels, which travel in ``grey`` and ``colour``."""
    channels: list[int]
    """Per outcome: 1 (its pixels are in ``grey``), 3 (in ``colour``), 0 (set aside)."""
    grey: np.ndarray
    colour: np.ndarray

    @classmethod
    def pack(cls, decoded: list[Decoded], category: str, size: int) -> _Slice:
        channels = [0 if d.pixels is None else int(d.pixels.shape[-1]) for d in decoded]
        arrays = {
            kind: np.stack(found)
            if (found := [d.pixels for d, c in zip(decoded, channels, strict=True) if c == kind])
            else np.empty((0, size, size, kind), np.uint8)
            for kind in (1, 3)
        }
        hashes = {
            kind: iter(
                [image_row_hash(size, size, 3, "uint8", category, row.data) for row in _rgb(a)]
            )
            for kind, a in arrays.items()
        }
        outcomes = [
            d if kind == 0 else replace(d, pixels=None, row_hash=next(hashes[kind]))
            for d, kind in zip(decoded, channels, strict=True)
        ]
        return cls(outcomes, channels, arrays[1], arrays[3])

    def unpack(self) -> list[Decoded]:
        """The outcomes, each kept image with its (size x size x 3) pixels."""
        rows = {1: iter(_rgb(self.grey)), 3: iter(self.colour)}
        return [
            d if kind == 0 else replace(d, pixels=next(rows[kind]))
            for d, kind in zip(self.outcomes, self.channels, strict=True)
        ]


def _decode_slice(category: str, paths: list[Path], options: ImageOptions) -> _Slice:
    """One task: a slice of one category, decoded under the settings' pixel limit."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            decoded = [_decode_one(p, category, options) for p in paths]
    finally:
        Image.MAX_IMAGE_PIXELS = before
    return _Slice.pack(decoded, category, options.size)


def _hash_slice(
    lake: Lake, category: str, paths: list[Path], options: ImageOptions
) -> list[tuple[str, int]]:
    """One task: the sha256 (the image's id) and size of each file of a slice; its raw copy.

    The copy (content-addressed, made once) is made here, in the workers, not by the
    parent inside the load: a file at a time it was the parent's largest serial cost.
    A copy whose ingest then fails stays unrecorded and is reused by the next ingest.
    """
    found = []
    for path in paths:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read() if size <= WHOLE_READ_BYTES else None
        if data is None:
            sha = sha256_file(path)
            lake.store_raw(path, sha)
        else:
            sha = hashlib.sha256(data).hexdigest()
            lake.store_raw_bytes(data, sha)
        found.append((sha, size))
    return found


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """One pool for every pass of an ingest (started once); none for a single worker."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield pool


def _in_order(
    pool: ProcessPoolExecutor | None,
    work: Callable[[str, list[Path], ImageOptions], T],
    folders: list[Task],
    options: ImageOptions,
) -> Iterator[tuple[str, list[Path], T]]:
    """Each slice's result in task order, ``AHEAD x workers`` slices queued ahead of the caller.

    The queue is topped up before a result is handed over, so the workers keep working
    while the caller (the parent: hashing rows, loading the warehouse) is busy.
    """
    tasks = (
        (category, files[i : i + options.slice_size])
        for category, files in folders
        for i in range(0, len(files), options.slice_size)
    )
    if pool is None:
        for category, paths in tasks:
            yield category, paths, work(category, paths, options)
        return
    pending: deque[tuple[str, list[Path], Future[T]]] = deque()

    def top_up(count: int) -> None:
        for category, paths in islice(tasks, count):
            pending.append((category, paths, pool.submit(work, category, paths, options)))

    top_up(AHEAD * options.workers)
    while pending:
        category, paths, future = pending.popleft()
        result = future.result()
        top_up(1)
        yield category, paths, result


def survey(
    folders: list[Task], options: ImageOptions, pool: ProcessPoolExecutor | None, lake: Lake
) -> dict[Path, tuple[str, int]]:
    """The sha256 and size of every file, found by the workers (which store the raw
    copies): what is new is decided before decoding."""
    found: dict[Path, tuple[str, int]] = {}
    for _, paths, hashed in _in_order(pool, partial(_hash_slice, lake), folders, options):
        found.update(zip(paths, hashed, strict=True))
    return found


def decode_folder(
    folders: list[Task],
    options: ImageOptions,
    progress: CategoryProgress | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> Iterator[Decoded]:
    """Every image decoded, in folder order, with ``options.workers`` processes (or ``pool``)."""
    if pool is None and options.workers > 1:
        with worker_pool(options.workers) as own:
            yield from decode_folder(folders, options, progress, own)
        return
    totals = {category: len(files) for category, files in folders}
    done = dict.fromkeys(totals, 0)
    for category, _, packed in _in_order(pool, _decode_slice, folders, options):
        results = packed.unpack()
        done[category] += len(results)
        if progress is not None:
            progress(category, done[category], totals[category])
        yield from results


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    """A sidecar table, with the columns an older version did not write as nulls."""
    if not path.is_file():
        return schema.empty_table()
    table = pq.read_table(path)
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class _Known:
    """What earlier ingests of this dataset saw: the images loaded, the files set aside."""

    index: pa.Table
    rejected: pa.Table

    @classmethod
    def read(cls, lake: Lake, dataset: str) -> _Known:
        folder = lake.root / "images"
        return cls(
            _read_table(folder / f"{dataset}.parquet", INDEX_SCHEMA),
            _read_table(folder / f"{dataset}.rejected.parquet", REJECTED_SCHEMA),
        )

    def split(
        self, folders: list[Task], shas: dict[Path, tuple[str, int]], report: ImageIngestReport
    ) -> tuple[list[Task], list[tuple[str, str]]]:
        """(the files to decode, by category; new files whose bytes an earlier image has)."""
        loaded = dict(
            zip(self.index["id"].to_pylist(), self.index["file"].to_pylist(), strict=True)
        )
        set_aside = set(self.rejected["id"].to_pylist())
        new: list[Task] = []
        copies: list[tuple[str, str]] = []
        for category, files in folders:
            fresh = []
            for path in files:
                sha = shas[path][0]
                if sha in loaded and loaded[sha] != str(path):
                    copies.append((str(path), loaded[sha]))
                if sha in loaded or sha in set_aside:
                    report.images_known += 1
                else:
                    fresh.append(path)
            if fresh:
                new.append((category, fresh))
        return new, copies

    def hashes(self) -> list[tuple[str, int]]:
        """(file, difference hash) of every image loaded before: near duplicates across days."""
        pairs = zip(self.index["file"].to_pylist(), self.index["dhash"].to_pylist(), strict=True)
        return [(f, int(h)) for f, h in pairs if h is not None]


class _Collector:
    """Turns decoded images into record batches, noting rejects and duplicates on the way."""

    def __init__(
        self,
        report: ImageIngestReport,
        chunk_rows: int,
        root: Path,
        known: _Known | None = None,
        copies: list[tuple[str, str]] | None = None,
    ) -> None:
        self.report, self.chunk_rows, self.root = report, chunk_rows, root
        self.known = known or _Known(INDEX_SCHEMA.empty_table(), REJECTED_SCHEMA.empty_table())
        self.copies = copies or []
        self.reset()

    def reset(self) -> None:
        """A fresh start: the ingest reads the source again when another writer got in first."""
        self.report.images_loaded = 0
        self.report.rejected, self.report.near_duplicates = [], []
        self.report.duplicates = list(self.copies)
        self.report.per_category = {}
        self.seen: dict[str, str] = {}
        self.bands: list[dict[int, deque[int]]] = [{} for _ in range(4)]
        self.hashes: list[tuple[str, int]] = []
        for file, dhash in self.known.hashes():
            self._remember(file, dhash)
        self.index: list[tuple[str, str, str, int, int]] = []
        self.set_aside_rows: list[tuple[int, Decoded]] = []
        self.position = 0
        self.last: tuple[pa.RecordBatch, pa.Array] | None = None

    def batches(self, decoded: Iterator[Decoded]) -> Iterator[pa.RecordBatch]:
        self.reset()
        chunk: list[Decoded] = []
        row = 0
        for item in decoded:
            if not self._keep(item):
                continue
            chunk.append(item)
            if len(chunk) >= self.chunk_rows:
                yield self._batch(chunk, row)
                row += len(chunk)
                chunk = []
        if chunk:
            yield self._batch(chunk, row)

    def _keep(self, item: Decoded) -> bool:
        self.position += 1
        if item.pixels is None:
            self.report.rejected.append((item.path, item.reason or "unreadable"))
            self.set_aside_rows.append((self.position - 1, item))
            return False
        if item.image_id in self.seen:
            self.report.duplicates.append((item.path, self.seen[item.image_id]))
            return False
        self.seen[item.image_id] = item.path
        self._near(item)
        return True

    def _near(self, item: Decoded) -> None:
        """Candidates share one of four 16-bit bands (LSH), so no all-pairs comparison."""
        close: dict[int, int] = {}
        for band, table in enumerate(self.bands):
            for other in table.get((item.dhash >> (16 * band)) & 0xFFFF, ()):
                distance = (item.dhash ^ self.hashes[other][1]).bit_count()
                if distance <= NEAR_BITS:
                    close[other] = distance
        for other, distance in sorted(close.items())[:1]:
            self.report.near_duplicates.append((item.path, self.hashes[other][0], distance))
        self._remember(item.path, item.dhash)

    def _remember(self, path: str, dhash: int) -> None:
        mine = len(self.hashes)
        for band, table in enumerate(self.bands):
            key = (dhash >> (16 * band)) & 0xFFFF
            table.setdefault(key, deque(maxlen=NEAR_CANDIDATES)).append(mine)
        self.hashes.append((path, dhash))

    def _batch(self, chunk: list[Decoded], first_row: int) -> pa.RecordBatch:
        for offset, item in enumerate(chunk):
            self.index.append(
                (item.image_id, item.category, item.path, first_row + offset, item.dhash)
            )
            self.report.per_category[item.category] = (
                self.report.per_category.get(item.category, 0) + 1
            )
        self.report.images_loaded += len(chunk)
        labels = pa.array([item.category for item in chunk], pa.string())
        stack = np.stack([item.pixels for item in chunk if item.pixels is not None])
        batch = image_batch(stack, labels, split="unassigned", first_row=first_row, path=self.root)
        self.last = (batch, pa.array([item.row_hash for item in chunk], pa.string()))
        return batch

    def row_hashes(self, batch: pa.RecordBatch) -> pa.Array:
        """The row hashes the workers made for the batch just handed over (else computed)."""
        if self.last is not None and self.last[0] is batch:
            return self.last[1]
        return image_row_hashes(batch)

    def set_aside(self) -> pa.Table:
        """The files that did not decode as quarantine rows: the file, the reason, its id."""
        rows = self.set_aside_rows
        payloads = [
            _payload({"id": d.image_id, "label": d.category, "file": d.path, "reason": d.reason})
            for _, d in rows
        ]
        return pa.table(
            {
                "source_row": pa.array([position for position, _ in rows], pa.int64()),
                "check_name": pa.array([IMAGE_FILE_CHECK] * len(rows), pa.string()),
                "field": pa.array([self._shown(d.path) for _, d in rows], pa.string()),
                "value_text": pa.array([d.reason for _, d in rows], pa.string()),
                "row_payload": pa.array(payloads, pa.binary()),
            }
        )

    def _shown(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path


def _payload(values: dict[str, str | None]) -> bytes:
    """One set-aside file as Arrow IPC bytes, the quarantine's payload format."""
    batch = pa.RecordBatch.from_pydict({k: [v] for k, v in values.items()}, REJECTED_SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


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
    """Load the images of ``root`` that ``dataset`` has not seen as one new batch of it.

    Every file is hashed (in the workers); files whose id an earlier run loaded or set
    aside are skipped, the rest are decoded and loaded. Nothing new: no batch at all.
    """
    folders = scan(root)
    known = _Known.read(lake, dataset)
    report = ImageIngestReport(dataset, images_found=sum(len(files) for _, files in folders))
    with worker_pool(options.workers) as pool:
        shas = survey(folders, options, pool, lake)
        new, copies = known.split(folders, shas, report)
        if not new:
            report.duplicates = copies
            return report
        # chunks small enough that the queued slices keep the workers busy meanwhile
        chunk = max(options.slice_size, min(chunk_rows, options.slice_size * options.workers))
        collector = _Collector(report, chunk, root, known, copies)
        files = [p for _, paths in new for p in paths]
        source = Source(
            name=root.name,
            kind="image",
            files=[
                RawFile(p, f"unassigned/{c}", "image/" + p.suffix.lower().lstrip("."), shas[p][1])
                for c, paths in new
                for p in paths
            ],
            read=lambda: collector.batches(decode_folder(new, options, progress, pool)),
            total_rows=len(files),
            label_column="label",
            labels=[category for category, _ in folders],  # every chunk's, not the first's
            sha256s=[shas[p][0] for p in files],
            raw_stored=True,
            row_hashes=collector.row_hashes,
            set_aside=collector.set_aside,
        )
        try:
            report.ingest = ingest_source(
                source, warehouse=warehouse, lake=lake, dataset=dataset, origin=str(root.resolve())
            )
        except FormatError:
            if report.images_loaded or not report.rejected:
                raise
            return report  # every new file was set aside: no batch to record them with
    batch_id = report.ingest.batches[0].batch_id
    report.index = str(_write_sidecars(lake, dataset, known, collector, batch_id))
    return report


def _write_sidecars(
    lake: Lake, dataset: str, known: _Known, collector: _Collector, batch_id: int | None
) -> Path:
    """The index and the set-aside list, grown by this batch, each replaced whole."""
    rows = collector.index
    added = pa.table(
        {
            "id": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "file": [r[2] for r in rows],
            "batch_id": pa.array([batch_id] * len(rows), pa.int64()),
            "source_row": pa.array([r[3] for r in rows], pa.int64()),
            "dhash": pa.array([r[4] for r in rows], pa.uint64()),
        },
        schema=INDEX_SCHEMA,
    )
    aside = collector.set_aside_rows
    rejected = pa.table(
        {
            "id": [d.image_id for _, d in aside],
            "label": [d.category for _, d in aside],
            "file": [d.path for _, d in aside],
            "reason": [d.reason for _, d in aside],
        },
        schema=REJECTED_SCHEMA,
    )
    folder = lake.root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / f"{dataset}.rejected.parquet", pa.concat_tables([known.rejected, rejected]))
    return _replace(folder / f"{dataset}.parquet", pa.concat_tables([known.index, added]))


def _replace(target: Path, table: pa.Table) -> Path:
    partial = target.with_suffix(".parquet.partial")
    pq.write_table(table, partial)
    partial.replace(target)
    return target
