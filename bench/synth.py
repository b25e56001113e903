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
import json
import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import torch
from threadpoolctl import threadpool_limits

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


def _split(rows: int) -> tuple[pa.Table, pa.Table]:
    table = mixed_table(rows, seed=0)
    order = np.random.default_rng(0).permutation(rows)
    return table.take(order[: int(rows * 0.8)]), table.take(order[int(rows * 0.8) :])


def _one(
    method: str,
    rows: int,
    vae_epochs: int,
    folder: Path,
    threads: int,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """Fit one of Headwater's methods, sample, report; the rows made go to ``method.csv``."""
    _threads(threads)
    train, holdout = _split(rows)
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
    pacsv.write_csv(guarded, folder / f"{method}.csv")
    del made
    out.put((method, fit, sample, guard, peak_mb, report))


def _sdv(python: str, rows: int, tvae_epochs: int, folder: Path, threads: int) -> list[tuple]:  # type: ignore[type-arg]
    """SDV's GaussianCopula and TVAE on the same rows, in SDV's own environment (a subprocess);
    SDMetrics' QualityReport of theirs and ours; Headwater's report of theirs."""
    script = Path(__file__).with_name("sdv_side.py")
    command = [python, str(script), str(folder), "--tvae-epochs", str(tvae_epochs)]
    done = subprocess.run(
        [*command, "--threads", str(threads)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"SDV did not run ({python}): {done.stderr.strip().splitlines()[-1:]}")
        return []
    found: dict[str, dict[str, float]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            found.setdefault(item.pop("name"), {}).update(item)
    train, holdout = _split(rows)
    results = []
    for name, timing in found.items():
        if "fit_s" not in timing:
            continue
        types = dict(zip(train.schema.names, train.schema.types, strict=True))
        made = pacsv.read_csv(
            folder / f"{name}.csv", convert_options=pacsv.ConvertOptions(column_types=types)
        ).select(train.column_names)
        report = synthesis_report(train, holdout, made, columns=train.column_names, label="segment")
        results.append((name, timing["fit_s"], timing["sample_s"], report))
    return [*results, *[(k, v["sdmetrics_quality"]) for k, v in found.items()]]


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def _mnist_data(train_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    path = next(p for p in MNIST if p.exists())
    parts = load_numpy_pickle(path)
    assert isinstance(parts, tuple)  # ((x, y), (x, y), (x, y)), checked by the reader
    train, test = parts[0], parts[2]
    x = np.round(np.asarray(train[0][:train_rows]) * 255).astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(train[1][:train_rows], dtype=np.int64)
    x_test = np.asarray(test[0], dtype=np.float32).reshape(-1, 28, 28)
    return x, y, x_test, np.asarray(test[1], dtype=np.int64)


def _threads(threads: int) -> None:
    """Pin torch and the BLAS pools: spinning threads crawl on a shared, busy machine."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def _fit_images(
    name: str, train_rows: int, settings: dict[str, object], folder: Path, threads: int
) -> list[str]:
    """Fit ``name`` (vae or pca) on the real digits, sample as many; the .npz files written."""
    _threads(threads)
    settings = dict(settings)
    samplings = str(settings.pop("samplings", "prior")).split(",")
    x, y, _, _ = _mnist_data(train_rows)
    seen = {bytes(image) for image in x}
    synth: VAEImageSynthesizer | PCAImageSynthesizer = (
        VAEImageSynthesizer(**settings) if name == "vae" else PCAImageSynthesizer()  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    synth.fit(x, y)
    print(f"  {name}: fit {time.perf_counter() - started:.1f} s (load {_load()})", flush=True)
    written = []
    for sampling in samplings if name == "vae" else [""]:
        if isinstance(synth, VAEImageSynthesizer):
            synth.sampling = sampling  # one fit, each way of drawing codes
        started = time.perf_counter()
        images, labels = synth.sample(len(x), seed=1)
        copies = sum(bytes(image) in seen for image in images)
        label = f"vae-{sampling}" if sampling else name
        print(
            f"  {label}: sample {time.perf_counter() - started:.1f} s, exact copies of training "
            f"digits {copies}",
            flush=True,
        )
        np.savez(folder / f"{label}.npz", x=images, y=labels)
        written.append(label)
    return written


def _judge(label: str, train_rows: int, folder: Path, cnn_epochs: int, threads: int) -> float:
    """The CNN trained on one set of digits (real or synthetic), tested on the real test split."""
    _threads(threads)
    x, y, x_test, y_test = _mnist_data(train_rows)
    if label != "real":
        with np.load(folder / f"{label}.npz") as made:
            x, y = made["x"], made["y"]
    started = time.perf_counter()
    cnn = CNNClassifier(epochs=cnn_epochs, seed=0, n_threads=threads)
    cnn.fit(x.astype(np.float32) / 255.0, y)
    accuracy = float(np.mean(cnn.predict(x_test) == y_test))
    print(
        f"  CNN on {len(x):,} {label} digits: test accuracy {accuracy:.4f} "
        f"({time.perf_counter() - started:.0f} s, load {_load()})",
        flush=True,
    )
    return accuracy


def _mnist(args: argparse.Namespace) -> None:
    """Two worker processes: the VAE fits while the real and PCA digits are judged."""
    vae: dict[str, object] = {
        "epochs": args.vae_image_epochs,
        "latent": args.vae_latent,
        "hidden": args.vae_hidden,
        "sampling": "posterior" if "posterior" in args.vae_sampling else "prior",
        "samplings": args.vae_sampling,
    }
    print(
        f"MNIST: {args.mnist_train:,} real training digits, the 10,000 real test digits; VAE "
        f"{vae}; CNN {args.cnn_epochs} epochs; {args.workers} worker processes of {args.threads} "
        f"thread(s); load average {_load()} on {os.cpu_count()} cores",
        flush=True,
    )
    settings = {k: v for k, v in vae.items() if k != "samplings"}
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(args.workers, mp_context=context) as pool,
    ):
        folder, n, threads = Path(tmp), args.mnist_train, args.threads
        fit_vae = pool.submit(
            _fit_images, "vae", n, {**settings, "samplings": vae["samplings"]}, folder, threads
        )
        judged = {"real": pool.submit(_judge, "real", n, folder, args.cnn_epochs, threads)}
        pca = pool.submit(_fit_images, "pca", n, {}, folder, threads).result()
        judged |= {k: pool.submit(_judge, k, n, folder, args.cnn_epochs, threads) for k in pca}
        judged |= {
            k: pool.submit(_judge, k, n, folder, args.cnn_epochs, threads) for k in fit_vae.result()
        }
        accuracy = {k: f.result() for k, f in judged.items()}
    for name, value in accuracy.items():
        print(
            f"  {name:14} CNN test accuracy {value:.4f}  ({value / accuracy['real']:.1%} of the "
            "real-trained CNN's)"
        )
    print(f"  done; load average {_load()}")


def _tabular(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    print(
        f"mixed table, {args.rows:,} rows (80% fitted, 20% held out); vae and SDV's TVAE "
        f"{args.vae_epochs} epochs; {args.threads} thread(s); load average {_load()} on "
        f"{os.cpu_count()} cores"
    )
    rows: list[tuple[str, float, float, float, float, dict]] = []  # type: ignore[type-arg]
    quality: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, _ = _split(args.rows)
        pacsv.write_csv(train, folder / "train.csv")
        for method in args.methods.split(","):
            queue = context.Queue()
            worker = context.Process(
                target=_one,
                args=(method, args.rows, args.vae_epochs, folder, args.threads, queue),
            )
            worker.start()
            name, fit, sample, _, peak, report = queue.get()
            worker.join()
            rows.append((name, fit, sample, peak, fit / args.vae_epochs, report))
            print(f"  {name}: fit {fit:.1f} s (load {_load()})", flush=True)
        if args.sdv:
            for item in _sdv(args.sdv, args.rows, args.vae_epochs, folder, args.threads):
                if len(item) == 2:
                    quality[item[0]] = item[1]
                else:
                    name, fit, sample, report = item
                    rows.append((name, fit, sample, float("nan"), fit / args.vae_epochs, report))
    _table(rows, quality)


def _table(rows: list[tuple], quality: dict[str, float]) -> None:  # type: ignore[type-arg]
    print(
        f"{'method':20} {'fit s':>8} {'s/epoch':>8} {'sample s':>9} {'peak MB':>8} "
        f"{'fidelity':>9} {'SDMetrics':>9} {'TSTR':>7} {'TRTR':>7} {'AUC':>6} {'<p5':>6} "
        f"{'copies':>7}"
    )
    for name, fit, sample, peak, per_epoch, report in rows:
        utility, privacy = report["utility"], report["privacy"]
        epoch = per_epoch if name in ("vae", "sdv_tvae") else float("nan")
        print(
            f"{name:20} {fit:8.1f} {epoch:8.2f} {sample:9.2f} {peak:8.0f} "
            f"{report['fidelity']['overall']:9.2f} {quality.get(name, float('nan')):9.2f} "
            f"{utility['tstr_accuracy']:7.4f} {utility['trtr_accuracy']:7.4f} "
            f"{report['detectability']['roc_auc']:6.3f} {privacy['closer_than_holdout_p5']:6.3f} "
            f"{privacy['exact_copies']:7d}",
            flush=True,
        )
    print(f"done; load average {_load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--methods", default="copula,pca,vae")
    parser.add_argument("--vae-epochs", type=int, default=10)
    parser.add_argument("--mnist", action="store_true", help="the image check instead")
    parser.add_argument(
        "--sdv",
        metavar="PYTHON",
        default=None,
        help="SDV's Python (e.g. /tmp/sdv/bin/python): also run its GaussianCopula and TVAE",
    )
    parser.add_argument("--mnist-train", type=int, default=50_000)
    parser.add_argument("--vae-image-epochs", type=int, default=30)
    parser.add_argument("--vae-latent", type=int, default=20)
    parser.add_argument("--vae-hidden", type=int, default=512)
    parser.add_argument("--vae-sampling", default="prior,posterior", help="prior and/or posterior")
    parser.add_argument("--cnn-epochs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="processes for the MNIST check")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per process")
    args = parser.parse_args()
    if args.mnist:
        _mnist(args)
        return
    _tabular(args)


if __name__ == "__main__":
    main()
