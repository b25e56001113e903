"""Typing features: per event, per attempt and as padded sequences, saved and replayed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from headwater.data.sequence_features import SequenceFeatures
from headwater.errors import ModelNotFitted


def _events(attempts: dict[int, list[tuple[str, int]]]) -> pd.DataFrame:
    """Events from (symbol, ms since the previous key) per attempt, starting 2024-05-06 07:08:09."""
    rows = []
    for key, keys in attempts.items():
        at = pd.Timestamp("2024-05-06 07:08:09.000123", tz="UTC")
        for position, (symbol, wait) in enumerate(keys):
            at += pd.Timedelta(milliseconds=wait if position else 0)
            interval = wait * 1000 if position else None
            rows.append((key, position, at, interval, symbol))
    return pd.DataFrame(
        rows, columns=["sequence_key", "position", "occurred_at", "interval_us", "symbol"]
    )


EVENTS = _events(
    {
        7: [("a", 0), ("b", 100), ("c", 300)],
        9: [("a", 0), ("b", 200), ("[backspace]", 100), ("b", 100)],
    }
)


def test_each_event_has_its_interval_code_and_time_parts() -> None:
    features = SequenceFeatures().fit(EVENTS)
    table = features.event_table(EVENTS)
    assert table["interval_ms"].tolist()[:3] == pytest.approx([np.nan, 100.0, 300.0], nan_ok=True)
    assert table["symbol_code"].tolist()[:3] == [2, 3, 4]  # sorted: [backspace], a, b, c
    assert table.loc[0, ["year", "hour", "second", "microsecond"]].tolist() == [2024, 7, 9, 123]
    unseen = EVENTS.assign(symbol="z")
    assert (features.event_table(unseen)["symbol_code"] == 0).all()


def test_an_attempt_is_summed_up_by_its_rhythm() -> None:
    features = SequenceFeatures(max_keys=3, max_digraphs=2, absolute=True).fit(EVENTS)
    table = features.attempt_table(EVENTS)
    assert table.index.tolist() == [7, 9]
    assert table.loc[7, "total_ms"] == 400 and table.loc[9, "backspaces"] == 1
    assert table.loc[7, "keys_per_s"] == pytest.approx(2 / 0.4)
    assert features.digraphs_[0] == "a\x1fb"  # the commonest pair, typed in both
    assert table.loc[7, "digraph_00_ms"] == 100 and table.loc[9, "digraph_00_ms"] == 200
    assert table.loc[9, "digraph_00_rel"] == pytest.approx(200 / 100)  # over the median
    assert not table.isna().any().any()
    relative = SequenceFeatures(max_keys=3, max_digraphs=2).fit(EVENTS).attempt_table(EVENTS)
    assert "total_ms" not in relative and "digraph_00_ms" not in relative  # pace drifts
    assert relative.loc[9, "digraph_00_rel"] == table.loc[9, "digraph_00_rel"]
    assert "start_hour" not in table and "start_hour" in SequenceFeatures(calendar=True).fit(
        EVENTS
    ).attempt_table(EVENTS)


def test_sequences_pad_to_the_longest_and_the_transform_round_trips() -> None:
    features = SequenceFeatures().fit(EVENTS)
    inputs, lengths, keys = features.sequence_arrays(EVENTS)
    assert inputs.shape == (2, 4, 2) and lengths.tolist() == [3, 4] and keys.tolist() == [7, 9]
    assert inputs[0, 3].tolist() == [0.0, 0.0] and inputs[0, 0, 0] == 0.0
    again = SequenceFeatures.from_json(features.to_json())
    assert np.array_equal(again.sequence_arrays(EVENTS)[0], inputs)
    pd.testing.assert_frame_equal(again.attempt_table(EVENTS), features.attempt_table(EVENTS))
    with pytest.raises(ModelNotFitted):
        SequenceFeatures().attempt_table(EVENTS)
