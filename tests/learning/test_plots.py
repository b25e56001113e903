"""Each plot is a real PNG of the expected size whose pixels show what it is about.

The PNGs are read back with Pillow: size from the figure size at 100 dpi, not blank,
different data drawing different pixels, mistakes drawn in red and curves in their colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headwater.errors import SchemaError
from headwater.learning import (
    MLPClassifier,
    classification_metrics,
    plot_confusion_matrix,
    plot_digit_grid,
    plot_history,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


RED = (0xC6, 0x28, 0x28)  # plots.MISTAKE
GREEN = (0x2E, 0x7D, 0x32)  # plots.CORRECT
TRAIN_BLUE = (0x1F, 0x77, 0xB4)  # matplotlib's first line colour
VALIDATION_ORANGE = (0xFF, 0x7F, 0x0E)  # and its second


def read_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The PNG's pixels as (h, w, 3) uint8, after checking it is a PNG of ``size`` (w, h)."""
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 20, "the picture is (nearly) blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "too few colours for a plot"
    return pixels


def count(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    """Pixels within ``tolerance`` of ``colour`` in every channel."""
    return int((np.abs(pixels.astype(int) - colour) <= tolerance).all(axis=-1).sum())


def test_confusion_matrix_png(tmp_path: Path) -> None:
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    path = plot_confusion_matrix(m.confusion, m.labels, tmp_path / "plots" / "confusion.png")
    assert path == tmp_path / "plots" / "confusion.png"
    first = read_png(path, (320, 300))  # figsize (3.2, 3.0) at 100 dpi for up to 4 classes

    same = plot_confusion_matrix(m.confusion, m.labels, tmp_path / "same.png")
    np.testing.assert_array_equal(read_png(same, (320, 300)), first)  # drawn deterministically
    other = classification_metrics([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])
    path = plot_confusion_matrix(other.confusion, other.labels, tmp_path / "other.png")
    second = read_png(path, (320, 300))
    assert (np.abs(second.astype(int) - first).sum(axis=-1) > 30).sum() > 500
    dark = (first.astype(int).sum(axis=-1) < 250).sum()  # the darkest cells and the text
    assert dark > 100


def test_a_larger_confusion_matrix_is_a_larger_picture(tmp_path: Path) -> None:
    labels = list(range(10))
    confusion = (np.eye(10, dtype=int) * 50 + 1).tolist()
    read_png(plot_confusion_matrix(confusion, labels, tmp_path / "c.png"), (650, 630))


def test_confusion_matrix_shape_must_match_labels(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="expected 3x3"):
        plot_confusion_matrix([[1, 0], [0, 1]], [0, 1, 2], tmp_path / "c.png")


@pytest.mark.parametrize("layout", [(-1, 8, 8), (-1, 64)])
def test_digit_grid_png(layout: tuple[int, ...], small: tuple, tmp_path: Path) -> None:
    X, y = small[2][:20], small[3][:20]
    pred = y.copy()
    pred[[3, 11]] = (pred[[3, 11]] + 1) % 10  # two mistakes, drawn first
    path = plot_digit_grid(X.reshape(layout), y, pred, tmp_path / "grid.png", max_images=12)
    pixels = read_png(path, (960, 400))  # 12 images: 6 columns x 2 rows
    red = count(pixels, RED)
    assert red > 200, "the two mistakes are framed and titled in red"
    top_left, rest = pixels[:, :320], pixels[:, 320:]
    assert count(top_left, RED) == red and count(rest, RED) == 0  # mistakes come first
    assert count(pixels, GREEN) > 200


def test_digit_grid_with_no_mistakes(small: tuple, tmp_path: Path) -> None:
    X, y = small[2][:5], small[3][:5]
    pixels = read_png(plot_digit_grid(X, y, y, tmp_path / "grid.png"), (800, 220))
    assert count(pixels, RED) == 0 and count(pixels, GREEN) > 100


def test_history_png(small: tuple, tmp_path: Path) -> None:
    X, y, X_val, y_val = small
    model = MLPClassifier(epochs=2).fit(X, y, validation_data=(X_val, y_val))
    pixels = read_png(plot_history(model.history_, tmp_path / "history.png"), (1000, 400))
    assert count(pixels, TRAIN_BLUE) > 50 and count(pixels, VALIDATION_ORANGE) > 50


def test_history_without_validation_draws_one_curve(tmp_path: Path) -> None:
    history = [{"epoch": e, "loss": 1.0 / e, "accuracy": 1 - 0.5 / e} for e in (1, 2, 3)]
    pixels = read_png(plot_history(history, tmp_path / "history.png"), (1000, 400))
    assert count(pixels, TRAIN_BLUE) > 50 and count(pixels, VALIDATION_ORANGE) == 0


def test_empty_history_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="history is empty"):
        plot_history([], tmp_path / "h.png")


def test_images_must_be_square(tmp_path: Path) -> None:
    images = np.zeros((3, 10), dtype=np.float32)
    with pytest.raises(SchemaError, match="not square"):
        plot_digit_grid(images, [0, 1, 2], [0, 1, 2], tmp_path / "g.png")
