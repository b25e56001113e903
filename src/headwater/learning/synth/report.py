"""How faithful, useful and private synthetic rows are, measured against a real holdout.

- *fidelity*, defined as the SDMetrics quality report so figures compare with it: a
  shape score per column (1 - KS statistic for numbers and dates, 1 - total variation
  distance for categories), a trend score per pair of columns (correlation similarity
  1 - |rho_real - rho_synth| / 2 for two numbers, contingency similarity 1 - TVD of the
  joint frequencies otherwise, numbers cut into 10 bins of the real range), and
  ``overall`` = 100 x the mean of the shapes' mean and the trends' mean;
- *utility*: one model (a random forest) trained on real training rows (TRTR) and on
  synthetic rows (TSTR), both tested on the holdout;
- *detectability*: ROC-AUC of a classifier told to tell real rows from synthetic ones
  (cross-validated; 0.5 means it cannot);
- *privacy*: each synthetic row's distance to its closest training row, against the
  same distance for holdout rows: the share of synthetic rows closer than the
  holdout's 5th percentile, and the exact copies of training rows (must be 0).

Fidelity compares the synthetic rows with the training rows they were learned from
(as SDMetrics compares with the real data given); utility, detectability and privacy
use the holdout, which the synthesizer never saw.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors

from headwater.learning.synth.codec import column_kind, text_array

__all__ = [
    "Columns",
    "contingency_score",
    "correlation_score",
    "fidelity",
    "ks_score",
    "plot_worst_columns",
    "privacy",
    "synthesis_report",
    "tv_score",
    "utility",
]

FloatArray = npt.NDArray[np.float64]
Values = Sequence[object] | npt.NDArray[np.object_]
"""A column's values as a list or an array: what the category scores read."""
MISSING = "(missing)"
BINS = 10
MAX_PAIR_ROWS = 20_000
MAX_MODEL_ROWS = 20_000
"""Rows per side the utility, detectability and privacy models see (a seeded sample past it)."""


# ---- the scores, each on plain arrays ---------------------------------------------------
def ks_score(real: FloatArray, synthetic: FloatArray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic, missing values left out."""
    a, b = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if len(a) == 0 or len(b) == 0:
        return 1.0 if len(a) == len(b) else 0.0
    return 1.0 - float(stats.ks_2samp(a, b).statistic)


def tv_score(real: Values, synthetic: Values) -> float:
    """1 - the total variation distance between two columns' category frequencies."""
    p, q = _frequencies(real), _frequencies(synthetic)
    return 1.0 - 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def correlation_score(
    real_x: FloatArray, real_y: FloatArray, synth_x: FloatArray, synth_y: FloatArray
) -> float | None:
    """1 - |rho_real - rho_synth| / 2 (Pearson, rows with both values); None when undefined."""
    r, s = _pearson(real_x, real_y), _pearson(synth_x, synth_y)
    if r is None or s is None:
        return None
    return 1.0 - abs(r - s) / 2.0


def contingency_score(
    real_a: Values,
    real_b: Values,
    synth_a: Values,
    synth_b: Values,
) -> float:
    """1 - the total variation distance between the two pairs' joint frequencies."""
    return tv_score(
        list(zip(real_a, real_b, strict=True)), list(zip(synth_a, synth_b, strict=True))
    )


def _frequencies(values: Values) -> dict[object, float]:
    if len(values) == 0:
        return {}
    keys, counts = np.unique(np.array([str(v) for v in values], dtype=object), return_counts=True)
    return {k: c / len(values) for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}


def _pearson(x: FloatArray, y: FloatArray) -> float | None:
    both = ~(np.isnan(x) | np.isnan(y))
    if both.sum() < 3 or np.std(x[both]) == 0 or np.std(y[both]) == 0:
        return None
    return float(stats.pearsonr(x[both], y[both]).statistic)


# ---- tables as columns the scores read ------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """A table as numbers (floats, NaN missing; dates as days) and categories (text)."""

    numbers: dict[str, FloatArray]
    categories: dict[str, npt.NDArray[np.object_]]
    rows: int

    @classmethod
    def of(cls, table: pa.Table, names: Sequence[str]) -> Columns:
        numbers, categories = {}, {}
        for name in names:
            column = table.column(name)
            kind = column_kind(column.type)
            if kind == "category":
                text = pc.fill_null(text_array(column), MISSING)
                categories[name] = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
            elif kind is not None:
                numbers[name] = _as_float(column)
        return cls(numbers, categories, table.num_rows)

    def take(self, rows: npt.NDArray[np.int64]) -> Columns:
        return Columns(
            {k: v[rows] for k, v in self.numbers.items()},
            {k: v[rows] for k, v in self.categories.items()},
            len(rows),
        )

    def binned(self, name: str, edges: FloatArray) -> npt.NDArray[np.object_]:
        """A column as categories: a number cut by ``edges`` (missing its own bin)."""
        if name in self.categories:
            return self.categories[name]
        x = self.numbers[name]
        bins = np.clip(np.digitize(x, edges[1:-1]), 0, len(edges) - 2).astype(object)
        bins[np.isnan(x)] = MISSING
        return bins


def _as_float(column: pa.ChunkedArray) -> FloatArray:
    kind = column.type
    if pa.types.is_date(kind):
        column = pc.cast(pc.cast(column, pa.date32()), pa.int32())
    elif pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.int64())
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.float64)


# ---- fidelity ---------------------------------------------------------------------------
def fidelity(real: Columns, synthetic: Columns) -> dict[str, object]:
    """Column shapes, column pair trends and the overall score (0-100), SDMetrics' way."""
    shapes = {n: ks_score(real.numbers[n], synthetic.numbers[n]) for n in real.numbers}
    shapes |= {n: tv_score(real.categories[n], synthetic.categories[n]) for n in real.categories}
    names = [*real.numbers, *real.categories]
    edges = {n: _edges(real.numbers[n]) for n in real.numbers}
    pairs: dict[str, float] = {}
    for a, b in itertools.combinations(names, 2):
        if a in real.numbers and b in real.numbers:
            score = correlation_score(
                real.numbers[a], real.numbers[b], synthetic.numbers[a], synthetic.numbers[b]
            )
        else:
            score = contingency_score(
                real.binned(a, edges.get(a, np.zeros(2))),
                real.binned(b, edges.get(b, np.zeros(2))),
                synthetic.binned(a, edges.get(a, np.zeros(2))),
                synthetic.binned(b, edges.get(b, np.zeros(2))),
            )
        if score is not None:
            pairs[f"{a} | {b}"] = score
    shape_mean = float(np.mean(list(shapes.values()))) if shapes else 1.0
    pair_mean = float(np.mean(list(pairs.values()))) if pairs else shape_mean
    return {
        "overall": round(100.0 * (shape_mean + pair_mean) / 2.0, 2),
        "column_shapes": round(100.0 * shape_mean, 2),
        "column_pair_trends": round(100.0 * pair_mean, 2),
        "columns": {k: round(v, 4) for k, v in shapes.items()},
        "pairs": {k: round(v, 4) for k, v in pairs.items()},
    }


def _edges(x: FloatArray) -> FloatArray:
    seen = x[~np.isnan(x)]
    if len(seen) == 0 or seen.min() == seen.max():
        return np.array([0.0, 1.0])
    return np.histogram_bin_edges(seen, bins=BINS)


# ---- utility, detectability, privacy ------------------------------------------------------
class Encoder:
    """Rows as a feature matrix: numbers standardised on the training rows, categories one-hot."""

    def __init__(self, train: Columns, leave_out: str | None) -> None:
        self.numbers = [n for n in train.numbers if n != leave_out]
        self.categories = [n for n in train.categories if n != leave_out]
        self.centre = {n: float(np.nanmedian(train.numbers[n])) for n in self.numbers}
        self.scale = {n: float(np.nanstd(train.numbers[n])) or 1.0 for n in self.numbers}
        self.levels = {n: sorted(set(train.categories[n])) for n in self.categories}

    def matrix(self, cols: Columns) -> FloatArray:
        parts = []
        for n in self.numbers:
            x = np.nan_to_num(cols.numbers[n], nan=self.centre[n])
            parts.append(((x - self.centre[n]) / self.scale[n])[:, None])
        for n in self.categories:
            values = cols.categories[n]
            parts.append(np.stack([values == level for level in self.levels[n]], axis=1) / 2**0.5)
        return np.hstack(parts).astype(np.float64) if parts else np.zeros((cols.rows, 0))


def utility(
    train: Columns, holdout: Columns, synthetic: Columns, label: str, seed: int
) -> dict[str, float]:
    """TSTR against TRTR: the same random forest, trained on each, tested on the holdout."""
    encoder = Encoder(train, leave_out=label)
    x_test, y_test = encoder.matrix(holdout), _labels(holdout, label)
    scores: dict[str, float] = {}
    for name, source in (("trtr", train), ("tstr", synthetic)):
        model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
        model.fit(encoder.matrix(source), _labels(source, label))
        predicted = model.predict(x_test)
        scores[f"{name}_accuracy"] = round(float(accuracy_score(y_test, predicted)), 4)
        scores[f"{name}_macro_f1"] = round(
            float(f1_score(y_test, predicted, average="macro", zero_division=0)), 4
        )
    scores["accuracy_gap"] = round(scores["trtr_accuracy"] - scores["tstr_accuracy"], 4)
    return scores


def _labels(cols: Columns, label: str) -> npt.NDArray[np.str_]:
    if label in cols.categories:
        return cols.categories[label].astype(str)
    return np.array([str(v) for v in cols.numbers[label]])


def detectability(real: Columns, synthetic: Columns, seed: int) -> dict[str, float]:
    """Cross-validated ROC-AUC of a random forest telling real rows from synthetic ones."""
    encoder = Encoder(real, leave_out=None)
    x = np.vstack([encoder.matrix(real), encoder.matrix(synthetic)])
    y = np.r_[np.zeros(real.rows), np.ones(synthetic.rows)]
    model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return {"roc_auc": round(float(roc_auc_score(y, proba)), 4)}


def privacy(train: Columns, holdout: Columns, synthetic: Columns) -> dict[str, float]:
    """Distance to the closest training row: synthetic rows against the holdout's 5th percentile."""
    encoder = Encoder(train, leave_out=None)
    index = NearestNeighbors(n_neighbors=1).fit(encoder.matrix(train))
    to_synthetic = index.kneighbors(encoder.matrix(synthetic))[0][:, 0]
    to_holdout = index.kneighbors(encoder.matrix(holdout))[0][:, 0]
    threshold = float(np.percentile(to_holdout, 5))
    return {
        "holdout_dcr_p5": round(threshold, 4),
        "closer_than_holdout_p5": round(float(np.mean(to_synthetic < threshold)), 4),
        "synthetic_dcr_median": round(float(np.median(to_synthetic)), 4),
        "holdout_dcr_median": round(float(np.median(to_holdout)), 4),
        "exact_copies": _exact_copies(train, synthetic),
    }


def _exact_copies(train: Columns, synthetic: Columns) -> int:
    """Synthetic rows equal to a training row in every column."""
    seen = set(_row_keys(train))
    return sum(1 for key in _row_keys(synthetic) if key in seen)


def _row_keys(cols: Columns) -> list[tuple[str, ...]]:
    parts = [np.char.mod("%r", v) for v in cols.numbers.values()]
    parts += [v.astype(str) for v in cols.categories.values()]
    return list(zip(*parts, strict=True)) if parts else []


def _sample(cols: Columns, most: int, rng: np.random.Generator) -> Columns:
    if cols.rows <= most:
        return cols
    return cols.take(np.sort(rng.choice(cols.rows, most, replace=False)))


def synthesis_report(
    train: pa.Table,
    holdout: pa.Table,
    synthetic: pa.Table,
    *,
    columns: Sequence[str],
    label: str | None,
    seed: int = 0,
) -> dict[str, object]:
    """Every figure of the report, JSON-ready; ``columns`` are the ones synthesized."""
    rng = np.random.default_rng(seed)
    real, held, made = (Columns.of(t, columns) for t in (train, holdout, synthetic))
    report: dict[str, object] = {
        "fidelity": fidelity(_sample(real, MAX_PAIR_ROWS, rng), _sample(made, MAX_PAIR_ROWS, rng)),
        "rows": {"train": real.rows, "holdout": held.rows, "synthetic": made.rows},
    }
    real_s, held_s, made_s = (_sample(c, MAX_MODEL_ROWS, rng) for c in (real, held, made))
    if label is not None and label in columns:
        report["utility"] = utility(real_s, held_s, made_s, label, seed)
    else:
        report["utility"] = None
    both = min(real_s.rows, made_s.rows)
    report["detectability"] = detectability(
        _sample(real_s, both, rng), _sample(made_s, both, rng), seed
    )
    report["privacy"] = privacy(real_s, held_s, made_s)
    return report


# ---- the picture --------------------------------------------------------------------------
def plot_worst_columns(
    train: pa.Table,
    synthetic: pa.Table,
    scores: dict[str, float],
    path: Path,
    *,
    count: int = 4,
) -> Path:
    """Real and synthetic distributions overlaid for the ``count`` worst-scoring columns."""
    worst = sorted(scores, key=lambda k: scores[k])[:count]
    real, made = Columns.of(train, worst), Columns.of(synthetic, worst)
    fig = Figure(figsize=(4.0 * max(len(worst), 1), 3.2))
    for i, name in enumerate(worst, start=1):
        ax = fig.add_subplot(1, max(len(worst), 1), i)
        if name in real.numbers:
            a, b = real.numbers[name], made.numbers[name]
            edges = np.histogram_bin_edges(a[~np.isnan(a)], bins=30)
            bins = edges.tolist()
            ax.hist(a[~np.isnan(a)], bins=bins, density=True, alpha=0.5, label="real")
            ax.hist(b[~np.isnan(b)], bins=bins, density=True, alpha=0.5, label="synthetic")
        else:
            p, q = _frequencies(real.categories[name]), _frequencies(made.categories[name])
            keys = sorted(set(p) | set(q), key=str)[:20]
            at = np.arange(len(keys))
            ax.bar(at - 0.2, [p.get(k, 0.0) for k in keys], 0.4, label="real")
            ax.bar(at + 0.2, [q.get(k, 0.0) for k in keys], 0.4, label="synthetic")
            ax.set_xticks(at, [str(k) for k in keys], rotation=45, fontsize=7)
        ax.set_title(f"{name} (score {scores[name]:.2f})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=100)
    return path
