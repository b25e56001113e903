"""Image synthesizers on small fake digits: shapes, labels, reproducibility, safe files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headwater.errors import ConfigError, ModelNotFitted, SchemaError
from headwater.learning.synth.images import (
    PCAImageSynthesizer,
    VAEImageSynthesizer,
    load_image_synthesizer,
)


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c is a bright square at a place of its own, with noise: learnable, all different."""
    rng = np.random.default_rng(0)
    labels = np.arange(n, dtype=np.int64) % 3
    images = rng.integers(0, 40, size=(n, 12, 12)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 3 * c : 3 * c + 4, 3 * c : 3 * c + 4] = 220
    return images, labels


@pytest.mark.parametrize(
    "make",
    [
        lambda: PCAImageSynthesizer(variance=0.8, mixture=3),
        lambda: VAEImageSynthesizer(epochs=3, hidden=32),
        lambda: VAEImageSynthesizer(epochs=3, hidden=32, latent=4, sampling="posterior"),
    ],
)
def test_images_come_back_per_class_and_reload(make: object, tmp_path: Path) -> None:
    images, labels = _digits(300)
    synth = make().fit(images, labels)  # type: ignore[operator]
    made, got = synth.sample(90, seed=1)
    assert made.shape == (90, 12, 12) and made.dtype == np.uint8
    assert set(got.tolist()) == {0, 1, 2}
    if isinstance(synth, PCAImageSynthesizer):  # the class's square is where it belongs
        for c in range(3):
            square = made[got == c][:, 3 * c : 3 * c + 4, 3 * c : 3 * c + 4]
            assert square.mean() > 150
    seen = {bytes(image) for image in images}
    assert not any(bytes(image) in seen for image in made)  # no copies
    synth.save(tmp_path)
    again = load_image_synthesizer(tmp_path).sample(90, seed=1)
    assert np.array_equal(again[0], made)
    assert np.array_equal(again[1], got)


def test_posterior_codes_come_from_each_class_mixture() -> None:
    """Posterior sampling draws codes near the encoder's means of the class's own images."""
    images, labels = _digits(300)
    synth = VAEImageSynthesizer(epochs=3, hidden=32, latent=4, sampling="posterior", mixture=2)
    synth.fit(images, labels)
    assert {k.split(".")[0] for k in synth.codes_} == {"code0", "code1", "code2"}
    assert synth.codes_["code0.means"].shape == (2, 4)
    drawn = synth._codes(np.zeros(2000, np.int64), np.random.default_rng(0))
    means, weights = synth.codes_["code0.means"], synth.codes_["code0.weights"]
    assert np.allclose(drawn.mean(axis=0), weights @ means, atol=0.15)
    with pytest.raises(ConfigError, match="sampling must be prior or posterior"):
        VAEImageSynthesizer(sampling="mode").fit(images, labels)


def test_image_refusals() -> None:
    with pytest.raises(ModelNotFitted):
        PCAImageSynthesizer().sample(3)
    with pytest.raises(SchemaError, match="images must be"):
        PCAImageSynthesizer().fit(np.zeros((4, 8), np.uint8), np.zeros(4, np.int64))
