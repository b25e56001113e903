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


CUSTOMER_COLUMNS = (
    "customer_id",
    "Annual income (EUR)",
    "Age",
    "City",
    "signup date",
    "Notes (free text)",
    "churned",
)


def write_customers_csv(
    path: Path, rows: int = 300, *, seed: int = 0, with_label: bool = True
) -> Path:
    """A table as people bring it: a UUID id, "NA" and empty cells, an ISO date, free text,
    column names with spaces and parentheses, a text label ("yes"/"no") and no split column.

    The label is learnable: low income churns, and so do older customers in Rome.
    Returns the path; the truth of each row is in the ``churned`` column either way
    (``with_label=False`` leaves the column out, as a file to score would).
    """
    import csv
    import uuid

    rng = np.random.default_rng(seed)
    ids = uuid.UUID(int=int(rng.integers(2**62)))  # seeded, so the file is the same each time
    words = ["great", "slow", "service", "price", "app", "love", "hate", "support", "fast"]
    header = list(CUSTOMER_COLUMNS) if with_label else list(CUSTOMER_COLUMNS[:-1])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            income = float(rng.normal(50_000, 15_000))
            age = int(rng.integers(18, 80))
            city = str(rng.choice(["Paris", "Berlin", "Rome"]))
            churned = income < 45_000 or (city == "Rome" and age > 60)
            note = f"ticket {i}: " + " ".join(rng.choice(words, 8))
            cells = [
                str(uuid.UUID(int=ids.int + i)),
                "NA" if i % 17 == 5 else f"{income:.2f}",
                "" if i % 23 == 7 else str(age),
                "NA" if i % 19 == 3 else city,
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                note,
                "yes" if churned else "no",
            ]
            writer.writerow(cells if with_label else cells[:-1])
    return path


def write_wide_csv(path: Path, columns: int = 40, rows: int = 5) -> Path:
    """A table wider than any terminal: ``column_00`` .. ``column_NN`` of short values."""
    names = [f"column_{j:02d}" for j in range(columns)]
    lines = [",".join(names)]
    lines += [",".join(f"v{i}_{j}" for j in range(columns)) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pipeline_batch(
    path: Path,
    *,
    seed: int,
    train_a: int,
    train_b: int,
    test_a: int = 6,
    test_b: int = 4,
) -> Path:
    """A batch of a learnable table: label ``a`` exactly when ``x1 > 0``, ``x2`` is noise.

    The class counts of the train and test splits are given, so a model that only
    learns the training majority (a heavily regularised one) scores a known accuracy.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for split, label, count in (
        ("train", "a", train_a),
        ("train", "b", train_b),
        ("test", "a", test_a),
        ("test", "b", test_b),
    ):
        for _ in range(count):
            x1 = float(rng.uniform(0.05, 1.0)) * (1 if label == "a" else -1)
            rows.append(f"{x1:.6f},{rng.normal():.6f},{split},{label}")
    path.write_text("x1,x2,split,label\n" + "\n".join(rows) + "\n")
    return path
