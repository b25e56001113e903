"""MNIST made 100x larger, scored and profiled with ``--engine local`` and ``--engine spark``.

    .venv/bin/python bench/scale.py                  # 7,000,000 rows (about 5.5 GB of pixels)
    .venv/bin/python bench/scale.py --scale 0.1      # 700,000 rows: a quicker look

Once per home folder (default ``/tmp/headwater-scale``): the real MNIST
(``../shared/datasets/mnist/mnist.pkl.gz``, 70,000 images) is ingested and a logistic
model trained on it; then ``70,000 x 100 x scale`` rows are written as curated Parquet
of the dataset ``mnist_x100`` exactly as an ingest lays a batch out
(``lake/curated/mnist_x100/batch_id=N/part-00000.parquet``, the real batch's schema),
100,000 rows a file in row groups of 25,000, never more than one file in memory. Each
row is a real image shifted by up to 2 pixels each way with noise of +-16 grey levels.
The dataset is registered in the catalog (so ``profile`` knows its label); its rows are
not loaded into the warehouse: both engines read the lake.

Then each command runs as a child process, as a user would run it::

    headwater predict RUN lake/curated/mnist_x100 --out F.csv --engine local|spark
    headwater profile mnist_x100 --engine local|spark --json

with ``HEADWATER_SPARK_MASTER=local[2]``, and the script prints rows/s, wall seconds and
the peak resident memory of the whole process tree (the CLI, and for Spark its JVM and
Python workers: /proc polled every 0.1 s, summed), and checks the results are identical:
the two prediction files byte for byte (sha256), the two profiles field for field (mean
and std to a relative 1e-9, since the engines add in different orders).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from headwater.flows.training import TrainRequest, train
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import catalog as cat

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist" / "mnist.pkl.gz"
DATASET = "mnist_x100"
FILE_ROWS = 100_000
GROUP_ROWS = 25_000


def prepare(home: Path, rows: int) -> str:
    """The real MNIST ingested and a model trained on it (once); the big dataset written."""
    state = home / "bench.json"
    known = json.loads(state.read_text()) if state.is_file() else {}
    with Workspace(Settings(home=home)) as ws:
        if "run" not in known:
            t = time.perf_counter()
            ws.ingest(MNIST)
            run = train(ws, TrainRequest("mnist", "logistic"))
            known["run"] = run.run_id
            print(f"ingested MNIST and trained logistic in {time.perf_counter() - t:.0f} s")
            state.write_text(json.dumps(known))
        if known.get("rows") != rows:
            t = time.perf_counter()
            write_big(ws, rows)
            known["rows"] = rows
            state.write_text(json.dumps(known))
            print(f"wrote {rows:,} rows of {DATASET} in {time.perf_counter() - t:.0f} s")
    return str(known["run"])


def write_big(ws: Workspace, rows: int) -> None:
    source = pq.read_table(next(ws.lake.curated_dir("mnist").rglob("*.parquet")))
    schema = source.schema
    images = np.frombuffer(b"".join(source.column("pixels").to_pylist()), dtype=np.uint8).reshape(
        -1, 28, 28
    )
    folder = ws.lake.curated_dir(DATASET)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    rng = np.random.default_rng(0)
    for number, start in enumerate(range(0, rows, FILE_ROWS), start=1):
        n = min(FILE_ROWS, rows - start)
        pick = rng.integers(0, len(images), size=n)
        table = (
            pa.table(
                {
                    "split": source.column("split").take(pick),
                    "label": source.column("label").take(pick),
                    "source_row": pa.array(pick.astype(np.int64)),
                    "height": pa.array(np.full(n, 28, np.int32)),
                    "width": pa.array(np.full(n, 28, np.int32)),
                    "channels": pa.array(np.full(n, 1, np.int16)),
                    "pixel_dtype": pa.array(["uint8"] * n),
                    "pixels": _binary(augment(images[pick], rng)),
                    "row_hash": pa.array([f"x100-{number:05d}-{i:06d}" for i in range(n)]),
                }
            )
            .select(schema.names)
            .cast(schema)
        )
        target = folder / f"batch_id={number}" / "part-00000.parquet"
        target.parent.mkdir(parents=True)
        pq.write_table(table, target, compression="zstd", row_group_size=GROUP_ROWS)
    found = cat.find_dataset(ws.warehouse, DATASET)
    if found is None:
        mnist = cat.get_dataset(ws.warehouse, "mnist")
        cat.create_dataset(
            ws.warehouse,
            DATASET,
            kind=mnist.kind,
            label_column=mnist.label_column,
            schema=mnist.schema,
            now=datetime.now(UTC),
        )


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image shifted by -2..2 pixels each way (zeros fill in) plus noise, as uint8."""
    n = len(images)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    oy, ox = rng.integers(0, 5, size=n), rng.integers(0, 5, size=n)
    ys = oy[:, None] + np.arange(28)
    xs = ox[:, None] + np.arange(28)
    shifted = padded[np.arange(n)[:, None, None], ys[:, :, None], xs[:, None, :]]
    noise = rng.integers(-16, 17, size=shifted.shape, dtype=np.int16)
    return np.clip(shifted.astype(np.int16) + noise, 0, 255).astype(np.uint8).reshape(n, -1)


def _binary(rows: np.ndarray) -> pa.Array:
    n, width = rows.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(rows.tobytes())])


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def measure(command: list[str], env: dict[str, str], out: Path | None) -> tuple[float, int, str]:
    """Wall seconds and peak tree RSS of a child command; its stdout."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout, stderr = child.communicate()
    done.set()
    watcher.join()
    seconds = time.perf_counter() - started
    if child.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return seconds, peak, stdout.decode()


def compare_profiles(local: dict[str, object], spark: dict[str, object]) -> float:
    """Largest relative difference of a mean or std; everything else must be equal."""
    worst = 0.0
    a, b = dict(local), dict(spark)
    a.pop("engine"), b.pop("engine")
    cols_a, cols_b = a.pop("columns"), b.pop("columns")
    assert a == b, (a, b)
    assert isinstance(cols_a, list)
    assert isinstance(cols_b, list)
    for x, y in zip(cols_a, cols_b, strict=True):
        for key in ("mean", "std"):
            u, v = x.pop(key), y.pop(key)
            assert (u is None) == (v is None), (x, y)
            if u is not None:
                worst = max(worst, abs(u - v) / max(abs(u), 1e-300))
        assert x == y, (x, y)
    assert worst < 1e-9, worst
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 7,000,000 rows")
    parser.add_argument("--home", type=Path, default=Path("/tmp/headwater-scale"))
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    rows = round(7_000_000 * args.scale)
    home = args.home.resolve()
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    run_id = prepare(home, rows)
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_SPARK_MASTER": args.master}
    cli = [sys.executable, "-c", "from headwater.faces.cli import main; main()"]
    curated = str(home / "lake" / "curated" / DATASET)
    results: dict[str, dict[str, object]] = {}
    for engine in ("local", "spark"):
        out = home / f"predictions-{engine}.csv"
        seconds, peak, _ = measure(
            [*cli, "predict", run_id, curated, "--out", str(out), "--engine", engine], env, out
        )
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        out.unlink()
        p_seconds, p_peak, text = measure(
            [*cli, "profile", DATASET, "--engine", engine, "--json"], env, None
        )
        results[engine] = {"predict": (seconds, peak, digest), "profile": (p_seconds, p_peak)}
        results[engine]["profile_json"] = json.loads(text)
        print(
            f"{engine:5}  predict {rows / seconds:>9,.0f} rows/s ({seconds:6.1f} s, peak RSS "
            f"{peak / 2**30:.2f} GiB)  profile {rows / p_seconds:>10,.0f} rows/s "
            f"({p_seconds:6.1f} s, peak RSS {p_peak / 2**30:.2f} GiB)",
            flush=True,
        )
    same = results["local"]["predict"][2] == results["spark"]["predict"][2]  # type: ignore[index]
    worst = compare_profiles(results["local"]["profile_json"], results["spark"]["profile_json"])  # type: ignore[arg-type]
    print(
        f"rows: {rows:,}; predictions identical (sha256): {same}; profiles identical: "
        f"True (largest mean/std relative difference {worst:.1e})"
    )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    if not same:
        sys.exit("the engines' predictions differ")


if __name__ == "__main__":
    main()
