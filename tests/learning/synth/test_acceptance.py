"""Acceptance on a mixed table: faithful, useful and private enough, and better than the baseline.

The table (``mixed_table``) has an integer, a log-normal float with 3% missing, a skewed
category, a date, a count and a label; 4,000 rows, 20% held out for the report.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from headwater.learning.synth import make_synthesizer
from headwater.learning.synth.example import mixed_table
from headwater.learning.synth.guard import guarded_sample
from headwater.learning.synth.report import synthesis_report


@pytest.fixture(scope="module")
def split() -> tuple[pa.Table, pa.Table]:
    table = mixed_table(4000, seed=11)
    order = np.random.default_rng(0).permutation(table.num_rows)
    return table.take(order[:3200]), table.take(order[3200:])


@pytest.fixture(scope="module")
def reports(split: tuple[pa.Table, pa.Table]) -> dict[str, dict[str, object]]:
    train, holdout = split
    out = {}
    for method in ("copula", "pca", "vae"):
        synth = make_synthesizer(method).fit(train, label="segment")
        made, _ = guarded_sample(synth, train, 3200, seed=1, columns=train.column_names)
        out[method] = synthesis_report(
            train, holdout, made, columns=train.column_names, label="segment"
        )
    return out


def _get(report: dict[str, object], part: str, key: str) -> float:
    section = report[part]
    assert isinstance(section, dict)
    return float(section[key])


@pytest.mark.parametrize("method", ["pca", "vae"])
def test_fidelity_at_least_85_and_above_the_copula(
    method: str, reports: dict[str, dict[str, object]]
) -> None:
    overall = _get(reports[method], "fidelity", "overall")
    assert overall >= 85
    assert overall > _get(reports["copula"], "fidelity", "overall")


@pytest.mark.parametrize("method", ["pca", "vae"])
def test_tstr_within_5_points_of_trtr(method: str, reports: dict[str, dict[str, object]]) -> None:
    assert _get(reports[method], "utility", "accuracy_gap") <= 0.05


@pytest.mark.parametrize("method", ["pca", "vae"])
def test_private_enough(method: str, reports: dict[str, dict[str, object]]) -> None:
    assert _get(reports[method], "privacy", "closer_than_holdout_p5") <= 0.05
    assert _get(reports[method], "privacy", "exact_copies") == 0
