"""PCA synthesizer: principal components of the encoded table, a Gaussian mixture over them.

The codec standardises numbers (through their quantiles to normal scores) and one-hots
categories; PCA keeps the components that hold ``variance`` of the total; a Gaussian
mixture of ``mixture`` components learns the scores' joint distribution (several
modes, not one Gaussian); sampled scores map back through the components, and the
variance PCA left out comes back as independent noise per column, so the marginals keep
their spread. The codec then restores every column's type.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from headwater.errors import ConfigError
from headwater.learning.synth.base import EpochFn, FloatMatrix, Meta, Synthesizer, Tensors

__all__ = ["PCASynthesizer", "sample_mixture"]

MAX_MIXTURE_ROWS = 200_000
"""The mixture is fitted on at most this many rows (a seeded sample): past it, time not fit."""


class PCASynthesizer(Synthesizer):
    method = "pca"
    draw_categories = False

    def __init__(
        self, variance: float = 0.99, mixture: int = 10, noise: bool = True, seed: int = 0
    ) -> None:
        self.variance, self.mixture, self.noise, self.seed = variance, mixture, noise, seed

    def check_params(self) -> None:
        super().check_params()
        if not 0.0 < self.variance <= 1.0:
            raise ConfigError(f"PCASynthesizer.variance must be in (0, 1], got {self.variance}")
        if not 1 <= self.mixture <= 100:
            raise ConfigError(f"PCASynthesizer.mixture must be 1 to 100, got {self.mixture}")

    def _fit_matrix(
        self, matrix: FloatMatrix, rng: np.random.Generator, on_epoch: EpochFn | None
    ) -> None:
        keep = None if self.variance >= 1.0 else self.variance
        pca = PCA(n_components=keep, svd_solver="full", random_state=self.seed).fit(matrix)
        scores = pca.transform(matrix)
        rows = scores if len(scores) <= MAX_MIXTURE_ROWS else _subsample(scores, rng)
        k = min(self.mixture, len(rows))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-5, random_state=self.seed)
        gmm.fit(rows)
        residual = matrix - pca.inverse_transform(scores)
        self.components_ = np.asarray(pca.components_, dtype=np.float64)
        self.mean_ = np.asarray(pca.mean_, dtype=np.float64)
        self.weights_ = np.asarray(gmm.weights_, dtype=np.float64)
        self.means_ = np.asarray(gmm.means_, dtype=np.float64)
        self.covariances_ = np.asarray(gmm.covariances_, dtype=np.float64)
        self.residual_ = residual.std(axis=0) if self.noise else np.zeros(matrix.shape[1])
        if on_epoch is not None:
            on_epoch(1, {"components": float(len(self.components_)), "mixture": float(k)})

    def _sample_matrix(self, n: int, rng: np.random.Generator) -> FloatMatrix:
        scores = sample_mixture(self.weights_, self.means_, self.covariances_, n, rng)
        matrix: FloatMatrix = scores @ self.components_ + self.mean_
        return matrix + rng.standard_normal(matrix.shape) * self.residual_

    def _state(self) -> tuple[Meta, Tensors]:
        return {"components": len(self.components_)}, {
            "pca.components": self.components_,
            "pca.mean": self.mean_,
            "gmm.weights": self.weights_,
            "gmm.means": self.means_,
            "gmm.covariances": self.covariances_,
            "pca.residual": self.residual_,
        }

    def _restore(self, meta: Meta, tensors: Tensors) -> None:
        self.components_ = tensors["pca.components"]
        self.mean_ = tensors["pca.mean"]
        self.weights_ = tensors["gmm.weights"]
        self.means_ = tensors["gmm.means"]
        self.covariances_ = tensors["gmm.covariances"]
        self.residual_ = tensors["pca.residual"]

    components_: FloatMatrix
    mean_: FloatMatrix
    weights_: FloatMatrix
    means_: FloatMatrix
    covariances_: FloatMatrix
    residual_: FloatMatrix


def sample_mixture(
    weights: FloatMatrix,
    means: FloatMatrix,
    covariances: FloatMatrix,
    n: int,
    rng: np.random.Generator,
) -> FloatMatrix:
    """``n`` draws from a full-covariance Gaussian mixture, from ``rng`` alone (reproducible)."""
    chosen = rng.choice(len(weights), size=n, p=weights / weights.sum())
    out = np.empty((n, means.shape[1]))
    for k in range(len(weights)):
        rows = np.flatnonzero(chosen == k)
        if len(rows):
            root = np.linalg.cholesky(covariances[k])
            out[rows] = means[k] + rng.standard_normal((len(rows), means.shape[1])) @ root.T
    return out


def _subsample(scores: FloatMatrix, rng: np.random.Generator) -> FloatMatrix:
    picked: FloatMatrix = scores[rng.choice(len(scores), MAX_MIXTURE_ROWS, replace=False)]
    return picked
