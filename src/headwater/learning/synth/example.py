"""A mixed table with known structure, for tests, benchmarks and trying synthesis out.

Columns: ``age`` (integer, two groups), ``income`` (float, log-normal, 3% missing),
``region`` (5 categories, skewed), ``signup`` (a date), ``visits`` (a count) and
``segment`` (the label, which age, region and income decide with some noise).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["mixed_table"]

REGIONS = ("north", "south", "east", "west", "islands")
SEGMENTS = ("basic", "plus", "premium")


def mixed_table(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` rows of the mixed table, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    young = rng.random(rows) < 0.45
    age = np.where(young, rng.normal(28, 5, rows), rng.normal(55, 10, rows))
    age = np.clip(np.round(age), 18, 90).astype(np.int64)
    region = rng.choice(len(REGIONS), size=rows, p=[0.35, 0.25, 0.2, 0.15, 0.05])
    lift = np.array([0.0, -0.4, 0.3, 0.1, -0.8])[region]
    score = 0.06 * (age - 40) + lift + rng.normal(0, 0.6, rows)
    segment = np.digitize(score, [-0.5, 0.8])
    income = np.exp(10.0 + 0.35 * segment + 0.01 * (age - 40) + rng.normal(0, 0.3, rows))
    income_missing = rng.random(rows) < 0.03
    visits = rng.poisson(np.array([2.0, 5.0, 9.0])[segment]).astype(np.int64)
    start = np.datetime64("2019-01-01").astype(np.int64)
    days = start + rng.integers(0, 6 * 365, rows) - np.where(young, 0, rng.integers(0, 200, rows))
    return pa.table(
        {
            "age": pa.array(age, pa.int64()),
            "income": pa.array(np.round(income, 2), pa.float64(), mask=income_missing),
            "region": pa.array([REGIONS[r] for r in region], pa.string()),
            "signup": pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32()),
            "visits": pa.array(visits, pa.int64()),
            "segment": pa.array([SEGMENTS[s] for s in segment], pa.string()),
        }
    )
