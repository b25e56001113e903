"""Synthesis benchmark: fit and sample time, peak memory and the report's figures per method.

    .venv/bin/python bench/synth.py                       # 100,000-row mixed table, all methods
    .venv/bin/python bench/synth.py --rows 1000000 --methods pca   # PCA on a million rows
    .venv/bin/python bench/synth.py --rows 20000 --vae-epochs 5    # a quick look

The table is ``headwater.learning.synth.example.mixed_table`` (age, income with 3%
missing, region, signup date, visits, a segment label). 20% is held out; each method is
fitted on the rest and samples as many rows, in its own process so its peak resident
memory is its own (``ru_maxrss``, which includes the table itself). Figures are the
report's (``learning/synth/report.py``; models see at most 20,000 rows a side):
fidelity overall (SDMetrics-comparable, 0-100), TSTR and TRTR accuracy, detectability
ROC-AUC, the share of rows nearer a training row than the holdout's 5th percentile.
SDV is not run here (BSL-licensed, never a dependency; see the issue for its figures).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import numpy as np

from headwater.learning.synth import make_synthesizer
from headwater.learning.synth.example import mixed_table
from headwater.learning.synth.guard import guarded_sample
from headwater.learning.synth.report import synthesis_report


def _one(method: str, rows: int, vae_epochs: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    table = mixed_table(rows, seed=0)
    order = np.random.default_rng(0).permutation(rows)
    train, holdout = table.take(order[: int(rows * 0.8)]), table.take(order[int(rows * 0.8) :])
    settings: dict[str, object] = {"epochs": vae_epochs} if method == "vae" else {}
    synth = make_synthesizer(method, **settings)
    started = time.perf_counter()
    synth.fit(train, label="segment")
    fit = time.perf_counter() - started
    started = time.perf_counter()
    made = synth.sample(train.num_rows, seed=1)
    sample = time.perf_counter() - started
    started = time.perf_counter()
    guarded, _ = guarded_sample(synth, train, train.num_rows, seed=1, columns=train.column_names)
    guard = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = synthesis_report(train, holdout, guarded, columns=train.column_names, label="segment")
    del made
    out.put((method, fit, sample, guard, peak_mb, report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--methods", default="copula,pca,vae")
    parser.add_argument("--vae-epochs", type=int, default=10)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    print(
        f"mixed table, {args.rows:,} rows (80% fitted, 20% held out); vae {args.vae_epochs} epochs"
    )
    print(
        f"{'method':8} {'fit s':>8} {'s/epoch':>8} {'sample s':>9} {'guarded s':>10} "
        f"{'peak MB':>8} {'fidelity':>9} {'TSTR':>7} {'TRTR':>7} {'AUC':>6} {'<p5':>6} "
        f"{'copies':>7}"
    )
    for method in args.methods.split(","):
        queue = context.Queue()
        worker = context.Process(target=_one, args=(method, args.rows, args.vae_epochs, queue))
        worker.start()
        name, fit, sample, guard, peak, report = queue.get()
        worker.join()
        utility, privacy = report["utility"], report["privacy"]
        per_epoch = fit / args.vae_epochs if name == "vae" else float("nan")
        print(
            f"{name:8} {fit:8.1f} {per_epoch:8.2f} {sample:9.2f} {guard:10.2f} {peak:8.0f} "
            f"{report['fidelity']['overall']:9.2f} {utility['tstr_accuracy']:7.4f} "
            f"{utility['trtr_accuracy']:7.4f} {report['detectability']['roc_auc']:6.3f} "
            f"{privacy['closer_than_holdout_p5']:6.3f} {privacy['exact_copies']:7d}",
            flush=True,
        )


if __name__ == "__main__":
    main()
