"""obfuscate / obfuscate_to: every format, local and through S3, every mode, streaming."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from headwater.data.privacy import (
    formats,
    json_records,
    obfuscate,
    obfuscate_to,
    open_destination,
)
from headwater.data.privacy.modes import MASK
from headwater.errors import FormatError, SchemaError
from headwater.settings import Settings
from tests.data.privacy.checks import assert_no_values_leak, assert_obfuscated, load_rows
from tests.data.privacy.conftest import Bucket, Store
from tests.data.privacy.people import PII_FIELDS, WRITERS, people_columns, to_csv

FORMATS = ["csv", "json", "jsonl", "parquet"]
TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _request(location: str, fields: list[str], **extra: object) -> str:
    return json.dumps({"file_to_obfuscate": location, "pii_fields": fields, **extra})


@pytest.mark.parametrize("fmt", FORMATS)
def test_mask_keeps_every_other_value_and_leaks_nothing(
    fmt: str, store: Store, people: dict[str, list[str]]
) -> None:
    before = WRITERS[fmt](people)
    source = store.put(f"file1.{fmt}", before)

    after = obfuscate(_request(source, PII_FIELDS))

    assert isinstance(after, bytes)
    assert_obfuscated(fmt, before, after, dict.fromkeys(PII_FIELDS, MASK))
    assert_no_values_leak(fmt, before, after, PII_FIELDS)
    assert store.read(source) == before  # the source is never modified


def test_csv_output_is_byte_identical_outside_pii_cells(
    tmp_path: Path, people: dict[str, list[str]]
) -> None:
    """Minimal quoting and the same line ending: only the PII cells differ from the input."""
    path = tmp_path / "file1.csv"
    path.write_bytes(to_csv(people))
    masked = {**people, "name": [MASK] * len(people["name"])}

    assert obfuscate(_request(str(path), ["name"])) == to_csv(masked)


def test_csv_keeps_text_exactly_and_crlf(tmp_path: Path) -> None:
    data = b'id,name,price,note\r\n007,"Smith, Jo",1.50,"a ""b"""\r\n008,,0010,\r\n'
    path = tmp_path / "crlf.csv"
    path.write_bytes(data)
    out = obfuscate(_request(str(path), ["name"]))
    assert out == b'id,name,price,note\r\n007,***,1.50,"a ""b"""\r\n008,,0010,\r\n'


def test_pseudonym_is_stable_across_files_and_formats_and_differs_by_key(
    store: Store, people: dict[str, list[str]], keyed: Settings
) -> None:
    csv_source = store.put("file1.csv", WRITERS["csv"](people))
    jsonl_source = store.put("file2.jsonl", WRITERS["jsonl"](people))
    request = {"pii_fields": ["email_address", "name"], "mode": "pseudonym"}

    first = load_rows(
        "csv", obfuscate(json.dumps({"file_to_obfuscate": csv_source, **request}), settings=keyed)
    )
    second = load_rows(
        "jsonl",
        obfuscate(json.dumps({"file_to_obfuscate": jsonl_source, **request}), settings=keyed),
    )
    other_key = load_rows(
        "csv",
        obfuscate(
            json.dumps({"file_to_obfuscate": csv_source, **request}),
            settings=Settings(pseudonym_key="another-key"),
        ),
    )

    assert [r["email_address"] for r in first] == [r["email_address"] for r in second]
    assert all(TOKEN.match(str(r["email_address"])) for r in first)
    assert all(
        a["email_address"] != b["email_address"] for a, b in zip(first, other_key, strict=True)
    )
    # same person, same token: a join on the token pairs the same rows as on the email
    by_email: dict[str, set[str]] = {}
    for original, token in zip(people["name"], (r["name"] for r in first), strict=True):
        by_email.setdefault(original, set()).add(str(token))
    assert all(len(tokens) == 1 for tokens in by_email.values())
    assert len({next(iter(t)) for t in by_email.values()}) == len(by_email)


@pytest.mark.parametrize("fmt", FORMATS)
def test_drop_and_generalise(fmt: str, tmp_path: Path, people: dict[str, list[str]]) -> None:
    people["age"] = [str(18 + (i * 7) % 70) for i in range(len(people["name"]))]
    before = WRITERS[fmt](people)
    path = tmp_path / f"file.{fmt}"
    path.write_bytes(before)
    modes = {
        "ni_number": "drop",
        "card_number": "drop",
        "postcode": "generalise",
        "age": "generalise",
    }

    after = obfuscate(_request(str(path), list(modes), modes=modes))

    def band(value: object) -> str:
        low = int(str(value)) // 10 * 10
        return f"{low}-{low + 9}"

    expected: dict[str, object] = {
        "ni_number": "drop",
        "card_number": "drop",
        "postcode": lambda v: str(v).split()[0],
        "age": band,
    }
    assert_obfuscated(fmt, before, after, expected)


def test_generalise_dates_in_parquet_keeps_other_types(
    tmp_path: Path, people: dict[str, list[str]]
) -> None:
    before = WRITERS["parquet"](people)
    path = tmp_path / "orders.parquet"
    path.write_bytes(before)

    after = obfuscate(
        _request(str(path), ["order_date", "name"], modes={"order_date": "generalise"})
    )

    table_in = pq.read_table(io.BytesIO(before))
    table_out = pq.read_table(io.BytesIO(after))
    assert table_out.column("order_date").to_pylist() == [
        d.strftime("%Y-%m") for d in table_in.column("order_date").to_pylist()
    ]
    for field in table_in.schema:
        if field.name not in ("order_date", "name"):
            assert table_out.schema.field(field.name).type == field.type
            assert table_out.column(field.name).equals(table_in.column(field.name))
    meta_in, meta_out = (
        pq.ParquetFile(io.BytesIO(before)).metadata,
        pq.ParquetFile(io.BytesIO(after)).metadata,
    )
    assert meta_out.num_row_groups == meta_in.num_row_groups
    assert [meta_out.row_group(i).num_rows for i in range(meta_out.num_row_groups)] == [
        meta_in.row_group(i).num_rows for i in range(meta_in.num_row_groups)
    ]


def test_json_keeps_absent_keys_absent_and_nested_values(tmp_path: Path) -> None:
    records = [
        {"id": 1, "name": "Alice Smith", "tags": {"vip": True}, "score": 1.5},
        {"id": 2, "tags": [], "score": 2},
        {"id": 3, "name": None, "score": None},
    ]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = [json.loads(line) for line in obfuscate(_request(str(path), ["name"])).splitlines()]
    assert out == [
        {"id": 1, "name": MASK, "tags": {"vip": True}, "score": 1.5},
        {"id": 2, "tags": [], "score": 2},
        {"id": 3, "name": None, "score": None},
    ]


def test_json_array_with_a_non_object_names_its_index(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text('[{"email": "a@b.com"}, {"email": "c@d.com"}, 3]')
    with pytest.raises(FormatError, match=r"mixed\.json: .*found a int at index 2"):
        obfuscate(_request(str(path), ["email"]))


def test_json_file_holding_json_lines_is_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"a": 1, "email": "x@y.com"}\n{"a": 2, "email": "z@y.com"}\n')
    out = obfuscate(_request(str(path), ["email"])).decode()
    assert out == '{"a": 1, "email": "***"}\n{"a": 2, "email": "***"}\n'


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_streams_in_many_small_chunks(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks far smaller than the file: results are the same as in one block."""
    columns = people_columns(2_000, seed=3)
    before = WRITERS[fmt](columns)
    path = tmp_path / f"big.{fmt}"
    path.write_bytes(before)
    whole = obfuscate(_request(str(path), PII_FIELDS))
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(json_records, "LINES_BLOCK_BYTES", 4096)
    monkeypatch.setattr(json_records, "ARRAY_CHUNK_RECORDS", 7)
    sink = io.BytesIO()

    report = obfuscate_to(_request(str(path), PII_FIELDS), sink)

    assert report.rows == 2_000
    assert sink.getvalue() == whole
    assert_obfuscated(fmt, before, sink.getvalue(), dict.fromkeys(PII_FIELDS, MASK))


def test_one_megabyte_csv_with_five_pii_fields_through_s3(bucket: Bucket) -> None:
    """The acceptance case: 1 MB in, five fields masked, bytes straight back to put_object."""
    columns = people_columns(6_000, seed=11)
    data = to_csv(columns)
    assert len(data) > 1_000_000
    source = bucket.put("new_data/file1.csv", data)
    fields = ["name", "email_address", "phone", "postcode", "card_number"]

    out = obfuscate(_request(source, fields))
    bucket.client.put_object(Bucket=bucket.name, Key="safe/file1.csv", Body=out)

    stored = bucket.get("safe/file1.csv")
    assert stored == out
    assert_obfuscated("csv", data, stored, dict.fromkeys(fields, MASK))
    assert_no_values_leak("csv", data, stored, fields)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_stream_into_an_all_or_nothing_destination(
    fmt: str, store: Store, people: dict[str, list[str]]
) -> None:
    source = store.put(f"file1.{fmt}", WRITERS[fmt](people))
    destination = store.destination(f"file1.{fmt}")

    with open_destination(destination) as sink:
        report = obfuscate_to(_request(source, PII_FIELDS), sink)

    assert report.rows == len(people["name"])
    assert store.read(destination) == obfuscate(_request(source, PII_FIELDS))


def test_json_nested_fields_by_dotted_path(tmp_path: Path) -> None:
    records = [
        {
            "id": 1,
            "customer": {"name": "Alice Smith", "email": "alice@example.com", "tier": "gold"},
            "contacts": [{"phone": "07700 900123", "kind": "home"}, {"kind": "none"}],
        },
        {"id": 2, "customer": {"tier": "silver"}, "contacts": []},
        {"id": 3, "customer.email": "flat@example.com", "customer": None},
    ]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(records))
    fields = ["customer.email", "customer.name", "contacts.phone"]
    out = json.loads(obfuscate(_request(str(path), fields)))
    assert out == [
        {
            "id": 1,
            "customer": {"name": MASK, "email": MASK, "tier": "gold"},
            "contacts": [{"phone": MASK, "kind": "home"}, {"kind": "none"}],
        },
        {"id": 2, "customer": {"tier": "silver"}, "contacts": []},
        {"id": 3, "customer.email": MASK, "customer": None},  # the literal key wins
    ]
    assert b"alice@example.com" not in obfuscate(_request(str(path), fields))


def test_json_nested_path_in_no_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"customer": {"email": "a@b.com"}}\n')
    with pytest.raises(SchemaError, match=r"'customer\.phone' in no record.*dotted path"):
        obfuscate(_request(str(path), ["customer.phone"]))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("people.csv", 'id;name;city\n1;"Smith; Alice";Paris\n2;Bob;"Rome; IT"\n'),
        ("people.tsv", "id\tname\tcity\n1\tAlice, Smith\tParis\n2\tBob\tRome\n"),
        ("people.csv", "id|name|city\n1|Alice|Paris\n2|Bob|Rome\n"),
    ],
)
def test_csv_keeps_its_own_delimiter(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    delimiter = text[2]
    out = obfuscate(_request(str(path), ["name"])).decode()
    rows = list(csv.reader(out.splitlines(), delimiter=delimiter))
    originals = list(csv.reader(text.splitlines(), delimiter=delimiter))
    assert rows[0] == ["id", "name", "city"]
    assert [r[1] for r in rows[1:]] == [MASK, MASK]
    assert [r[2] for r in rows[1:]] == [r[2] for r in originals[1:]]
    assert out.splitlines()[2].endswith(text.splitlines()[2].rsplit(delimiter, 1)[-1])


@pytest.mark.parametrize("name", ["people.csv.gz", "people.jsonl.gz", "people.json.gz"])
def test_gzipped_source_gives_gzipped_output(tmp_path: Path, name: str) -> None:
    plain = tmp_path / name.removesuffix(".gz")
    if name.startswith("people.csv"):
        plain.write_text("id,email\n1,a@b.com\n2,c@d.com\n")
    elif ".jsonl" in name:
        plain.write_text('{"id": 1, "email": "a@b.com"}\n{"id": 2, "email": "c@d.com"}\n')
    else:
        plain.write_text('[{"id": 1, "email": "a@b.com"}, {"id": 2, "email": "c@d.com"}]')
    zipped = tmp_path / name
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    out = obfuscate(_request(str(zipped), ["email"]))
    assert gzip.decompress(out) == obfuscate(_request(str(plain), ["email"]))
    assert b"a@b.com" not in gzip.decompress(out)


def test_truncated_gzip_source_writes_nothing(tmp_path: Path) -> None:
    from headwater.data.privacy import open_destination

    body = "".join(f"{i},user{i}@example.com\n" for i in range(50_000))
    whole = gzip.compress(("id,email\n" + body).encode())
    source = tmp_path / "people.csv.gz"
    source.write_bytes(whole[: len(whole) // 2])
    target = tmp_path / "safe.csv.gz"
    with (
        pytest.raises(FormatError, match=r"people\.csv\.gz: .*(truncated|corrupt)"),
        open_destination(str(target)) as sink,
    ):
        obfuscate_to(_request(str(source), ["email"]), sink)
    assert not target.exists()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_progress_counts_rows_as_batches_are_written(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"big.{fmt}"
    path.write_bytes(WRITERS[fmt](people_columns(3_000, seed=5)))
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", 8192)
    monkeypatch.setattr(json_records, "ARRAY_CHUNK_RECORDS", 500)
    seen: list[int] = []
    report = obfuscate_to(_request(str(path), ["name"]), io.BytesIO(), progress=seen.append)
    assert seen and seen[-1] == report.rows == 3_000
    assert seen == sorted(seen)
    if fmt != "parquet":  # a small Parquet file is one row group
        assert len(seen) > 1
