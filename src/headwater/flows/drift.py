"""Feature drift per batch: the population stability index of each numeric column.

The reference is the dataset's first batch (the data its first model learned from);
each later batch's values are binned at the reference's deciles and compared:
``PSI = sum((share_batch - share_ref) * ln(share_batch / share_ref))`` over the bins.
Below 0.1 is usually read as no real shift, 0.1-0.25 as a moderate one, above 0.25 as a
large one. Rows stream in chunks; only bin counts are kept (and the reference's
first ``SAMPLE`` values per column, to place the bins), so memory stays bounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.flows.workspace import Workspace
from headwater.storage.warehouse import catalog as cat

__all__ = ["feature_drift", "psi"]

SAMPLE = 100_000
CHUNK_ROWS = 16_384
EPSILON = 1e-4


def psi(reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """PSI between two histograms' counts over the same bins."""
    ref = np.maximum(reference / max(reference.sum(), 1.0), EPSILON)
    cur = np.maximum(current / max(current.sum(), 1.0), EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _numeric(dataset: cat.DatasetRow) -> list[str]:
    assert dataset.schema is not None
    return [
        f.name
        for f in dataset.schema
        if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
        and f.name not in {dataset.label_column, "split"}
    ]


def _chunks(ws: Workspace, dataset: cat.DatasetRow) -> Iterator[pa.RecordBatch]:
    """Every row of every split, a bounded chunk at a time (a pass over the dataset)."""
    for split in cat.SPLIT_KEYS:
        yield from cat.tabular_chunks(ws.warehouse, dataset, split, chunk_rows=CHUNK_ROWS)


def _edges(
    ws: Workspace, dataset: cat.DatasetRow, columns: list[str], first: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Each column's inner decile edges, from (a bounded sample of) the first batch."""
    sample: dict[str, list[npt.NDArray[np.float64]]] = defaultdict(list)
    for chunk in _chunks(ws, dataset):
        mine = chunk.filter(pc.equal(chunk.column("hw_batch_key"), first))
        for column in columns:
            if sum(len(v) for v in sample[column]) < SAMPLE:
                sample[column].append(_values(mine, column))
    return {
        c: np.unique(np.quantile(np.concatenate(v), np.linspace(0, 1, 11))[1:-1])
        for c, v in sample.items()
        if sum(len(x) for x in v)
    }


def _values(chunk: pa.RecordBatch, column: str) -> npt.NDArray[np.float64]:
    array = pc.cast(chunk.column(column), pa.float64())
    return np.asarray(array.drop_null().to_numpy(zero_copy_only=False), dtype=np.float64)


def feature_drift(ws: Workspace, name: str) -> dict[str, dict[int, float]]:
    """{column: {batch id: PSI against the first batch}} for a tabular dataset's numbers."""
    dataset = cat.get_dataset(ws.warehouse, name)
    if dataset.kind != "tabular" or dataset.schema is None:
        return {}
    columns = _numeric(dataset)
    batches = [b.batch_id for b in cat.list_batches(ws.warehouse, name) if b.rows_loaded]
    if not columns or not batches:
        return {}
    first = batches[0]
    edges = _edges(ws, dataset, columns, first)
    counts: dict[tuple[str, int], npt.NDArray[np.float64]] = {}
    for chunk in _chunks(ws, dataset):
        keys = np.asarray(chunk.column("hw_batch_key").to_numpy(zero_copy_only=False))
        for batch in np.unique(keys):
            rows = chunk.filter(pa.array(keys == batch))
            for column, cut in edges.items():
                found = np.bincount(
                    np.searchsorted(cut, _values(rows, column), side="right"),
                    minlength=len(cut) + 1,
                ).astype(np.float64)
                key = (column, int(batch))
                counts[key] = counts.get(key, np.zeros(len(cut) + 1)) + found
    return {
        column: {
            b: psi(counts[(column, first)], counts[(column, b)])
            for b in batches
            if (column, b) in counts
        }
        for column in edges
        if (column, first) in counts
    }
