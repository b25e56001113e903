"""The S3 sink against a local moto server: a large file goes up as a multipart upload."""

from __future__ import annotations

import hashlib
import os

import pytest

from headwater.storage import sinks
from tests.data.privacy.conftest import Bucket, aws_env, bucket, moto_endpoint  # noqa: F401

MIB = 1024 * 1024


def test_a_large_part_goes_up_in_chunks_with_its_sha256(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks, "MULTIPART_BYTES", 5 * MIB)  # S3's smallest chunk
    body = os.urandom(11 * MIB)
    sha = hashlib.sha256(body).hexdigest()
    sink = sinks.open_sink(f"s3://{bucket.name}/big/")
    sink.put("part-00000.parquet", body, sha)
    head = bucket.client.head_object(Bucket=bucket.name, Key="big/part-00000.parquet")
    assert head["ETag"].strip('"').endswith("-3")  # three chunks: 5, 5 and 1 MiB
    assert sink.sha256("part-00000.parquet") == sha
    assert bucket.get("big/part-00000.parquet") == body
