"""The monitoring chart as server-rendered SVG: no script, no download, hover titles.

Four small panels over what `flows.monitoring.monitor_data` computes: every run's
test accuracy over time (one colour per model) with the served model's score after
each pipeline run as a step line; rows loaded per batch; the share of each batch's
rows quality held back; and each numeric feature's drift (PSI against the first
batch) with the usual 0.1 and 0.25 marks. Each mark has a ``<title>``, which the
browser shows on hover and a screen reader reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

from headwater.flows.monitoring import MonitorData

__all__ = ["monitor_svg"]

WIDTH, HEIGHT = 640, 150
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 22, 24
PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7b83")


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda value: start + (value - low) / span * (end - start)


def _panel(
    title: str, body: Sequence[str], y_labels: tuple[str, str], x_labels: tuple[str, str]
) -> str:
    """One panel: its frame, title and axis ends around ``body`` (SVG elements)."""
    bottom = HEIGHT - BOTTOM
    return (
        f'<g class="panel"><text x="{LEFT}" y="14" class="chart-title">{escape(title)}</text>'
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(y_labels[1])}</text>'
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{escape(y_labels[0])}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{escape(x_labels[0])}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{escape(x_labels[1])}</text>'
        + "".join(body)
        + "</g>"
    )


def _svg(label: str, panel: str, kind: str) -> str:
    return (
        f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">{panel}</svg>'
    )


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _scores(data: MonitorData) -> str:
    """Each run's test accuracy (a dot per run, a colour per model); the served score's steps."""
    times = [p.at for p in data.runs] + [p.at for p in data.served]
    if not times:
        return _svg(
            "No finished runs yet",
            _panel("Test accuracy: no runs yet", [], ("", ""), ("", "")),
            "scores",
        )
    first, last = min(times).timestamp(), max(times).timestamp()
    x = _scale(first, last if last > first else first + 1, LEFT + 8, WIDTH - RIGHT - 8)
    y = _scale(0.0, 1.0, HEIGHT - BOTTOM, TOP)
    models = sorted({p.model for p in data.runs})
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    body = []
    served = sorted(data.served, key=lambda p: p.at)
    if served:
        points = " ".join(f"{x(p.at.timestamp()):.1f},{y(p.score):.1f}" for p in served)
        body.append(f'<polyline points="{points}" class="served-line"/>')
    for s in served:
        what = "promoted" if s.promoted else "kept the champion"
        body.append(
            f'<rect x="{x(s.at.timestamp()) - 4:.1f}" y="{y(s.score) - 4:.1f}" width="8" '
            f'height="8" class="served" data-pipeline-run="{escape(s.pipeline_run_id)}">'
            f"<title>pipeline run {escape(s.pipeline_run_id)} at {_day(s.at)}: {what}; served "
            f"run {escape(s.served_run_id)} scores {s.metric} {s.score:.3f}</title></rect>"
        )
    for p in data.runs:
        body.append(
            f'<circle cx="{x(p.at.timestamp()):.1f}" cy="{y(p.test_accuracy):.1f}" r="4" '
            f'fill="{colour[p.model]}" data-run="{escape(p.run_id)}"><title>run '
            f"{escape(p.run_id)} ({escape(p.model)}) at {_day(p.at)}: test accuracy "
            f"{p.test_accuracy:.3f}</title></circle>"
        )
    legend = ", ".join(models) + ("; squares: served after each pipeline run" if served else "")
    title = f"Test accuracy over time ({legend})"
    start, end = min(times), max(times)
    panel = _panel(title, body, ("0", "1"), (_day(start), _day(end)))
    return _svg("Test accuracy of each run over time, and the served model's", panel, "scores")


def _bars(data: MonitorData, kind: str) -> str:
    """Rows loaded per batch (``rows``) or the share quality held back (``quarantine``)."""
    batches = data.batches
    rows = kind == "rows"
    values = [float(b.rows_loaded) if rows else b.quarantine_rate for b in batches]
    top = max(values, default=0.0) if rows else max(max(values, default=0.0), 0.05)
    y = _scale(0.0, top or 1.0, HEIGHT - BOTTOM, TOP)
    step = (WIDTH - LEFT - RIGHT) / max(len(batches), 1)
    body = []
    for i, (batch, value) in enumerate(zip(batches, values, strict=True)):
        shown = (
            f"{batch.rows_loaded:,} rows loaded of {batch.rows_read:,} read"
            if rows
            else (
                f"{100 * value:.1f}% held back ({batch.rows_quarantined:,} of {batch.rows_read:,})"
            )
        )
        body.append(
            f'<rect x="{LEFT + i * step + step * 0.15:.1f}" y="{y(value):.1f}" '
            f'width="{step * 0.7:.1f}" height="{y(0.0) - y(value):.1f}" '
            f'class="chart-bar bar-{kind}" '
            f'data-batch="{batch.batch_id}"><title>batch {batch.batch_id} ({_day(batch.at)}): '
            f"{shown}</title></rect>"
        )
    first = f"batch {batches[0].batch_id}" if batches else ""
    last = f"batch {batches[-1].batch_id}" if batches else ""
    high = f"{int(top):,}" if rows else f"{100 * top:.0f}%"
    title = "Rows loaded per batch" if rows else "Quarantine rate per batch"
    return _svg(title, _panel(title, body, ("0", high), (first, last)), kind)


def _drift(data: MonitorData) -> str:
    """Each numeric feature's PSI per batch against the first, with the 0.1 and 0.25 marks."""
    batches = [b.batch_id for b in data.batches]
    top = max([0.3, *(v for d in data.drift.values() for v in d.values())])
    y = _scale(0.0, top, HEIGHT - BOTTOM, TOP)
    x = _scale(0.0, max(len(batches) - 1, 1), LEFT + 8, WIDTH - RIGHT - 8)
    where = {b: i for i, b in enumerate(batches)}
    body = [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(mark):.1f}" y2="{y(mark):.1f}" '
        f'class="mark"><title>PSI {mark}: {meaning}</title></line>'
        for mark, meaning in ((0.1, "a moderate shift above"), (0.25, "a large shift above"))
    ]
    for i, (column, values) in enumerate(sorted(data.drift.items())):
        colour = PALETTE[i % len(PALETTE)]
        points = [(where[b], v) for b, v in sorted(values.items()) if b in where]
        line = " ".join(f"{x(px):.1f},{y(v):.1f}" for px, v in points)
        body.append(f'<polyline points="{line}" stroke="{colour}" class="drift-line"/>')
        body.extend(
            f'<circle cx="{x(px):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(column)}, batch {batches[px]}: PSI {v:.3f}</title></circle>"
            for px, v in points
        )
    names = ", ".join(sorted(data.drift)) or "no numeric features"
    title = f"Feature drift, PSI against the first batch ({names})"
    first = f"batch {batches[0]}" if batches else ""
    last = f"batch {batches[-1]}" if batches else ""
    return _svg(title, _panel(title, body, ("0", f"{top:.2f}"), (first, last)), "drift")


def monitor_svg(data: MonitorData) -> Markup:
    """The four panels of a dataset's monitoring chart, as inline SVG."""
    parts = [_scores(data), _bars(data, "rows"), _bars(data, "quarantine"), _drift(data)]
    # every text that came from the data went through html.escape above
    return Markup("".join(parts))  # noqa: S704
