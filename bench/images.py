"""Image-folder pipeline benchmark: the whole ingest with 1 and 2 worker processes.

    .venv/bin/python bench/images.py                      # 30,000 real MNIST digits
    .venv/bin/python bench/images.py --images 3000        # a quick look
    .venv/bin/python bench/images.py --decode-only        # the pool alone, no warehouse
    .venv/bin/python bench/images.py --folder /tmp/digits # render once, keep for reruns

Real MNIST (``../shared/datasets/mnist``) is rendered once into ``<tmp>/<digit>/``
(10 categories; PNG, JPEG and WebP in turn) plus a few bad files: text named .png, a
truncated JPEG, a 4 px image and a decompression bomb (over a 1 Mpx limit set for the
run). Then `headwater images ingest` runs (`flows.images.ingest_images`: decode,
convert, resize to 64 px, content and difference hashes, the quarantine, one batch into
a fresh DuckDB workspace) with each worker count, each in its own process so its peak
resident memory (parent and largest worker) is its own. Printed: images/s, the speed-up
of 2 workers over 1, peak RSS, the files quarantined with their reasons, and the load
average: on a shared machine the speed-up means little under load.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
SUFFIXES = ("png", "jpg", "webp")
BOMB_LIMIT = 1_000_000


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def render_mnist(root: Path, count: int) -> None:
    """The first ``count`` training digits as ``root/<digit>/<n>.<png|jpg|webp>``, bad files."""
    images = _idx(MNIST / "train-images-idx3-ubyte.gz")[:count]
    labels = _idx(MNIST / "train-labels-idx1-ubyte.gz")[:count]
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        suffix = SUFFIXES[i % len(SUFFIXES)]
        Image.fromarray(pixels, "L").save(root / str(label) / f"{i:06d}.{suffix}")
    (root / "0" / "bad.png").write_text("not an image")
    whole = (root / str(labels[1]) / "000001.jpg").read_bytes()
    (root / "1" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (4, 4)).save(root / "2" / "tiny.png")
    Image.new("L", (1500, 1500)).save(root / "3" / "bomb.png", optimize=True)


def one_run(root: Path, workers: int, decode_only: bool) -> dict[str, object]:
    """One timed ingest (or decode) in this process; the caller runs it in a fresh one."""
    from headwater.data.images import ImageOptions, decode_folder, scan
    from headwater.flows.images import ingest_images
    from headwater.flows.workspace import Workspace
    from headwater.settings import Settings

    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime  # the imports are not the pipeline's
    started = time.perf_counter()
    if decode_only:
        options = ImageOptions(size=64, workers=workers, max_pixels=BOMB_LIMIT)
        rejected = [
            (d.path, d.reason) for d in decode_folder(scan(root), options) if d.reason is not None
        ]
        found = sum(len(files) for _, files in scan(root))
        ended = time.perf_counter()
    else:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(home=Path(home), image_max_pixels=BOMB_LIMIT)
            with Workspace(settings) as workspace:
                report = ingest_images(workspace, root, dataset="digits", workers=workers)
            ended = time.perf_counter()  # removing the benchmark's workspace is not the ingest
        rejected, found = report.rejected, report.images_found
    seconds = ended - started
    own, workers_use = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return {
        "cpu_main_s": own.ru_utime + own.ru_stime - cpu_before,
        "cpu_workers_s": workers_use.ru_utime + workers_use.ru_stime,
        "workers": workers,
        "images": found,
        "seconds": seconds,
        "images_per_s": found / seconds,
        "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rejected": [[str(Path(f).relative_to(root)), r] for f, r in rejected],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=30_000)
    parser.add_argument("--decode-only", action="store_true")
    parser.add_argument("--folder", type=Path, help="render here (once) and keep the folder")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (1 worker, 2 workers)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.root, args.one, args.decode_only)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.folder or Path(tmp) / "digits"
        if not (root / "9").is_dir():
            started = time.perf_counter()
            render_mnist(root, args.images)
            print(f"rendered {args.images} MNIST digits in {time.perf_counter() - started:.1f} s")
        runs: dict[int, list[dict[str, object]]] = {1: [], 2: []}
        for _ in range(args.repeat):  # interleaved: a slow spell of the host hits both counts
            for workers in (1, 2):
                runs[workers].append(result := _timed(root, workers, args.decode_only))
                _say(result)
        for path, reason in runs[1][0]["rejected"]:
            print(f"  quarantined {path}: {reason}")
        pairs = [
            b["images_per_s"] / a["images_per_s"] for a, b in zip(runs[1], runs[2], strict=True)
        ]
        print(
            "speed-up 2 vs 1 per round: " + ", ".join(f"{x:.2f}x" for x in pairs) + "; median "
            f"{statistics.median(pairs):.2f}x (target 1.7x); median images/s: 1 worker "
            f"{statistics.median(r['images_per_s'] for r in runs[1]):,.0f}, 2 workers "
            f"{statistics.median(r['images_per_s'] for r in runs[2]):,.0f}"
        )


def _timed(root: Path, workers: int, decode_only: bool) -> dict[str, object]:
    """One run in a fresh process, so its peak resident memory is its own."""
    command = [sys.executable, __file__, "--one", str(workers), "--root", str(root)]
    if decode_only:
        command.append("--decode-only")
    load = os.getloadavg()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return {**json.loads(done.stdout), "load": load}


def _say(result: dict[str, object]) -> None:
    print(
        f"workers={result['workers']}: {result['images']} files in {result['seconds']:.1f} s, "
        f"{result['images_per_s']:,.0f} images/s; peak RSS main "
        f"{result['rss_main_mib']:.0f} MiB, largest worker "
        f"{result['rss_worker_mib']:.0f} MiB; CPU s: parent "
        f"{result['cpu_main_s']:.1f}, workers {result['cpu_workers_s']:.1f}; "
        "loadavg before " + " ".join(f"{x:.2f}" for x in result["load"]),
        flush=True,
    )


if __name__ == "__main__":
    main()
