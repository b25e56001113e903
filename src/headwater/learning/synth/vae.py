"""Conditional VAE for tables, in PyTorch: conditioned on the label, mixed outputs.

Numbers arrive as the codec's normal scores (each column's own quantiles: a
normalisation that follows every mode of the column) and leave as a Gaussian with a
learned spread per column; each category block leaves as softmax weights a category
is drawn from. The label (when there is one) is the condition: the encoder and the
decoder both see it, and sampling draws labels at the rate seen in training, so every
class keeps its share and its own shape.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from headwater.errors import ConfigError
from headwater.learning.synth.base import EpochFn, FloatMatrix, Meta, Synthesizer, Tensors
from headwater.learning.train import reproducible

__all__ = ["TabularVAE", "VAESynthesizer"]


class TabularVAE(nn.Module):
    """Encoder and decoder of two hidden layers; ``condition`` wide label one-hots on both."""

    def __init__(self, width: int, condition: int, latent: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(width + condition, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent + condition, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, width),
        )
        self.log_sigma = nn.Parameter(torch.full((width,), -1.0))
        self.latent = latent

    def forward(
        self, x: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decoder(torch.cat([z, c], dim=1)), mu, log_var


class VAESynthesizer(Synthesizer):
    method = "vae"

    def __init__(
        self,
        epochs: int = 100,
        latent: int = 16,
        hidden: int = 128,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        seed: int = 0,
    ) -> None:
        self.epochs, self.latent, self.hidden = epochs, latent, hidden
        self.batch_size, self.learning_rate, self.seed = batch_size, learning_rate, seed

    def check_params(self) -> None:
        super().check_params()
        for name, low in (("epochs", 1), ("latent", 1), ("hidden", 4), ("batch_size", 2)):
            if int(getattr(self, name)) < low:
                raise ConfigError(f"VAESynthesizer.{name} must be {low} or more")
        if not 0.0 < self.learning_rate < 1.0:
            raise ConfigError("VAESynthesizer.learning_rate must be between 0 and 1")

    def _split(self, matrix: FloatMatrix) -> tuple[FloatMatrix, FloatMatrix]:
        """The matrix without the label block, and the label block (the condition)."""
        block = self.label_block
        if block is None:
            return matrix, np.zeros((len(matrix), 0))
        cols = np.arange(block.start, block.start + block.width)
        return np.delete(matrix, cols, axis=1), matrix[:, cols]

    def _layout(self) -> tuple[list[int], list[tuple[int, int]]]:
        """Number columns and (start, width) of category blocks in the matrix without the label."""
        numbers, categories, at = [], [], 0
        for block in self.codec_.blocks:
            if block.column == self.label_:
                continue
            if block.kind == "category":
                categories.append((at, block.width))
            else:
                numbers.append(at)
            at += block.width
        return numbers, categories

    def _fit_matrix(
        self, matrix: FloatMatrix, rng: np.random.Generator, on_epoch: EpochFn | None
    ) -> None:
        with reproducible(self.seed, 1):
            self._train(matrix, on_epoch)

    def _train(self, matrix: FloatMatrix, on_epoch: EpochFn | None) -> None:
        x_all, c_all = self._split(matrix)
        self.condition_rate_ = c_all.mean(axis=0) if c_all.shape[1] else np.zeros(0)
        self.net_ = TabularVAE(x_all.shape[1], c_all.shape[1], self.latent, self.hidden)
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate)
        x_t = torch.as_tensor(x_all, dtype=torch.float32)
        c_t = torch.as_tensor(c_all, dtype=torch.float32)
        numbers, categories = self._layout()
        generator = torch.Generator().manual_seed(self.seed)
        self.net_.train()
        for epoch in range(1, self.epochs + 1):
            total = 0.0
            for rows in torch.split(torch.randperm(len(x_t), generator=generator), self.batch_size):
                out, mu, log_var = self.net_(x_t[rows], c_t[rows])
                loss = _loss(self.net_, x_t[rows], out, mu, log_var, numbers, categories)
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
                optimiser.step()
                total += float(loss.detach()) * len(rows)
            if on_epoch is not None:
                on_epoch(epoch, {"loss": total / len(x_t)})
        self.net_.eval()

    def _sample_matrix(self, n: int, rng: np.random.Generator) -> FloatMatrix:
        numbers, categories = self._layout()
        k = len(self.condition_rate_)
        c = np.zeros((n, k))
        if k:
            c[
                np.arange(n),
                rng.choice(k, size=n, p=self.condition_rate_ / self.condition_rate_.sum()),
            ] = 1
        z = rng.standard_normal((n, self.latent))
        with torch.no_grad():
            out = self.net_.decoder(torch.as_tensor(np.hstack([z, c]), dtype=torch.float32))
            sigma = torch.exp(self.net_.log_sigma).numpy()
        x: FloatMatrix = out.numpy().astype(np.float64)
        x[:, numbers] += rng.standard_normal((n, len(numbers))) * sigma[numbers]
        for start, width in categories:
            logits = x[:, start : start + width]
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            x[:, start : start + width] = weights / weights.sum(axis=1, keepdims=True)
        block = self.label_block
        if block is None:
            return x
        full: FloatMatrix = np.insert(x, [block.start] * block.width, c, axis=1)
        return full

    def _state(self) -> tuple[Meta, Tensors]:
        tensors: Tensors = {
            f"net.{k}": v.detach().numpy().astype(np.float64)
            for k, v in self.net_.state_dict().items()
        }
        tensors["condition_rate"] = self.condition_rate_
        width = int(self.net_.log_sigma.shape[0])
        return {"width": width, "condition": len(self.condition_rate_)}, tensors

    def _restore(self, meta: Meta, tensors: Tensors) -> None:
        self.condition_rate_ = tensors["condition_rate"]
        width, condition = int(str(meta["width"])), int(str(meta["condition"]))
        self.net_ = TabularVAE(width, condition, self.latent, self.hidden)
        state = {
            k[len("net.") :]: torch.as_tensor(v, dtype=torch.float32)
            for k, v in tensors.items()
            if k.startswith("net.")
        }
        self.net_.load_state_dict(state)
        self.net_.eval()

    net_: TabularVAE
    condition_rate_: FloatMatrix


def _loss(
    net: TabularVAE,
    x: torch.Tensor,
    out: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    numbers: list[int],
    categories: list[tuple[int, int]],
) -> torch.Tensor:
    """Gaussian error on numbers, cross-entropy per category block, and the KL term."""
    rows = len(x)
    loss = torch.zeros(())
    if numbers:
        sigma = torch.exp(net.log_sigma[numbers])
        err = (x[:, numbers] - out[:, numbers]) / sigma
        loss = loss + (0.5 * err**2 + torch.log(sigma)).sum() / rows
    for start, width in categories:
        target = x[:, start : start + width].argmax(dim=1)
        loss = (
            loss
            + nn.functional.cross_entropy(out[:, start : start + width], target, reduction="sum")
            / rows
        )
    kl = -0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp()) / rows
    return loss + kl
