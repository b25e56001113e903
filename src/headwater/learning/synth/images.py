"""Synthesizers for labelled images (MNIST-shaped): PCA per class and a conditional VAE.

Same conventions as the table synthesizers: settings in the constructor,
``fit(images, labels)``, ``sample(n, seed)`` giving ``(images, labels)`` as uint8 and
int64, ``save(folder)`` as safetensors + JSON. Labels are drawn at the rate seen.

- :class:`PCAImageSynthesizer`: per class, PCA of the pixels (scaled to 0..1) keeping
  ``variance`` of it, a Gaussian mixture over the component scores, mapped back and
  clipped.
- :class:`VAEImageSynthesizer`: a conditional VAE (two dense layers each side, the
  label one-hot on both), Bernoulli pixels; samples are the decoder's means. Codes are
  drawn from the prior N(0, temperature² I) (``sampling="prior"``), or, with
  ``sampling="posterior"``, from a Gaussian mixture fitted per class to the encoder's
  means of the training images (the aggregated posterior, "ex-post density
  estimation", Ghosh et al. 2020): the prior puts mass where the decoder saw no code,
  and those draws decode to digits of no class, which teach a classifier noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from safetensors.numpy import load_file, save_file
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from torch import nn

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning.synth.base import SETTINGS_FILE, STATE_FILE, EpochFn, sha256_of
from headwater.learning.synth.pca import sample_mixture
from headwater.learning.train import reproducible

__all__ = ["PCAImageSynthesizer", "VAEImageSynthesizer", "load_image_synthesizer"]

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class _ImageSynthesizer:
    method = "images"

    def _check(self, images: Images, labels: Labels) -> tuple[Floats, Labels]:
        if images.ndim != 3 or len(images) != len(labels) or len(images) < 2:
            raise SchemaError(
                f"images must be (n, height, width) with one label each, got {images.shape} "
                f"images and {len(labels)} labels"
            )
        self.shape_ = (int(images.shape[1]), int(images.shape[2]))
        self.classes_ = np.unique(labels).astype(np.int64)
        self.rates_ = np.array([(labels == c).mean() for c in self.classes_])
        return images.reshape(len(images), -1).astype(np.float64) / 255.0, labels

    def _labels(self, n: int, rng: np.random.Generator) -> Labels:
        if not hasattr(self, "classes_"):
            raise ModelNotFitted(type(self).__name__)
        if n < 1:
            raise ConfigError(f"the number of images to sample must be 1 or more, got {n}")
        picked: Labels = self.classes_[rng.choice(len(self.classes_), size=n, p=self.rates_)]
        return picked

    def _images(self, pixels: Floats) -> Images:
        scaled = np.clip(np.round(pixels * 255.0), 0, 255).astype(np.uint8)
        return scaled.reshape(len(pixels), *self.shape_)

    def _save(
        self, folder: Path, params: dict[str, object], tensors: dict[str, Floats]
    ) -> dict[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            "classes": self.classes_.astype(np.float64),
            "rates": self.rates_,
            **tensors,
        }
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / STATE_FILE))
        settings = {"method": self.method, "params": params, "shape": list(self.shape_)}
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
        return {name: sha256_of(folder / name) for name in (STATE_FILE, SETTINGS_FILE)}

    def _restore_common(self, settings: dict[str, object], tensors: dict[str, Floats]) -> None:
        shape = settings["shape"]
        assert isinstance(shape, list)
        self.shape_ = (int(shape[0]), int(shape[1]))
        self.classes_ = tensors["classes"].astype(np.int64)
        self.rates_ = tensors["rates"]

    shape_: tuple[int, int]
    classes_: Labels
    rates_: Floats


class PCAImageSynthesizer(_ImageSynthesizer):
    method = "pca-images"

    def __init__(self, variance: float = 0.9, mixture: int = 10, seed: int = 0) -> None:
        self.variance, self.mixture, self.seed = variance, mixture, seed

    def fit(
        self, images: Images, labels: Labels, *, on_epoch: EpochFn | None = None
    ) -> PCAImageSynthesizer:
        if not 0.0 < self.variance < 1.0:
            raise ConfigError(
                f"PCAImageSynthesizer.variance must be in (0, 1), got {self.variance}"
            )
        pixels, labels = self._check(images, labels)
        self.parts_: dict[int, dict[str, Floats]] = {}
        for i, c in enumerate(self.classes_):
            rows = pixels[labels == c]
            pca = PCA(n_components=self.variance, svd_solver="full", random_state=self.seed)
            scores = pca.fit_transform(rows)
            k = min(self.mixture, len(rows))
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=self.seed)
            gmm.fit(scores)
            self.parts_[int(c)] = {
                "components": pca.components_,
                "mean": pca.mean_,
                "weights": gmm.weights_,
                "means": gmm.means_,
                "covariances": gmm.covariances_,
            }
            if on_epoch is not None:
                on_epoch(i + 1, {"class": float(c)})
        return self

    def sample(self, n: int, seed: int = 0) -> tuple[Images, Labels]:
        rng = np.random.default_rng(seed)
        labels = self._labels(n, rng)
        pixels = np.zeros((n, self.shape_[0] * self.shape_[1]))
        for c, part in self.parts_.items():
            rows = np.flatnonzero(labels == c)
            if len(rows):
                scores = sample_mixture(
                    part["weights"], part["means"], part["covariances"], len(rows), rng
                )
                pixels[rows] = scores @ part["components"] + part["mean"]
        return self._images(pixels), labels

    def save(self, folder: Path) -> dict[str, str]:
        tensors = {f"{c}.{k}": v for c, part in self.parts_.items() for k, v in part.items()}
        return self._save(
            folder, {"variance": self.variance, "mixture": self.mixture, "seed": self.seed}, tensors
        )

    def restore(self, settings: dict[str, object], tensors: dict[str, Floats]) -> None:
        self._restore_common(settings, tensors)
        self.parts_ = {}
        for key, value in tensors.items():
            if "." in key:
                c, name = key.split(".", 1)
                self.parts_.setdefault(int(c), {})[name] = value


class _ImageVAE(nn.Module):
    def __init__(self, pixels: int, classes: int, latent: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(pixels + classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent + classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, pixels),
        )

    def forward(
        self, x: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decoder(torch.cat([z, c], dim=1)), mu, log_var


class VAEImageSynthesizer(_ImageSynthesizer):
    method = "vae-images"

    def __init__(
        self,
        epochs: int = 30,
        latent: int = 20,
        hidden: int = 512,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        seed: int = 0,
        device: str = "cpu",
        sampling: str = "prior",
        temperature: float = 1.0,
        mixture: int = 10,
    ) -> None:
        self.sampling, self.temperature, self.mixture = sampling, temperature, mixture
        self.epochs, self.latent, self.hidden = epochs, latent, hidden
        self.batch_size, self.learning_rate, self.seed, self.device = (
            batch_size,
            learning_rate,
            seed,
            device,
        )

    def fit(
        self, images: Images, labels: Labels, *, on_epoch: EpochFn | None = None
    ) -> VAEImageSynthesizer:
        if self.sampling not in ("prior", "posterior"):
            raise ConfigError(
                f"VAEImageSynthesizer.sampling must be prior or posterior, got {self.sampling!r}"
            )
        if not 0.0 < self.temperature <= 2.0:
            raise ConfigError("VAEImageSynthesizer.temperature must be in (0, 2]")
        pixels, labels = self._check(images, labels)
        with reproducible(self.seed, None):
            self._train(pixels, labels, on_epoch)
            self.codes_ = self._posterior(pixels, labels) if self.sampling == "posterior" else {}
        return self

    def _posterior(self, pixels: Floats, labels: Labels) -> dict[str, Floats]:
        """Per class, a Gaussian mixture over the encoder's means of its training images."""
        codes = np.searchsorted(self.classes_, labels)
        c = nn.functional.one_hot(torch.as_tensor(codes), len(self.classes_)).float()
        x = torch.as_tensor(pixels, dtype=torch.float32)
        with torch.no_grad():
            means = [
                self.net_.encoder(torch.cat([xb, cb], dim=1).to(self.device)).chunk(2, dim=1)[0]
                for xb, cb in zip(torch.split(x, 4096), torch.split(c, 4096), strict=True)
            ]
        mu = torch.cat(means).cpu().numpy().astype(np.float64)
        found: dict[str, Floats] = {}
        for i in range(len(self.classes_)):
            rows = mu[codes == i]
            k = max(1, min(self.mixture, len(rows) // (2 * self.latent)))
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=self.seed)
            gmm.fit(rows)
            found |= {
                f"code{i}.weights": gmm.weights_,
                f"code{i}.means": gmm.means_,
                f"code{i}.covariances": gmm.covariances_,
            }
        return found

    def _codes(self, codes: npt.NDArray[np.int64], rng: np.random.Generator) -> Floats:
        """One latent code per image to draw: from the prior, or from its class's mixture."""
        if self.sampling == "prior" or not self.codes_:
            z: Floats = rng.standard_normal((len(codes), self.latent)) * self.temperature
            return z
        z = np.zeros((len(codes), self.latent))
        for i in range(len(self.classes_)):
            rows = np.flatnonzero(codes == i)
            if len(rows):
                weights, means, covariances = (
                    self.codes_[f"code{i}.{k}"] for k in ("weights", "means", "covariances")
                )
                z[rows] = sample_mixture(weights, means, covariances, len(rows), rng)
        return z

    def _train(self, pixels: Floats, labels: Labels, on_epoch: EpochFn | None) -> None:
        codes = np.searchsorted(self.classes_, labels)
        self.net_ = _ImageVAE(pixels.shape[1], len(self.classes_), self.latent, self.hidden).to(
            self.device
        )
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate)
        x_all = torch.as_tensor(pixels, dtype=torch.float32, device=self.device)
        c_all = nn.functional.one_hot(
            torch.as_tensor(codes, device=self.device), len(self.classes_)
        ).float()
        for epoch in range(1, self.epochs + 1):
            total = 0.0
            for rows in torch.split(
                torch.randperm(len(x_all), device=self.device), self.batch_size
            ):
                logits, mu, log_var = self.net_(x_all[rows], c_all[rows])
                rebuilt = nn.functional.binary_cross_entropy_with_logits(
                    logits, x_all[rows], reduction="sum"
                )
                kl = -0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp())
                loss = (rebuilt + kl) / len(rows)
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
                optimiser.step()
                total += float(loss.detach()) * len(rows)
            if on_epoch is not None:
                on_epoch(epoch, {"loss": total / len(x_all)})
        self.net_.eval()

    def sample(self, n: int, seed: int = 0) -> tuple[Images, Labels]:
        rng = np.random.default_rng(seed)
        labels = self._labels(n, rng)
        codes = np.searchsorted(self.classes_, labels)
        z = torch.as_tensor(self._codes(codes, rng), dtype=torch.float32, device=self.device)
        c = nn.functional.one_hot(
            torch.as_tensor(codes, device=self.device), len(self.classes_)
        ).float()
        with torch.no_grad():
            pixels = torch.sigmoid(self.net_.decoder(torch.cat([z, c], dim=1))).cpu().numpy()
        return self._images(pixels.astype(np.float64)), labels

    def save(self, folder: Path) -> dict[str, str]:
        tensors = {
            f"net.{k}": v.detach().cpu().numpy().astype(np.float64)
            for k, v in self.net_.state_dict().items()
        }
        tensors |= self.codes_
        params: dict[str, object] = {
            "sampling": self.sampling,
            "temperature": self.temperature,
            "mixture": self.mixture,
            "epochs": self.epochs,
            "latent": self.latent,
            "hidden": self.hidden,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }
        return self._save(folder, params, tensors)

    def restore(self, settings: dict[str, object], tensors: dict[str, Floats]) -> None:
        self._restore_common(settings, tensors)
        pixels = self.shape_[0] * self.shape_[1]
        self.net_ = _ImageVAE(pixels, len(self.classes_), self.latent, self.hidden).to(self.device)
        state = {
            k[4:]: torch.as_tensor(v, dtype=torch.float32)
            for k, v in tensors.items()
            if k.startswith("net.")
        }
        self.net_.load_state_dict(state)
        self.net_.eval()
        self.codes_ = {k: v for k, v in tensors.items() if k.startswith("code")}

    net_: _ImageVAE
    codes_: dict[str, Floats]


def load_image_synthesizer(folder: Path) -> PCAImageSynthesizer | VAEImageSynthesizer:
    """A fitted image synthesizer back from its two files."""
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    tensors = dict(load_file(str(folder / STATE_FILE)))
    params = settings["params"]
    made: PCAImageSynthesizer | VAEImageSynthesizer
    if settings["method"] == PCAImageSynthesizer.method:
        made = PCAImageSynthesizer(**params)
    elif settings["method"] == VAEImageSynthesizer.method:
        made = VAEImageSynthesizer(**params)
    else:
        raise SchemaError(f"{folder} holds no image synthesizer ({settings['method']!r})")
    made.restore(settings, tensors)
    return made
