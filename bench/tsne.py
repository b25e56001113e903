"""t-SNE map benchmark: `headwater tsne` on the 70,000 MNIST images beside the bare floor.

    .venv/bin/python bench/tsne.py                    # 20,000 of the 70,000 real digits
    .venv/bin/python bench/tsne.py --sample 5000      # a quick look

The real MNIST IDX files (``/work/shared/datasets/mnist``: 60k train, 10k test) are
copied to a folder and ingested into a throwaway home. Then, in the same run:

* the floor: the same pixels read straight from the IDX files, a uniform sample of
  ``--sample``, ``PCA(50)`` and ``openTSNE.TSNE(n_jobs=2).fit``, nothing else;
* Headwater: `headwater.flows.tsne.tsne_map` (rows read from the warehouse, the sample
  stratified by label, PCA to 50, openTSNE on 2 threads, trustworthiness, PNG, map saved).

It prints seconds of each, their ratio (target: Headwater within 1.2x the floor), the
trustworthiness of each at k = 10 on the same 4,000-point subsample rule (target at least
0.95), every class's kept share, and the load average before and after.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from openTSNE import TSNE
from sklearn.decomposition import PCA

from headwater.flows.tsne import tsne_map
from headwater.flows.workspace import Workspace
from headwater.learning.tsne import trust
from headwater.settings import Settings

MNIST = Path("/work/shared/datasets/mnist")
PARTS = ("train", "t10k")


def load() -> tuple[np.ndarray, np.ndarray]:
    """The 70,000 digits as (n, 784) float32 in 0..1 and their labels, from the IDX files."""
    pixels, labels = [], []
    for part in PARTS:
        with gzip.open(MNIST / f"{part}-images-idx3-ubyte.gz") as handle:
            raw = np.frombuffer(handle.read(), np.uint8, offset=16)
        pixels.append(raw.reshape(-1, 784).astype(np.float32) / 255)
        with gzip.open(MNIST / f"{part}-labels-idx1-ubyte.gz") as handle:
            labels.append(np.frombuffer(handle.read(), np.uint8, offset=8))
    return np.concatenate(pixels), np.concatenate(labels)


def floor(pixels: np.ndarray, labels: np.ndarray, size: int) -> tuple[float, float, int]:
    rows = np.random.default_rng(0).choice(len(pixels), size=size, replace=False)
    began = time.perf_counter()
    reduced = PCA(n_components=50, random_state=0).fit_transform(pixels[rows])
    points = np.asarray(TSNE(n_jobs=2, random_state=0).fit(reduced))
    seconds = time.perf_counter() - began
    score, _ = trust(reduced.astype(np.float32), points.astype(np.float32))
    return seconds, score, len(np.unique(labels[rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()
    print("load before:", Path("/proc/loadavg").read_text().strip())
    pixels, labels = load()
    with tempfile.TemporaryDirectory() as tmp, Workspace(Settings(home=Path(tmp) / "home")) as ws:
        folder = Path(tmp) / "mnist"
        folder.mkdir()
        for part in PARTS:
            for kind in ("images-idx3", "labels-idx1"):
                shutil.copy(MNIST / f"{part}-{kind}-ubyte.gz", folder)
        began = time.perf_counter()
        ws.ingest(folder, dataset="mnist")
        print(f"ingest of {len(pixels):,} images: {time.perf_counter() - began:.1f} s")
        floor_s, floor_trust, floor_classes = floor(pixels, labels, args.sample)
        print(
            f"floor (PCA 50 + openTSNE.TSNE(n_jobs=2).fit): {floor_s:.1f} s, "
            f"trustworthiness {floor_trust:.4f}, classes {floor_classes}"
        )
        result = tsne_map(ws, "mnist", sample=args.sample, n_jobs=2)
        ours = result.seconds["total"]
        steps = ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items() if k != "total")
        print(
            f"headwater tsne: {ours:.1f} s ({steps}), trustworthiness "
            f"{result.trustworthiness:.4f} on {result.trust_points} points, {result.engine}"
        )
        print(f"ratio headwater / floor: {ours / floor_s:.2f} (target <= 1.2)")
        for label, kept in result.classes.items():
            print(
                f"  class {label}: kept {kept['kept']:,} of {kept['rows']:,} ({kept['share']:.1%})"
            )
    print("load after:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
