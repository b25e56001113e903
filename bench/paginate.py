"""Paginated ingest beside its floor and a peer: 100,000 records over 200 pages, served locally.

    .venv/bin/python bench/paginate.py                      # Headwater and the bare floor
    .venv/bin/python bench/paginate.py --dlt /tmp/dlt/bin/python

Three contenders read the same pages from the same loopback server, each in a process of
its own so that its peak memory (``os.wait4``'s ``ru_maxrss``) is its own:

* **floor**: an httpx loop over the ``next`` links, `pyarrow.Table.from_pylist` of every
  record, one DuckDB ``CREATE TABLE AS``: the least any tool can do.
* **headwater**: ``headwater ingest URL --paginate next --records data``: every page through
  the SSRF-guarded fetcher with retries, raw pages content-addressed in the lake, curated
  Parquet, the warehouse, one commit.
* **dlt** (only with ``--dlt PYTHON``): dlt's ``RESTClient`` with ``JSONLinkPaginator`` in a
  ``dlt.pipeline`` into DuckDB. dlt is never a Headwater dependency; give the Python of a
  throwaway environment that has it (``python3 -m venv /tmp/dlt && /tmp/dlt/bin/pip install
  'dlt[duckdb]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FLOOR = textwrap.dedent(
    """
    import sys, duckdb, httpx, pyarrow as pa
    url, db = sys.argv[1], sys.argv[2]
    rows = []
    with httpx.Client(timeout=30) as client:
        while url:
            page = client.get(url).raise_for_status().json()
            rows.extend(page["data"])
            url = page["next"]
    arrow_rows = pa.Table.from_pylist(rows)
    con = duckdb.connect(db)
    con.execute("CREATE TABLE records AS SELECT * FROM arrow_rows")
    print(con.execute("SELECT count(*) FROM records").fetchone()[0])
    """
)

DLT = textwrap.dedent(
    """
    import sys, dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
    url, db, work = sys.argv[1], sys.argv[2], sys.argv[3]
    base, first = url.rsplit("/", 1)
    client = RESTClient(base_url=base, paginator=JSONLinkPaginator(next_url_path="next"),
                        data_selector="data")

    @dlt.resource(name="records")
    def records():
        yield from client.paginate("/" + first)

    pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb(db),
                            dataset_name="bench", pipelines_dir=work)
    pipeline.run(records())
    import duckdb
    print(duckdb.connect(db).execute("SELECT count(*) FROM bench.records").fetchone()[0])
    """
)


def make_pages(port: int, pages: int, per_page: int) -> dict[str, bytes]:
    """Keystroke-shaped records: an id, a user, a character, a microsecond time, a number."""
    served: dict[str, bytes] = {}
    for p in range(1, pages + 1):
        data = [
            {
                "id": (p - 1) * per_page + i,
                "user": f"user_{p % 50:02d}",
                "character": "Be Authentic."[i % 13],
                "typed_at": f"2019-01-16T15:{p % 60:02d}:{i % 60:02d}.{(p * i) % 1_000_000:06d}",
                "interval_ms": round(80 + (i * 7919 % 1000) / 10, 1),
            }
            for i in range(per_page)
        ]
        following = f"http://127.0.0.1:{port}/page_{p + 1}.json" if p < pages else None
        served[f"/page_{p}.json"] = json.dumps({"data": data, "next": following}).encode()
    return served


def serve(pages: int, per_page: int) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    served = make_pages(server.server_address[1], pages, per_page)

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            return

    server.RequestHandlerClass = Pages
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/page_1.json"


def timed(command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run one contender; its wall seconds and its own peak RSS (children included)."""
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out_file, stderr=err_file)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(), err_file.read().decode()
    if status != 0:
        raise SystemExit(f"{command[:3]} failed ({status}):\n{err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(usage.ru_maxrss / 1024), "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--per-page", type=int, default=500)
    parser.add_argument("--dlt", help="Python of a throwaway environment with dlt[duckdb].")
    args = parser.parse_args()
    records = args.pages * args.per_page
    server, url = serve(args.pages, args.per_page)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ, HEADWATER_HOME=str(work / "home"), HEADWATER_FETCH_ALLOW_PRIVATE="1")
        env["HEADWATER_FETCH_MAX_PAGES"] = str(args.pages + 1)
        results = {
            "floor": timed([sys.executable, "-c", FLOOR, url, str(work / "floor.duckdb")], env),
            "headwater": timed(
                [
                    sys.executable,
                    "-m",
                    "headwater",
                    "ingest",
                    url,
                    "--dataset",
                    "bench",
                    "--paginate",
                    "next",
                    "--records",
                    "data",
                    "--json",
                ],
                env,
            ),
        }
        if args.dlt:
            dlt_env = dict(env, RUNTIME__LOG_LEVEL="WARNING")
            results["dlt"] = timed(
                [args.dlt, "-c", DLT, url, str(work / "dlt.duckdb"), str(work / "dlt")], dlt_env
            )
    server.shutdown()
    loaded = json.loads(results["headwater"]["out"].strip().splitlines()[-1])
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{records:,} records over {args.pages} pages; load average {' '.join(load)}")
    floor_s = float(results["floor"]["seconds"])  # type: ignore[arg-type]
    for name, result in results.items():
        seconds = float(result["seconds"])  # type: ignore[arg-type]
        print(
            f"  {name:9s} {seconds:7.2f} s  {records / seconds:10,.0f} records/s  "
            f"{result['peak_mib']:6} MiB peak  {seconds / floor_s:5.2f}x floor"
        )
    print(f"  headwater loaded: {json.dumps(loaded)[:300]}")


if __name__ == "__main__":
    main()
