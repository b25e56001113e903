"""Small labelled image sets whose classes form separate clusters (for maps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_blobs_npz(path: Path, sizes: dict[int, int], *, side: int = 8, seed: int = 0) -> Path:
    """``sizes[label]`` images per class around one random picture each, as ``x``/``y``."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, n in sizes.items():
        centre = rng.uniform(0, 255, size=side * side)
        noisy = centre + rng.normal(0, 20, size=(n, side * side))
        xs.append(np.clip(noisy, 0, 255).astype(np.uint8).reshape(n, side, side))
        ys.append(np.full(n, label))
    np.savez(path, x=np.concatenate(xs), y=np.concatenate(ys))
    return path
