"""A realistic image folder: three categories, several sizes, formats and modes, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = (
    ("png", "RGB"),
    ("jpg", "RGB"),
    ("webp", "RGB"),
    ("bmp", "L"),
    ("gif", "P"),
    ("png", "RGBA"),
)


def _picture(rng: np.random.Generator, size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """A gradient with a coloured block: varied enough that difference hashes differ."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    angle = seed * 0.7
    base = (np.cos(angle) * x / width + np.sin(angle) * y / height) * 127 + 128
    pixels = np.stack([base, np.roll(base, seed * 3, axis=1), 255 - base], axis=-1)
    block = rng.integers(0, 255, 3)
    pixels[height // 4 : height // 2, width // 3 : (2 * width) // 3] = block
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE)
    return image.convert(mode)


def write_photo_folder(root: Path, per_category: int = 8) -> dict[str, Path]:
    """Three categories (one nested a level deeper) and the special files, by what they are."""
    rng = np.random.default_rng(7)
    specials: dict[str, Path] = {}
    seed = 0
    for category in ("animals", "humans", "plants"):
        folder = root / category / ("2026" if category == "plants" else "")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_category):
            suffix, mode = FORMATS[i % len(FORMATS)]
            size = (40 + 13 * i, 30 + 7 * (i % 5))
            seed += 1
            _picture(rng, size, mode, seed).save(folder / f"{category}_{i:03d}.{suffix}")
    animals = root / "animals"
    frames = [_picture(rng, (50, 50), "P", 90 + k) for k in range(3)]
    frames[0].save(animals / "moving.gif", save_all=True, append_images=frames[1:])
    specials["corrupt"] = animals / "corrupt.png"
    specials["corrupt"].write_bytes(b"this is a text file named like a png\n" * 4)
    whole = (animals / "animals_001.jpg").read_bytes()
    specials["truncated"] = root / "humans" / "cut.jpg"
    specials["truncated"].write_bytes(whole[: len(whole) // 2])
    specials["tiny"] = root / "humans" / "tiny.png"
    Image.new("RGB", (4, 4), "red").save(specials["tiny"])
    specials["bomb"] = root / "plants" / "bomb.png"
    Image.new("L", (3000, 3000)).save(specials["bomb"], optimize=True)
    specials["duplicate"] = root / "plants" / "copy_of_animal.png"
    specials["duplicate"].write_bytes((animals / "animals_000.png").read_bytes())
    specials["near"] = root / "humans" / "brighter.png"
    near = np.asarray(Image.open(animals / "animals_000.png")).astype(np.int16) + 6
    Image.fromarray(np.clip(near, 0, 255).astype(np.uint8)).save(specials["near"])
    return specials
