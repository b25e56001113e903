"""API benchmark skeleton: request latency and upload throughput against a live server.

Starts the app in-process under uvicorn on a free port (DuckDB in a temporary
home unless HEADWATER_WAREHOUSE_URL is set), uploads a generated CSV, then times
GET /datasets, GET /datasets/{name} and GET /datasets/{name}/rows.

    .venv/bin/python bench/api.py --rows 200000 --requests 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr

from headwater.faces.api import create_app
from headwater.settings import Settings

TOKEN = "bench-token-0123456789abcdef"


def csv_chunks(rows: int, *, chunk_rows: int = 10_000) -> Iterator[bytes]:
    yield b"id,name,price,label\n"
    for start in range(0, rows, chunk_rows):
        stop = min(rows, start + chunk_rows)
        yield "".join(f"{i},item {i},{i * 1.5},{i % 3}\n" for i in range(start, stop)).encode()


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def timed(client: httpx.Client, path: str, n: int) -> str:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[int(0.95 * (len(samples) - 1))]
    return f"{path:<32} median {statistics.median(samples):7.2f} ms  p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home), api_token=SecretStr(TOKEN), max_upload_bytes=2 * 1024**3
        )
        server, thread, url = serve(settings)
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                body = b"".join(csv_chunks(args.rows))
                start = time.perf_counter()
                done = client.post(
                    "/datasets/bench/files",
                    files={"file": ("bench.csv", body, "text/csv")},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                done.raise_for_status()
                seconds = time.perf_counter() - start
                print(
                    f"upload {args.rows:,} rows ({len(body) / 1e6:.1f} MB): {seconds:.2f} s, "
                    f"{args.rows / seconds:,.0f} rows/s"
                )
                for path in ("/datasets", "/datasets/bench", "/datasets/bench/rows?limit=1000"):
                    print(timed(client, path, args.requests))
        finally:
            server.should_exit = True
            thread.join(timeout=30)


if __name__ == "__main__":
    main()
