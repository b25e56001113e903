"""Arrow binary columns as numpy arrays: sliced arrays (a non-zero offset) read their own rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import FormatError
from headwater.storage.binary import equal_width_bytes, pixel_array, value_bytes

IMAGES = np.arange(8 * 2 * 3, dtype=np.float32).reshape(8, 2, 3)  # 8 images of 2x3


def pixels(kind: pa.DataType) -> pa.Array:
    return pa.array([image.tobytes() for image in IMAGES], kind)


@pytest.mark.parametrize(
    "kind", [pa.binary(), pa.large_binary(), pa.binary(24)], ids=["binary", "large", "fixed"]
)
def test_a_sliced_pixel_column_reads_its_own_rows(kind: pa.DataType) -> None:
    sliced = pixels(kind).slice(3, 5)
    assert sliced.offset == 3
    images = pixel_array(sliced, np.float32, (2, 3))
    assert images.shape == (5, 2, 3)
    np.testing.assert_array_equal(images, IMAGES[3:8])
    flat = pixel_array(sliced, "float32")
    np.testing.assert_array_equal(flat, IMAGES[3:8].reshape(5, 6))


def test_a_slice_in_the_middle_and_a_chunked_column() -> None:
    middle = pixels(pa.binary()).slice(2, 3)
    np.testing.assert_array_equal(pixel_array(middle, np.float32, (2, 3)), IMAGES[2:5])
    chunked = pa.chunked_array([pixels(pa.binary()).slice(0, 2), pixels(pa.binary()).slice(5, 3)])
    np.testing.assert_array_equal(pixel_array(chunked, np.float32, (2, 3)), IMAGES[[0, 1, 5, 6, 7]])


def test_a_record_batch_cut_from_a_larger_one() -> None:
    batch = pa.record_batch({"pixels": pixels(pa.binary())}).slice(4, 2)
    np.testing.assert_array_equal(
        pixel_array(batch.column("pixels"), np.float32), IMAGES[4:6].reshape(2, 6)
    )


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary()])
def test_value_bytes_of_variable_width_values(kind: pa.DataType) -> None:
    words = ["zero", "one", "two", "three", "four", "five"]
    array = pa.array(words if "string" in str(kind) else [w.encode() for w in words], kind)
    data, offsets = value_bytes(array.slice(3, 2))
    assert offsets.tolist() == [0, 5, 9]
    assert data.tobytes() == b"threefour"
    assert equal_width_bytes(array.slice(3, 2)) is None
    rows = equal_width_bytes(array.slice(1, 2))
    assert rows is not None and rows.shape == (2, 3) and rows.tobytes() == b"onetwo"


def test_empty_and_null_values() -> None:
    empty = pixels(pa.binary()).slice(8, 0)
    assert pixel_array(empty, np.float32, (2, 3)).shape == (0, 2, 3)
    data, offsets = value_bytes(pa.array([b"ab", None, b"cd"]).slice(1, 2))
    assert offsets.tolist() == [0, 0, 2] and data.tobytes() == b"cd"
    fixed = equal_width_bytes(pa.array([], pa.binary(4)))
    assert fixed is not None and fixed.shape == (0, 4)


def test_images_of_different_sizes_are_refused() -> None:
    mixed = pa.array([b"\x00" * 4, b"\x00" * 8])
    with pytest.raises(FormatError, match="different byte sizes") as refused:
        pixel_array(mixed, np.uint8)
    assert refused.value.field == "pixels"
    with pytest.raises(FormatError, match="holds 24 bytes"):
        pixel_array(pixels(pa.binary()), np.float32, (3, 3))
    with pytest.raises(TypeError, match="binary or string"):
        value_bytes(pa.array([1, 2]))
