"""The rows a run learns from, and their features, read from the warehouse in chunks.

A run first settles *which* rows play each role (train, validation, test) from the
row keys and labels alone: 8 bytes a row plus its label, never the pixels or the
columns. Only then are features made, one chunk of a split at a time, straight into
one float32 matrix per role. That matrix lives in memory while the run fits within
``Settings.train_memory_mb``, and in a memory-mapped file under the run's cache
folder past it, so a dataset larger than memory trains: the operating system keeps
in memory what fits and pages in the rest as the training loop asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.data.features import (
    ColumnChoice,
    FeatureSpec,
    Pixels,
    choose_features,
    spec_from_choices,
)
from headwater.data.task import Task
from headwater.errors import SchemaError
from headwater.flows.workspace import Workspace
from headwater.learning import holdout_split
from headwater.storage.warehouse import catalog as cat

__all__ = [
    "RoleRows",
    "dataset_features",
    "feature_choices",
    "feature_matrices",
    "feature_spec",
    "fit_feature_spec",
    "label_mapping",
    "role_chunks",
    "roles_for",
    "split_rows",
]

SPLITS = tuple(cat.SPLIT_KEYS)  # train, validation, test, unassigned
CHUNK_ROWS = 16384
PROFILE_ROWS = 20_000
"""The first rows whose columns decide which become features (identifiers, free text, ...)."""

Raw: TypeAlias = npt.NDArray[np.generic] | pa.Table
"""A chunk of rows before the feature transform: images (n, h, w[, c]) or a table."""


@dataclass(frozen=True)
class RoleRows:
    """The rows of one role, in training order: the splits they live in, keys, labels, batches."""

    splits: tuple[str, ...]
    row_keys: npt.NDArray[np.int64]
    y: npt.NDArray[np.int64]
    """Class codes; a regression's numbers (float64) for a run whose task is regression."""
    batch_keys: npt.NDArray[np.int64]

    def take(self, rows: npt.NDArray[np.int64]) -> RoleRows:
        return RoleRows(self.splits, self.row_keys[rows], self.y[rows], self.batch_keys[rows])

    @property
    def batch_ids(self) -> list[int]:
        return [int(b) for b in np.unique(self.batch_keys)]

    def __len__(self) -> int:
        return len(self.y)


def split_rows(
    ws: Workspace,
    dataset: cat.DatasetRow,
    split: str,
    mapping: dict[str, int] | None,
    task: Task = "classification",
) -> RoleRows | None:
    """One split's keys and integer labels (a regression's numbers), or None when empty."""
    index = cat.split_index(ws.warehouse, dataset, split)  # no label column: SchemaError
    if len(index.row_keys) == 0:
        return None
    if index.labels.null_count:  # ingest refuses these; a hand-edited warehouse might not
        raise SchemaError(f"dataset {dataset.name!r} has rows without a label", field="label")
    if task == "regression":
        target = _numbers(dataset, split, index.labels, index.row_keys)
        return RoleRows((split,), index.row_keys, target, index.batch_keys)  # type: ignore[arg-type]  # float64 targets
    labels = _encode(index.labels, mapping)
    return RoleRows((split,), index.row_keys, labels, index.batch_keys)


def _numbers(
    dataset: cat.DatasetRow, split: str, labels: pa.Array, row_keys: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """A regression target as float64: text is refused, NaN and infinities named by row id."""
    label = dataset.label_column or "label"
    try:
        numbers = pc.cast(pc.utf8_trim_whitespace(labels), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        text = [v for v in pc.unique(labels).to_pylist()[:50] if not _is_number(v)][:3]
        raise SchemaError(
            f"dataset {dataset.name!r}: label {label!r} holds text ({', '.join(map(repr, text))}); "
            "a regression needs numbers; train it with --task classification",
            field=label,
        ) from exc
    target = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(target))
    if len(bad):
        rows = ", ".join(str(int(k)) for k in row_keys[bad[:10]])
        raise SchemaError(
            f"dataset {dataset.name!r}: label {label!r} is NaN or infinite in {len(bad)} "
            f"{split} row(s), row_id {rows}{' ...' if len(bad) > 10 else ''}; a regression "
            "target must be a finite number: fix or drop those rows and ingest again",
            field=label,
        )
    return target


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _encode(labels: pa.Array, mapping: dict[str, int] | None) -> npt.NDArray[np.int64]:
    """Whole-number labels as they are; text labels through ``mapping`` (read from every split)."""
    if mapping is None:
        return np.asarray(pc.cast(labels, pa.int64()).to_numpy(), dtype=np.int64)
    index = pc.index_in(labels, value_set=pa.array(list(mapping), pa.string()))
    codes = np.array(list(mapping.values()), dtype=np.int64)
    encoded: npt.NDArray[np.int64] = codes[index.to_numpy(zero_copy_only=False)]
    return encoded


def label_mapping(ws: Workspace, dataset: cat.DatasetRow) -> dict[str, int] | None:
    """None when labels are whole numbers (kept as they are); else text label -> code.

    The classes are read from every row of every split, so a dataset with no
    split column (all rows ``unassigned``) or a class seen only in its test split works.
    """
    if dataset.kind == "image":
        texts = cat.dataset_labels(ws.warehouse, dataset.key)
    elif dataset.label_column is None:
        texts = []
    else:
        found: set[str] = set()
        for split in SPLITS:
            labels = cat.split_index(ws.warehouse, dataset, split).labels
            found.update(str(v) for v in pc.unique(labels).drop_null().to_pylist())
        texts = sorted(found)
    if all(t.lstrip("-").isdigit() for t in texts):
        return None
    return {label: code for code, label in enumerate(sorted(texts))}


def roles_for(
    ws: Workspace,
    dataset: cat.DatasetRow,
    mapping: dict[str, int] | None,
    *,
    holdout: float | None,
    seed: int,
    task: Task = "classification",
) -> dict[str, RoleRows]:
    """train / validation / test, from the dataset's own splits or held out of the train split.

    Held-out rows keep every class's share (stratified), except for a regression.
    """
    splits = {s: split_rows(ws, dataset, s, mapping, task) for s in SPLITS}
    stratify = task == "classification"
    pool = splits["train"] or splits["unassigned"]
    if pool is None:
        raise SchemaError(
            f"dataset {dataset.name!r} has no train (or unassigned) rows to learn from"
        )
    test = splits["test"]
    if test is None:  # no test split: hold 20% of the pool out for it, seeded
        cut = holdout_split(pool.y, fraction=0.2, seed=seed, stratify=stratify)
        pool, test = pool.take(cut.train), pool.take(cut.test)
    validation = splits["validation"]
    if holdout is not None or validation is None:
        cut = holdout_split(pool.y, fraction=holdout or 0.1, seed=seed, stratify=stratify)
        pool, validation = pool.take(cut.train), pool.take(cut.test)
    return {"train": pool, "validation": validation, "test": test}


def feature_choices(ws: Workspace, dataset: cat.DatasetRow) -> list[ColumnChoice]:
    """Every column: the feature it becomes, or why it is left out; see `choose_features`.

    Decided on the dataset's first ``PROFILE_ROWS`` rows, so the dataset page and the
    run that trains next give the same answer, without reading a large table whole.
    """
    if dataset.kind == "image" or dataset.schema is None:
        return [ColumnChoice("pixels", "number", "every pixel, scaled to 0..1", Pixels())]
    sample = cat.sample_rows(ws.warehouse, dataset, limit=PROFILE_ROWS)
    last = {name: i for i, name in enumerate(sample.column_names)}  # a user `split` follows ours
    columns = sample.select([last[name] for name in dataset.schema.names])
    nested = [f.name for f in dataset.schema if pa.types.is_nested(f.type)]
    return choose_features(columns, label=dataset.label_column, nested=nested)


def dataset_features(ws: Workspace, name: str) -> list[ColumnChoice]:
    """`feature_choices` of a dataset by name: "the features the model will train on"."""
    return feature_choices(ws, cat.get_dataset(ws.warehouse, name))


def feature_spec(ws: Workspace, dataset: cat.DatasetRow) -> FeatureSpec:
    """Pixels for images; for tables, a step per chosen column, remembering every choice."""
    if dataset.kind == "image" or dataset.schema is None:
        return FeatureSpec([Pixels()])
    return spec_from_choices(feature_choices(ws, dataset), dataset=dataset.name)


def fit_feature_spec(ws: Workspace, dataset: cat.DatasetRow, train: RoleRows) -> FeatureSpec:
    """The dataset's feature spec, fitted on the training rows only, a chunk at a time."""
    chunks = (raw for _, raw, _ in _role_chunks(ws, dataset, {"train": train}))
    try:
        return feature_spec(ws, dataset).fit_chunks(chunks)
    finally:
        chunks.close()  # an image spec reads one chunk; let the query go


def feature_matrices(
    ws: Workspace,
    dataset: cat.DatasetRow,
    roles: dict[str, RoleRows],
    spec: FeatureSpec,
    cache: Path,
) -> dict[str, npt.NDArray[np.float32]]:
    """Each role's rows through ``spec``, in the role's order; see the module docstring."""
    width = len(spec.feature_names_out_)
    needed = 4 * width * sum(len(rows) for rows in roles.values())
    on_disk = needed > ws.settings.train_memory_mb * 1024 * 1024
    out: dict[str, npt.NDArray[np.float32]] = {}
    for role, rows in roles.items():
        if on_disk:
            cache.mkdir(parents=True, exist_ok=True)
            out[role] = np.lib.format.open_memmap(
                cache / f"{role}.npy", mode="w+", dtype=np.float32, shape=(len(rows), width)
            )
        else:
            out[role] = np.empty((len(rows), width), dtype=np.float32)
    for role, raw, positions in _role_chunks(ws, dataset, roles):
        out[role][positions] = spec.transform(raw)
    return out


def role_chunks(
    ws: Workspace, dataset: cat.DatasetRow, roles: dict[str, RoleRows]
) -> Iterator[tuple[str, Raw, npt.NDArray[np.int64]]]:
    """(role, its raw rows of a chunk, their places in the role): to score saved models on rows."""
    return _role_chunks(ws, dataset, roles)


def _role_chunks(
    ws: Workspace, dataset: cat.DatasetRow, roles: dict[str, RoleRows]
) -> Iterator[tuple[str, Raw, npt.NDArray[np.int64]]]:
    """(role, its rows of a chunk, their places in the role), reading each split once."""
    lookups = {role: _KeyLookup(rows.row_keys) for role, rows in roles.items()}
    for split in [s for s in SPLITS if any(s in rows.splits for rows in roles.values())]:
        sharing = [role for role, rows in roles.items() if split in rows.splits]
        for keys, raw in _split_chunks(ws, dataset, split):
            for role in sharing:
                hit, positions = lookups[role].find(keys)
                if hit.any():
                    rows = raw.filter(pa.array(hit)) if isinstance(raw, pa.Table) else raw[hit]
                    yield role, rows, positions


class _KeyLookup:
    """Where each of a role's row keys sits in the role's order, answered for a chunk of keys."""

    def __init__(self, keys: npt.NDArray[np.int64]) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def find(
        self, keys: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        at = np.minimum(np.searchsorted(self.sorted, keys), max(len(self.sorted) - 1, 0))
        hit = self.sorted[at] == keys if len(self.sorted) else np.zeros(len(keys), dtype=bool)
        return hit, self.order[at[hit]]


def _split_chunks(
    ws: Workspace, dataset: cat.DatasetRow, split: str
) -> Iterator[tuple[npt.NDArray[np.int64], Raw]]:
    """(row keys, features before the transform) of one split, a chunk at a time."""
    if dataset.kind == "image":
        for chunk in cat.image_chunks(ws.warehouse, dataset, split, chunk_rows=CHUNK_ROWS):
            pixels = chunk.pixels
            yield chunk.row_keys, pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        return
    drop = ["hw_row_key", "hw_batch_key", dataset.label_column]
    for batch in cat.tabular_chunks(ws.warehouse, dataset, split, chunk_rows=CHUNK_ROWS):
        keys = batch.column("hw_row_key").to_numpy(zero_copy_only=False).astype(np.int64)
        yield keys, pa.Table.from_batches([batch]).drop_columns(drop)
