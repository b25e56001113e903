"""Local and S3 locations: all-or-nothing writes, endpoints from the environment."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from headwater.data.privacy import open_destination, same_location, write_to
from headwater.data.privacy.s3 import parse_s3_url
from headwater.data.privacy.sources import open_source
from headwater.errors import ConfigError, LocationNotFound
from tests.data.privacy.conftest import Bucket


def _fail_half_way(destination: str) -> None:
    with open_destination(destination) as sink:
        sink.write(b"half")
        raise RuntimeError("failed half way")


def test_write_to_local_goes_through_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    assert write_to(str(target), b"a,b\n1,2\n") == 8
    assert target.read_bytes() == b"a,b\n1,2\n"
    assert write_to(str(target), io.BytesIO(b"x\n")) == 2
    assert target.read_bytes() == b"x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_failed_local_write_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"previous\n")
    with pytest.raises(RuntimeError, match="half way"):
        _fail_half_way(str(target))
    assert target.read_bytes() == b"previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_to_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(LocationNotFound, match="folder"):
        write_to(str(tmp_path / "nope" / "out.csv"), b"x")


def test_write_to_s3_bytes_and_stream(bucket: Bucket) -> None:
    write_to(f"s3://{bucket.name}/safe/a.csv", b"a\n1\n")
    write_to(f"s3://{bucket.name}/safe/b.csv", io.BytesIO(b"b\n2\n"))
    assert bucket.get("safe/a.csv") == b"a\n1\n"
    assert bucket.get("safe/b.csv") == b"b\n2\n"


def test_failed_s3_write_uploads_nothing(bucket: Bucket) -> None:
    with pytest.raises(RuntimeError, match="half way"):
        _fail_half_way(f"s3://{bucket.name}/safe/a.csv")
    assert bucket.listing() == []


def test_write_to_missing_bucket(aws_env: str) -> None:
    with pytest.raises(LocationNotFound, match="no-such-bucket-hw"):
        write_to("s3://no-such-bucket-hw/a.csv", b"x")
    with pytest.raises(LocationNotFound, match="no-such-bucket-hw"):
        write_to("s3://no-such-bucket-hw/a.csv", io.BytesIO(b"x"))


def test_service_specific_endpoint_variable_is_honoured(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put("k.csv", b"a\n")
    endpoint = bucket.client.meta.endpoint_url
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    with open_source(f"s3://{bucket.name}/k.csv") as stream:
        assert stream.read() == b"a\n"


def test_seekable_s3_reader_reads_ranges(bucket: Bucket) -> None:
    body = bytes(range(256)) * 100
    bucket.put("blob.parquet", body)
    with open_source(f"s3://{bucket.name}/blob.parquet", seekable=True) as stream:
        stream.seek(-10, io.SEEK_END)
        assert stream.read() == body[-10:]
        stream.seek(1000)
        assert stream.read(5) == body[1000:1005]


@pytest.mark.parametrize("url", ["s3://", "s3://bucket", "s3://bucket/", "s3://bucket/dir/"])
def test_bad_s3_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="s3://bucket/path"):
        parse_s3_url(url)


def test_other_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'https'"), open_source("https://example.com/a.csv"):
        pass


def test_same_location(tmp_path: Path) -> None:
    assert same_location(str(tmp_path / "a.csv"), str(tmp_path / "." / "a.csv"))
    assert not same_location("s3://b/a.csv", "s3://b/b.csv")
