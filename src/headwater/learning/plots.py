"""PNG pictures of a model's behaviour: confusion matrix, sample predictions, training curves.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never
through ``pyplot``: no global figure state, no GUI backend, safe in a server thread.
Each function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from headwater.errors import SchemaError
from headwater.learning.base import as_labels

__all__ = [
    "REGRESSION_PLOTS",
    "palette",
    "plot_confusion_matrix",
    "plot_digit_grid",
    "plot_history",
    "plot_map",
    "plot_regression",
]

REGRESSION_PLOTS = ("predicted_vs_actual.png", "residuals.png", "residual_histogram.png")
"""The files `plot_regression` writes, in that order."""

MISTAKE = "#c62828"
CORRECT = "#2e7d32"


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], labels: Sequence[int], path: Path | str
) -> Path:
    """Counts annotated in each cell; rows are true classes, columns predicted ones."""
    matrix = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    if matrix.shape != (k, k):
        raise SchemaError(
            f"confusion matrix is {matrix.shape}, expected {k}x{k} for {k} labels",
            field="confusion",
        )
    fig = Figure(figsize=(1.0 + 0.55 * max(k, 4), 0.8 + 0.55 * max(k, 4)))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    ticks = range(k)
    ax.set_xticks(ticks, [str(v) for v in labels])
    ax.set_yticks(ticks, [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def plot_digit_grid(
    images: npt.ArrayLike,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    path: Path | str,
    *,
    max_images: int = 36,
) -> Path:
    """Test images with true and predicted labels, mistakes first and framed in red.

    Images are ``(n, h, w)``, ``(n, h, w, 3)`` or square flat rows ``(n, h*h)`` (grey)
    and ``(n, h*h*3)`` (RGB).
    """
    pixels = _as_images(np.asarray(images, dtype=np.float32))
    true = as_labels(y_true, len(pixels), "plot_digit_grid y_true")
    pred = as_labels(y_pred, len(pixels), "plot_digit_grid y_pred")
    wrong = true != pred
    order = np.argsort(~wrong, kind="stable")[: max(1, max_images)]
    cols = min(len(order), 6)
    rows = math.ceil(len(order) / cols)
    fig = Figure(figsize=(1.6 * cols, 1.8 * rows + 0.4))
    fig.suptitle(f"{int(wrong.sum())} of {len(true)} wrong; mistakes first, in red")
    for slot, row in enumerate(order):
        ax = fig.add_subplot(rows, cols, slot + 1)
        ax.imshow(pixels[row], cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        colour = MISTAKE if wrong[row] else CORRECT
        mark = "✗" if wrong[row] else "✓"
        ax.set_title(f"{mark} true {true[row]} / pred {pred[row]}", color=colour, fontsize=8)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3 if wrong[row] else 1)
    return _save(fig, path)


def plot_map(
    points: npt.NDArray[np.float32], labels: npt.ArrayLike, path: Path | str, *, title: str
) -> Path:
    """A 2-D map (t-SNE) as a scatter, one colour per label, with a legend."""
    names = np.asarray(labels, dtype=object).astype(str)
    classes = sorted(set(names.tolist()))
    fig = Figure(figsize=(9, 8))
    ax = fig.add_subplot(1, 1, 1)
    colours = palette(len(classes))
    size = max(1.0, min(12.0, 4000.0 / max(1, len(points))))
    for colour, name in zip(colours, classes, strict=True):
        mine = names == name
        ax.scatter(points[mine, 0], points[mine, 1], s=size, color=colour, label=name, lw=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=max(1.0, 6.0 / size), fontsize=8, loc="best", frameon=False)
    return _save(fig, path)


def palette(n: int) -> list[str]:
    """Distinct colours: tab10, then tab20, then evenly spaced hues."""
    from matplotlib import colormaps

    name = "tab10" if n <= 10 else "tab20"
    if n <= 20:
        cmap = colormaps[name]
        return [_hex(cmap(i)) for i in range(n)]
    cmap = colormaps["hsv"]
    return [_hex(cmap(i / n)) for i in range(n)]


def _hex(rgba: tuple[float, float, float, float]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in rgba[:3]))


def plot_history(history: Sequence[dict[str, float]], path: Path | str) -> Path:
    """Loss and accuracy per epoch, training and (when recorded) validation."""
    if not history:
        raise SchemaError("history is empty; fit a torch model first", field="history")
    epochs = [entry.get("epoch", i + 1) for i, entry in enumerate(history)]
    shown = ("loss", "accuracy") if "accuracy" in history[0] else ("loss",)  # a regressor: loss
    fig = Figure(figsize=(5 * len(shown), 4))
    for slot, metric in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), slot + 1)
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = [entry[key] for entry in history if key in entry]
            if len(values) == len(history):
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize() + " per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_regression(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, folder: Path | str) -> list[Path]:
    """Predicted against actual (with the identity line), residuals against predicted,
    and the residuals' histogram: where a regressor is wrong, and whether it is biased."""
    true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if len(true) == 0 or len(true) != len(pred):
        raise SchemaError(
            f"need one prediction per true value, got {len(pred)} for {len(true)}", field="y_pred"
        )
    residuals = true - pred
    base = Path(folder)
    alpha = 0.6 if len(true) < 2000 else 0.25
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.scatter(true, pred, s=10, alpha=alpha)
    low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([low, high], [low, high], color=MISTAKE, linewidth=1, label="predicted = actual")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(f"Predicted against actual ({len(true)} test rows)")
    ax.legend()
    written = [_save(fig, base / REGRESSION_PLOTS[0])]
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.scatter(pred, residuals, s=10, alpha=alpha)
    ax.axhline(0.0, color=MISTAKE, linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (actual - predicted)")
    ax.set_title("Residuals against predicted")
    written.append(_save(fig, base / REGRESSION_PLOTS[1]))
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.hist(residuals, bins=min(50, max(10, len(true) // 20)))
    ax.axvline(0.0, color=MISTAKE, linewidth=1)
    ax.set_xlabel("residual (actual - predicted)")
    ax.set_ylabel("rows")
    ax.set_title(f"Residuals: mean {residuals.mean():.3g}, sd {residuals.std():.3g}")
    written.append(_save(fig, base / REGRESSION_PLOTS[2]))
    return written


def _as_images(pixels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    if pixels.ndim == 4 and pixels.shape[1] == 1:
        pixels = pixels[:, 0]
    if pixels.ndim == 2:
        side = math.isqrt(pixels.shape[1])
        rgb = math.isqrt(pixels.shape[1] // 3)
        if side * side == pixels.shape[1]:
            pixels = pixels.reshape(len(pixels), side, side)
        elif 3 * rgb * rgb == pixels.shape[1]:  # RGB rows, height x width x channel
            pixels = pixels.reshape(len(pixels), rgb, rgb, 3)
        else:
            raise SchemaError(
                f"rows of {pixels.shape[1]} values are not square images", field="images"
            )
    if pixels.ndim not in (3, 4) or len(pixels) == 0:
        raise SchemaError(f"expected (n, h, w) images, got {pixels.shape}", field="images")
    return pixels


def _save(fig: Figure, path: Path | str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(target, format="png", dpi=100)
    return target
