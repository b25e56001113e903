"""A real S3 endpoint on localhost (moto in server mode), reached through the environment.

The server runs once per session; each test gets its own bucket and an environment
holding only fake credentials and ``AWS_ENDPOINT_URL``, exactly how production
code is pointed at S3, so nothing in the code under test knows it is a test.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto.server import ThreadedMotoServer

from headwater.settings import Settings
from tests.data.privacy.people import WRITERS, people_columns

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "eu-west-2"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Only the environment points boto3 at the local endpoint, as it would in production."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto_endpoint


@dataclass
class Bucket:
    client: S3Client
    name: str

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)
        return f"s3://{self.name}/{key}"

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def listing(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture
def bucket(aws_env: str) -> Bucket:
    client = boto3.client("s3")
    name = f"hw-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return Bucket(client=client, name=name)


@pytest.fixture
def people() -> dict[str, list[str]]:
    return people_columns(200, seed=7)


@pytest.fixture
def keyed() -> Settings:
    return Settings(pseudonym_key="test-key-one")


@dataclass
class Store:
    """Where a test keeps its files: a local folder or an S3 bucket, same two methods."""

    kind: str
    folder: Path
    bucket: Bucket | None

    def put(self, name: str, body: bytes) -> str:
        if self.bucket is not None:
            return self.bucket.put(f"new_data/{name}", body)
        path = self.folder / name
        path.write_bytes(body)
        return str(path)

    def read(self, location: str) -> bytes:
        if self.bucket is not None:
            return self.bucket.get(location.split("/", 3)[3])
        return Path(location).read_bytes()

    def exists(self, location: str) -> bool:
        if self.bucket is not None:
            return location.split("/", 3)[3] in self.bucket.listing()
        return Path(location).exists()

    def destination(self, name: str) -> str:
        if self.bucket is not None:
            return f"s3://{self.bucket.name}/safe/{name}"
        return str(self.folder / "safe" / name)


@pytest.fixture(params=["local", "s3"], ids=str)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each test using this runs twice: on local files and through the S3 endpoint."""
    (tmp_path / "safe").mkdir()
    if request.param == "local":
        return Store(kind="local", folder=tmp_path, bucket=None)
    return Store(kind="s3", folder=tmp_path, bucket=request.getfixturevalue("bucket"))


__all__ = ["WRITERS", "Bucket", "Store"]
