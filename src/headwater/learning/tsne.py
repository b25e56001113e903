"""A t-SNE map: a sample stratified by label, PCA to 50 dimensions, openTSNE, trustworthiness.

A uniform sample of a million points drops a class of a few hundred; here every
class keeps at least ``floor`` points (all of it when smaller) and the rest of the
budget is shared in proportion to class size, so the map shows every cluster and
says what share of each class it kept. PCA to 50 dimensions first is the usual
denoising step (and makes the neighbour search cheap). openTSNE (FFT-accelerated
gradients) does the embedding; scikit-learn's Barnes-Hut is the fallback when
openTSNE is not installed. Trustworthiness (are a point's map neighbours its true
neighbours?) is measured at k = 10 on a seeded subsample: it needs all pairwise
distances, quadratic in the points.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

__all__ = ["TsneFit", "engine_name", "reduce", "stratified_sample", "trust", "tsne"]

FLOOR = 50
"""Points every class keeps in a sample (all of it when it has fewer)."""
TRUST_POINTS = 4000
TRUST_K = 10
THREADED_FROM = 5000
"""Points from which t-SNE runs on ``n_jobs`` threads: below it their per-iteration
synchronisation costs more than it saves (120 points on a busy 2-core machine: 2 s on one
thread, 40 to 60 s on two)."""

Floats = npt.NDArray[np.float32]


def stratified_sample(
    labels: npt.NDArray[np.str_] | npt.NDArray[np.object_], size: int, *, seed: int = 0
) -> npt.NDArray[np.int64]:
    """Row positions of a sample of ``size`` that keeps every class (sorted ascending)."""
    if size >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    floor = min(FLOOR, max(1, size // len(classes)))
    quota = np.minimum(counts, floor)
    spare = size - int(quota.sum())
    if spare > 0:
        rest = counts - quota
        share = rest * spare / rest.sum()
        extra = np.floor(share).astype(np.int64)
        order = np.argsort(-(share - extra), kind="stable")
        extra[order[: spare - int(extra.sum())]] += 1  # largest remainders first
        quota = quota + extra
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(codes == c), size=int(quota[c]), replace=False)
        for c in range(len(classes))
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def reduce(features: Floats, *, dims: int = 50, seed: int = 0) -> Floats:
    """PCA to ``dims`` dimensions (fewer when the data has fewer)."""
    keep = min(dims, features.shape[1], len(features))
    pca = PCA(n_components=keep, svd_solver="randomized", random_state=seed)
    out: Floats = pca.fit_transform(features).astype(np.float32)
    return out


def engine_name() -> str:
    """``openTSNE <version>``, or scikit-learn's Barnes-Hut when openTSNE is missing."""
    if importlib.util.find_spec("openTSNE") is None:
        return "scikit-learn Barnes-Hut"
    import openTSNE

    return f"openTSNE {openTSNE.__version__}"


@dataclass(frozen=True)
class TsneFit:
    points: Floats
    engine: str
    perplexity: float


def tsne(features: Floats, *, seed: int = 0, n_jobs: int = 2) -> TsneFit:
    """A 2-D embedding; perplexity 30, or less for a few points (it must be under n / 3)."""
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3.0 - 1)))
    engine = engine_name()
    threads = n_jobs if len(features) >= THREADED_FROM else 1
    if engine.startswith("openTSNE"):
        from openTSNE import TSNE

        fitted = TSNE(perplexity=perplexity, n_jobs=threads, random_state=seed).fit(features)
        points = np.asarray(fitted, dtype=np.float32)
    else:
        from sklearn.manifold import TSNE as SklearnTSNE

        model = SklearnTSNE(perplexity=perplexity, random_state=seed, init="pca", n_jobs=threads)
        points = model.fit_transform(features).astype(np.float32)
    return TsneFit(points, engine, perplexity)


def trust(
    features: Floats, points: Floats, *, k: int = TRUST_K, limit: int = TRUST_POINTS, seed: int = 0
) -> tuple[float, int]:
    """Trustworthiness at ``k`` on at most ``limit`` seeded points, and how many were used."""
    rows = np.arange(len(features))
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
    k = min(k, max(1, len(rows) // 2 - 1))
    return float(trustworthiness(features[rows], points[rows], n_neighbors=k)), len(rows)
