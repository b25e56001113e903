"""Benchmark the Lambda handler: duration and peak memory for 1 MB / 100 MB / 1 GB CSVs.

Each CSV (11 columns, 5 of them PII, generated column-wise) is uploaded to a local moto
S3 server; the handler then runs in a fresh child process on the S3 ObjectCreated event,
as Lambda would run it: it reads the object from moto, obfuscates it and writes the copy
under the output prefix. Reported per size: the handler's wall time (imports excluded),
the child's peak RSS (VmHWM, imports included) and its RSS after the imports alone, and
the Lambda cost per GB processed at AWS's published x86 price for the memory size given.

The times are this machine's, not Lambda's: a function with 2048 MB gets about 1.2 vCPU,
and the handler's work is single-threaded, so they are a fair first estimate.

Usage: .venv/bin/python bench/lambda.py [--sizes-mb 1 100 1024] [--memory-mb 2048]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np
import pyarrow.csv as pa_csv
from moto.server import ThreadedMotoServer

from obfuscate import PII_FIELDS, people_block  # bench/obfuscate.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
PRICE_GB_SECOND = 0.0000166667  # AWS Lambda, x86, first 6 billion GB-seconds a month
PRICE_REQUEST = 0.20 / 1_000_000
BUCKET = "bench"

CHILD = """
import json, resource, sys, time
t0 = time.monotonic()
from headwater.privacy.aws_lambda import handler
imported_rss = int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
event = json.loads(sys.argv[1])
t1 = time.monotonic()
result = handler(event, None)
t2 = time.monotonic()
hwm = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])
body = json.loads(result["body"])
assert body["ok"] and len(body["done"]) == 1, body
print(json.dumps({"import_s": t1 - t0, "handler_s": t2 - t1, "peak_rss_kib": hwm,
                  "imported_rss_kib": imported_rss, "rows": body["done"][0]["rows"]}))
"""


def write_csv(path: Path, target_bytes: int) -> int:
    """Append blocks of generated rows until the file is about `target_bytes`; returns rows."""
    rng = np.random.default_rng(7)
    rows = 0
    block = 1_000
    with path.open("wb") as sink:
        while sink.tell() < target_bytes:
            table = people_block(block, rows, rng)
            options = pa_csv.WriteOptions(include_header=rows == 0, quoting_style="needed")
            before = sink.tell()
            pa_csv.write_csv(table, sink, write_options=options)
            rows += block
            per_row = (sink.tell() - before) / block
            block = max(1, min(100_000, int((target_bytes - sink.tell()) / per_row)))
    return rows


def run_case(size_mb: int, env: dict[str, str], folder: Path) -> dict[str, float]:
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    path = folder / f"people_{size_mb}mb.csv"
    write_csv(path, size_mb * 1024 * 1024)
    key = f"new_data/people_{size_mb}mb.csv"
    client.upload_file(str(path), BUCKET, key)
    size = path.stat().st_size
    path.unlink()
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
            }
        ]
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(event)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"handler failed on {size_mb} MB:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    output = client.head_object(Bucket=BUCKET, Key=key.replace("new_data/", "obfuscated/"))
    client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_object(Bucket=BUCKET, Key=key.replace("new_data/", "obfuscated/"))
    return {"size_bytes": size, "output_bytes": output["ContentLength"], **figures}


def cost_per_gb(handler_s: float, size_bytes: int, memory_mb: int) -> float:
    """Dollars per GB of input: GB-seconds at the configured memory, plus the requests."""
    gb = size_bytes / 1024**3
    per_file = handler_s * (memory_mb / 1024) * PRICE_GB_SECOND + PRICE_REQUEST
    return per_file / gb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 100, 1024])
    parser.add_argument("--memory-mb", type=int, default=2048, help="Lambda memory assumed")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HEADWATER_LAMBDA_SOURCE_PREFIX": "new_data/",
        "HEADWATER_LAMBDA_OUTPUT_PREFIX": "obfuscated/",
        "HEADWATER_LAMBDA_PII_FIELDS": ",".join(PII_FIELDS),
        "HEADWATER_LAMBDA_LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
    results = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for size_mb in args.sizes_mb:
                started = time.monotonic()
                figures = run_case(size_mb, env, Path(folder))
                figures["case_s"] = time.monotonic() - started
                figures["usd_per_gb"] = cost_per_gb(
                    figures["handler_s"], int(figures["size_bytes"]), args.memory_mb
                )
                results.append({"size_mb": size_mb, **figures})
                print(json.dumps(results[-1]), flush=True)
    finally:
        server.stop()
    print(f"\nLambda x86 at {args.memory_mb} MB; times from this machine, through moto:")
    print("| CSV | rows | handler s | peak RSS MiB | RSS after imports MiB | $ per GB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['size_bytes'] / 1024**2:,.0f} MiB | {r['rows']:,} | {r['handler_s']:.1f} | "
            f"{r['peak_rss_kib'] / 1024:.0f} | {r['imported_rss_kib'] / 1024:.0f} | "
            f"{r['usd_per_gb']:.5f} |"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "lambda.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
