"""A privacy guard: synthetic rows that sit too close to a real training row are redrawn.

A perfect synthesizer draws rows as the real world does, so about as many of them fall
close to a training row as fresh real rows do: measured against a holdout's 5th
percentile of distance-to-closest-record, that is about 5%, right at the limit a data
owner signs off. The guard moves the bar: rows closer to a training row than
``quantile`` of the training rows' own distances to their nearest *other* training row
(leave-one-out, so the holdout is never used) are dropped and more rows drawn. Exact
copies of training rows fall under every bar and are always dropped. The threshold is
computed from the training rows at sampling time and never saved with the synthesizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from sklearn.neighbors import NearestNeighbors

from headwater.errors import DataError
from headwater.learning.synth.base import Synthesizer
from headwater.learning.synth.report import MAX_MODEL_ROWS, Columns, Encoder

__all__ = ["guarded_sample"]

ROUNDS = 10


def guarded_sample(
    synth: Synthesizer,
    train: pa.Table,
    n: int,
    *,
    seed: int,
    columns: Sequence[str],
    quantile: float = 0.03,
) -> tuple[pa.Table, dict[str, float]]:
    """``n`` rows of ``synth`` none of which is closer to a ``train`` row than the bar."""
    real = Columns.of(train, columns)
    rng = np.random.default_rng(seed)
    if real.rows > MAX_MODEL_ROWS:
        real = real.take(np.sort(rng.choice(real.rows, MAX_MODEL_ROWS, replace=False)))
    encoder = Encoder(real, leave_out=None)
    index = NearestNeighbors(n_neighbors=2).fit(encoder.matrix(real))
    own = index.kneighbors(encoder.matrix(real))[0][:, 1]
    bar = max(float(np.quantile(own, quantile)), 1e-9)
    kept: list[pa.Table] = []
    have, drawn, dropped = 0, 0, 0
    for round_ in range(ROUNDS):
        ask = int((n - have) * 1.1) + 16
        batch = synth.sample(ask, seed=seed + round_ * 1_000_003)
        distance = index.kneighbors(encoder.matrix(Columns.of(batch, columns)), 1)[0][:, 0]
        far = np.flatnonzero(distance >= bar)
        drawn, dropped = drawn + ask, dropped + ask - len(far)
        kept.append(batch.take(far[: n - have]))
        have += min(len(far), n - have)
        if have == n:
            table = pa.concat_tables(kept)
            return table, {"bar": round(bar, 4), "drawn": drawn, "dropped": dropped}
    raise DataError(
        f"the privacy guard dropped {dropped:,} of {drawn:,} rows as too close to a real "
        "row; the synthesizer copies its training rows: try another method or setting"
    )
