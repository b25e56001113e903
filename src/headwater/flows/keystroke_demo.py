"""A demo keystroke-dynamics API on loopback, so the paginated-ingest flow can be tried offline.

It serves what such services publish: one page per user, each page that user's attempts at
typing `PHRASE`, every keystroke a character (or ``[backspace]``) with a microsecond
timestamp, and a relative ``next`` to the following user's page (``null`` on the last).
Two sets are served from different seeds of the same typists: ``/train/`` and ``/test/``,
so a model trained on one can be judged on attempts it never saw.

The timing is made to look like people, not like a formula:

- each typist has a base interval between keys (90-260 ms) and a personal factor per
  digraph (lognormal, sigma 0.25), so "Be" and "yp" have each person's own rhythm;
- every interval gets lognormal noise (each typist's own sigma, 0.12-0.30), a pause after
  a space or a full stop, and now and then (3 %) a hesitation of 0.3-1.2 s;
- speed drifts from attempt to attempt (a random walk, about 4 % a step), as people warm up;
- a slip (about 1 keystroke in 30) types a neighbouring key, then ``[backspace]``, then the
  right key, so 3-4 % of events are backspaces, as in the published sample;
- a few attempts (``invalid_rate``) leave a slip uncorrected or drop a key: they do not
  spell the phrase and are listed in `KeystrokeSet.invalid`;
- as in the published data, every attempt of one typist starts at the same clock second on
  a random date, so calendar parts alone identify a typist only inside one set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np

__all__ = ["PHRASE", "KeystrokeSet", "keystroke_set", "serve_keystrokes"]

PHRASE = "Be Authentic. Be Yourself. Be Typing."
BACKSPACE = "[backspace]"
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@dataclass
class KeystrokeSet:
    """The pages of one set, by path, and what a test needs to check an ingest against."""

    pages: dict[str, bytes]
    first: str
    labels: list[str]
    events: int = 0
    attempts: int = 0
    invalid: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Typist:
    label: str
    interval_ms: float
    sigma: float
    digraph: dict[str, float]
    start: tuple[int, int, int]


def _typists(users: int, seed: int) -> list[_Typist]:
    rng = np.random.default_rng(seed)
    pairs = {PHRASE[i : i + 2] for i in range(len(PHRASE) - 1)}
    return [
        _Typist(
            label=rng.bytes(16).hex(),
            interval_ms=float(rng.uniform(90, 260)),
            sigma=float(rng.uniform(0.12, 0.30)),
            digraph={p: float(rng.lognormal(0, 0.25)) for p in sorted(pairs)},
            start=(int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))),
        )
        for _ in range(users)
    ]


def _neighbour(char: str, rng: np.random.Generator) -> str:
    for row in _ROWS:
        at = row.find(char.lower())
        if at >= 0:  # a key beside it, never the key itself (a slip must change the text)
            left = at == len(row) - 1 or (at > 0 and rng.random() < 0.5)
            return row[at - 1] if left else row[at + 1]
    return "n"


def _keys(rng: np.random.Generator, invalid: bool) -> list[str]:
    """The keys pressed for one attempt: slips corrected with a backspace, or (invalid) not."""
    keys: list[str] = []
    broken = int(rng.integers(0, len(PHRASE))) if invalid else -1
    for i, char in enumerate(PHRASE):
        if i == broken:
            if rng.random() < 0.5:
                keys.append(_neighbour(char, rng))  # a slip left in
            continue  # or a key dropped
        if rng.random() < 1 / 30:
            keys += [_neighbour(char, rng), BACKSPACE]
        keys.append(char)
    return keys


def _attempt(
    typist: _Typist, rng: np.random.Generator, speed: float, invalid: bool
) -> list[dict[str, str]]:
    day = datetime(2018, 1, 1, *typist.start, tzinfo=UTC) + timedelta(
        days=int(rng.integers(0, 730))
    )
    at = day + timedelta(microseconds=int(rng.integers(0, 1_000_000)))
    events: list[dict[str, str]] = []
    previous = ""
    for key in _keys(rng, invalid):
        if events:
            factor = typist.digraph.get(previous[-1:] + key, 1.0) if len(key) == 1 else 0.8
            wait = typist.interval_ms * speed * factor * rng.lognormal(0, typist.sigma)
            if previous in (" ", "."):
                wait += typist.interval_ms * 0.6
            if rng.random() < 0.03:
                wait += rng.uniform(300, 1200)
            at += timedelta(microseconds=int(wait * 1000))
        events.append({"character": key, "typed_at": at.strftime("%Y-%m-%dT%H:%M:%S.%f")})
        previous = key
    return events


def keystroke_set(
    *, users: int = 30, attempts: int = 12, seed: int = 7, part: str = "train",
    invalid_rate: float = 0.05,
) -> KeystrokeSet:  # fmt: skip
    """One set of pages: the same typists for every ``part``, new attempts per part."""
    typists = _typists(users, seed)
    rng = np.random.default_rng([seed, sum(map(ord, part))])
    names = [f"user_{t.label}.json" for t in typists]
    found = KeystrokeSet({}, f"/{part}/{names[0]}", [t.label for t in typists])
    for n, typist in enumerate(typists):
        speed, data = 1.0, []
        for a in range(attempts):
            speed = float(np.clip(speed * rng.lognormal(0, 0.04), 0.7, 1.4))
            invalid = bool(rng.random() < invalid_rate)
            data.append(_attempt(typist, rng, speed, invalid))
            found.events += len(data[-1])
            if invalid:
                found.invalid.append((typist.label, a))
        found.attempts += attempts
        page = {
            "user_label": typist.label,
            "user_data": data,
            "next": names[n + 1] if n + 1 < len(names) else None,
        }
        found.pages[f"/{part}/{names[n]}"] = json.dumps(page).encode()
    return found


class _Handler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?", 1)[0])
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b'{"error": "no such page"}'
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_keystrokes(
    sets: list[KeystrokeSet], *, port: int = 0, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Serve the sets on ``host:port`` (0: any free port) in a thread; yields the base URL."""
    pages = {path: body for s in sets for path, body in s.pages.items()}
    handler = type("KeystrokeHandler", (_Handler,), {"pages": pages})
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
