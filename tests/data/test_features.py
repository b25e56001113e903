"""FeatureSpec: fitted once on training data, replayed identically from its JSON at serving."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from headwater.data.features import (
    DATE_PARTS,
    DATETIME_PARTS,
    Categorical,
    FeatureSpec,
    Numeric,
    Pixels,
    Timestamp,
    choose_features,
    spec_from_choices,
)
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
    assert spec.feature_names_out_ == ["country=DE", "country=FR", "country=(missing)"]
    np.testing.assert_array_equal(
        spec.transform(orders), [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    )
    serving = pa.table({"country": ["IT", "DE"]})
    np.testing.assert_array_equal(spec.transform(serving), [[0, 0, 0], [1, 0, 0]])


def test_label_encoding_reserves_zero_for_unknown(orders: pa.Table) -> None:
    spec = FeatureSpec([Categorical("country", "label")]).fit(orders)
    np.testing.assert_array_equal(spec.transform(orders)[:, 0], [2, 1, 2, 3])  # 3: (missing)
    np.testing.assert_array_equal(spec.transform(pa.table({"country": ["IT"]}))[:, 0], [0])


def test_integer_categories_are_encoded_as_text() -> None:
    table = pa.table({"store": pa.array([3, 1, 3], pa.int64())})
    spec = FeatureSpec([Categorical("store")]).fit(table)
    assert spec.feature_names_out_ == ["store=1", "store=3"]


def test_timestamp_parts(orders: pa.Table) -> None:
    spec = FeatureSpec([Timestamp("ordered_at")]).fit(orders)
    X = spec.transform(orders)
    assert spec.feature_names_out_[0] == "ordered_at.year"
    np.testing.assert_array_equal(X[0], [2024, 1, 31, 2, 23, 59, 58, 123456])  # a Wednesday
    np.testing.assert_array_equal(X[2], [-1] * 8)  # null timestamp
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
    with pytest.raises(SchemaError, match="field 'country': expected numbers, got text"):
        FeatureSpec([Numeric("country")]).fit(orders)
    with pytest.raises(SchemaError, match="field 'country': expected ISO 8601 dates"):
        FeatureSpec([Timestamp("country")]).fit(orders)
    with pytest.raises(SchemaError, match="field 'b': expected a numeric column, got binary"):
        FeatureSpec([Numeric("b")]).fit(pa.table({"b": pa.array([b"x"])}))


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


# -- missing values, text dates, and which columns become features ---------------------------


def test_missing_numbers_take_the_training_median_declared_in_the_spec() -> None:
    train = pa.table({"income": pa.array([10.0, 20.0, 30.0, 1000.0, None, float("nan")])})
    spec = FeatureSpec([Numeric("income")]).fit(train)
    doc = json.loads(spec.to_json())["steps"][0]
    assert doc["impute"] == "median" and doc["learned"]["fill"] == 25.0  # not the mean, 265
    mean, std = doc["learned"]["mean"], doc["learned"]["std"]
    expected = (25.0 - mean) / std
    X = spec.transform(train)
    np.testing.assert_allclose(X[4:, 0], [expected, expected], rtol=1e-6)
    serving = pa.table({"income": pa.array(["NA", " null ", "", "40"])})  # a JSON request
    again = FeatureSpec.from_json(spec.to_json())
    np.testing.assert_allclose(
        again.transform(serving)[:, 0], [expected] * 3 + [(40 - mean) / std], rtol=1e-6
    )
    by_mean = FeatureSpec([Numeric("income", impute="mean")]).fit(train)
    np.testing.assert_allclose(by_mean.transform(train)[4:, 0], [0.0, 0.0], atol=1e-6)


def test_a_spec_saved_before_imputing_still_fills_with_the_mean() -> None:
    old = {
        "format": "headwater.features",
        "version": 1,
        "fitted": True,
        "steps": [{"kind": "numeric", "column": "x", "learned": {"mean": 5.0, "std": 2.0}}],
    }
    spec = FeatureSpec.from_json(json.dumps(old))
    assert spec.steps[0] == Numeric("x", impute="mean")
    np.testing.assert_array_equal(spec.transform(pa.table({"x": [None, 7.0]}))[:, 0], [0.0, 1.0])


def test_missing_categories_are_their_own_category_or_the_commonest() -> None:
    train = pa.table({"city": ["Rome", "NA", "Rome", None, "Oslo", " "]})
    spec = FeatureSpec([Categorical("city")]).fit(train)
    assert spec.feature_names_out_ == ["city=Oslo", "city=Rome", "city=(missing)"]
    np.testing.assert_array_equal(spec.transform(train)[:, 2], [0, 1, 0, 1, 0, 1])
    commonest = FeatureSpec([Categorical("city", impute="most_frequent")]).fit(train)
    assert commonest.feature_names_out_ == ["city=Oslo", "city=Rome"]
    again = FeatureSpec.from_json(commonest.to_json())
    np.testing.assert_array_equal(again.transform(pa.table({"city": ["null"]})), [[0, 1]])
    complete = FeatureSpec([Categorical("city")]).fit(pa.table({"city": ["Rome", "Oslo"]}))
    np.testing.assert_array_equal(complete.transform(pa.table({"city": ["NA"]})), [[0, 0]])


def test_iso_text_dates_become_parts_and_can_be_standardised() -> None:
    text = pa.table({"signed": ["2024-03-04", "NA", "2024-03-10T12:30:00", None]})
    parts = ("year", "month", "day", "day_of_week", "hour")
    X = FeatureSpec([Timestamp("signed", parts)]).fit_transform(text)
    np.testing.assert_array_equal(X, [[2024, 3, 4, 0, 0], [-1] * 5, [2024, 3, 10, 6, 12], [-1] * 5])
    zoned = pa.table({"at": ["2024-03-04T10:00:00+02:00"]})
    np.testing.assert_array_equal(
        FeatureSpec([Timestamp("at", ("hour",))]).fit_transform(zoned), [[8]]
    )
    spec = FeatureSpec([Timestamp("signed", ("year", "day"), standardise=True)]).fit(text)
    X = FeatureSpec.from_json(spec.to_json()).transform(text)
    np.testing.assert_allclose(X, [[0, -1], [0, 0], [0, 1], [0, 0]], atol=1e-6)  # year constant


def test_a_median_of_more_values_than_kept_stays_close(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.data import features

    monkeypatch.setattr(features, "MEDIAN_SAMPLE", 2000)
    values = np.random.default_rng(3).exponential(10.0, 50_000)
    chunks = [pa.table({"x": values[i : i + 4096]}) for i in range(0, len(values), 4096)]
    spec = FeatureSpec([Numeric("x")]).fit_chunks(chunks)
    fill = spec.learned_[0]["fill"]
    assert isinstance(fill, float) and abs(fill - np.median(values)) < 0.05 * np.median(values)


@pytest.fixture
def customers() -> pa.Table:
    n = 60
    rng = np.random.default_rng(1)
    words = ["great", "slow", "service", "price", "app", "love"]
    return pa.table(
        {
            "customer_id": [f"c-{i:05d}-{rng.integers(1e9):x}" for i in range(n)],
            "Unnamed: 0": list(range(n)),
            "orderId": list(range(1000, 1000 + 2 * n, 2)),
            "Annual income (EUR)": [None if i % 7 == 0 else 40000.0 + i for i in range(n)],
            "visits": [int(i % 9) for i in range(n)],
            "amount": [int(i * i) for i in range(n)],  # all different, yet a quantity
            "City": [["Rome", "Oslo", "NA"][i % 3] for i in range(n)],
            "signed": [f"2024-01-{1 + i % 28:02d}" for i in range(n)],
            "seen_at": pa.array([dt.datetime(2024, 1, 1, i % 24) for i in range(n)]),
            "Notes": [" ".join(rng.choice(words, 6)) + f" #{i}" for i in range(n)],
            "surname": [f"name{i % 40}" for i in range(n)],
            "country": ["NO"] * n,
            "blank": pa.array([None] * n, pa.string()),
            "vip": [i % 2 == 0 for i in range(n)],
            "churned": [["yes", "no"][i % 2] for i in range(n)],
        }
    )


def test_choose_features_says_what_each_column_is_used_as_or_why_not(customers: pa.Table) -> None:
    choices = {c.column: c for c in choose_features(customers, label="churned")}
    used = {name: c.used_as for name, c in choices.items() if c.used}
    assert used == {
        "Annual income (EUR)": "number",
        "visits": "number",
        "amount": "number",
        "City": "category",
        "signed": "date parts",
        "seen_at": "date parts",
        "vip": "number",
    }
    reasons = {name: c.reason for name, c in choices.items() if not c.used}
    assert reasons["customer_id"] == "identifier: a different value in every row"
    assert reasons["Unnamed: 0"] == "identifier: a different number in every row"
    assert reasons["orderId"] == "identifier: a different number in every row"
    assert reasons["Notes"].startswith("free text: 60 distinct values of 7 words")
    assert reasons["surname"] == "too many distinct values (40) to be categories"
    assert reasons["country"] == "the same value in every row"
    assert reasons["blank"] == "no values: every row is missing"
    assert choices["churned"].used_as == "label" and not choices["churned"].used
    assert "9 of 60 missing: filled with the training median" in (
        choices["Annual income (EUR)"].reason
    )
    assert "20 of 60 missing: a category of their own" in choices["City"].reason
    assert choices["signed"].step == Timestamp("signed", DATE_PARTS, standardise=True)
    assert choices["seen_at"].step == Timestamp("seen_at", DATETIME_PARTS, standardise=True)


def test_the_chosen_spec_trains_replays_and_keeps_its_reasons(customers: pa.Table) -> None:
    spec = spec_from_choices(choose_features(customers, label="churned"), dataset="customers")
    X = spec.fit_transform(customers)
    assert X.shape == (60, 4 + 3 + 4 + 6) and np.isfinite(X).all()
    again = FeatureSpec.from_json(spec.to_json())
    np.testing.assert_array_equal(again.transform(customers), X)
    left_out = {c.column: c.reason for c in again.columns if c.used_as is None}
    assert left_out["customer_id"] == "identifier: a different value in every row"
    assert set(left_out) == {
        "customer_id",
        "Unnamed: 0",
        "orderId",
        "Notes",
        "surname",
        "country",
        "blank",
    }


def test_a_table_of_nothing_usable_is_refused_with_the_reasons() -> None:
    table = pa.table({"id": list(range(30)), "label": [0, 1] * 15})
    with pytest.raises(SchemaError, match=r"no usable feature columns .*id: identifier"):
        spec_from_choices(choose_features(table, label="label"), dataset="t")


def test_small_tables_keep_their_all_different_text_as_categories() -> None:
    table = pa.table({"city": ["Rome", "Oslo", "Lima"], "y": [0, 1, 0]})
    (city, _) = choose_features(table, label="y")
    assert city.used_as == "category"


def test_a_column_empty_in_every_row_of_a_file_to_score_is_all_missing(orders: pa.Table) -> None:
    spec = FeatureSpec([Numeric("amount"), Categorical("country"), Timestamp("ordered_at")])
    spec.fit(orders)
    empty = pa.table({k: pa.nulls(2) for k in ("amount", "country", "ordered_at")})
    X = spec.transform(empty)
    np.testing.assert_array_equal(X[:, 0], [0.0, 0.0])  # amount's median is its mean, 20
    np.testing.assert_array_equal(X[:, 1:4], [[0, 0, 1], [0, 0, 1]])  # (missing)
    np.testing.assert_array_equal(X[:, 4:], -np.ones((2, 8)))


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_value_names_the_users_column_and_row(orders: pa.Table, value: float) -> None:
    """Refused by the column's name (not as the matrix "X" a model sees), in fit and transform."""
    spec = FeatureSpec([Numeric("items"), Numeric("amount")]).fit(orders)
    serving = pa.table({"items": [1, 2], "amount": [5.0, value]})
    with pytest.raises(SchemaError, match=r"^row 1 field 'amount': -?inf is not a value") as info:
        spec.transform(serving)
    assert (info.value.field, info.value.row) == ("amount", 1)
    with pytest.raises(SchemaError, match="field 'amount'"):
        FeatureSpec([Numeric("amount")]).fit(serving)
