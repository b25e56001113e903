"""Exploring datasets on both backends (summaries, labels, samples, scored splits) and drawings."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from headwater.errors import FormatError, NotFound, SchemaError
from headwater.flows import exploration
from headwater.flows import runs as run_flows
from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from tests.builders import write_small_digits

ORDERS = """id,price,city,label
1,10.0,Oslo,a
2,,Oslo,b
3,30.0,,a
4,40.0,Bergen,a
5,nan,Oslo,10
6,60.0,Oslo,9
"""


@pytest.fixture
def digits_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    workspace.ingest(write_small_digits(tmp_path / "digits.npz"))
    return workspace


@pytest.fixture
def orders_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)
    workspace.ingest(path, label="label")
    return workspace


def test_tabular_columns_are_summarised_with_their_missing_values(orders_ws: Workspace) -> None:
    found = {s.name: s for s in exploration.column_summaries(orders_ws, "orders")}
    assert {"id", "price", "city", "label"} <= set(found)
    price = found["price"]
    assert (price.count, price.missing) == (4, 2)  # an empty cell and a NaN
    assert price.minimum == "10.0" and price.maximum == "60.0"
    assert price.mean == pytest.approx(35.0)
    assert price.std == pytest.approx(float(np.std([10, 30, 40, 60], ddof=1)))
    city = found["city"]
    assert (city.count, city.missing, city.distinct, city.top) == (5, 1, 2, "Oslo")
    assert city.missing_fraction == pytest.approx(1 / 6)


def test_image_columns_are_the_labels_and_the_pixels(digits_ws: Workspace) -> None:
    label, pixels = exploration.column_summaries(digits_ws, "digits")
    assert (label.name, label.count, label.missing, label.distinct) == ("label", 1797, 0, 10)
    assert pixels.name == "pixels" and pixels.count == 1797 * 64
    from sklearn.datasets import load_digits

    expected = np.clip(load_digits().images * 16, 0, 255).astype(np.uint8)
    assert pixels.mean == pytest.approx(float(expected.mean()))
    assert pixels.std == pytest.approx(float(expected.std()), rel=1e-6)
    assert (pixels.minimum, pixels.maximum) == ("0", "255")


def test_labels_are_counted_per_split_in_natural_order(
    digits_ws: Workspace, orders_ws: Workspace
) -> None:
    images = exploration.label_distribution(digits_ws, "digits")
    assert list(images) == ["train", "test"]
    assert list(images["train"]) == [str(d) for d in range(10)]
    assert sum(images["train"].values()) == 1500 and sum(images["test"].values()) == 297
    table = exploration.label_distribution(orders_ws, "orders")
    assert list(table) == ["unassigned"]
    assert table["unassigned"] == {"9": 1, "10": 1, "a": 3, "b": 1}  # numbers first, as numbers


def test_sample_images_are_pngs_with_their_labels(digits_ws: Workspace) -> None:
    samples = exploration.sample_images(digits_ws, "digits", limit=5)
    assert [s.label for s in samples] == ["0", "1", "2", "3", "4"]
    with Image.open(io.BytesIO(samples[0].png)) as image:
        assert image.format == "PNG" and image.size == (8, 8)
    assert exploration.sample_images(digits_ws, "digits", limit=1)[0].split == "train"


def test_a_tabular_dataset_has_no_sample_images(orders_ws: Workspace) -> None:
    assert exploration.sample_images(orders_ws, "orders") == []


def test_a_split_is_scored_like_the_run_scored_its_test_rows(digits_ws: Workspace) -> None:
    run = train(digits_ws, TrainRequest("digits", "logistic"))
    model = run_flows.load_model(digits_ws, run.run_id)
    scored = exploration.score_split(digits_ws, model, "digits", "test")
    assert scored.header == ["row_id", "predicted", *(f"p_{d}" for d in range(10))]
    assert len(scored.rows) == len(scored.labels) == 297
    assert len({row[0] for row in scored.rows}) == 297
    assert scored.accuracy == pytest.approx(float(str(run.metrics["test_accuracy"])), abs=0.01)


def test_scoring_a_missing_split_names_the_splits_there_are(digits_ws: Workspace) -> None:
    with pytest.raises(NotFound, match="no 'validation' rows; it has: train, test"):
        exploration.split_input(digits_ws, "digits", "validation")
    with pytest.raises(NotFound, match="no split 'holdout'"):
        exploration.split_input(digits_ws, "digits", "holdout")


def test_a_tabular_split_leaves_out_the_label_and_keeps_it_as_truth(orders_ws: Workspace) -> None:
    data, row_ids, labels = exploration.split_input(orders_ws, "orders", "unassigned")
    assert not isinstance(data, np.ndarray)
    assert data.column_names == ["id", "price", "city"]
    assert len(row_ids) == 6 and labels == ["a", "b", "a", "a", "10", "9"]


# -- drawings -----------------------------------------------------------------------------------


def _paper(height: int = 280, width: int = 280) -> np.ndarray:
    return np.full((height, width), 255, dtype=np.uint8)


def test_a_drawing_is_boxed_into_20_pixels_and_centred_by_mass() -> None:
    drawing = _paper()
    drawing[20:220, 200:220] = 0  # a tall bar in the top right corner
    digit = exploration.digit_from_drawing(drawing)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    rows, cols = np.nonzero(digit)
    assert rows.max() - rows.min() + 1 == 20  # the longer side fills the 20-pixel box
    assert cols.max() - cols.min() + 1 == 2  # the aspect ratio is kept
    weights = digit.astype(float)
    centre = [float((np.indices(digit.shape)[k] * weights).sum() / weights.sum()) for k in (0, 1)]
    assert centre == pytest.approx([13.5, 13.5], abs=0.5)
    assert digit.max() == 255


def test_a_drawing_is_anti_aliased() -> None:
    canvas = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(canvas).ellipse((40, 40, 240, 240), outline=0, width=15)  # a zero
    digit = exploration.digit_from_drawing(np.asarray(canvas))
    partial = digit[(digit > 0) & (digit < 255)]
    assert len(partial) > 10  # edges partly covered are grey, not thresholded


def test_an_empty_drawing_is_refused() -> None:
    with pytest.raises(SchemaError, match="the drawing is empty"):
        exploration.digit_from_drawing(_paper())


def _png(image: Image.Image) -> bytes:
    sink = io.BytesIO()
    image.save(sink, format="PNG")
    return sink.getvalue()


def test_a_transparent_canvas_counts_as_paper() -> None:
    canvas = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    canvas.paste((0, 0, 0, 255), (10, 10, 20, 40))
    grey = exploration.read_drawing(_png(canvas))
    assert grey.shape == (50, 50)
    assert grey[0, 0] == 255 and grey[20, 15] == 0


def test_what_is_not_a_png_is_refused() -> None:
    with pytest.raises(FormatError, match="not a PNG"):
        exploration.read_drawing(b"GIF89a not really")


def test_a_huge_drawing_is_refused_before_decoding() -> None:
    with pytest.raises(SchemaError, match="at most 2048x2048"):
        exploration.read_drawing(_png(Image.new("L", (4096, 8), 255)))
