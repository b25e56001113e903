"""Keystroke acceptance: who typed this? AdaBoost and the LSTM against the demo API.

    .venv/bin/python bench/keystrokes.py                       # 20 and 50 typists
    .venv/bin/python bench/keystrokes.py --users 20 --attempts 12 --epochs 30

For each typist count, the demo service (`headwater.flows.keystroke_demo`) serves two
disjoint sets of pages from loopback: ``/train/`` and ``/test/`` (the same typists, new
attempts). Through the flows every face uses, the script analyzes the training URL
(fetch, ingest, sequences checked: the first 1,000 records), analyzes it again (read
back, not fetched), trains AdaBoost, a random forest and the LSTM on one seeded 0.2
holdout of the valid attempts, reads the leaderboard, then predicts every attempt of
the unseen ``/test/`` pages with each model and writes the CSV. It prints holdout
accuracy, accuracy on the unseen pages (valid attempts), train seconds and the load.

How the demo makes the timing noise realistic (see its module docstring): each typist
has a base pace (90-260 ms) and a personal factor per digraph (log-normal), every
interval gets log-normal noise with the typist's own sigma (0.12-0.30), pauses after
spaces and full stops, 3 % hesitations of 0.3-1.2 s, speed drifting from attempt to
attempt (a random walk, fatigue and warm-up), slips corrected with ``[backspace]``
(3-4 % of events) and some invalid attempts that are quarantined, not trained on.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from headwater.flows import runs as run_flows
from headwater.flows import sequences as flows
from headwater.flows.keystroke_demo import keystroke_set, serve_keystrokes
from headwater.flows.workspace import Workspace
from headwater.settings import Settings

PAGES = {"records": "user_data", "label": "user_label"}


def one(users: int, attempts: int, test_attempts: int, epochs: int, home: Path) -> None:
    train = keystroke_set(users=users, attempts=attempts, seed=11)
    test = keystroke_set(users=users, attempts=test_attempts, seed=11, part="test")
    settings = Settings(home=home, fetch_allow_private=True)
    with serve_keystrokes([train, test]) as base, Workspace(settings) as ws:
        began = time.perf_counter()
        found = flows.analyze_source(ws, base + train.first, dataset="typing", first=1000, **PAGES)
        fetched = time.perf_counter() - began
        began = time.perf_counter()
        again = flows.analyze_source(ws, base + train.first, first=1000)
        print(
            f"\n{users} typists x {attempts} attempts: {found.counts} sequences "
            f"({len(train.invalid)} invalid in the demo), {len(found.records)} records shown; "
            f"analyze {fetched:.1f} s fetched, {time.perf_counter() - began:.1f} s "
            f"again (fetched: {again.fetched})"
        )
        models = {
            "adaboost": {},
            "random_forest": {"n_estimators": 300},
            "lstm": {"epochs": epochs},
        }
        for model, params in models.items():
            began = time.perf_counter()
            run = flows.train_sequences(
                ws,
                flows.SequenceTrainRequest("typing", model, params, holdout=0.2, name=model),
            )
            seconds = time.perf_counter() - began
            out = home / f"predictions-{users}-{model}.csv"
            table = flows.predict_sequences(ws, model, base + test.first, out=out, **PAGES)
            print(
                f"  {model:13s} holdout accuracy {float(str(run.metrics['test_accuracy'])):.1%} "
                f"({run.metrics['rows']}), unseen /test/ pages {table.accuracy or 0:.1%} "
                f"over {table.total} attempts, trained in {seconds:.0f} s; CSV {out.name}"
            )
        board = run_flows.leaderboard(ws, "typing")
        print("  leaderboard: " + ", ".join(
            f"{r.model} {float(str(r.metrics['test_accuracy'])):.1%}" for r in board
        ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--test-attempts", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for users in args.users:
        with tempfile.TemporaryDirectory() as home:
            one(users, args.attempts, args.test_attempts, args.epochs, Path(home))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
