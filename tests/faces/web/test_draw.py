"""Draw a digit in a real browser: strokes on the canvas, the 28x28 image, the prediction."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.faces.web.conftest import Site, shoot

INK = 128
"""MNIST pixels above this are drawn: the dark strokes of the digit as a person sees it."""


def _t10k(folder: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), np.uint8, offset=8)
    return images[:count], labels[:count]


def _open_pad(page: Any, site: Site) -> tuple[float, float, float]:
    page.goto(f"{site.url}/ui/draw")
    box = page.locator("#pad").bounding_box()
    assert box is not None
    return box["x"], box["y"], box["width"] / 28


def _classify(page: Any) -> str:
    page.get_by_role("button", name="Classify").click()
    digit = page.locator("#digit")
    expect(digit).to_have_text(re.compile(r"^\d$"))
    return str(digit.inner_text())


def test_a_vertical_stroke_gets_a_prediction(page: Any, mnist_site: Site) -> None:
    left, top, cell = _open_pad(page, mnist_site)
    x = left + 14 * cell
    page.mouse.move(x, top + 4 * cell)
    page.mouse.down()
    page.mouse.move(x, top + 24 * cell, steps=25)
    page.mouse.up()
    _classify(page)
    expect(page.locator("#probabilities li")).to_have_count(10)
    expect(page.locator("#confidence")).to_contain_text("% sure")
    ink = page.evaluate(
        "() => Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 0).length"
    )
    assert 20 < ink < 200  # the 28x28 image the model saw: a thin centred bar
    shoot(page, "draw-vertical-stroke")


def _draw(page: Any, image: np.ndarray, left: float, top: float, cell: float) -> None:
    """Each row's runs of dark pixels as one stroke each, pressed, moved and released."""
    for y in range(28):
        dark = np.flatnonzero(image[y] > INK)
        if len(dark) == 0:
            continue
        breaks = np.flatnonzero(np.diff(dark) > 1)
        starts = np.concatenate([[dark[0]], dark[breaks + 1]])
        ends = np.concatenate([dark[breaks], [dark[-1]]])
        cy = top + (y + 0.5) * cell
        for start, end in zip(starts, ends, strict=True):
            page.mouse.move(left + (start + 0.5) * cell, cy)
            page.mouse.down()
            page.mouse.move(left + (end + 0.5) * cell, cy)
            page.mouse.up()


@pytest.mark.slow
@pytest.mark.shared_data
def test_ten_mnist_test_digits_drawn_on_the_canvas(
    page: Any, mnist_site: Site, shared_mnist: Path
) -> None:
    images, labels = _t10k(shared_mnist, 10)
    left, top, cell = _open_pad(page, mnist_site)
    answers = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        page.get_by_role("button", name="Clear").click()
        _draw(page, image, left, top, cell)
        answers.append(_classify(page))
        shoot(page, f"draw-mnist-{index}-label-{label}")
    right = sum(a == str(label) for a, label in zip(answers, labels, strict=True))
    print(f"draw-a-digit: {right}/10 right; labels {labels.tolist()}, answers {answers}")
    assert right >= 8, (labels.tolist(), answers)
