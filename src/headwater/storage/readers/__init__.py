"""Readers: turn a path into the `Source`s (batches) it holds, choosing by name and content."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from headwater.errors import FormatError
from headwater.storage.readers.base import (
    IMAGE_SCHEMA,
    RawFile,
    ReaderOptions,
    Source,
    check_file_name,
)
from headwater.storage.readers.idx import IDX_NAME, find_idx_pairs, read_idx_pair
from headwater.storage.readers.image_folder import looks_like_image_folder, read_image_folder
from headwater.storage.readers.mnist_pickle import read_mnist_pickle
from headwater.storage.readers.npz import read_npz
from headwater.storage.readers.tabular import read_csv, read_json, read_parquet

__all__ = [
    "IMAGE_SCHEMA",
    "RawFile",
    "ReaderOptions",
    "Source",
    "check_file_name",
    "open_sources",
]

SUPPORTED = (
    ".pkl(.gz), IDX (-idx3-ubyte[.gz]), .npz, .csv/.tsv(.gz), .json/.jsonl(.gz), .parquet, "
    "or a folder"
)


def open_sources(
    path: Path,
    *,
    chunk_rows: int,
    schema: pa.Schema | None = None,
    label: str | None = None,
    options: ReaderOptions | None = None,
) -> list[Source]:
    """The batches a path holds: one per file, one per IDX pair, one per image folder.

    ``options`` carry the encoding of text files and the limits on hostile input.
    """
    options = options or ReaderOptions()
    if not path.exists():
        raise FormatError("no such file or folder", path=path)
    check_file_name(path.resolve().name, path=path)
    if path.is_dir():
        return _open_folder(path, chunk_rows=chunk_rows, options=options)
    name = path.name.lower()
    if path.stat().st_size == 0:
        raise FormatError("the file is empty", path=path)
    if name.endswith((".pkl", ".pkl.gz", ".pickle", ".pickle.gz")):
        return [read_mnist_pickle(path, chunk_rows=chunk_rows, options=options)]
    if m := IDX_NAME.match(path.name):
        pairs = [p for p in find_idx_pairs(path.parent) if m["prefix"] in p[0].name]
        images, labels, split = next(p for p in pairs if p[0] == path or p[1] == path)
        return [read_idx_pair(images, labels, split, chunk_rows=chunk_rows, options=options)]
    if name.endswith(".npz"):
        return [read_npz(path, chunk_rows=chunk_rows)]
    text_name = name.removesuffix(".gz")
    if text_name.endswith((".csv", ".tsv", ".txt")):
        return [read_csv(path, chunk_rows=chunk_rows, schema=schema, label=label, options=options)]
    if text_name.endswith((".json", ".jsonl", ".ndjson")):
        return [read_json(path, chunk_rows=chunk_rows, schema=schema, label=label, options=options)]
    if name.endswith((".parquet", ".pq")):
        return [read_parquet(path, chunk_rows=chunk_rows, schema=schema, label=label)]
    raise FormatError(f"unknown file type; Headwater reads {SUPPORTED}", path=path)


def _open_folder(folder: Path, *, chunk_rows: int, options: ReaderOptions) -> list[Source]:
    pairs = find_idx_pairs(folder)
    if pairs:
        return [
            read_idx_pair(i, lab, s, chunk_rows=chunk_rows, options=options) for i, lab, s in pairs
        ]
    if looks_like_image_folder(folder):
        return [read_image_folder(folder, chunk_rows=chunk_rows)]
    # Imported here: the obfuscator's Lambda bundle reads files through this package and
    # ships without the lake (tests/data/privacy/test_aws_lambda.py holds it to that).
    from headwater.storage.lake import parquet_parts

    parts = parquet_parts(folder)
    if parts:  # a dataset's curated folder (batch_id=N/part-*.parquet), in batch order
        return [read_parquet(p, chunk_rows=chunk_rows, schema=None, label=None) for p in parts]
    raise FormatError(
        "the folder holds neither IDX pairs (train-images-idx3-ubyte + train-labels-idx1-ubyte) "
        "nor images laid out <label>/*.png nor Parquet parts",
        path=folder,
    )
