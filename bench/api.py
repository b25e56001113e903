"""API benchmark: Headwater's /predict against a bare FastAPI + ONNX Runtime floor, and /score.

    .venv/bin/python bench/api.py                       # ingest + train in a temp home, ~2 min
    .venv/bin/python bench/api.py --home ~/.hw-bench    # keep the home; later runs reuse it
    .venv/bin/python bench/api.py --seconds 5           # a quick look

1. Ingests ``data/mnist.pkl.gz`` and trains an MLP (density 35, few epochs) unless the
   home already holds a succeeded MNIST run.
2. Starts, one after the other, Headwater (``create_app``, as ``headwater serve`` does)
   and a bare FastAPI app that runs the same ``model.onnx`` with ONNX Runtime, each in
   its own process under the same uvicorn settings.
3. Loads each for ``--seconds`` with one MNIST test image per request (JSON pixels) at
   concurrency 16 from a second process: ``wrk`` when installed (``apt-get install wrk``),
   else a small asyncio HTTP/1.1 load generator. Prints requests/s, p50, p99 and the ratio.
4. Scores the 10,000-image MNIST test set through ``POST /models/{run}/score`` as CSV
   (784 pixel columns) and as Parquet, timing upload to the last byte of the answer.

Targets: throughput >= 0.8 x the bare floor, p99 < 20 ms; /score of 10k rows < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "data" / "mnist.pkl.gz"
TOKEN = "bench-token-0123456789abcdef"
CONCURRENCY = 16

HEADWATER_SERVER = """
import sys, uvicorn
from headwater.faces.api import create_app
from headwater.settings import Settings
uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

BARE_SERVER = """
import sys
import numpy as np, onnxruntime as ort, uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
INPUT, OUTPUT = session.get_inputs()[0].name, session.get_outputs()[0].name


class Body(BaseModel):
    pixels: list[list[float]]


app = FastAPI()


@app.post("/predict")
async def predict(body: Body) -> dict[str, object]:
    x = np.asarray(body.pixels, dtype=np.float32) / np.float32(255)
    (proba,) = session.run([OUTPUT], {INPUT: x})
    return {"labels": proba.argmax(axis=1).tolist(), "probabilities": proba.tolist()}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

# A fallback load generator when wrk is missing: raw HTTP/1.1 keep-alive over asyncio
# streams, so the client costs far less than the server it measures.
LOADGEN = """
import asyncio, json, sys, time

async def worker(host, port, request, stop, samples):
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < stop:
        began = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(head.decode())
        samples.append(time.perf_counter() - began)
    writer.close()

async def main(host, port, path, body, connections, seconds):
    request = (
        f"POST {path} HTTP/1.1\\r\\nHost: {host}\\r\\nContent-Type: application/json\\r\\n"
        f"Content-Length: {len(body)}\\r\\n\\r\\n"
    ).encode() + body
    samples = []
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(worker(host, port, request, stop, samples) for _ in range(connections)))
    print(json.dumps(samples))

host, port, path, body_file, connections, seconds = sys.argv[1:]
body = open(body_file, "rb").read()
asyncio.run(main(host, int(port), path, body, int(connections), float(seconds)))
"""


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float

    def row(self, name: str) -> str:
        return (
            f"  {name:<34} {self.requests_per_s:8,.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
            f"p99 {self.p99_ms:6.2f} ms"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(script: str, *args: str, env: dict[str, str]) -> Iterator[str]:
    """A server in its own process; yields its base URL once /health answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", script, str(port), *args], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start (exit {process.poll()})")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def load(url: str, path: str, body: bytes, seconds: float, work: Path) -> Load:
    """Concurrency-16 POSTs of ``body`` for ``seconds`` from another process."""
    body_file = work / "body.json"
    body_file.write_bytes(body)
    if shutil.which("wrk"):
        script = work / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = io.open({json.dumps(str(body_file))}, 'rb'):read('*a')\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        done = subprocess.run(
            [
                *("wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds:g}s", "--latency"),
                *("-s", str(script), url + path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out = done.stdout
        if "Non-2xx" in out:
            raise RuntimeError(f"{path} answered errors under load:\n{out}")
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        return Load(rate, p50, p99)
    host, port = url.removeprefix("http://").split(":")
    done = subprocess.run(
        [
            *(sys.executable, "-c", LOADGEN, host, port, path),
            *(str(body_file), str(CONCURRENCY), str(seconds)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    samples = sorted(json.loads(done.stdout))
    return Load(
        len(samples) / seconds,
        1000 * statistics.median(samples),
        1000 * samples[int(0.99 * (len(samples) - 1))],
    )


def mnist_run(home: Path, epochs: int) -> tuple[str, Path]:
    """The home's succeeded MNIST run (or a new one) and its model.onnx."""
    from headwater.flows import runs as run_flows
    from headwater.flows.training import TrainRequest, train
    from headwater.flows.workspace import Workspace
    from headwater.settings import Settings

    with Workspace(Settings(home=home)) as ws:
        if "mnist" not in {d.name for d in ws.datasets()}:
            began = time.perf_counter()
            ws.ingest(MNIST, dataset="mnist")
            print(f"ingested {MNIST.name} in {time.perf_counter() - began:.1f} s")
        done = [r for r in run_flows.list_runs(ws, "mnist") if r.status == "succeeded"]
        if done:
            run = done[-1]
        else:
            began = time.perf_counter()
            run = train(ws, TrainRequest("mnist", "mlp", {"density": 35, "epochs": epochs}))
            print(f"trained MLP run {run.run_id} in {time.perf_counter() - began:.1f} s")
        accuracy = float(str(run.metrics.get("test_accuracy")))
        print(f"serving run {run.run_id}: test accuracy {accuracy:.2%}")
        onnx = {a.name: a.path for a in run_flows.run_detail(ws, run.run_id).artifacts}
        return run.run_id, Path(onnx["model.onnx"])


def mnist_test_images(home: Path) -> np.ndarray:
    """The 10,000 MNIST test images as uint8 (n, 28, 28), read back from the warehouse."""
    from headwater.flows.workspace import Workspace
    from headwater.settings import Settings
    from headwater.storage.warehouse import catalog

    with Workspace(Settings(home=home)) as ws:
        arrays = catalog.image_arrays(
            ws.warehouse, catalog.get_dataset(ws.warehouse, "mnist"), "test"
        )
        images = arrays.pixels[..., 0]
    if images.dtype.kind == "f":
        images = np.rint(images * 255)
    return images.astype(np.uint8)


def score_files(images: np.ndarray, work: Path) -> dict[str, Path]:
    flat = images.reshape(len(images), -1)
    table = pa.table({f"pixel{i}": flat[:, i] for i in range(flat.shape[1])})
    files = {"csv": work / "mnist_test.csv", "parquet": work / "mnist_test.parquet"}
    pa_csv.write_csv(table, files["csv"])
    pq.write_table(table, files["parquet"])
    return files


def time_score(url: str, run_id: str, path: Path, rows: int, repeats: int) -> float:
    """Best of ``repeats``: upload, then read the streamed CSV to its last byte."""
    best = float("inf")
    content = path.read_bytes()
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(repeats):
            began = time.perf_counter()
            with client.stream(
                "POST", f"/models/{run_id}/score", files={"file": (path.name, content)}
            ) as answer:
                answer.raise_for_status()
                lines = sum(chunk.count(b"\n") for chunk in answer.iter_bytes())
            best = min(best, time.perf_counter() - began)
            if lines != rows + 1:
                raise RuntimeError(f"/score gave {lines - 1} rows for {rows}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", type=Path, help="Headwater home to create or reuse.")
    parser.add_argument("--epochs", type=int, default=3, help="MLP epochs when training.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Load time per server.")
    parser.add_argument("--score-repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hw-bench-api-"))
    home = args.home or work / "home"
    try:
        run_id, onnx = mnist_run(home, args.epochs)
        images = mnist_test_images(home)
        body = json.dumps({"pixels": [images[0].reshape(-1).tolist()]}).encode()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env |= {"HEADWATER_HOME": str(home), "HEADWATER_API_TOKEN": TOKEN}
        env["HEADWATER_MAX_UPLOAD_BYTES"] = str(1024**3)

        print(f"\npredict, 1 row, concurrency {CONCURRENCY}, {args.seconds:g} s each")
        with server(BARE_SERVER, str(onnx), env=env) as url:
            load(url, "/predict", body, 2, work)  # warm up
            bare = load(url, "/predict", body, args.seconds, work)
        print(bare.row("bare FastAPI + ONNX Runtime"))
        with server(HEADWATER_SERVER, env=env) as url:
            path = f"/models/{run_id}/predict"
            load(url, path, body, 2, work)
            ours = load(url, path, body, args.seconds, work)
            print(ours.row("Headwater /models/{run}/predict"))
            ratio = ours.requests_per_s / bare.requests_per_s
            print(
                f"  throughput ratio {ratio:.2f} (target >= 0.80), p99 ratio "
                f"{ours.p99_ms / bare.p99_ms:.2f}, p99 {ours.p99_ms:.1f} ms (target < 20 ms)"
            )
            print(
                f"\nscore the MNIST test set ({len(images):,} rows), best of {args.score_repeats}"
            )
            for kind, file in score_files(images, work).items():
                seconds = time_score(url, run_id, file, len(images), args.score_repeats)
                size = file.stat().st_size / 1e6
                print(f"  {kind:<8} {size:6.1f} MB  {seconds:5.2f} s  (target < 2 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
