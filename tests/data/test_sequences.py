"""Sequence datasets: nested records become ordered sequences, checked and quarantined whole."""

from __future__ import annotations

import pandas as pd
import pytest

from headwater.data.sequences import apply_corrections, find_spec
from headwater.flows.keystroke_demo import PHRASE, keystroke_set, serve_keystrokes
from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import sequences as store


def test_a_backspace_erases_the_symbol_before_it() -> None:
    texts = pd.Series(["ab\x08c", "\x08a", "abc\x08\x08d", "a\x08\x08\x08"])
    assert apply_corrections(texts).tolist() == ["ac", "a", "ad", ""]


@pytest.mark.parametrize("backend", ["duckdb", "postgres"], indirect=True)
def test_keystroke_pages_ingest_as_sequences_with_the_invalid_ones_quarantined(
    settings: Settings,
) -> None:
    demo = keystroke_set(users=4, attempts=5, invalid_rate=0.25, seed=3)
    assert demo.invalid  # the seed gives some
    with (
        serve_keystrokes([demo]) as base,
        Workspace(settings.model_copy(update={"fetch_allow_private": True})) as ws,
    ):
        url = base + demo.first
        report = ws.ingest_pages(url, records="user_data", label="user_label", dataset="typing")
        wh = ws.warehouse
        dataset = cat.get_dataset(wh, "typing")
        spec = find_spec(wh, dataset)
        assert spec is not None and spec.expected == PHRASE  # the text most attempts spell
        assert (spec.group, spec.time, spec.symbol) == (
            ("page", "attempt"),
            "typed_at",
            "character",
        )
        assert store.sequence_counts(wh, dataset.key) == {
            "valid": demo.attempts - len(demo.invalid),
            "quarantined": len(demo.invalid),
        }
        bad = store.sequence_rows(wh, dataset.key, status="quarantined").to_pylist()
        pages = {label: n + 1 for n, label in enumerate(demo.labels)}
        assert {(r["label"], r["group_id"]) for r in bad} == {
            (label, f"{pages[label]}/{a}") for label, a in demo.invalid
        }
        assert all(PHRASE in r["reason"] for r in bad)
        check = ws.quality("typing")[0].checks[-1]
        assert (check.name, check.outcome, check.count) == (
            "expected_sequence", "warn", len(demo.invalid),
        )  # fmt: skip
        events = store.sequence_events(wh, dataset.key, status="valid").to_pandas()
        assert (
            events.groupby("sequence_key")["position"]
            .apply(lambda p: p.tolist() == list(range(len(p))))
            .all()
        )
        assert (events["interval_us"].dropna() > 0).all()
        assert len(events) + sum(r["events"] for r in bad) == report.rows_loaded == demo.events
        again = ws.ingest_pages(url, records="user_data", label="user_label", dataset="typing")
        assert again.unchanged and sum(store.sequence_counts(wh, dataset.key).values()) == 20
