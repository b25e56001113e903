"""Each plot is written as a real PNG that an image library can open."""

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


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 100 and image.height > 100


def test_confusion_matrix_png(tmp_path: Path) -> None:
    m = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    path = plot_confusion_matrix(m.confusion, m.labels, tmp_path / "plots" / "confusion.png")
    assert path == tmp_path / "plots" / "confusion.png"
    assert_png(path)


def test_confusion_matrix_shape_must_match_labels(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="expected 3x3"):
        plot_confusion_matrix([[1, 0], [0, 1]], [0, 1, 2], tmp_path / "c.png")


@pytest.mark.parametrize("layout", [(-1, 8, 8), (-1, 64)])
def test_digit_grid_png(layout: tuple[int, ...], small: tuple, tmp_path: Path) -> None:
    X, y = small[2][:20], small[3][:20]
    pred = y.copy()
    pred[[3, 11]] = (pred[[3, 11]] + 1) % 10  # two mistakes, drawn first
    assert_png(plot_digit_grid(X.reshape(layout), y, pred, tmp_path / "grid.png", max_images=12))


def test_digit_grid_with_no_mistakes(small: tuple, tmp_path: Path) -> None:
    X, y = small[2][:5], small[3][:5]
    assert_png(plot_digit_grid(X, y, y, tmp_path / "grid.png"))


def test_history_png(small: tuple, tmp_path: Path) -> None:
    X, y, X_val, y_val = small
    model = MLPClassifier(epochs=2).fit(X, y, validation_data=(X_val, y_val))
    assert_png(plot_history(model.history_, tmp_path / "history.png"))


def test_empty_history_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="history is empty"):
        plot_history([], tmp_path / "h.png")


def test_images_must_be_square(tmp_path: Path) -> None:
    images = np.zeros((3, 10), dtype=np.float32)
    with pytest.raises(SchemaError, match="not square"):
        plot_digit_grid(images, [0, 1, 2], [0, 1, 2], tmp_path / "g.png")
