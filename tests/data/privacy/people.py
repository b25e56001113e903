"""Small, seeded, realistic customer-order data, written as CSV, JSON, JSON Lines and Parquet.

Seven personal fields of the kinds the scan knows, beside fields that must never be
called personal: ids, prices, counts, product codes and names, cities, order dates.
Values include the awkward ones (a comma, a quote, a newline, ``007``, ``1.50``).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FIRST = ["Alice", "Bob", "Charlotte", "David", "Emma", "Fatima", "George", "Hannah", "Oliver"]
LAST = ["Smith", "Jones", "O'Neil", "Patel", "Williams", "Brown", "Taylor", "Smith-Jones"]
DOMAINS = ["example.com", "mail.co.uk", "test.org"]
POSTCODES = ["SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "EC1A 1BB", "W1A 0AX"]
PRODUCTS = ["Blue Widget", "Garden Hose", "Oak Table", "Desk Lamp", "Steel Kettle"]
CITIES = ["London", "Manchester", "Leeds", "Bristol", "New York", "Glasgow"]

PII_FIELDS = [
    "name",
    "email_address",
    "phone",
    "postcode",
    "ni_number",
    "card_number",
    "ip_address",
]
EXPECTED_KIND = {
    "name": "person_name",
    "email_address": "email",
    "phone": "phone",
    "postcode": "uk_postcode",
    "ni_number": "national_insurance_number",
    "card_number": "payment_card",
    "ip_address": "ip_address",
}
NOT_PII = [
    "customer_id",
    "order_ref",
    "price",
    "quantity",
    "product_code",
    "product_name",
    "city",
    "order_date",
    "notes",
]


def _luhn_complete(body: str) -> str:
    digits = [int(d) for d in body]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return body + str((10 - total % 10) % 10)


def people_columns(rows: int, seed: int = 7) -> dict[str, list[str]]:
    """Every column as text, the way it sits in a CSV."""
    rng = np.random.default_rng(seed)
    first = rng.choice(FIRST, rows)
    last = rng.choice(LAST, rows)
    names = [f"{f} {s}" for f, s in zip(first, last, strict=True)]
    emails = [
        f"{f.lower()}.{s.lower().replace(chr(39), '')}{i}@{rng.choice(DOMAINS)}"
        for i, (f, s) in enumerate(zip(first, last, strict=True))
    ]
    phones = [
        rng.choice(
            [f"07700 {n:06d}", f"+44 20 7946 {n % 10000:04d}", f"+1 415 555 {n % 10000:04d}"]
        )
        for n in rng.integers(0, 999_999, rows)
    ]
    letters = "ABCEGHJKLMNPRSTWXYZ"
    ni = [
        f"{rng.choice(list(letters))}{rng.choice(list(letters))}{n:06d}{rng.choice(list('ABCD'))}"
        for n in rng.integers(0, 999_999, rows)
    ]
    ni = [
        ("AB" + v[2:]) if v.startswith(("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")) else v
        for v in ni
    ]
    cards = [_luhn_complete("4" + "".join(map(str, rng.integers(0, 10, 14)))) for _ in range(rows)]
    cards = [f"{c[:4]} {c[4:8]} {c[8:12]} {c[12:]}" if i % 2 else c for i, c in enumerate(cards)]
    ips = [
        f"{a}.{b}.{c}.{d}" if i % 3 else f"2001:db8::{a:x}:{b:x}"
        for i, (a, b, c, d) in enumerate(rng.integers(1, 255, (rows, 4)))
    ]
    notes = rng.choice(["", "leave at door", 'said "thanks"', "fragile, handle\nwith care"], rows)
    return {
        "customer_id": [str(100_000 + i) for i in range(rows)],
        "name": names,
        "email_address": emails,
        "phone": phones,
        "postcode": list(rng.choice(POSTCODES, rows)),
        "ni_number": ni,
        "card_number": cards,
        "ip_address": ips,
        "order_ref": [f"{i:03d}" for i in rng.integers(0, 1000, rows)],
        "price": [f"{p / 100:.2f}" for p in rng.integers(50, 50_000, rows)],
        "quantity": [str(q) for q in rng.integers(1, 20, rows)],
        "product_code": [f"SKU-{c:05d}" for c in rng.integers(0, 99_999, rows)],
        "product_name": list(rng.choice(PRODUCTS, rows)),
        "city": list(rng.choice(CITIES, rows)),
        "order_date": [f"2024-{m:02d}-{d:02d}" for m, d in rng.integers(1, 13, (rows, 2))],
        "notes": list(notes),
    }


def to_csv(columns: dict[str, list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return out.getvalue().encode()


def to_records(columns: dict[str, list[str]]) -> list[dict[str, object]]:
    """JSON records with native types: numbers as numbers, a nested object, absent keys."""
    records: list[dict[str, object]] = []
    for i, row in enumerate(zip(*columns.values(), strict=True)):
        record: dict[str, object] = dict(zip(columns, row, strict=True))
        record["customer_id"] = int(str(record["customer_id"]))
        record["price"] = float(str(record["price"]))
        record["quantity"] = int(str(record["quantity"]))
        record["basket"] = {"items": [1, 2], "gift": i % 2 == 0}
        if i % 5 == 4:
            del record["notes"]
        records.append(record)
    return records


def to_json(columns: dict[str, list[str]]) -> bytes:
    return json.dumps(to_records(columns), indent=2).encode()


def to_jsonl(columns: dict[str, list[str]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in to_records(columns)).encode()


def to_table(columns: dict[str, list[str]]) -> pa.Table:
    """Typed columns, the way a Parquet file holds them."""
    typed = dict(columns)
    table = pa.table({name: pa.array(values, pa.string()) for name, values in typed.items()})
    return (
        table.set_column(
            table.schema.get_field_index("customer_id"),
            "customer_id",
            pa.array([int(v) for v in columns["customer_id"]], pa.int64()),
        )
        .set_column(
            table.schema.get_field_index("price"),
            "price",
            pa.array([float(v) for v in columns["price"]], pa.float64()),
        )
        .set_column(
            table.schema.get_field_index("order_date"),
            "order_date",
            pa.array(columns["order_date"]).cast(pa.date32()),
        )
    )


def to_parquet(columns: dict[str, list[str]], *, row_group_size: int = 64) -> bytes:
    sink = io.BytesIO()
    pq.write_table(to_table(columns), sink, row_group_size=row_group_size)
    return sink.getvalue()


WRITERS = {"csv": to_csv, "json": to_json, "jsonl": to_jsonl, "parquet": to_parquet}
