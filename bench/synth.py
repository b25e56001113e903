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

    .venv/bin/python bench/synth.py --mnist              # VAE and PCA digits judged by the CNN
    .venv/bin/python bench/synth.py --mnist --mnist-train 10000 --vae-image-epochs 5 --cnn-epochs 2

``--mnist``: the conditional image VAE and PCA-per-class are fitted on the real training
digits (50,000), each makes as many digits, and Headwater's CNN is trained on real, on
VAE and on PCA digits and tested on the real test split (10,000); it prints each
accuracy, its share of the real-trained accuracy (target for the VAE: at least 95%), fit
and sample times, and how many synthetic digits are byte-for-byte training digits (0).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np

from headwater.learning.synth import make_synthesizer
from headwater.learning.synth.example import mixed_table
from headwater.learning.synth.guard import guarded_sample
from headwater.learning.synth.images import PCAImageSynthesizer, VAEImageSynthesizer
from headwater.learning.synth.report import synthesis_report
from headwater.learning.torch_models import CNNClassifier
from headwater.storage.readers.mnist_pickle import load_numpy_pickle

ROOT = Path(__file__).resolve().parents[1]
MNIST = (
    ROOT.parent / "shared" / "datasets" / "mnist" / "mnist.pkl.gz",
    ROOT / "data" / "mnist.pkl.gz",
)


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


def _mnist(train_rows: int, vae_epochs: int, cnn_epochs: int) -> None:
    path = next(p for p in MNIST if p.exists())
    parts = load_numpy_pickle(path)
    assert isinstance(parts, tuple)  # ((x, y), (x, y), (x, y)), checked by the reader
    train, test = parts[0], parts[2]
    x = np.round(np.asarray(train[0][:train_rows]) * 255).astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(train[1][:train_rows], dtype=np.int64)
    x_test = np.asarray(test[0], dtype=np.float32).reshape(-1, 28, 28)
    y_test = np.asarray(test[1], dtype=np.int64)
    seen = {bytes(image) for image in x}
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {"real": (x, y)}
    print(f"MNIST: {len(x):,} training digits, {len(x_test):,} real test digits")
    for name, synth in (
        ("vae", VAEImageSynthesizer(epochs=vae_epochs)),
        ("pca", PCAImageSynthesizer()),
    ):
        started = time.perf_counter()
        synth.fit(x, y)
        fit = time.perf_counter() - started
        started = time.perf_counter()
        images, labels = synth.sample(len(x), seed=1)
        sample = time.perf_counter() - started
        copies = sum(bytes(image) in seen for image in images)
        print(f"  {name}: fit {fit:.1f} s, sample {sample:.1f} s, exact copies {copies}")
        sets[name] = (images, labels)
    accuracy = {}
    for name, (images, labels) in sets.items():
        cnn = CNNClassifier(epochs=cnn_epochs, seed=0)
        cnn.fit(images.astype(np.float32) / 255.0, labels)
        accuracy[name] = float(np.mean(cnn.predict(x_test) == y_test))
        print(
            f"  CNN trained on {name:4}: test accuracy {accuracy[name]:.4f} "
            f"({accuracy[name] / accuracy['real']:.1%} of real)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--methods", default="copula,pca,vae")
    parser.add_argument("--vae-epochs", type=int, default=10)
    parser.add_argument("--mnist", action="store_true", help="the image check instead")
    parser.add_argument("--mnist-train", type=int, default=50_000)
    parser.add_argument("--vae-image-epochs", type=int, default=30)
    parser.add_argument("--cnn-epochs", type=int, default=6)
    args = parser.parse_args()
    if args.mnist:
        _mnist(args.mnist_train, args.vae_image_epochs, args.cnn_epochs)
        return
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
