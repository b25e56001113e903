"""The report's scores against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from headwater.learning.synth.example import mixed_table
from headwater.learning.synth.report import (
    Columns,
    contingency_score,
    correlation_score,
    fidelity,
    ks_score,
    plot_worst_columns,
    privacy,
    tv_score,
)


def test_ks_score_on_two_known_samples() -> None:
    # ECDFs of {1,2,3,4} and {3,4,5,6} differ most at x in [2, 3): 2/4 - 0/4 = 0.5
    real = np.array([1.0, 2.0, 3.0, 4.0])
    synthetic = np.array([3.0, 4.0, 5.0, 6.0])
    assert ks_score(real, synthetic) == pytest.approx(0.5)
    assert ks_score(real, real.copy()) == pytest.approx(1.0)


def test_ks_score_leaves_missing_values_out() -> None:
    real = np.array([1.0, 2.0, np.nan, 3.0])
    assert ks_score(real, np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)


def test_tv_score_on_known_frequencies() -> None:
    # real a 0.5 b 0.5; synthetic a 0.75 b 0.25: TVD = (0.25 + 0.25) / 2 = 0.25
    assert tv_score(["a", "b", "a", "b"], ["a", "a", "a", "b"]) == pytest.approx(0.75)


def test_contingency_score_on_a_known_table() -> None:
    # real pairs: (x,1) (x,1) (y,2) (y,2) -> 0.5, 0.5
    # synthetic:  (x,1) (x,2) (y,2) (y,2) -> (x,1) .25, (x,2) .25, (y,2) .5
    # TVD = (|.5-.25| + |0-.25| + |.5-.5|) / 2 = 0.25
    score = contingency_score(
        ["x", "x", "y", "y"], [1, 1, 2, 2], ["x", "x", "y", "y"], [1, 2, 2, 2]
    )
    assert score == pytest.approx(0.75)


def test_correlation_score_is_one_minus_half_the_difference() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # real: perfectly correlated (+1); synthetic: perfectly anti-correlated (-1) -> 1 - 2/2 = 0
    assert correlation_score(x, x, x, -x) == pytest.approx(0.0)
    assert correlation_score(x, x, x, 2 * x) == pytest.approx(1.0)
    assert correlation_score(x, np.ones(4), x, x) is None  # a constant column has no correlation


def test_overall_fidelity_is_the_mean_of_shapes_and_trends() -> None:
    table = mixed_table(600, seed=3)
    other = mixed_table(600, seed=4)
    report = fidelity(Columns.of(table, table.column_names), Columns.of(other, other.column_names))
    columns, pairs_of = report["columns"], report["pairs"]
    assert isinstance(columns, dict) and isinstance(pairs_of, dict)
    shapes, pairs = np.mean(list(columns.values())), np.mean(list(pairs_of.values()))
    assert report["overall"] == pytest.approx(100 * (shapes + pairs) / 2, abs=0.01)
    assert len(pairs_of) == 15  # 6 columns: 6*5/2 pairs
    same = fidelity(Columns.of(table, table.column_names), Columns.of(table, table.column_names))
    assert same["overall"] == pytest.approx(100.0)


def test_privacy_counts_exact_copies_and_close_rows() -> None:
    train = mixed_table(400, seed=1)
    holdout = mixed_table(400, seed=2)
    names = train.column_names
    copies = privacy(Columns.of(train, names), Columns.of(holdout, names), Columns.of(train, names))
    assert copies["exact_copies"] == 400
    assert copies["closer_than_holdout_p5"] == pytest.approx(1.0)
    fresh = privacy(
        Columns.of(train, names), Columns.of(holdout, names), Columns.of(mixed_table(400, 9), names)
    )
    assert fresh["exact_copies"] == 0
    assert fresh["closer_than_holdout_p5"] < 0.15


def test_worst_columns_are_drawn(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    table = mixed_table(300, seed=1)
    path = plot_worst_columns(
        table,
        mixed_table(300, seed=2),
        {"age": 0.5, "region": 0.7, "income": 0.9},
        tmp_path / "w.png",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_columns_read_dates_as_days() -> None:
    table = pa.table({"d": pa.array([0, 10], pa.int32()).cast(pa.date32())})
    assert Columns.of(table, ["d"]).numbers["d"].tolist() == [0.0, 10.0]
