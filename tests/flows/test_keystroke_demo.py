"""The demo keystroke API: realistic pages, served on loopback and ingested whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from headwater.flows.keystroke_demo import PHRASE, keystroke_set, serve_keystrokes
from headwater.flows.workspace import Workspace
from headwater.settings import Settings


def _typed(events: list[dict[str, str]]) -> str:
    text: list[str] = []
    for event in events:
        if event["character"] == "[backspace]":
            text.pop()
        else:
            text.append(event["character"])
    return "".join(text)


def test_pages_look_like_people_typing() -> None:
    demo = keystroke_set(users=12, attempts=10, invalid_rate=0.1)
    pages = [json.loads(body) for body in demo.pages.values()]
    assert [p["user_label"] for p in pages] == demo.labels and len(set(demo.labels)) == 12
    assert pages[-1]["next"] is None and all(p["next"] for p in pages[:-1])
    invalid = set(demo.invalid)
    assert 0 < len(invalid) < 30
    events = [e for p in pages for a in p["user_data"] for e in a]
    assert 0.02 < sum(e["character"] == "[backspace]" for e in events) / len(events) < 0.05
    for page in pages:
        starts = {a[0]["typed_at"][11:19] for a in page["user_data"]}
        assert len(starts) == 1  # one clock second per typist, on random dates
        for n, attempt in enumerate(page["user_data"]):
            assert (_typed(attempt) == PHRASE) != ((page["user_label"], n) in invalid)
    again = keystroke_set(users=12, attempts=10, invalid_rate=0.1)
    assert again.pages == demo.pages  # seeded: the same pages every time
    test = keystroke_set(users=12, attempts=10, part="test")
    assert test.labels == demo.labels and set(test.pages).isdisjoint(demo.pages)


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    with Workspace(settings.model_copy(update={"fetch_allow_private": True})) as workspace:
        yield workspace


def test_the_demo_api_ingests_as_one_batch_of_keystrokes(ws: Workspace) -> None:
    demo = keystroke_set(users=5, attempts=4)  # under the 1,000 rows `rows` shows
    with serve_keystrokes([demo]) as base:
        url = base + demo.first
        report = ws.ingest_pages(url, records="user_data", label="user_label", dataset="typing")
        assert report.rows_loaded == demo.events and len(report.batches) == 1
        same = ws.ingest_pages(url, records="user_data", label="user_label", dataset="typing")
        assert same.unchanged
    rows = ws.rows("typing", limit=1000)
    assert {r["user_label"] for r in rows} == set(demo.labels)
    assert {(r["user_label"], r["attempt"]) for r in rows} == {
        (label, a) for label in demo.labels for a in range(4)
    }


def test_headwater_demo_keystrokes_serves_until_stopped(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    command = [sys.executable, "-m", "headwater", "demo", "keystrokes", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--users", "3", "--attempts", "2"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        train = server.stdout.readline().split()[0]
        assert train.startswith("http://127.0.0.1:") and "/train/user_" in train
        with Workspace(settings.model_copy(update={"fetch_allow_private": True})) as ws:
            report = ws.ingest_pages(train, records="user_data", label="user_label")
        assert report.rows_loaded > 3 * 2 * 36
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def test_every_page_label_is_allowed_though_the_first_chunk_holds_few(settings: Settings) -> None:
    """One typist per page: the contract inferred at the first chunk must know every page's label."""
    demo = keystroke_set(users=8, attempts=3)
    small = settings.model_copy(update={"fetch_allow_private": True, "ingest_chunk_rows": 100})
    with serve_keystrokes([demo]) as base, Workspace(small) as ws:
        report = ws.ingest_pages(base + demo.first, records="user_data", label="user_label")
    assert report.rows_quarantined == 0 and report.rows_loaded == demo.events
