"""FeatureSpec: fitted once on training data, replayed identically from its JSON at serving."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from headwater.data.features import Categorical, FeatureSpec, Numeric, Pixels, Timestamp
from headwater.errors import ConfigError, FormatError, ModelNotFitted, SchemaError


@pytest.fixture
def orders() -> pa.Table:
    return pa.table(
        {
            "amount": pa.array([10.0, 20.0, None, 30.0], pa.float64()),
            "items": pa.array([1, 2, 3, 2], pa.int32()),
            "country": pa.array(["FR", "DE", "FR", None]),
            "ordered_at": pa.array(
                [
                    dt.datetime(2024, 1, 31, 23, 59, 58, 123456),
                    dt.datetime(2023, 12, 1, 0, 0, 0),
                    None,
                    dt.datetime(2024, 6, 15, 12, 30, 1, 5),
                ],
                pa.timestamp("us"),
            ),
        }
    )


def test_numeric_standardised_with_training_stats(orders: pa.Table) -> None:
    spec = FeatureSpec([Numeric("amount"), Numeric("items")]).fit(orders)
    X = spec.transform(orders)
    assert X.dtype == np.float32 and X.shape == (4, 2)
    # amount: mean 20, std sqrt(200/3) over the three non-null values; the null becomes 0
    std = np.sqrt(200 / 3)
    np.testing.assert_allclose(X[:, 0], [-10 / std, 0.0, 0.0, 10 / std], rtol=1e-6)
    np.testing.assert_allclose(X[:, 1].mean(), 0.0, atol=1e-6)
    serving = pa.table({"amount": [40.0], "items": [2]})
    np.testing.assert_allclose(spec.transform(serving)[0, 0], 20 / std, rtol=1e-6)


def test_constant_column_does_not_divide_by_zero() -> None:
    table = pa.table({"x": [5.0, 5.0]})
    np.testing.assert_array_equal(FeatureSpec([Numeric("x")]).fit_transform(table), [[0.0], [0.0]])


def test_onehot_unknown_category_is_all_zeros(orders: pa.Table) -> None:
    spec = FeatureSpec([Categorical("country")]).fit(orders)
    assert spec.feature_names_out_ == ["country=DE", "country=FR"]
    np.testing.assert_array_equal(spec.transform(orders), [[0, 1], [1, 0], [0, 1], [0, 0]])
    serving = pa.table({"country": ["IT", "DE"]})
    np.testing.assert_array_equal(spec.transform(serving), [[0, 0], [1, 0]])


def test_label_encoding_reserves_zero_for_unknown(orders: pa.Table) -> None:
    spec = FeatureSpec([Categorical("country", "label")]).fit(orders)
    np.testing.assert_array_equal(spec.transform(orders)[:, 0], [2, 1, 2, 0])
    np.testing.assert_array_equal(spec.transform(pa.table({"country": ["IT"]}))[:, 0], [0])


def test_integer_categories_are_encoded_as_text() -> None:
    table = pa.table({"store": pa.array([3, 1, 3], pa.int64())})
    spec = FeatureSpec([Categorical("store")]).fit(table)
    assert spec.feature_names_out_ == ["store=1", "store=3"]


def test_timestamp_parts(orders: pa.Table) -> None:
    spec = FeatureSpec([Timestamp("ordered_at")]).fit(orders)
    X = spec.transform(orders)
    assert spec.feature_names_out_[0] == "ordered_at.year"
    np.testing.assert_array_equal(X[0], [2024, 1, 31, 23, 59, 58, 123456])
    np.testing.assert_array_equal(X[2], [-1] * 7)  # null timestamp
    hours = FeatureSpec([Timestamp("ordered_at", ("hour", "minute"))]).fit_transform(orders)
    np.testing.assert_array_equal(hours[:, 0], [23, 0, -1, 12])


def test_date_columns_are_their_midnight() -> None:
    table = pa.table({"day": pa.array([dt.date(2024, 3, 4), None])})
    X = FeatureSpec([Timestamp("day", ("year", "month", "day", "hour"))]).fit_transform(table)
    np.testing.assert_array_equal(X, [[2024, 3, 4, 0], [-1, -1, -1, -1]])


def test_json_round_trip_replays_identically(orders: pa.Table) -> None:
    spec = FeatureSpec(
        [
            Numeric("amount"),
            Categorical("country"),
            Categorical("items", "label"),
            Timestamp("ordered_at"),
        ]
    ).fit(orders)
    text = spec.to_json()
    assert json.loads(text)["fitted"] is True
    again = FeatureSpec.from_json(text)
    np.testing.assert_array_equal(again.transform(orders), spec.transform(orders))
    assert again.feature_names_out_ == spec.feature_names_out_
    assert again.to_json() == text


def test_unfitted_spec_serialises_and_refuses_to_transform(orders: pa.Table) -> None:
    spec = FeatureSpec.from_json(FeatureSpec([Numeric("amount")]).to_json())
    with pytest.raises(ModelNotFitted, match="FeatureSpec is not fitted"):
        spec.transform(orders)


def test_pixels_scale_uint8_and_accept_unit_floats() -> None:
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    spec = FeatureSpec([Pixels()]).fit(images)
    X = spec.transform(images)
    assert X.dtype == np.float32 and X.shape == (1, 4)
    np.testing.assert_allclose(X, [[0.0, 1.0, 0.2, 0.4]])
    np.testing.assert_allclose(spec.transform(images / np.float32(255)), X)
    square = FeatureSpec([Pixels(flatten=False)]).fit_transform(images)
    assert square.shape == (1, 2, 2)
    again = FeatureSpec.from_json(spec.to_json())
    np.testing.assert_array_equal(again.transform(images), X)


def test_pixels_refuse_out_of_range_floats_and_other_shapes() -> None:
    spec = FeatureSpec([Pixels()]).fit(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(SchemaError, match=r"float pixels must be finite and in 0\.\.1"):
        spec.transform(np.full((1, 4, 4), 3.0, np.float32))
    with pytest.raises(SchemaError, match=r"fitted on \(4, 4\)"):
        spec.transform(np.zeros((1, 5, 5), np.uint8))
    with pytest.raises(ConfigError, match="numpy image array"):
        spec.transform(pa.table({"a": [1]}))


def test_missing_or_mistyped_columns_name_the_field(orders: pa.Table) -> None:
    spec = FeatureSpec([Numeric("amount")]).fit(orders)
    with pytest.raises(SchemaError, match="field 'amount': column is missing"):
        spec.transform(pa.table({"other": [1.0]}))
    with pytest.raises(SchemaError, match="field 'country': expected a numeric column"):
        FeatureSpec([Numeric("country")]).fit(orders)
    with pytest.raises(SchemaError, match="field 'country': expected a timestamp"):
        FeatureSpec([Timestamp("country")]).fit(orders)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "steps is empty"),
        ([Pixels(), Numeric("a")], "Pixels .* must be the only step"),
        ([Numeric("a"), Categorical("a")], "name column\\(s\\) twice: a"),
        ([Categorical("a", "hash")], "encoding must be 'onehot' or 'label'"),  # type: ignore[arg-type]
        ([Timestamp("a", ("week",))], "parts must be a non-empty subset"),  # type: ignore[arg-type]
    ],
)
def test_bad_specs_are_refused_in_fit(steps: list, message: str, orders: pa.Table) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureSpec(steps).fit(orders)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not json", "features"),
        ('{"format": "other"}', "format"),
        ('{"format": "headwater.features", "version": 9, "steps": []}', "version"),
        (
            '{"format": "headwater.features", "version": 1, "steps": [{"kind": "magic", "column": "a"}]}',
            "kind",
        ),
    ],
)
def test_bad_json_is_a_format_error(text: str, field: str) -> None:
    with pytest.raises(FormatError) as info:
        FeatureSpec.from_json(text)
    assert info.value.field == field


def test_many_rows_are_transformed_without_row_loops() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=n), "c": pa.array(rng.choice(["a", "b", "c"], size=n))})
    X = FeatureSpec([Numeric("x"), Categorical("c")]).fit_transform(table)
    assert X.shape == (n, 4)
    np.testing.assert_allclose(X[:, 1:].sum(axis=1), 1.0)


def test_fit_in_chunks_learns_what_fit_on_everything_learns() -> None:
    rng = np.random.default_rng(7)
    amounts = rng.normal(50, 12, 1000)
    amounts[::17] = np.nan
    table = pa.table(
        {
            "amount": amounts,
            "country": [["uk", "fr", "de", None][i % 4] for i in range(1000)],
            "at": pa.array([dt.datetime(2024, 1, 1 + i % 28) for i in range(1000)]),
        }
    )
    steps = [Numeric("amount"), Categorical("country"), Timestamp("at")]
    whole = FeatureSpec(steps).fit(table)
    pieces = [table.slice(0, 1), table.slice(1, 400), table.slice(401, 0), table.slice(401)]
    chunked = FeatureSpec(steps).fit_chunks(pieces)
    assert chunked.learned_[1] == whole.learned_[1]
    for key in ("mean", "std"):
        assert chunked.learned_[0][key] == pytest.approx(whole.learned_[0][key], rel=1e-12)
    assert np.allclose(chunked.transform(table), whole.transform(table), atol=1e-6)


def test_fit_in_chunks_with_no_rows_names_the_column() -> None:
    empty = pa.table({"amount": pa.array([None, None], pa.float64())})
    with pytest.raises(SchemaError, match="amount"):
        FeatureSpec([Numeric("amount")]).fit_chunks([empty, empty.slice(0, 0)])
