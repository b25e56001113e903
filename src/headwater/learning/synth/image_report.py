"""The report for synthetic labelled images, against real ones the synthesizer never saw.

- *fidelity* (0-100; image-specific, not SDMetrics' table score): per class, 1 - TVD of
  the pixel-intensity histograms (the shape score) and the correlation of the mean
  images, floored at 0 (the trend score); overall = 100 x the mean of the two means;
- *utility*: a random forest trained on real training images (TRTR) and on synthetic
  ones (TSTR), both tested on the holdout (the CNN judge is ``bench/synth.py --mnist``);
- *detectability*: cross-validated ROC-AUC of a forest telling real from synthetic;
- *privacy*: distance to the closest training image (pixels scaled to 0..1), the share
  of synthetic images closer than the holdout's 5th percentile, and exact copies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors

__all__ = ["image_report", "plot_samples"]

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.int64]
MAX_ROWS = 5000


def _flat(images: Images) -> npt.NDArray[np.float64]:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _take(x: Images, y: Labels, most: int, rng: np.random.Generator) -> tuple[Images, Labels]:
    if len(x) <= most:
        return x, y
    rows = np.sort(rng.choice(len(x), most, replace=False))
    return x[rows], y[rows]


def _fidelity(x: Images, y: Labels, mx: Images, my: Labels) -> dict[str, object]:
    shapes, trends = [], []
    bins = np.linspace(0, 256, 17)
    for c in np.unique(y):
        real, made = x[y == c], mx[my == c]
        if not len(made):
            shapes.append(0.0)
            trends.append(0.0)
            continue
        p = np.histogram(real, bins=bins)[0] / real.size
        q = np.histogram(made, bins=bins)[0] / made.size
        shapes.append(1.0 - 0.5 * float(np.abs(p - q).sum()))
        a, b = real.mean(axis=0).ravel(), made.mean(axis=0).ravel()
        trends.append(max(0.0, float(np.corrcoef(a, b)[0, 1])) if a.std() and b.std() else 0.0)
    shape, trend = float(np.mean(shapes)), float(np.mean(trends))
    return {
        "overall": round(100.0 * (shape + trend) / 2.0, 2),
        "column_shapes": round(100.0 * shape, 2),
        "column_pair_trends": round(100.0 * trend, 2),
    }


def image_report(
    train: tuple[Images, Labels],
    holdout: tuple[Images, Labels],
    made: tuple[Images, Labels],
    *,
    seed: int = 0,
) -> dict[str, object]:
    """Every figure of the image report, JSON-ready (see the module docstring)."""
    rng = np.random.default_rng(seed)
    tx, ty = _take(*train, MAX_ROWS, rng)
    hx, hy = _take(*holdout, MAX_ROWS, rng)
    mx, my = _take(*made, MAX_ROWS, rng)
    utility: dict[str, float] = {}
    for name, (x, y) in (("trtr", (tx, ty)), ("tstr", (mx, my))):
        model = RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)
        model.fit(_flat(x), y)
        utility[f"{name}_accuracy"] = round(float(accuracy_score(hy, model.predict(_flat(hx)))), 4)
    utility["accuracy_gap"] = round(utility["trtr_accuracy"] - utility["tstr_accuracy"], 4)
    both = min(len(tx), len(mx))
    features = np.vstack([_flat(tx[:both]), _flat(mx[:both])])
    truth = np.r_[np.zeros(both), np.ones(both)]
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    forest = RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)
    proba = cross_val_predict(forest, features, truth, cv=folds, method="predict_proba")[:, 1]
    index = NearestNeighbors(n_neighbors=1).fit(_flat(tx))
    to_made = index.kneighbors(_flat(mx))[0][:, 0]
    to_held = index.kneighbors(_flat(hx))[0][:, 0]
    threshold = float(np.percentile(to_held, 5))
    seen = {bytes(image) for image in train[0]}
    return {
        "fidelity": _fidelity(tx, ty, mx, my),
        "utility": utility,
        "detectability": {"roc_auc": round(float(roc_auc_score(truth, proba)), 4)},
        "privacy": {
            "holdout_dcr_p5": round(threshold, 4),
            "closer_than_holdout_p5": round(float(np.mean(to_made < threshold)), 4),
            "exact_copies": sum(bytes(image) in seen for image in made[0]),
        },
        "rows": {"train": len(train[0]), "holdout": len(holdout[0]), "synthetic": len(made[0])},
    }


def plot_samples(
    real: tuple[Images, Labels], made: tuple[Images, Labels], path: Path, *, per_class: int = 6
) -> Path:
    """One row per class: real images on the left, synthetic ones on the right."""
    classes = np.unique(real[1])
    fig = Figure(figsize=(0.8 * 2 * per_class + 0.6, 0.85 * len(classes) + 0.5))
    fig.suptitle(f"real (left {per_class}) and synthetic (right {per_class}) per class")
    for r, c in enumerate(classes):
        pictures = [*real[0][real[1] == c][:per_class], *made[0][made[1] == c][:per_class]]
        for i, image in enumerate(pictures):
            ax = fig.add_subplot(len(classes), 2 * per_class, r * 2 * per_class + i + 1)
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
            ax.set_axis_off()
    fig.savefig(path, format="png", dpi=80)
    return path
