"""The features table's checks: rows set aside with reasons, counts that add up, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from headwater.data.embeddings import FeatureChecks, vector_problems


def test_bad_vectors_are_set_aside_and_counts_add_up(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    checks = FeatureChecks(tmp_path / "f.parquet", 4)
    for part in range(3):
        vectors = rng.normal(size=(200, 4)).astype(np.float32)
        labels = ["a"] * 150 + ["tiny"] * 50
        if part == 1:
            vectors[3, 2] = np.nan
            vectors[160] = 0.0
        checks.add([f"{part}-{i}" for i in range(200)], labels, vectors)
    checks.close()
    assert checks.refusal() is None
    summary = checks.to_dict()
    assert summary["set_aside"] == [
        {"id": "1-3", "label": "a", "reason": "non-finite value nan in f2"},
        {"id": "1-160", "label": "tiny", "reason": "constant vector (every feature 0)"},
    ]
    assert summary["categories"]["tiny"]["kept"] == 149  # type: ignore[index]
    assert [p["rows"] for p in summary["parts"]] == [200, 198, 200]  # type: ignore[index]
    aside = pq.read_table(checks.aside_path).to_pylist()
    assert [row["id"] for row in aside] == ["1-3", "1-160"]
    table = pq.read_table(tmp_path / "f.parquet")
    assert table.num_rows == 598 and table.column_names == ["id", "label", "f0", "f1", "f2", "f3"]


def test_a_collapsed_category_or_too_many_bad_rows_refuse(tmp_path: Path) -> None:
    checks = FeatureChecks(tmp_path / "f.parquet", 3)
    same = np.tile(np.array([[1.0, 2.0, 3.0]], np.float32), (5, 1))
    varied = np.arange(15, dtype=np.float32).reshape(5, 3) * [[1, 2, 3]]
    bad = np.full((2, 3), np.inf, np.float32)
    checks.add([str(i) for i in range(12)], ["x"] * 5 + ["y"] * 7, np.vstack([same, varied, bad]))
    checks.close()
    refusal = checks.refusal() or ""
    assert "category 'x': all 5 vectors are identical" in refusal
    assert "2 of 12 vectors are unusable" in refusal
    assert vector_problems(np.array([[np.inf, 1.0], [2.0, 2.0], [1.0, 2.0]], np.float32)) == [
        "non-finite value inf in f0",
        "constant vector (every feature 2)",
        None,
    ]
