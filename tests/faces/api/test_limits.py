"""Limits on request bodies, and CORS closed unless origins are configured."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx

from tests.faces.api.conftest import AUTH, LiveApi, Serve, snapshot


def test_a_declared_body_over_the_limit_is_refused_unread(serve: Serve) -> None:
    api = serve(max_request_bytes=1000)
    before = snapshot(api.settings)
    body = {"url": "http://example.com/" + "a" * 2000 + ".csv"}
    refused = api.client.post("/datasets/orders/sources", json=body, headers=AUTH)
    assert refused.status_code == 413
    problem = refused.json()
    assert problem["limit"] == 1000 and problem["setting"] == "HEADWATER_API_MAX_REQUEST_BYTES"
    assert "1,000-byte limit" in problem["detail"]
    assert snapshot(api.settings) == before
    assert api.client.get("/health").status_code == 200  # the connection is still usable


def test_a_chunked_body_is_counted_as_it_streams(serve: Serve) -> None:
    api = serve(max_request_bytes=1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"url": "http://example.com/'
        for _ in range(20):
            yield b"a" * 100
        yield b'.csv"}'

    refused = api.client.post(
        "/datasets/orders/sources",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert refused.status_code == 413
    assert refused.json()["setting"] == "HEADWATER_API_MAX_REQUEST_BYTES"


def test_an_upload_body_is_counted_before_the_file_part(api: LiveApi) -> None:
    """A huge field ahead of the file never reaches the core: the envelope limit stops it."""
    before = snapshot(api.settings)
    limit = api.config.max_upload_request_bytes
    boundary = "xyz"

    def chunks() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="padding"\r\n\r\n'.encode()
        for _ in range(limit // 65536 + 2):
            yield b"p" * 65536

    refused = api.client.post(
        "/datasets/big/files",
        content=chunks(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert refused.status_code == 413
    problem = refused.json()
    assert problem["limit"] == limit and "upload is larger" in problem["detail"]
    assert problem["setting"].startswith("HEADWATER_MAX_UPLOAD_BYTES")
    assert snapshot(api.settings) == before


def test_cors_is_closed_by_default(api: LiveApi) -> None:
    preflight = api.client.options(
        "/datasets",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = api.client.get("/datasets", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_opens_only_for_configured_origins(serve: Serve) -> None:
    api = serve(cors_origins=("https://app.example",))
    allowed = api.client.get("/datasets", headers={"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = api.client.get("/datasets", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_a_stalled_upload_blocks_other_loads_but_not_reads(serve: Serve) -> None:
    """While an upload holds the write lock, reads answer and other loads get 503 + Retry-After."""
    api = serve(upload_idle_timeout_s=1.0, warehouse_wait_s=0.05)
    before = snapshot(api.settings)
    stalled = threading.Event()
    boundary = "slow"

    def chunks() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"'
            "\r\n\r\nid,value\n1,2\n"
        ).encode()
        stalled.set()
        time.sleep(2.5)
        yield f"\r\n--{boundary}--\r\n".encode()

    answers: list[httpx.Response] = []
    uploader = threading.Thread(
        target=lambda: answers.append(
            api.client.post(
                "/datasets/slow/files",
                content=chunks(),
                headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        )
    )
    uploader.start()
    assert stalled.wait(10)
    time.sleep(0.1)  # the upload's worker thread takes the write lock
    with httpx.Client(base_url=api.url, timeout=10) as other:
        reads = [other.get("/datasets") for _ in range(5)]
        second = other.post(
            "/datasets/other/files",
            files={"file": ("other.csv", b"id,value\n1,2\n", "text/csv")},
            headers=AUTH,
        )
    uploader.join(30)
    assert [r.status_code for r in reads] == [200] * 5
    assert second.status_code == 503, second.text
    assert second.headers["retry-after"] == "1"
    assert second.json()["setting"] == "HEADWATER_API_WAREHOUSE_WAIT_S"

    (answer,) = answers
    assert answer.status_code == 408, answer.text
    assert answer.json()["setting"] == "HEADWATER_API_UPLOAD_IDLE_TIMEOUT_S"
    assert api.client.get("/datasets").status_code == 200
    assert snapshot(api.settings) == before
