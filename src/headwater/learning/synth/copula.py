"""The baseline to beat: each column's own distribution, joined by a Gaussian copula.

Every column becomes one normal score (numbers through their quantiles, as the codec
does; a category a random point in its slice of the cumulative frequencies), the
scores' correlation matrix is learned, and sampling draws correlated scores and maps
each back through its column's marginal. It keeps marginals and linear association;
it misses anything a single correlation cannot say (a category that shifts a number's
shape, several modes).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from headwater.learning.synth.base import EpochFn, FloatMatrix, Meta, Synthesizer, Tensors

__all__ = ["CopulaSynthesizer"]

_EDGE = 1e-6


class CopulaSynthesizer(Synthesizer):
    method = "copula"
    draw_categories = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit_matrix(
        self, matrix: FloatMatrix, rng: np.random.Generator, on_epoch: EpochFn | None
    ) -> None:
        blocks = self.codec_.blocks
        scores = np.empty((len(matrix), len(blocks)))
        cumulative: list[FloatMatrix] = []
        for j, block in enumerate(blocks):
            part = matrix[:, block.start : block.start + block.width]
            if block.kind != "category":
                scores[:, j] = part[:, 0]
                cumulative.append(np.zeros(0))
                continue
            codes = np.argmax(part, axis=1)
            edges = np.concatenate([[0.0], np.cumsum(part.mean(axis=0))])
            u = rng.uniform(edges[codes], edges[codes + 1])
            scores[:, j] = stats.norm.ppf(np.clip(u, _EDGE, 1.0 - _EDGE))
            cumulative.append(edges)
        correlation = np.corrcoef(scores, rowvar=False) if len(blocks) > 1 else np.ones((1, 1))
        self.correlation_ = np.nan_to_num(np.atleast_2d(correlation)) + 1e-9 * np.eye(len(blocks))
        self.edges_ = cumulative
        if on_epoch is not None:
            on_epoch(1, {"columns": float(len(blocks))})

    def _sample_matrix(self, n: int, rng: np.random.Generator) -> FloatMatrix:
        blocks = self.codec_.blocks
        root = np.linalg.cholesky(self.correlation_)
        scores = rng.standard_normal((n, len(blocks))) @ root.T
        out = np.zeros((n, self.codec_.width))
        for j, block in enumerate(blocks):
            if block.kind != "category":
                out[:, block.start] = scores[:, j]
                continue
            edges = self.edges_[j]
            codes = np.searchsorted(edges[1:-1], stats.norm.cdf(scores[:, j]), side="right")
            out[np.arange(n), block.start + codes] = 1.0
        return out

    def _state(self) -> tuple[Meta, Tensors]:
        tensors: Tensors = {"copula.correlation": self.correlation_}
        for j, edges in enumerate(self.edges_):
            tensors[f"copula.edges.{j}"] = edges
        return {"columns": len(self.edges_)}, tensors

    def _restore(self, meta: Meta, tensors: Tensors) -> None:
        self.correlation_ = tensors["copula.correlation"]
        count = int(str(meta["columns"]))
        self.edges_ = [tensors[f"copula.edges.{j}"] for j in range(count)]

    correlation_: FloatMatrix
    edges_: list[FloatMatrix]
