"""`from headwater.privacy import obfuscate`: bytes or a stream for put_object, clear errors."""

from __future__ import annotations

import inspect
import json

import pytest

import headwater.privacy as public
from headwater.data.privacy.modes import MASK
from headwater.errors import ConfigError, LocationNotFound, SchemaError
from headwater.privacy import obfuscate, obfuscate_stream, obfuscate_to_output
from tests.data.privacy.checks import assert_no_values_leak, assert_obfuscated
from tests.data.privacy.conftest import Bucket
from tests.data.privacy.people import PII_FIELDS, WRITERS

FORMATS = ["csv", "json", "jsonl", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_bytes_go_into_put_object_unchanged_and_read_back_equal(
    fmt: str, bucket: Bucket, people: dict[str, list[str]]
) -> None:
    before = WRITERS[fmt](people)
    source = bucket.put(f"new_data/file1.{fmt}", before)

    body = obfuscate({"file_to_obfuscate": source, "pii_fields": PII_FIELDS})

    assert type(body) is bytes
    bucket.client.put_object(Bucket=bucket.name, Key=f"safe/file1.{fmt}", Body=body)
    assert bucket.get(f"safe/file1.{fmt}") == body
    assert_obfuscated(fmt, before, body, dict.fromkeys(PII_FIELDS, MASK))
    assert_no_values_leak(fmt, before, body, PII_FIELDS)
    assert bucket.get(f"new_data/file1.{fmt}") == before


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_stream_goes_into_put_object_and_equals_the_bytes(
    fmt: str, bucket: Bucket, people: dict[str, list[str]]
) -> None:
    source = bucket.put(f"new_data/file1.{fmt}", WRITERS[fmt](people))
    request = json.dumps({"file_to_obfuscate": source, "pii_fields": ["name", "email_address"]})

    with obfuscate_stream(request) as stream:
        bucket.client.put_object(Bucket=bucket.name, Key=f"safe/big.{fmt}", Body=stream)

    assert bucket.get(f"safe/big.{fmt}") == obfuscate(request)


def test_an_output_in_the_request_is_written_too(
    bucket: Bucket, people: dict[str, list[str]]
) -> None:
    source = bucket.put("new_data/file1.csv", WRITERS["csv"](people))
    output = f"s3://{bucket.name}/safe/file1.csv"

    body = obfuscate({"file_to_obfuscate": source, "pii_fields": ["name"], "output": output})

    assert bucket.get("safe/file1.csv") == body
    report = obfuscate_to_output({"file_to_obfuscate": source, "pii_fields": ["name"]}, output)
    assert report.rows == len(people["name"])
    assert bucket.get("safe/file1.csv") == body


def test_an_output_onto_the_source_is_refused_before_anything_is_read(bucket: Bucket) -> None:
    source = bucket.put("new_data/file1.csv", b"id,name\n1,Alice Smith\n")
    with pytest.raises(ConfigError, match="never overwritten"):
        obfuscate({"file_to_obfuscate": source, "pii_fields": ["name"], "output": source})
    with pytest.raises(ConfigError, match="no output named"):
        obfuscate_to_output({"file_to_obfuscate": source, "pii_fields": ["name"]})
    assert bucket.get("new_data/file1.csv") == b"id,name\n1,Alice Smith\n"


def test_a_field_not_in_the_file_is_a_schema_error_naming_it(bucket: Bucket) -> None:
    source = bucket.put("new_data/file1.csv", b"id,name\n1,Alice Smith\n")
    with pytest.raises(SchemaError, match="'email_address' not in the file") as caught:
        obfuscate({"file_to_obfuscate": source, "pii_fields": ["name", "email_address"]})
    assert caught.value.field == "email_address"  # type: ignore[attr-defined]
    assert "Alice" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:/bucket/new_data/file1.csv", "not an S3 object URL"),
        ("s3://bucket", "not an S3 object URL"),
        ("s3://bucket/new_data/", "not an S3 object URL"),
        ("S3://bucket/file1.csv", "not an S3 object URL"),
        ("s3://My Bucket/file1.csv", "not a valid S3 bucket name"),
    ],
)
def test_a_malformed_s3_url_is_a_usage_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        obfuscate({"file_to_obfuscate": url, "pii_fields": ["name"]})


def test_a_missing_object_or_bucket_is_not_found(bucket: Bucket) -> None:
    with pytest.raises(LocationNotFound, match=r"key 'new_data/nope\.csv'"):
        obfuscate(
            {"file_to_obfuscate": f"s3://{bucket.name}/new_data/nope.csv", "pii_fields": ["a"]}
        )
    with pytest.raises(LocationNotFound, match="bucket 'hw-no-such-bucket'"):
        obfuscate({"file_to_obfuscate": "s3://hw-no-such-bucket/a.parquet", "pii_fields": ["a"]})


def test_all_names_the_public_call_and_everything_defined_here() -> None:
    assert {"obfuscate", "obfuscate_stream", "obfuscate_to_output"} <= set(public.__all__)
    defined = {
        name
        for name, member in vars(public).items()
        if not name.startswith("_") and getattr(member, "__module__", None) == public.__name__
    }
    assert defined <= set(public.__all__)
    for name in public.__all__:
        member = getattr(public, name)
        if inspect.isfunction(member) or inspect.isclass(member):
            assert inspect.getdoc(member), name
