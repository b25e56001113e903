"""Benchmark the GDPR obfuscator: a 1 MB CSV through S3, and a large CSV streamed to disk.

(a) 1 MB CSV, 5 PII fields, read from and written back to S3 on a local moto
    server, beside a bare floor measured in the same run (get_object + pyarrow CSV
    read + CSV write + put_object, no obfuscation).
(b) A CSV of ``--gb`` GiB generated to a temporary folder, streamed through
    obfuscation to a file in a child process; seconds and the child's peak RSS
    (VmHWM), beside a pyarrow read+write floor measured the same way.

Each case runs twice: every field masked (the default), and mixed modes
(pseudonym for name and email, mask, generalise, drop) to show the keyed hash.

Usage: .venv/bin/python bench/obfuscate.py [--gb 1.0] [--repeat 7] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

PII_FIELDS = ["name", "email_address", "phone", "postcode", "card_number"]
MIXED_MODES = {
    "name": "pseudonym",
    "email_address": "pseudonym",
    "phone": "mask",
    "postcode": "generalise",
    "card_number": "drop",
}
FIRST = ["Alice", "Bob", "Charlotte", "David", "Emma", "Fatima", "George", "Hannah", "Oliver"]
LAST = ["Smith", "Jones", "Patel", "Williams", "Brown", "Taylor", "Evans", "Khan"]
POSTCODES = ["SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "EC1A 1BB", "W1A 0AX"]
CITIES = ["London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff"]


def people_block(rows: int, start: int, rng: np.random.Generator) -> pa.Table:
    """`rows` customer orders, built column-wise (no row loop), ids from `start`."""
    ids = pa.array(np.arange(start, start + rows))
    first = pa.array(rng.choice(FIRST, rows))
    last = pa.array(rng.choice(LAST, rows))
    ids_text = pc.cast(ids, pa.string())

    def digits(n: int, width: int) -> pa.Array:
        return pc.utf8_lpad(
            pc.cast(pa.array(rng.integers(0, 10**n, rows)), pa.string()), width, "0"
        )

    email = pc.binary_join_element_wise(
        pc.utf8_lower(first), ".", pc.utf8_lower(last), ids_text, "@example.com", ""
    )
    return pa.table(
        {
            "customer_id": ids_text,
            "name": pc.binary_join_element_wise(first, last, " "),
            "email_address": email,
            "phone": pc.binary_join_element_wise("07700 ", digits(6, 6), ""),
            "postcode": pa.array(rng.choice(POSTCODES, rows)),
            "card_number": pc.binary_join_element_wise("4", digits(15, 15), ""),
            "order_date": pc.strftime(
                pa.array(rng.integers(19_000, 20_000, rows), pa.int32()).cast(pa.date32()),
                "%Y-%m-%d",
            ),
            "price": pc.cast(pa.array(rng.integers(50, 50_000, rows) / 100), pa.string()),
            "quantity": pc.cast(pa.array(rng.integers(1, 20, rows)), pa.string()),
            "product_code": pc.binary_join_element_wise("SKU-", digits(5, 5), ""),
            "city": pa.array(rng.choice(CITIES, rows)),
        }
    )


def write_csv(path: Path, target_bytes: int, *, seed: int = 0) -> int:
    """Write blocks until the file reaches `target_bytes`; returns the rows written."""
    rng = np.random.default_rng(seed)
    rows = 0
    options = pa_csv.WriteOptions(quoting_style="none")
    with path.open("wb") as sink:
        first = people_block(1_000, 0, rng)
        writer = pa_csv.CSVWriter(sink, first.schema, write_options=options)
        writer.write_table(first)
        rows += first.num_rows
        while sink.tell() < target_bytes:
            block = people_block(
                min(100_000, max(1, (target_bytes - sink.tell()) // 110)), rows, rng
            )
            writer.write_table(block)
            rows += block.num_rows
        writer.close()
    return rows


def _timed(fn: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def bench_s3(repeat: int, folder: Path) -> list[tuple[str, str, str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    from headwater.data.privacy import obfuscate
    from headwater.settings import Settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="eu-west-2",
    )
    try:
        client = boto3.client("s3")
        client.create_bucket(
            Bucket="bench", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        path = folder / "file1.csv"
        write_csv(path, 1_000_000, seed=1)
        data = path.read_bytes()
        client.put_object(Bucket="bench", Key="new_data/file1.csv", Body=data)
        request = json.dumps(
            {"file_to_obfuscate": "s3://bench/new_data/file1.csv", "pii_fields": PII_FIELDS}
        )

        def floor() -> None:
            body = client.get_object(Bucket="bench", Key="new_data/file1.csv")["Body"].read()
            header = body[: body.index(b"\n")].decode().split(",")
            table = pa_csv.read_csv(
                pa.BufferReader(body),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(header, pa.string())
                ),
            )
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(table, sink)
            client.put_object(
                Bucket="bench", Key="floor/file1.csv", Body=sink.getvalue().to_pybytes()
            )

        def obfuscated() -> None:
            out = obfuscate(request)
            client.put_object(Bucket="bench", Key="safe/file1.csv", Body=out)

        floor()
        mixed_request = json.dumps({**json.loads(request), "modes": MIXED_MODES})
        settings = Settings(pseudonym_key=os.urandom(16).hex())

        def mixed() -> None:
            out = obfuscate(mixed_request, settings=settings)
            client.put_object(Bucket="bench", Key="safe/file1-mixed.csv", Body=out)

        obfuscated()  # warm both paths (imports, connection pool)
        mixed()
        floor_times = _timed(floor, repeat)
        obf_times = _timed(obfuscated, repeat)
        mixed_times = _timed(mixed, repeat)
    finally:
        server.stop()
    size = f"{len(data) / 1e6:.2f} MB"
    return [
        ("(a) floor: get+read+write+put", size, _fmt(floor_times)),
        ("(a) obfuscate 5 fields (mask) via S3", size, _fmt(obf_times)),
        ("(a) obfuscate 5 fields (mixed modes) via S3", size, _fmt(mixed_times)),
    ]


def _fmt(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s, min {min(times):.3f} s (n={len(times)})"


_CHILD_OBFUSCATE = """
import json, sys, time
from headwater.flows.privacy import obfuscate_to_destination
start = time.perf_counter()
report = obfuscate_to_destination(sys.argv[3], sys.argv[2])
seconds = time.perf_counter() - start
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": seconds, "rows": report.rows, "vmhwm_kib": int(hwm)}))
"""

_CHILD_FLOOR = """
import json, sys, time
import pyarrow as pa, pyarrow.csv as pa_csv
start = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    header = f.readline().decode().rstrip("\\n").split(",")
reader = pa_csv.open_csv(sys.argv[1], read_options=pa_csv.ReadOptions(block_size=4 << 20),
    convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())))
rows = 0
with open(sys.argv[2], "wb") as sink:
    writer = pa_csv.CSVWriter(sink, reader.schema)
    for batch in reader:
        writer.write_batch(batch)
        rows += batch.num_rows
    writer.close()
seconds = time.perf_counter() - start
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": seconds, "rows": rows, "vmhwm_kib": int(hwm)}))
"""


def _child(code: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "HEADWATER_PSEUDONYM_KEY": os.urandom(16).hex()}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_large(gib: float, folder: Path) -> list[tuple[str, str, str]]:
    source = folder / "large.csv"
    start = time.perf_counter()
    rows = write_csv(source, int(gib * 1024**3), seed=2)
    generated = time.perf_counter() - start
    size = f"{source.stat().st_size / 1024**3:.2f} GiB, {rows:,} rows"
    print(f"generated {size} in {generated:.1f} s", file=sys.stderr)
    floor = _child(_CHILD_FLOOR, str(source), str(folder / "floor.csv"))
    (folder / "floor.csv").unlink()
    results = [("(b) floor: pyarrow stream read+write", size, _fmt_child(floor))]
    for label, modes in (("mask", {}), ("mixed modes", MIXED_MODES)):
        request = {"file_to_obfuscate": str(source), "pii_fields": PII_FIELDS, "modes": modes}
        obf = _child(_CHILD_OBFUSCATE, str(source), str(folder / "safe.csv"), json.dumps(request))
        (folder / "safe.csv").unlink()
        results.append((f"(b) obfuscate 5 fields ({label}), streamed", size, _fmt_child(obf)))
    return results


def _fmt_child(result: dict[str, float]) -> str:
    mib = result["vmhwm_kib"] / 1024
    return f"{result['seconds']:.1f} s, peak RSS {mib:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="Size of the large CSV in GiB.")
    parser.add_argument("--repeat", type=int, default=7, help="Runs of the 1 MB case.")
    parser.add_argument("--skip-large", action="store_true", help="Only run the 1 MB case.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hw-bench-") as name:
        folder = Path(name)
        rows = bench_s3(args.repeat, folder)
        if not args.skip_large:
            rows += bench_large(args.gb, folder)
    width = max(len(r[0]) for r in rows)
    size_width = max(len(r[1]) for r in rows)
    print(f"{'case':<{width}}  {'input':<{size_width}}  result")
    for case, size, result in rows:
        print(f"{case:<{width}}  {size:<{size_width}}  {result}")


if __name__ == "__main__":
    main()
