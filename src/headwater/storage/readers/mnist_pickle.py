"""The classic ``mnist.pkl.gz``: a gzip'd pickle of (train, validation, test), each (X, y).

Pickles run code when loaded, so this one goes through an unpickler that admits
numpy arrays, their dtypes and tuples, and refuses every other global.
"""

from __future__ import annotations

import gzip
import importlib
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from headwater.errors import FormatError, SchemaError, UnsafeInput
from headwater.storage.readers.base import (
    RawFile,
    ReaderOptions,
    Source,
    labelled_image_batches,
    open_decompressed,
)

__all__ = ["load_numpy_pickle", "read_mnist_pickle"]

# (module, name) pairs a numpy array pickle needs; numpy 1.x wrote numpy.core, 2.x numpy._core.
_ADMITTED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 writes arrays as raw buffers
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles from Python 3 spell bytes as encode(str, latin1)
}
_SPLITS = ("train", "validation", "test")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        super().__init__(handle, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ADMITTED:
            raise UnsafeInput(
                f"the pickle asks for {module}.{name}; only numpy arrays and tuples are "
                "admitted, so it was not loaded (a pickle can run code)",
                path=self.path,
            )
        home = module.replace("numpy.core", "numpy._core")
        return getattr(importlib.import_module(home), name)


def load_numpy_pickle(path: Path, limit: int | None = None) -> object:
    """Unpickle a (possibly gzip'd) file that may hold only numpy arrays and tuples.

    ``limit``: the most bytes a gzip may expand to (`ReaderOptions.max_decompressed_bytes`).
    """
    try:
        with open_decompressed(path, limit) as handle:
            obj = _NumpyOnlyUnpickler(handle, path).load()
    except UnsafeInput:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FormatError(
            f"the file is truncated or not a valid gzip'd pickle ({exc})", path=path
        ) from exc
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise FormatError(f"not a readable pickle ({exc})", path=path) from exc
    return obj


def _check_arrays(obj: object, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    shape_hint = "(train, validation, test), each (X, y)"
    if not isinstance(obj, tuple) or len(obj) != 3:
        raise SchemaError(f"expected a tuple {shape_hint}", path=path)
    splits = []
    for split, part in zip(_SPLITS, obj, strict=True):
        if not (isinstance(part, tuple) and len(part) == 2):
            raise SchemaError(
                f"the {split} part is not an (X, y) pair; expected {shape_hint}", path=path
            )
        images, labels = part
        if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
            raise SchemaError(f"the {split} part does not hold numpy arrays", path=path)
        if images.dtype == object or labels.dtype == object:
            raise SchemaError(f"the {split} arrays hold Python objects, not numbers", path=path)
        if len(images) != len(labels):
            raise SchemaError(
                f"the {split} part has {len(images)} images but {len(labels)} labels",
                path=path,
                field="label",
            )
        splits.append((images, labels))
    return splits


def read_mnist_pickle(
    path: Path, *, chunk_rows: int, options: ReaderOptions | None = None
) -> Source:
    """A lazy source: the pickle is only unpickled when its rows are read.

    Checking whether the same bytes were already loaded needs only their hash, so
    a re-ingest never pays for unpickling 70,000 images.
    """

    def batches() -> Iterator[pa.RecordBatch]:
        limit = options.max_decompressed_bytes if options else None
        parts = _check_arrays(load_numpy_pickle(path, limit), path)
        source.total_rows = sum(len(images) for images, _ in parts)
        named = [(x, y, split) for (x, y), split in zip(parts, _SPLITS, strict=True)]
        yield from labelled_image_batches(named, path=path, chunk_rows=chunk_rows)

    source = Source(
        name=path.name,
        kind="image",
        files=[RawFile(path, "data", "application/x-python-pickle")],
        read=batches,
        label_column="label",
    )
    return source
