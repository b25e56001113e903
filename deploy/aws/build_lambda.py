"""Build the Lambda deployment zip: the handler's own modules plus only what they import.

    python deploy/aws/build_lambda.py        (what `make lambda` runs)

1. ``pip install --target`` the pinned wheels of ``lambda-requirements.txt`` for the
   Lambda runtime (python3.12, x86_64, manylinux), then drops what the handler never
   loads (Arrow Flight, Substrait and the cloud file systems, headers, tests).
2. Copies exactly the ``headwater`` modules that importing the handler loads, found
   by importing it in a child process, so no web, warehouse or training code ships.
3. Smoke-tests the unpacked package in isolation: a python3.12 started without
   site-packages, with only the package and boto3 (as the runtime provides it) on its
   path, runs the handler on a CSV, JSON, JSON Lines and Parquet object in a local
   moto S3 server. Skipped, with a message, when no python3.12 is found.
4. Writes ``build/lambda/headwater-obfuscator.zip`` (fixed timestamps, sorted, so the
   same inputs give the same hash), prints its size, and fails past Lambda's 250 MB
   unzipped limit.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OUT = ROOT / "build" / "lambda"
PACKAGE = OUT / "package"
RUNTIME = OUT / "runtime"  # boto3 as the Lambda runtime provides it; smoke test only
ZIP = OUT / "headwater-obfuscator.zip"
HANDLER = "headwater.privacy.aws_lambda"
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda: 250 MB for the function and its layers, unzipped
PYTHON_VERSION = "3.12"
# Amazon Linux 2023 (glibc 2.34) runs wheels built for glibc 2.28 and older.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

# Loaded by nothing the handler runs (libarrow_substrait stays: pyarrow.lib links it); the
# smoke test proves the package works without these.
PRUNE = [
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/_substrait.*.so",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_gcsfs.*.so",
    "pyarrow/_azurefs.*.so",
    "pyarrow/_hdfs.*.so",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pxi",
    "numpy/**/tests",
    "numpy/_core/include",
    "numpy/f2py",
    "**/__pycache__",
]


def install_dependencies() -> None:
    """The pinned wheels for the runtime's Python and platform, compiled nothing locally."""
    shutil.rmtree(OUT, ignore_errors=True)
    PACKAGE.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary=:all:"]
    target = ["--implementation", "cp", "--python-version", PYTHON_VERSION]
    for platform in PLATFORMS:
        target += ["--platform", platform]
    requirements = str(HERE / "lambda-requirements.txt")
    subprocess.run([*pip, *target, "--target", str(PACKAGE), "-r", requirements], check=True)
    subprocess.run([*pip, *target, "--target", str(RUNTIME), "boto3"], check=True)
    for pattern in PRUNE:
        for path in glob.glob(str(PACKAGE / pattern), recursive=True):
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


def copy_own_code() -> list[str]:
    """Copy the headwater modules the handler imports (and nothing else); returns their names."""
    script = (
        f"import sys, json; import {HANDLER}; "
        "print(json.dumps(sorted({m.__file__ for n, m in sys.modules.items() "
        "if n.split('.')[0] == 'headwater' and getattr(m, '__file__', None)})))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env
    )
    source = ROOT / "src"
    copied = []
    for file in json.loads(done.stdout):
        relative = Path(file).resolve().relative_to(source)
        (PACKAGE / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, PACKAGE / relative)
        copied.append(str(relative))
    return copied


def unzipped_bytes() -> int:
    return sum(path.stat().st_size for path in PACKAGE.rglob("*") if path.is_file())


def write_zip() -> None:
    """A reproducible zip: sorted entries, fixed timestamps, readable by the runtime's user."""
    with zipfile.ZipFile(ZIP, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in PACKAGE.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(PACKAGE)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)


def find_python312() -> str | None:
    """A python3.12 that really runs (a pyenv shim may name one it cannot start)."""
    explicit = os.environ.get("LAMBDA_SMOKE_PYTHON")
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in [explicit, *reversed(pyenv), shutil.which("python3.12")]:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


SMOKE = """
import json, sys
sys.path[:0] = [{package!r}, {runtime!r}]
from headwater.privacy.aws_lambda import handler
heavy = [m for m in ("torch", "fastapi", "duckdb", "pandas") if m in sys.modules]
assert not heavy, heavy
result = handler({event}, None)
body = json.loads(result["body"])
assert body["ok"] and len(body["done"]) == 4, body
print(json.dumps({{"python": sys.version.split()[0], "done": len(body["done"])}}))
"""


def smoke_test(python: str) -> None:
    """Run the packaged handler, isolated from every site-packages, against local moto S3."""
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "HEADWATER_LAMBDA_SOURCE_PREFIX": "new_data/",
        "HEADWATER_LAMBDA_OUTPUT_PREFIX": "obfuscated/",
        "HEADWATER_LAMBDA_PII_FIELDS": "name,email",
        "HOME": str(OUT),
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106  # moto on loopback takes any key
        )
        client.create_bucket(Bucket="smoke")
        rows = [{"id": 1, "name": "Alice Smith", "email": "alice@example.com"}]
        parquet = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows), parquet)
        bodies = {
            "csv": b"id,name,email\n1,Alice Smith,alice@example.com\n",
            "json": json.dumps(rows).encode(),
            "jsonl": json.dumps(rows[0]).encode() + b"\n",
            "parquet": parquet.getvalue().to_pybytes(),
        }
        records = []
        for fmt, body in bodies.items():
            client.put_object(Bucket="smoke", Key=f"new_data/people.{fmt}", Body=body)
            records.append(
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "smoke"},
                        "object": {"key": f"new_data/people.{fmt}"},
                    },
                }
            )
        code = SMOKE.format(
            package=str(PACKAGE), runtime=str(RUNTIME), event=repr({"Records": records})
        )
        done = subprocess.run(
            [python, "-S", "-B", "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            sys.exit(f"smoke test failed:\n{done.stdout}\n{done.stderr}")
        summary = done.stdout.strip().splitlines()[-1]
        print(f"smoke test passed: handler ran from the package alone ({summary})")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-smoke", action="store_true", help="skip the isolated smoke test")
    args = parser.parse_args()
    install_dependencies()
    own = copy_own_code()
    size = unzipped_bytes()
    print(f"headwater modules packaged: {len(own)}")
    if not args.no_smoke:
        python = find_python312()
        if python is None:
            print("smoke test skipped: no python3.12 found (set LAMBDA_SMOKE_PYTHON)")
        else:
            smoke_test(python)
    shutil.rmtree(RUNTIME, ignore_errors=True)
    write_zip()
    mib = 1024 * 1024
    print(
        f"{ZIP.relative_to(ROOT)}: {ZIP.stat().st_size / mib:.1f} MiB zipped, "
        f"{size / mib:.1f} MiB unzipped (Lambda's limit: {UNZIPPED_LIMIT / mib:.0f} MiB)"
    )
    if size > UNZIPPED_LIMIT:
        sys.exit(f"the package is {size / mib:.1f} MiB unzipped, over Lambda's 250 MiB limit")


if __name__ == "__main__":
    main()
