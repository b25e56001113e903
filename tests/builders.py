"""Small real data files for tests: the same formats users bring, made on the spot."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def digits(n: int, *, seed: int = 0, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """n fake digit images (uint8) with labels 0..9 in turn; every image differs."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 10
    return images, labels


def write_mnist_pickle(
    path: Path, sizes: tuple[int, int, int] = (30, 10, 10), *, seed: int = 0
) -> Path:
    """The classic layout: ((X_train, y), (X_val, y), (X_test, y)), X float32 in 0..1."""
    parts = []
    offset = 0
    for n in sizes:
        images, labels = digits(n, seed=seed + offset)
        parts.append(((images.reshape(n, -1) / np.float32(255)).astype(np.float32), labels))
        offset += n
    with gzip.open(path, "wb") as handle:
        pickle.dump(tuple(parts), handle, protocol=2)
    return path


def write_idx_pair(
    folder: Path, prefix: str, n: int, *, seed: int = 0, gz: bool = True
) -> tuple[Path, Path]:
    images, labels = digits(n, seed=seed)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    image_path = folder / f"{prefix}-images-idx3-ubyte{suffix}"
    label_path = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
    with opener(image_path, "wb") as handle:
        handle.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
    with opener(label_path, "wb") as handle:
        handle.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())
    return image_path, label_path


def write_image_folder(root: Path, per_label: int = 3, *, seed: int = 0) -> Path:
    images, _ = digits(per_label * 3, seed=seed)
    for i, image in enumerate(images):
        folder = root / str(i % 3)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"img_{i}.png")
    return root


def write_csv(path: Path, rows: int = 20, *, start: int = 0) -> Path:
    lines = ["id,name,price,when,label"]
    for i in range(start, start + rows):
        lines.append(f"{i},item {i},{i * 1.5},2024-01-{1 + i % 28:02d} 10:00:00,{i % 3}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_small_digits(path: Path, *, change_label_of: int | None = None) -> Path:
    """scikit-learn's 8x8 digits as an .npz with train and test splits: small and learnable."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    if change_label_of is not None:
        labels = labels.copy()
        labels[change_label_of] = (labels[change_label_of] + 1) % 10
    np.savez(
        path,
        x_train=images[:1500],
        y_train=labels[:1500],
        x_test=images[1500:],
        y_test=labels[1500:],
    )
    return path
