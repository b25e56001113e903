"""A dataset's contract: what every row of every batch must satisfy, as plain JSON.

The contract is inferred from the first batch when none is given, stored in the
warehouse unapproved, and shown to the user (`headwater contract DATASET`) to
approve or edit. It is deliberately small: types are already enforced by the
readers; the contract adds ranges, nullability, allowed labels, unique keys,
and the batch-level bands.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError
from headwater.storage.binary import value_bytes

__all__ = ["BatchRules", "ColumnRule", "Contract", "infer_contract"]

MAX_INFERRED_LABELS = 100


@dataclass
class ColumnRule:
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    unique: bool = False


@dataclass
class BatchRules:
    """Thresholds over a whole batch; ``None`` turns a check off."""

    max_quarantine_share: float | None = 0.1  # over this, the whole batch fails
    row_count_band: float | None = None  # e.g. 0.5: warn when rows differ by over 50%
    max_duplicate_share: float | None = None  # over this, warn


@dataclass
class Contract:
    kind: str
    label_column: str | None = "label"
    labels: list[str] | None = None  # allowed labels; None = any
    label_required: bool = True
    pixel_min: float | None = None
    pixel_max: float | None = None
    image_shape: list[int] | None = None  # [height, width, channels]
    columns: dict[str, ColumnRule] = field(default_factory=dict)
    batch: BatchRules = field(default_factory=BatchRules)
    approved: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Contract:
        try:
            raw = json.loads(text)
            raw["columns"] = {k: ColumnRule(**v) for k, v in raw.get("columns", {}).items()}
            raw["batch"] = BatchRules(**raw.get("batch", {}))
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"the contract is not valid: {exc}") from exc


def infer_contract(
    kind: str,
    first: pa.RecordBatch,
    *,
    label_column: str | None,
    known_labels: list[str] | None = None,
) -> Contract:
    """What the first batch shows, written down as rules for the ones after it.

    ``known_labels``: labels the source declares up front, allowed along with the first batch's.
    """
    contract = _infer_image(first) if kind == "image" else _infer_tabular(first, label_column)
    if known_labels is not None and contract.labels is not None:
        union = sorted(set(contract.labels) | set(known_labels))
        contract.labels = union if len(union) <= MAX_INFERRED_LABELS else None
    return contract


def _labels(column: pa.Array) -> list[str] | None:
    distinct = pc.unique(column.drop_null()).cast(pa.string()).to_pylist()
    return sorted(distinct) if len(distinct) <= MAX_INFERRED_LABELS else None


def _infer_image(first: pa.RecordBatch) -> Contract:
    dtype = first.column("pixel_dtype")[0].as_py()
    shape = [first.column(k)[0].as_py() for k in ("height", "width", "channels")]
    labels = first.column("label")
    if dtype == "uint8":
        low, high = 0.0, 255.0
    else:
        values = value_bytes(first.column("pixels"))[0].view(np.dtype(dtype))
        finite = values[np.isfinite(values)]
        low, high = (0.0, 1.0) if finite.size and finite.max() <= 1.0 else (0.0, 255.0)
    return Contract(
        kind="image",
        labels=_labels(labels),
        label_required=labels.null_count == 0,
        pixel_min=low,
        pixel_max=high,
        image_shape=shape,
    )


def _infer_tabular(first: pa.RecordBatch, label_column: str | None) -> Contract:
    columns: dict[str, ColumnRule] = {}
    for name, column in zip(first.schema.names, first.columns, strict=True):
        unique = (
            (name == "id" or name.endswith("_id"))
            and column.null_count == 0
            and len(pc.unique(column)) == len(column)
        )
        columns[name] = ColumnRule(nullable=column.null_count > 0, unique=unique)
    labels = _labels(first.column(label_column)) if label_column else None
    return Contract(kind="tabular", label_column=label_column, labels=labels, columns=columns)
