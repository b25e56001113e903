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
from headwater.storage import sinks
from tests.builders import write_mnist_pickle
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


def test_s3_export_failing_midway_leaves_no_manifest_and_rerun_completes(
    loaded: Workspace, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = f"s3://{bucket.name}/exports/digits/"
    total = _rows(loaded)
    first = export(loaded, "digits", dest, fmt="parquet", part_rows=10)
    assert "exports/digits/manifest.json" in bucket.listing()
    parts = len(first.parts)
    assert parts >= 3

    real_put = sinks.S3Sink.put
    calls = {"n": 0}

    def failing_put(self: sinks.S3Sink, name: str, body: bytes, sha256: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise sinks.StorageError(name, "injected: the connection dropped")
        real_put(self, name, body, sha256)

    monkeypatch.setattr(sinks.S3Sink, "put", failing_put)
    # new data (smaller parts): the export starts replacing parts and dies on the third
    with pytest.raises(sinks.StorageError):
        export(loaded, "digits", dest, fmt="parquet", part_rows=4)
    assert "exports/digits/manifest.json" not in bucket.listing()
    monkeypatch.setattr(sinks.S3Sink, "put", real_put)

    done = export(loaded, "digits", dest, fmt="parquet", part_rows=4)
    assert done.written == len(done.parts) - 2 + 1  # the two parts put before the failure stay
    manifest = json.loads(bucket.get("exports/digits/manifest.json"))
    assert manifest["rows"] == total
    for part in manifest["parts"]:
        body = bucket.get(f"exports/digits/{part['file']}")
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
        assert pq.read_table(io.BytesIO(body)).num_rows == part["rows"]
    assert export(loaded, "digits", dest, fmt="parquet", part_rows=4).written == 0


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
    _Flaky.upstream, _Flaky.refusals = aws_env, 2
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        report = export(loaded, "digits", f"s3://{bucket.name}/x/", fmt="csv", part_rows=10)
    finally:
        server.shutdown()
    assert _Flaky.refusals == 0  # two 503s were answered, and retried
    manifest = json.loads(bucket.get("x/manifest.json"))
    assert manifest["rows"] == _rows(loaded) and len(manifest["parts"]) == len(report.parts)
