"""The PII scan: finds every personal column of a generated file, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.data.privacy import detect_pii, scan_pii
from headwater.errors import ConfigError
from tests.data.privacy.conftest import Store
from tests.data.privacy.people import EXPECTED_KIND, NOT_PII, WRITERS, people_columns


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_scan_finds_every_pii_column_and_flags_nothing_else(fmt: str, store: Store) -> None:
    columns = people_columns(3_000, seed=5)
    source = store.put(f"customers.{fmt}", WRITERS[fmt](columns))

    found = {s.field: s for s in scan_pii(source)}

    assert {name: s.kind for name, s in found.items()} == EXPECTED_KIND  # recall 1.0, no extras
    assert not set(found) & set(NOT_PII)
    assert all(s.share == 1.0 and s.sampled == 3_000 for s in found.values())


def test_scan_reads_only_a_sample(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(WRITERS["csv"](people_columns(2_500, seed=1)))
    found = scan_pii(str(path), sample_rows=1_000)
    assert {s.sampled for s in found} == {1_000}


def _detect(**columns: list[str]) -> dict[str, str]:
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    return {s.field: s.kind for s in detect_pii(table)}


def test_plainly_non_personal_columns_stay_quiet() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    assert (
        _detect(
            id=[str(i) for i in range(1, n + 1)],
            padded_id=[f"{i:010d}" for i in range(n)],
            long_id=[str(v) for v in rng.integers(10**15, 10**16 - 1, n)],
            price=[f"{p / 100:.2f}" for p in rng.integers(1, 10**6, n)],
            count=[str(c) for c in rng.integers(0, 500, n)],
            product_code=[f"SKU-{c:05d}" for c in rng.integers(0, 10**5, n)],
            order_date=[f"2024-{m:02d}-{d:02d}" for m, d in rng.integers(1, 13, (n, 2))],
            ordered_at=[f"2024-03-01T{h:02d}:15:00Z" for h in rng.integers(0, 24, n)],
            name=list(rng.choice(["Blue Widget", "Oak Table", "Garden Hose", "Desk Lamp"], n)),
            product_name=list(rng.choice(["Steel Kettle", "Red Chair", "Paper Towel"], n)),
            city=list(rng.choice(["London", "New York", "Leeds", "San Francisco"], n)),
            status=list(rng.choice(["shipped", "pending", "returned"], n)),
            version=list(rng.choice(["1.2.3", "2.0", "10.4.1"], n)),
        )
        == {}
    )


def test_detectors_on_awkward_values() -> None:
    found = _detect(
        c1=["Olivia", "Jack", "Amelia", "Harry", "Isla"],
        surname=["Smith", "O'Neil", "McDonald", "Smith-Jones", "Patel"],
        contact=[
            "+44 (0)20 7946 0958",
            "+1-415-555-0100",
            "07700 900123",
            "0044 161 496 0000",
            "+33 1 23 45 67 89",
        ],
        card=[
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
            "6011111111111117",
            "4012888888881881",
        ],
        addr=["2001:db8::1", "::1", "192.168.0.1", "fe80::1ff:fe23:4567:890a", "10.0.0.255"],
        ni=["AB 12 34 56 C", "PZ123456C", "JG103759A", "ab123456d", "CE 00 00 00 A"],
    )
    assert found == {
        "c1": "person_name",
        "surname": "person_name",
        "contact": "phone",
        "card": "payment_card",
        "addr": "ip_address",
        "ni": "national_insurance_number",
    }


def test_luhn_failures_and_invalid_national_insurance_prefixes_are_not_matched() -> None:
    assert (
        _detect(
            card=["4111 1111 1111 1112", "5555555555554445", "1234567812345678"],
            ni=["GB123456A", "BG123456A", "DA123456A"],
            ip=["256.1.1.1", "1.2.3", "12:30:45"],
        )
        == {}
    )


def test_min_share_is_checked() -> None:
    with pytest.raises(ConfigError, match="min_share"):
        detect_pii(pa.table({"a": ["x"]}), min_share=0)


def test_nested_json_fields_are_scanned_under_dotted_paths(tmp_path: Path) -> None:
    records = [
        {
            "id": i,
            "customer": {"email": f"user{i}@example.com", "tier": "gold"},
            "contacts": [{"phone": f"07700 900{i:03d}", "kind": "home"}],
        }
        for i in range(200)
    ]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(records))
    found = {s.field: s.kind for s in scan_pii(str(path))}
    assert found == {"customer.email": "email", "contacts.phone": "phone"}
