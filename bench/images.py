"""Image-folder pipeline benchmark: images/s decoding with 1 and 2 worker processes.

    .venv/bin/python bench/images.py                     # 30,000 images in 3 categories
    .venv/bin/python bench/images.py --images 3000       # a quick look

A folder ``<tmp>/<category>/*.{png,jpg,webp}`` of varied sizes (48 to 160 px) is
written once, with a few bad files (text named .png, a truncated JPEG, a 4 px image);
then `headwater.data.images.decode_folder` (decode, convert to RGB, resize to 64 px,
content hash, difference hash) runs over it with each worker count, and the script
prints images/s, the speed-up of 2 workers over 1, the peak resident memory of this
process and of the worker processes, and the files set aside with their reasons.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from headwater.data.images import ImageOptions, decode_folder, scan

CATEGORIES = ("animals", "humans", "plants")
SUFFIXES = ("png", "jpg", "webp")


def write_folder(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        side = int(rng.integers(48, 160))
        y, x = np.mgrid[0:side, 0:side]
        base = (x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2)) % 256
        pixels = np.stack([base, np.roll(base, i % 17, 0), 255 - base], -1).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        image.save(folder / f"{i:06d}.{SUFFIXES[i % len(SUFFIXES)]}")
    (root / "animals" / "bad.png").write_text("not an image")
    whole = (root / "humans" / f"{1:06d}.jpg").read_bytes()
    (root / "humans" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("RGB", (4, 4)).save(root / "plants" / "tiny.png")


def run(root: Path, workers: int) -> tuple[float, int, list[tuple[str, str]]]:
    folders = scan(root)
    started = time.perf_counter()
    count = 0
    rejected = []
    for item in decode_folder(folders, ImageOptions(size=64, workers=workers)):
        count += 1
        if item.reason is not None:
            rejected.append((item.path, item.reason))
    return count / (time.perf_counter() - started), count, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=30_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        started = time.perf_counter()
        write_folder(root, args.images)
        print(f"wrote {args.images} images in {time.perf_counter() - started:.1f} s")
        speeds = {}
        for workers in (1, 2):
            speed, count, rejected = run(root, workers)
            speeds[workers] = speed
            print(f"workers={workers}: {count} files, {speed:,.0f} images/s")
        for path, reason in rejected:
            print(f"  set aside {Path(path).relative_to(root)}: {reason}")
        print(f"speed-up 2 vs 1: {speeds[2] / speeds[1]:.2f}x")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: main {own:.0f} MiB, largest worker {children:.0f} MiB")


if __name__ == "__main__":
    main()
