"""Is a label a class or a number? Decided once, here, for every face and every run.

A label is **classification** when it is text (``yes``/``no``), yes/no, or a few
distinct whole numbers (digits 0-9, ratings 1-5: at most :data:`MAX_CLASSES`); it is
**regression** otherwise (a price, a body mass, 214 distinct whole numbers of a
disease score). The dataset page and ``headwater datasets --json`` show the
inferred task and why; ``headwater train --task`` (and the API's and the form's
``task`` field) overrides it, and the run and its model keep the task they trained.

Only the distinct values are read (at most :data:`DISTINCT_LIMIT` of them), by one
``SELECT DISTINCT``, so deciding is cheap even for a large table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError
from headwater.storage.warehouse import Warehouse
from headwater.storage.warehouse import catalog as cat

__all__ = [
    "DISTINCT_LIMIT",
    "MAX_CLASSES",
    "TASKS",
    "Task",
    "TaskChoice",
    "check_task",
    "dataset_task",
    "infer_task",
]

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = get_args(Task)
MAX_CLASSES = 20
"""Whole-number labels with at most this many distinct values are classes."""
DISTINCT_LIMIT = 1000
"""Distinct label values read to decide; more than this is a number whatever they are."""


@dataclass(frozen=True)
class TaskChoice:
    """The task and, in words, why: shown beside the dataset and kept with the run."""

    task: Task
    reason: str
    inferred: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"task": self.task, "reason": self.reason, "inferred": self.inferred}


def check_task(value: str) -> Task:
    """``value`` as a task, or ConfigError naming the two there are."""
    for task in TASKS:
        if value == task:
            return task
    raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {value!r}")


def infer_task(values: pa.Array | pa.ChunkedArray) -> TaskChoice:
    """The task of a label from its distinct values (nulls ignored); see the module docstring."""
    present = values.drop_null()
    kind = present.type
    if pa.types.is_boolean(kind):
        return TaskChoice("classification", "yes/no labels")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            present = pc.cast(pc.utf8_trim_whitespace(present), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return TaskChoice("classification", "text labels")
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return TaskChoice("classification", f"labels of type {kind}")
    numbers = [float(v) for v in present.to_pylist() if v is not None]
    distinct = len(set(numbers))
    whole = all(math.isfinite(v) and v == round(v) for v in numbers)
    many = f"more than {DISTINCT_LIMIT}" if distinct >= DISTINCT_LIMIT else str(distinct)
    if whole and distinct <= MAX_CLASSES:
        return TaskChoice(
            "classification", f"{distinct} distinct whole numbers (at most {MAX_CLASSES})"
        )
    if whole:
        return TaskChoice("regression", f"{many} distinct whole numbers (more than {MAX_CLASSES})")
    return TaskChoice("regression", f"{many} distinct numbers, not all whole")


def dataset_task(wh: Warehouse, dataset: cat.DatasetRow) -> TaskChoice | None:
    """The inferred task of a dataset's label; None when it has no label column.

    Images are always classes (their labels live in ``dim_label``).
    """
    if dataset.kind == "image":
        return TaskChoice("classification", "images with class labels")
    if dataset.label_column is None:
        return None
    column = cat.fact_columns(dataset).get(dataset.label_column, dataset.label_column)
    table = wh.fetch_arrow(
        "SELECT DISTINCT {label} AS label FROM {t} WHERE {label} IS NOT NULL LIMIT %s",
        [DISTINCT_LIMIT],
        t=dataset.fact_table,
        label=column,
    )
    return infer_task(table.column("label"))
