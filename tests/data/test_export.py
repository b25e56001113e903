"""Export in parts to a folder and to S3 (a local moto server), manifest last."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import io
import json
import threading
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from headwater.flows.export import export
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage import sinks
from tests.builders import write_mnist_pickle
from tests.data.kill import kill_at
from tests.data.privacy.conftest import Bucket, aws_env, bucket, moto_endpoint  # noqa: F401


@pytest.fixture
def loaded(workspace: Workspace, tmp_path: Path) -> Workspace:
    workspace.ingest(write_mnist_pickle(tmp_path / "mnist.pkl.gz"), dataset="digits")
    return workspace


def _rows(workspace: Workspace) -> int:
    return sum(
        pq.ParquetFile(p).metadata.num_rows
        for p in (workspace.lake.root / "curated" / "digits").rglob("*.parquet")
    )


def test_folder_parts_manifest_and_rerun_writes_nothing(loaded: Workspace, tmp_path: Path) -> None:
    total = _rows(loaded)
    out = tmp_path / "out"
    report = export(loaded, "digits", str(out), fmt="csv", part_rows=7)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == total
    assert [p["rows"] for p in manifest["parts"]] == [7] * (total // 7) + (
        [total % 7] if total % 7 else []
    )
    for part in manifest["parts"]:
        body = (out / part["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
        assert pcsv.read_csv(io.BytesIO(body)).num_rows == part["rows"]
    assert report.written == len(manifest["parts"]) + 1
    again = export(loaded, "digits", str(out), fmt="csv", part_rows=7)
    assert again.written == 0


def _manifest_is_right(bucket: Bucket, prefix: str, total: int, fmt: str) -> dict[str, object]:
    """The manifest counts every row, and each part it names holds its rows and sha256."""
    manifest = json.loads(bucket.get(f"{prefix}manifest.json"))
    assert manifest["rows"] == total
    for part in manifest["parts"]:
        body = bucket.get(f"{prefix}{part['file']}")
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
        read = pq.read_table if fmt == "parquet" else pcsv.read_csv
        assert read(io.BytesIO(body)).num_rows == part["rows"]
    return manifest


def _stored_alike(bucket: Bucket, prefix: str, parts: list[dict[str, object]]) -> int:
    """How many of these parts the bucket already holds with the same sha256."""
    held = 0
    for part in parts:
        try:
            head = bucket.client.head_object(Bucket=bucket.name, Key=f"{prefix}{part['file']}")
        except bucket.client.exceptions.ClientError:
            continue
        held += head["Metadata"].get("sha256") == part["sha256"]
    return held


def test_s3_export_killed_midway_leaves_no_manifest_and_rerun_completes(
    bucket: Bucket, tmp_path: Path
) -> None:
    """A real export process, SIGKILLed once some parts are up (4 upload threads)."""
    settings = Settings(home=tmp_path / "home")
    with Workspace(settings) as workspace:  # closed: the child opens the same DuckDB file
        workspace.ingest(write_mnist_pickle(tmp_path / "mnist.pkl.gz"), dataset="digits")
        total = _rows(workspace)
        prefix, dest = "exports/digits/", f"s3://{bucket.name}/exports/digits/"
        first = export(workspace, "digits", dest, fmt="parquet", part_rows=10)
        assert first.written == len(first.parts) + 1 == total // 10 + 1
        _manifest_is_right(bucket, prefix, total, "parquet")
    # new parts (smaller): the old manifest goes before the first part changes, then the kill
    kill_at("export_part_stored", ["export", "digits", "--to", dest, "--part-rows", "4"], settings)
    assert f"{prefix}manifest.json" not in bucket.listing()
    with Workspace(settings) as workspace:
        expected = export(workspace, "digits", str(tmp_path / "plan"), fmt="parquet", part_rows=4)
        already = _stored_alike(bucket, prefix, expected.parts)
        assert 1 <= already < len(expected.parts)
        done = export(workspace, "digits", dest, fmt="parquet", part_rows=4)
        assert done.written == len(done.parts) - already + 1  # the missing parts, the manifest
        manifest = _manifest_is_right(bucket, prefix, total, "parquet")
        assert manifest["parts"] == expected.parts
        assert export(workspace, "digits", dest, fmt="parquet", part_rows=4).written == 0


def test_a_failing_upload_leaves_no_manifest(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The export touches only the lake: one backend is enough."""
    dest = f"s3://{bucket.name}/x/"
    real_put = sinks.S3Sink.put

    def failing_put(self: sinks.S3Sink, name: str, body: bytes, sha256: str) -> None:
        if name == "part-00002.csv":
            raise sinks.StorageError(name, "injected: the connection dropped")
        real_put(self, name, body, sha256)

    with Workspace(Settings(home=tmp_path / "home")) as workspace:
        workspace.ingest(write_mnist_pickle(tmp_path / "mnist.pkl.gz"), dataset="digits")
        export(workspace, "digits", dest, fmt="csv", part_rows=10)
        monkeypatch.setattr(sinks.S3Sink, "put", failing_put)
        with pytest.raises(sinks.StorageError, match="injected"):
            export(workspace, "digits", dest, fmt="csv", part_rows=4)
    assert "x/manifest.json" not in bucket.listing()


class _Flaky(http.server.BaseHTTPRequestHandler):
    """In front of moto: the first uploads of parts answer 503 Slow Down, the rest pass."""

    upstream = ""
    refusals = 0

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and "part-" in self.path and type(self).refusals > 0:
            type(self).refusals -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        host = self.upstream.removeprefix("http://")
        conn = http.client.HTTPConnection(host, timeout=30)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers))
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _relay

    def log_message(self, *args: object) -> None:
        pass


def test_s3_503s_are_retried_and_the_export_completes(
    loaded: Workspace, bucket: Bucket, monkeypatch: pytest.MonkeyPatch, aws_env: str
) -> None:
    _Flaky.upstream, _Flaky.refusals = aws_env, 3
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        report = export(loaded, "digits", f"s3://{bucket.name}/x/", fmt="csv", part_rows=10)
    finally:
        server.shutdown()
    assert _Flaky.refusals == 0  # three 503s were answered, and retried
    manifest = _manifest_is_right(bucket, "x/", _rows(loaded), "csv")
    assert report.written == len(manifest["parts"]) + 1
