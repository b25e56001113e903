"""A features table (id, label, f0…f{d-1}) checked part by part and category by category.

Vectors arrive a part at a time (one inference chunk). Before a part is written,
every vector is checked: a NaN or infinite value, or a constant vector (every
feature the same, as a dead ReLU layer gives), sets that row aside with its reason.
Each category keeps its counts (images seen, vectors kept, set aside) and whether
its kept vectors differ at all; :meth:`FeatureChecks.refusal` says why the whole
table must not be loaded (a category with no usable vector, one whose vectors are
all identical, or more bad rows than ``max_bad_share``), and the counts must add up:
every image is kept or set aside, and the parts hold exactly the kept rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["CategoryCheck", "FeatureChecks", "PartCheck", "feature_schema", "vector_problems"]

SET_ASIDE_SHOWN = 100
"""Rows set aside named one by one in a report; the rest are counted."""


def feature_schema(dim: int) -> pa.Schema:
    """``id``, ``label`` and ``f0`` … ``f{dim-1}`` as float32."""
    fields = [pa.field("id", pa.string(), nullable=False), pa.field("label", pa.string())]
    return pa.schema(fields + [pa.field(f"f{j}", pa.float32()) for j in range(dim)])


def vector_problems(vectors: npt.NDArray[np.float32]) -> list[str | None]:
    """Per row: None when usable, else why not (non-finite value, or a constant vector)."""
    finite = np.isfinite(vectors)
    bad_value = ~finite.all(axis=1)
    spread = np.ptp(np.where(finite, vectors, 0.0), axis=1) if vectors.shape[1] else None
    constant = (spread == 0) & ~bad_value if spread is not None else bad_value
    out: list[str | None] = [None] * len(vectors)
    for row in np.flatnonzero(bad_value):
        column = int(np.flatnonzero(~finite[row])[0])
        out[row] = f"non-finite value {vectors[row, column]} in f{column}"
    for row in np.flatnonzero(constant):
        out[row] = f"constant vector (every feature {float(vectors[row, 0]):g})"
    return out


@dataclass
class CategoryCheck:
    """One label's counts, and whether its kept vectors differ from one another."""

    images: int = 0
    kept: int = 0
    set_aside: int = 0
    first: npt.NDArray[np.float32] | None = None
    varied: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "kept": self.kept,
            "set_aside": self.set_aside,
            "adds_up": self.images == self.kept + self.set_aside,
            "varied": self.varied or self.kept <= 1,
        }


@dataclass(frozen=True)
class PartCheck:
    """One written part: its rows by label, checked clean before writing."""

    part: int
    rows: int
    scored: int
    set_aside: int
    labels: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "part": self.part,
            "rows": self.rows,
            "scored": self.scored,
            "set_aside": self.set_aside,
            "labels": self.labels,
            "non_finite": 0,
            "constant": 0,
            "adds_up": self.rows + self.set_aside == self.scored,
        }


@dataclass
class FeatureChecks:
    """Writes checked parts to one Parquet file (a row group each) and keeps every count."""

    path: Path
    dim: int
    max_bad_share: float = 0.01
    categories: dict[str, CategoryCheck] = field(default_factory=dict)
    parts: list[PartCheck] = field(default_factory=list)
    set_aside: list[dict[str, str]] = field(default_factory=list)
    set_aside_count: int = 0
    writer: pq.ParquetWriter | None = None
    aside_writer: pq.ParquetWriter | None = None

    def add(self, ids: list[str], labels: list[str], vectors: npt.NDArray[np.float32]) -> None:
        """Check one part's vectors, note its rows aside, write the rest as a row group."""
        problems = vector_problems(vectors)
        keep = np.array([p is None for p in problems], dtype=bool)
        names = np.asarray(labels, dtype=object)
        for row in np.flatnonzero(~keep)[: max(0, SET_ASIDE_SHOWN - len(self.set_aside))]:
            self.set_aside.append(
                {"id": ids[row], "label": labels[row], "reason": str(problems[row])}
            )
        self.set_aside_count += int((~keep).sum())
        if not keep.all():
            self._write_aside(ids, labels, problems, np.flatnonzero(~keep))
        counts: dict[str, int] = {}
        for label in sorted(set(labels)):
            mine = names == label
            good = np.flatnonzero(mine & keep)
            category = self.categories.setdefault(label, CategoryCheck())
            category.images += int(mine.sum())
            category.kept += len(good)
            category.set_aside += int((mine & ~keep).sum())
            if len(good):
                counts[label] = len(good)
                if category.first is None:
                    category.first = vectors[good[0]].copy()
                category.varied = category.varied or bool((vectors[good] != category.first).any())
        self.parts.append(
            PartCheck(len(self.parts), int(keep.sum()), len(ids), int((~keep).sum()), counts)
        )
        if keep.any():
            kept_ids = [ids[row] for row in np.flatnonzero(keep)]
            self._write(kept_ids, names[keep].tolist(), vectors[keep])

    def _write(self, ids: list[str], labels: list[str], vectors: npt.NDArray[np.float32]) -> None:
        schema = feature_schema(self.dim)
        columns = [pa.array(ids, pa.string()), pa.array(labels, pa.string())]
        columns += [pa.array(vectors[:, j]) for j in range(self.dim)]
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.writer.write_table(pa.Table.from_arrays(columns, schema=schema))

    @property
    def aside_path(self) -> Path:
        """Every row set aside (id, label, reason), beside the table: written as they come."""
        return self.path.with_name("set_aside.parquet")

    def _write_aside(
        self, ids: list[str], labels: list[str], problems: list[str | None], rows: np.ndarray
    ) -> None:
        table = pa.table(
            {
                "id": [ids[r] for r in rows],
                "label": [labels[r] for r in rows],
                "reason": [str(problems[r]) for r in rows],
            }
        )
        if self.aside_writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.aside_writer = pq.ParquetWriter(self.aside_path, table.schema)
        self.aside_writer.write_table(table)

    def close(self) -> None:
        for writer in (self.writer, self.aside_writer):
            if writer is not None:
                writer.close()
        self.writer = self.aside_writer = None

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    def refusal(self) -> str | None:
        """Why this table must not be loaded, or None: see the module docstring."""
        scored = sum(c.images for c in self.categories.values())
        problems = [
            f"category {label!r}: none of its {c.images} vectors is usable"
            for label, c in self.categories.items()
            if c.kept == 0
        ]
        problems += [
            f"category {label!r}: all {c.kept} vectors are identical (the model sees no "
            "difference between its images)"
            for label, c in self.categories.items()
            if c.kept > 1 and not c.varied
        ]
        if scored and self.set_aside_count > self.max_bad_share * scored:
            first = self.set_aside[0]
            problems.append(
                f"{self.set_aside_count} of {scored} vectors are unusable (over "
                f"{self.max_bad_share:.0%}); first: id {first['id']} ({first['label']}): "
                f"{first['reason']}"
            )
        if self.rows != sum(c.kept for c in self.categories.values()):
            problems.append(
                f"the parts hold {self.rows} rows, the categories kept a different count"
            )
        return "; ".join(problems) or None

    def to_dict(self) -> dict[str, object]:
        return {
            "categories": {label: c.to_dict() for label, c in sorted(self.categories.items())},
            "parts": [part.to_dict() for part in self.parts],
            "set_aside": self.set_aside,
            "set_aside_count": self.set_aside_count,
        }
