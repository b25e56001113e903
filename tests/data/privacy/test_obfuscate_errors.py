"""Every refusal names the file and the field, and leaves nothing behind."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from headwater.data.privacy import obfuscate, obfuscate_to, open_destination
from headwater.errors import (
    AccessDenied,
    ConfigError,
    FormatError,
    HeadwaterError,
    LocationNotFound,
    SchemaError,
)
from headwater.settings import Settings
from tests.data.privacy.checks import assert_no_values_leak
from tests.data.privacy.conftest import Bucket, Store
from tests.data.privacy.people import WRITERS, to_csv


def _request(location: str, fields: list[str], **extra: object) -> str:
    return json.dumps({"file_to_obfuscate": location, "pii_fields": fields, **extra})


def _refused(store: Store, request: str, error: type[HeadwaterError]) -> HeadwaterError:
    """Run through an all-or-nothing destination; assert the error and that nothing landed."""
    destination = store.destination("out" + Path(json.loads(request)["file_to_obfuscate"]).suffix)
    with pytest.raises(error) as caught, open_destination(destination) as sink:
        obfuscate_to(request, sink)
    assert not store.exists(destination)
    if store.bucket is None:
        assert list((store.folder / "safe").iterdir()) == []
    else:
        assert [k for k in store.bucket.listing() if k.startswith("safe/")] == []
    return caught.value


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_pii_field_not_in_file_names_file_and_field(
    fmt: str, store: Store, people: dict[str, list[str]]
) -> None:
    source = store.put(f"file1.{fmt}", WRITERS[fmt](people))
    error = _refused(store, _request(source, ["name", "emial"]), SchemaError)
    assert isinstance(error, SchemaError)
    assert error.field == "emial"
    assert error.path == source
    assert source in str(error)
    assert "'emial'" in str(error)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("ragged.csv", b"id,name\n1,Alice\n2,Bob,extra,cells\n"),
        ("empty.csv", b""),
        ("latin1.csv", b"id,name\n1,Ren\xe9e Dupont\n"),
        ("broken.json", b'[{"id": 1, "name": "Alice"},'),
        ("scalar.json", b'{"id": 1}\n"just text"\n'),
        ("broken.jsonl", b'{"id": 1, "name": "Alice"}\n{"id": 2, "name": \n'),
        ("truncated.parquet", b"PAR1 not really parquet"),
    ],
)
def test_malformed_file_is_a_format_error_naming_the_file(
    name: str, body: bytes, store: Store
) -> None:
    source = store.put(name, body)
    error = _refused(store, _request(source, ["name"]), FormatError)
    assert source in str(error)
    assert "Bob" not in str(error)  # a parse error never quotes the row it choked on


def test_unsupported_extension(store: Store) -> None:
    source = store.put("people.xlsx", b"PK\x03\x04")
    error = _refused(store, _request(source, ["name"]), FormatError)
    assert source in str(error)
    assert ".xlsx" in str(error)
    assert ".csv" in str(error)


def test_missing_bucket(aws_env: str, tmp_path: Path) -> None:
    with pytest.raises(LocationNotFound) as caught:
        obfuscate(_request("s3://no-such-bucket-hw/new_data/file1.csv", ["name"]))
    assert "no-such-bucket-hw" in str(caught.value)
    assert "bucket" in str(caught.value)
    assert caught.value.location == "s3://no-such-bucket-hw/new_data/file1.csv"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_key(fmt: str, bucket: Bucket) -> None:
    source = f"s3://{bucket.name}/new_data/absent.{fmt}"
    with pytest.raises(LocationNotFound) as caught:
        obfuscate(_request(source, ["name"]))
    assert source in str(caught.value)
    assert "key" in str(caught.value)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(LocationNotFound, match=r"absent\.csv"):
        obfuscate(_request(str(tmp_path / "absent.csv"), ["name"]))


def test_writing_to_a_missing_bucket_writes_nothing(
    bucket: Bucket, people: dict[str, list[str]]
) -> None:
    source = bucket.put("new_data/file1.csv", to_csv(people))
    with (
        pytest.raises(LocationNotFound, match="no-such-bucket-hw"),
        open_destination("s3://no-such-bucket-hw/safe/file1.csv") as sink,
    ):
        obfuscate_to(_request(source, ["name"]), sink)


@pytest.fixture
def restricted_credentials(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A user allowed only to list buckets, with IAM checks switched on in the moto server."""
    iam = boto3.client("iam")
    user = f"analyst-{bucket.name}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="list-only", PolicyDocument=json.dumps(policy))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with enable_iam_authentication():
        yield


def test_access_denied_names_the_object_and_never_the_secret(
    bucket: Bucket, people: dict[str, list[str]], request: pytest.FixtureRequest
) -> None:
    source = bucket.put("new_data/file1.csv", to_csv(people))
    request.getfixturevalue("restricted_credentials")
    import os

    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    with pytest.raises(AccessDenied) as caught:
        obfuscate(_request(source, ["name"]))
    assert source in str(caught.value)
    assert "access denied" in str(caught.value)
    assert secret not in str(caught.value)
    assert not isinstance(caught.value, ConfigError)  # 403 / exit 6, not a bad argument


def test_pseudonym_without_key_is_a_config_error_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADWATER_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="HEADWATER_PSEUDONYM_KEY"):
        obfuscate(
            _request(str(tmp_path / "never-read.csv"), ["name"], mode="pseudonym"),
            settings=Settings(),
        )


def test_leak_check_would_catch_a_leak(people: dict[str, list[str]]) -> None:
    """The checker used above fails when the output still holds the people."""
    data = to_csv(people)
    with pytest.raises(AssertionError):
        assert_no_values_leak("csv", data, data, ["name"])
    assert io.BytesIO(data).read(2) == b"cu"
