"""The parallel image-folder ingest on a realistic folder, over both backends."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from headwater.data.hashing import image_row_hashes
from headwater.data.images import ImageOptions, decode_folder, scan
from headwater.errors import ConfigError
from headwater.flows.images import ingest_images
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.readers.base import image_batch
from tests.data.images_folder import write_photo_folder

BOMB_LIMIT = 1_000_000  # the bomb has 9,000,000 pixels


def _workspace(settings: Settings, name: str) -> Workspace:
    return Workspace(
        settings.model_copy(update={"image_max_pixels": BOMB_LIMIT, "home": settings.home / name})
    )


def test_bad_files_are_quarantined_with_reasons(settings: Settings, tmp_path: Path) -> None:
    specials = write_photo_folder(tmp_path / "photos")
    with _workspace(settings, "one") as workspace:
        report = ingest_images(workspace, tmp_path / "photos", dataset="photos", size=32)
        summary = workspace.dataset("photos")
        quarantined = workspace.quarantine("photos")
        with pytest.raises(ConfigError, match="did not decode"):
            workspace.release("photos", int(str(quarantined[0]["id"])))
    # the warehouse quarantine lists each file set aside, as `headwater quarantine` shows it
    assert {(q["check"], q["field"], q["value"]) for q in quarantined} == {
        ("image_file", str(Path(f).relative_to(tmp_path / "photos")), r) for f, r in report.rejected
    }
    reasons = {Path(f).name: r for f, r in report.rejected}
    assert set(reasons) == {"corrupt.png", "cut.jpg", "tiny.png", "bomb.png"}
    assert reasons["cut.jpg"].startswith("truncated")
    assert reasons["tiny.png"].startswith("too small")
    assert reasons["bomb.png"].startswith("decompression bomb")
    assert reasons["corrupt.png"].startswith("unreadable")
    assert [(Path(f).name, Path(o).name) for f, o in report.duplicates] == [
        ("copy_of_animal.png", "animals_000.png")
    ]
    assert ("brighter.png", "animals_000.png") in {
        (Path(f).name, Path(o).name) for f, o, _ in report.near_duplicates
    }
    # 24 pictures + the animated gif + the near copy; 4 rejected, 1 exact copy not loaded
    assert report.images_found == 24 + 1 + 5 + 1
    assert report.images_loaded == 26
    assert report.per_category == {"animals": 9, "humans": 9, "plants": 8}
    assert summary.splits == {"unassigned": 26}
    assert summary.labels["unassigned"] == {"animals": 9, "humans": 9, "plants": 8}
    assert specials["bomb"].exists()


def test_ids_are_content_hashes_and_stable(settings: Settings, tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos")
    with _workspace(settings, "one") as workspace:
        report = ingest_images(workspace, tmp_path / "photos", dataset="photos", size=16)
        again = ingest_images(workspace, tmp_path / "photos", dataset="photos", size=16)
    assert report.index is not None
    index = pq.read_table(report.index).to_pylist()
    assert len(index) == 26 and len({row["id"] for row in index}) == 26
    first = next(r for r in index if r["file"].endswith("animals_000.png"))
    import hashlib

    raw = (tmp_path / "photos" / "animals" / "animals_000.png").read_bytes()
    assert first["id"] == hashlib.sha256(raw).hexdigest()
    assert again.ingest is None  # nothing new: no batch at all
    assert again.images_loaded == 0 and again.images_known == again.images_found == 31


def _curated_rows(settings: Settings, name: str) -> list[tuple[object, ...]]:
    lake = settings.home / name / "lake" / "curated"
    files = sorted(str(p) for p in lake.rglob("*.parquet"))
    assert files, f"no curated parquet under {lake}"
    query = "SELECT label, source_row, height, width, channels, md5(pixels) FROM read_parquet(?) ORDER BY source_row"
    return duckdb.connect().execute(query, [files]).fetchall()


def test_two_workers_give_the_same_rows_as_one(settings: Settings, tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "photos", per_category=12)
    reports = {}
    for workers in (1, 2):  # own lakes; on PostgreSQL one schema, so two dataset names
        with _workspace(settings, f"w{workers}") as workspace:
            reports[workers] = ingest_images(
                workspace, tmp_path / "photos", dataset=f"photos{workers}", workers=workers, size=24
            )
    one, two = reports[1], reports[2]
    assert one.images_loaded == two.images_loaded == 38
    assert one.rejected == two.rejected and one.duplicates == two.duplicates
    assert _curated_rows(settings, "w1") == _curated_rows(settings, "w2")


def test_reading_the_source_again_counts_each_image_once(tmp_path: Path) -> None:
    """The ingest reads a source again after a write conflict; the report must not double."""
    from headwater.data.images import (
        ImageIngestReport,
        ImageOptions,
        _Collector,
        decode_folder,
        scan,
    )

    write_photo_folder(tmp_path / "photos")
    folders = scan(tmp_path / "photos")
    report = ImageIngestReport("photos")
    collector = _Collector(report, chunk_rows=10, root=tmp_path)
    for _ in range(2):
        rows = sum(
            b.num_rows for b in collector.batches(decode_folder(folders, ImageOptions(size=8)))
        )
        assert rows == report.images_loaded == 27
    assert len(report.duplicates) == 1 and len(report.rejected) == 3


def test_a_daily_run_decodes_and_loads_only_new_images(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_photo_folder(root)
    with _workspace(settings, "one") as workspace:
        first = ingest_images(workspace, root, dataset="photos", size=16)
        rng = np.random.default_rng(3)
        for i in range(3):  # three new pictures, one new bad file, a near copy of an old one
            pixels = rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "humans" / f"new_{i}.png")
        (root / "plants" / "broken.png").write_bytes(b"not a png")
        old = np.asarray(Image.open(root / "animals" / "animals_002.webp")).astype(np.int16)
        Image.fromarray(np.clip(old + 5, 0, 255).astype(np.uint8)).save(root / "plants" / "b.png")
        second = ingest_images(workspace, root, dataset="photos", size=16, workers=2)
        quarantined = workspace.quarantine("photos")
        summary = workspace.dataset("photos")
    assert second.images_found == first.images_found + 5
    assert second.images_known == first.images_found
    assert second.images_loaded == 4 and second.per_category == {"humans": 3, "plants": 1}
    assert [Path(f).name for f, _ in second.rejected] == ["broken.png"]
    assert ("b.png", "animals_002.webp") in {
        (Path(f).name, Path(o).name) for f, o, _ in second.near_duplicates
    }
    assert len(quarantined) == len(first.rejected) + 1  # the old bad files not again
    assert summary.splits == {"unassigned": first.images_loaded + 4}
    assert second.index is not None
    index = pq.read_table(second.index)
    assert index.num_rows == first.images_loaded + 4
    assert len(set(index["batch_id"].to_pylist())) == 2


def test_chunks_smaller_than_a_category_still_allow_every_category(
    settings: Settings, tmp_path: Path
) -> None:
    """The contract is inferred from the first chunk; a folder declares all its categories."""
    from headwater.data.images import ImageOptions, ingest_image_folder

    write_photo_folder(tmp_path / "photos")
    with _workspace(settings, "one") as workspace:
        report = ingest_image_folder(
            tmp_path / "photos",
            dataset="photos",
            warehouse=workspace.warehouse,
            lake=workspace.lake,
            options=ImageOptions(size=8, slice_size=4, max_pixels=BOMB_LIMIT),
            chunk_rows=4,  # the first chunk holds animals only
        )
    assert report.ingest is not None and report.ingest.rows_quarantined == 0
    assert report.per_category == {"animals": 9, "humans": 9, "plants": 8}


def test_the_workers_row_hashes_are_the_ingests_own(tmp_path: Path) -> None:
    """The parent takes each image's row hash from the worker that decoded it; they must be
    the very hashes the ingest computes from the stored rows (duplicates, across batches)."""
    write_photo_folder(tmp_path / "photos", per_category=4)
    options = ImageOptions(size=16)
    decoded = [d for d in decode_folder(scan(tmp_path / "photos"), options) if d.pixels is not None]
    batch = image_batch(
        np.stack([d.pixels for d in decoded if d.pixels is not None]),
        pa.array([d.category for d in decoded], pa.string()),
        split="unassigned",
        first_row=0,
        path=tmp_path,
    )
    assert len(decoded) == 16 and all(d.row_hash for d in decoded)  # one exact copy among them
    assert [d.row_hash for d in decoded] == image_row_hashes(batch).to_pylist()


@pytest.mark.parametrize("workers", [1, 2])
def test_grey_and_colour_pixels_arrive_as_pillow_makes_them(tmp_path: Path, workers: int) -> None:
    """Grey images travel from the workers as one channel (also a WebP, which has no grey
    and stores them as colour); what arrives is exactly Pillow's resized RGB, in file order."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "mixed" / "a"
    folder.mkdir(parents=True)
    grey = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    colour = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(grey, "L").save(folder / "0grey.png")
    Image.fromarray(colour, "RGB").save(folder / "1colour.png")
    Image.fromarray(grey, "L").save(folder / "2grey.webp", lossless=True)
    Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB").save(folder / "3grey-as-rgb.png")
    (folder / "4broken.png").write_text("not an image")
    options = ImageOptions(size=12, workers=workers, slice_size=2)
    decoded = list(decode_folder(scan(tmp_path / "mixed"), options))
    assert [Path(d.path).name for d in decoded] == sorted(p.name for p in folder.iterdir())
    assert decoded[4].pixels is None and decoded[4].reason is not None
    for item in decoded[:4]:
        with Image.open(item.path) as image:
            expected = np.asarray(image.convert("RGB").resize((12, 12), Image.Resampling.BILINEAR))
        assert item.pixels is not None and item.pixels.shape == (12, 12, 3)
        np.testing.assert_array_equal(item.pixels, expected, err_msg=item.path)
