"""The four modes on Arrow arrays: values, nulls, types, keys."""

from __future__ import annotations

import datetime as dt
import hmac
import re

import pyarrow as pa
import pytest

from headwater.data.privacy.modes import (
    MASK,
    apply_mode,
    generalise,
    mask,
    obfuscate_batch,
    output_schema,
    pseudonym_key,
    pseudonymise,
)
from headwater.data.privacy.request import Mode
from headwater.errors import ConfigError
from headwater.settings import Settings


def test_mask_keeps_missing_values_missing() -> None:
    assert mask(pa.array(["Alice", "", None])).to_pylist() == [MASK, "", None]
    assert mask(pa.array([34, None])).to_pylist() == [MASK, None]


def test_pseudonym_is_keyed_deterministic_and_hides_the_value() -> None:
    values = pa.array(["alice@example.com", "bob@example.com", "alice@example.com", None, ""])
    first = pseudonymise(values, b"key-1").to_pylist()
    again = pseudonymise(values.slice(0, 3), b"key-1").to_pylist()
    other = pseudonymise(values, b"key-2").to_pylist()
    assert first[0] == first[2] == again[0] == again[2]
    assert first[0] != first[1]
    assert first[3:] == [None, ""]
    assert all(re.fullmatch(r"[0-9a-f]{32}", str(token)) for token in first[:3])
    assert other[0] != first[0]


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long key " * 20])
def test_pseudonym_is_standard_hmac_sha256(key: bytes) -> None:
    values = ["alice@example.com", "Zo\u00eb", "x" * 200]
    expected = [hmac.digest(key, v.encode(), "sha256").hex()[:32] for v in values]
    assert pseudonymise(pa.array(values), key).to_pylist() == expected


def test_pseudonym_of_numbers_matches_their_text() -> None:
    assert (
        pseudonymise(pa.array([42]), b"k").to_pylist()
        == pseudonymise(pa.array(["42"]), b"k").to_pylist()
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-15", "2024-03"),
        ("2024-03-15T10:22:00Z", "2024-03"),
        ("15/3/2024", "2024-03"),
        ("SW1A 1AA", "SW1A"),
        ("sw1a1aa", "SW1A"),
        ("M1 1AE", "M1"),
        ("34", "30-39"),
        ("7", "0-9"),
        ("-5", "-10--1"),
        ("41.9", "40-49"),
        ("free text", MASK),
        ("", ""),
        (None, None),
    ],
)
def test_generalise_text(value: str | None, expected: str | None) -> None:
    assert generalise(pa.array([value], pa.string())).to_pylist() == [expected]


def test_generalise_typed_columns() -> None:
    assert generalise(pa.array([dt.date(1984, 3, 15), None])).to_pylist() == ["1984-03", None]
    stamps = pa.array([dt.datetime(2024, 1, 31, 23, 0)], pa.timestamp("us"))
    assert generalise(stamps).to_pylist() == ["2024-01"]
    assert generalise(pa.array([34, 99, None], pa.int64())).to_pylist() == ["30-39", "90-99", None]
    assert generalise(pa.array([12.5], pa.float64())).to_pylist() == ["10-19"]
    assert generalise(pa.array([1e300])).to_pylist() == [MASK]
    assert generalise(pa.array([True])).to_pylist() == [MASK]


def test_pseudonym_key_comes_from_settings_or_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADWATER_PSEUDONYM_KEY", raising=False)
    assert pseudonym_key(Settings(pseudonym_key="s3cret")) == b"s3cret"
    with pytest.raises(ConfigError, match="HEADWATER_PSEUDONYM_KEY"):
        pseudonym_key(Settings())
    with pytest.raises(ConfigError, match="needs a key"):
        apply_mode(pa.array(["x"]), "pseudonym", key=None)
    monkeypatch.setenv("HEADWATER_PSEUDONYM_KEY", "from-env")
    assert pseudonym_key(Settings()) == b"from-env"


def test_batch_drops_and_retypes_only_pii_fields() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, 2]), "dob": pa.array([dt.date(1990, 5, 1), None]), "ni": ["AB", "CD"]}
    )
    plan: dict[str, Mode] = {"dob": "generalise", "ni": "drop"}
    schema = output_schema(batch.schema, plan)
    out = obfuscate_batch(batch, plan, key=None, schema=schema)
    assert out.schema.names == ["id", "dob"]
    assert out.schema.field("id").type == pa.int64()
    assert out.to_pydict() == {"id": [1, 2], "dob": ["1990-05", None]}
