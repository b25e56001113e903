"""A dataset's life on one PNG: model scores over time, rows per batch, quarantine per batch.

Drawn like `headwater.learning.plots`: a ``Figure`` on the Agg canvas, never ``pyplot``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

__all__ = ["plot_monitor"]


def plot_monitor(
    title: str,
    runs: Sequence[tuple[datetime, float, str]],
    served: Sequence[tuple[datetime, float, bool]],
    batches: Sequence[tuple[int, int, float]],
    drift: Mapping[str, Mapping[int, float]],
    path: Path | str,
) -> Path:
    """``runs``: (when, test score, model); ``served``: (when, the served model's score on that
    run's test rows, promoted); ``batches``: (batch id, rows loaded, quarantine rate);
    ``drift``: {column: {batch id: PSI against the first batch}} (the 12 largest drawn)."""
    fig = Figure(figsize=(9, 10.5))
    scores, rows, quarantine, shift = fig.subplots(4, 1)
    _draw_scores(scores, title, runs, served)
    ids = [str(b) for b, _, _ in batches]
    rows.bar(ids, [n for _, n, _ in batches], color="#1f77b4")
    rows.set_ylabel("rows loaded")
    rates = [100 * r for _, _, r in batches]
    quarantine.bar(ids, rates, color="#c62828")
    quarantine.set_ylim(0, max([1.0, *rates]) * 1.1)
    quarantine.set_ylabel("quarantined %")
    quarantine.set_xlabel("batch")
    _draw_drift(shift, batches, drift)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out


def _draw_scores(
    scores: Any,
    title: str,
    runs: Sequence[tuple[datetime, float, str]],
    served: Sequence[tuple[datetime, float, bool]],
) -> None:
    """Each model's runs as dots, the served model as a step line, promotions as stars."""
    for model in sorted({m for _, _, m in runs}):
        picked = [(t, s) for t, s, m in runs if m == model]
        scores.scatter([t for t, _ in picked], [s for _, s in picked], label=model, s=18)
    if served:
        scores.step(
            [t for t, _, _ in served],
            [s for _, s, _ in served],
            where="post",
            color="black",
            label="served (pipeline)",
        )
        promoted = [(t, s) for t, s, p in served if p]
        scores.scatter(
            [t for t, _ in promoted],
            [s for _, s in promoted],
            marker="*",
            s=120,
            color="gold",
            edgecolor="black",
            label="promoted",
            zorder=3,
        )
    scores.set_ylabel("test accuracy")
    scores.set_title(title)
    if runs or served:
        scores.legend(loc="lower right", fontsize=8)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    scores.xaxis.set_major_locator(locator)
    scores.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    scores.tick_params(axis="x", labelsize=8)


def _draw_drift(
    shift: Any,
    batches: Sequence[tuple[int, int, float]],
    drift: Mapping[str, Mapping[int, float]],
) -> None:
    """PSI per batch for the 12 columns that moved most, with the usual 0.25 alarm line."""
    ids = [str(b) for b, _, _ in batches]
    ids_at = {b: i for i, (b, _, _) in enumerate(batches)}
    largest = sorted(drift, key=lambda c: max(drift[c].values(), default=0.0), reverse=True)
    for column in largest[:12]:
        points = sorted((ids_at[b], v) for b, v in drift[column].items() if b in ids_at)
        shift.plot([i for i, _ in points], [v for _, v in points], marker="o", label=column)
    shift.axhline(0.25, color="grey", linestyle="--", linewidth=0.8)
    shift.set_xticks(range(len(ids)), ids)
    shift.set_ylabel("drift (PSI)")
    shift.set_xlabel("batch")
    if drift:
        shift.legend(loc="upper left", fontsize=7, ncols=4)
