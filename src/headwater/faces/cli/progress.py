"""Progress bars on stderr, drawn only when a person is watching (a terminal, not --json).

One place for the bar's look, so ingest, training and synthesis show progress alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

EpochFn = Callable[[int, int, dict[str, float]], None]
Describe = Callable[[int, dict[str, float]], str]


def watching(enabled: bool) -> bool:
    """Whether a bar is worth drawing: asked for, and stderr is a terminal."""
    return enabled and sys.stderr.isatty()


def new_bar(*, remaining: bool = False) -> Progress:
    """The one look of a Headwater bar: description, bar, n of m, elapsed (and remaining)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)


@contextmanager
def epoch_bar(enabled: bool, first: str, describe: Describe) -> Iterator[EpochFn | None]:
    """One bar over the epochs of a fit; ``describe`` words each epoch from its metrics."""
    if not watching(enabled):
        yield None
        return
    bar = new_bar()
    task: list[TaskID] = []

    def update(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if not task:
            task.append(bar.add_task(first, total=epochs))
        bar.update(task[0], completed=epoch, description=describe(epoch, metrics))

    with bar:
        yield update


CategoryFn = Callable[[str, int, int], None]


@contextmanager
def category_bars(enabled: bool) -> Iterator[CategoryFn | None]:
    """One bar per category of an image folder, added as its first slice comes back."""
    if not watching(enabled):
        yield None
        return
    bar = new_bar(remaining=True)
    tasks: dict[str, TaskID] = {}

    def update(category: str, done: int, total: int) -> None:
        if category not in tasks:
            tasks[category] = bar.add_task(category, total=total)
        bar.update(tasks[category], completed=done)

    with bar:
        yield update
