"""Anomaly detection on MNIST: train the autoencoder, then find 500 broken images among 10,000.

    .venv/bin/python bench/anomaly.py            # full run: about 10-20 s on 2 cores
    .venv/bin/python bench/anomaly.py --quick    # a smoke run: 2 epochs, 10k training rows

Reports, for the acceptance criteria of "Trust the data" (part 3):

* ROC-AUC of the detector's score over the 10,000 test digits with 500 corrupted
  images mixed in (target >= 0.95), overall and per corruption (125 of each):
  ``gaussian`` (a test digit plus N(0, sigma) noise, clipped; sigma 0.3 by default),
  ``inverted`` (1 - digit), ``blank`` (all zeros), ``random`` (uniform pixels);
* precision and recall of the flags at the detector's own threshold (the 99th
  percentile of its training scores), and the share of clean test digits flagged;
* training time, and the same AUCs for the plain per-row MSE, to show why the
  detector scores the *relative* error (plain MSE calls a blank image normal);
* the ONNX model's largest difference from torch on these 10,500 rows.

MNIST comes from ``mnist.pkl.gz`` (train/validation/test = 50k/10k/10k), read with
Headwater's numpy-only unpickler: the file cannot run code while it loads.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from headwater.learning import AutoencoderDetector, OnnxAnomalyScorer
from headwater.learning.anomaly import save_detector
from headwater.learning.train import default_threads
from headwater.storage.readers.mnist_pickle import load_numpy_pickle

log = logging.getLogger("bench.anomaly")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    ROOT.parent / "shared" / "datasets" / "mnist" / "mnist.pkl.gz",
    ROOT / "data" / "mnist.pkl.gz",
)
KINDS = ("gaussian", "inverted", "blank", "random")
TARGET_AUC = 0.95


def load_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train and test images as float32 rows in 0..1 (the pickle's own scale)."""
    train, _, test = load_numpy_pickle(path)  # type: ignore[misc]  # checked by the reader
    return (
        np.ascontiguousarray(train[0], dtype=np.float32),
        np.ascontiguousarray(test[0], dtype=np.float32),
    )


def corrupt(
    test: np.ndarray, per_kind: int, sigma: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``per_kind`` rows of each corruption, and each row's kind as an index into KINDS."""
    rng = np.random.default_rng(seed)
    width = test.shape[1]

    def digits() -> np.ndarray:
        return test[rng.choice(len(test), per_kind, replace=False)]

    made = {
        "gaussian": np.clip(digits() + rng.normal(0.0, sigma, (per_kind, width)), 0.0, 1.0),
        "inverted": 1.0 - digits(),
        "blank": np.zeros((per_kind, width)),
        "random": rng.random((per_kind, width)),
    }
    rows = np.concatenate([made[k] for k in KINDS]).astype(np.float32)
    return rows, np.repeat(np.arange(len(KINDS)), per_kind)


def aucs(clean: np.ndarray, broken: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """ROC-AUC of clean (0) against broken (1) rows, overall and per corruption."""

    def auc(bad: np.ndarray) -> float:
        truth = np.r_[np.zeros(len(clean)), np.ones(len(bad))]
        return float(roc_auc_score(truth, np.r_[clean, bad]))

    out = {"overall": auc(broken)}
    out.update({kind: auc(broken[kinds == i]) for i, kind in enumerate(KINDS)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="mnist.pkl.gz (default: ../shared, else data/)")
    parser.add_argument("--quick", action="store_true", help="2 epochs on 10k training rows")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (10)")
    parser.add_argument("--sigma", type=float, default=0.3, help="Gaussian noise std (0.3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = args.data or next((p for p in DEFAULT_DATA if p.is_file()), DEFAULT_DATA[-1])
    X_train, X_test = load_mnist(path)
    epochs = args.epochs
    if args.quick:
        X_train, epochs = X_train[:10_000], 2
    broken, kinds = corrupt(X_test, 125, args.sigma, args.seed)
    log.info(
        "MNIST from %s: %s training rows; %s clean test rows + %s corrupted (%s, 125 each)",
        path,
        f"{len(X_train):,}",
        f"{len(X_test):,}",
        f"{len(broken):,}",
        ", ".join(KINDS),
    )

    detector = AutoencoderDetector(epochs=epochs, seed=args.seed)
    started = time.perf_counter()
    detector.fit(X_train)
    seconds = time.perf_counter() - started
    log.info(
        "trained in %.1f s (%d epochs, %d threads); final loss %.5f; threshold %.4f",
        seconds,
        epochs,
        default_threads(),
        detector.history_[-1]["loss"],
        detector.threshold_,
    )

    score, plain = (
        aucs(detector.score(X_test), detector.score(broken), kinds),
        aucs(detector.reconstruction_error(X_test), detector.reconstruction_error(broken), kinds),
    )
    log.info("ROC-AUC       relative error (the score)   plain MSE")
    for name in ("overall", *KINDS):
        log.info("  %-10s  %.4f                       %.4f", name, score[name], plain[name])

    X_all = np.concatenate([X_test, broken])
    truth = np.r_[np.zeros(len(X_test), bool), np.ones(len(broken), bool)]
    flags = detector.flag(X_all)
    log.info(
        "at the threshold: precision %.4f, recall %.4f (%d flagged; %.2f%% of clean digits)",
        precision_score(truth, flags),
        recall_score(truth, flags),
        int(flags.sum()),
        100 * float(flags[~truth].mean()),
    )
    for i, kind in enumerate(KINDS):
        log.info("  recall %-9s %.4f", kind, float(flags[len(X_test) :][kinds == i].mean()))

    with tempfile.TemporaryDirectory() as folder:
        hashes = save_detector(detector, folder)
        scorer = OnnxAnomalyScorer(Path(folder) / "model.onnx", hashes["model.onnx"])
        started = time.perf_counter()
        onnx_scores = scorer.score(X_all)
        onnx_seconds = time.perf_counter() - started
    log.info(
        "ONNX Runtime: %s rows in %.3f s, largest difference from torch %.2e",
        f"{len(X_all):,}",
        onnx_seconds,
        float(np.abs(onnx_scores - detector.score(X_all)).max()),
    )
    verdict = "meets" if score["overall"] >= TARGET_AUC else "MISSES"
    log.info("overall ROC-AUC %.4f %s the target of %.2f", score["overall"], verdict, TARGET_AUC)


if __name__ == "__main__":
    main()
