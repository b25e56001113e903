"""Train the default MLP and CNN on MNIST and time the training loop against a bare one.

    .venv/bin/python bench/train.py            # full run: about 1-2 minutes on 2 cores
    .venv/bin/python bench/train.py --quick    # a smoke run: few epochs, fewer rows

Reports, for the acceptance criteria of "Learn and remember":

* MLP (density 35, all defaults): test accuracy (target >= 97.0%) and train time;
* CNN (defaults): test accuracy (target >= 99.0%) and train time;
* one MLP epoch over 60,000 rows through ``MLPClassifier.fit`` against a bare PyTorch
  loop over the same tensors, same network and optimiser, batch 128, measured in
  alternation in this run (target: ratio <= 1.2).

MNIST comes from ``mnist.pkl.gz`` (train/validation/test = 50k/10k/10k). The file is a
pickle, so it is read with an unpickler that admits only numpy's array-rebuilding
names; anything else in the file is refused before it can run.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import pickle
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from headwater.learning import CNNClassifier, MLPClassifier
from headwater.learning.torch_models import MLPNet, adam
from headwater.learning.train import default_threads

log = logging.getLogger("bench.train")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    ROOT.parent / "shared" / "datasets" / "mnist" / "mnist.pkl.gz",
    ROOT / "data" / "mnist.pkl.gz",
)
Split = tuple[np.ndarray, np.ndarray]


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Protocol-2 pickles spell bytes as ``_codecs.encode(str, 'latin1')``; only that is allowed."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy's array-rebuilding names (and a latin-1 bytes shim), refuses everything else."""

    ALLOWED = frozenset(
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy")
        for name in ("_reconstruct", "ndarray", "dtype", "scalar")
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from the MNIST pickle")


def load_mnist(path: Path) -> tuple[Split, Split, Split]:
    with gzip.open(path, "rb") as handle:
        train, validation, test = NumpyOnlyUnpickler(handle, encoding="latin1").load()
    return tuple(
        (np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64))
        for X, y in (train, validation, test)
    )  # type: ignore[return-value]


def train_and_test(
    name: str, model: MLPClassifier | CNNClassifier, data: tuple[Split, ...]
) -> None:
    (X, y), (X_val, y_val), (X_test, y_test) = data

    def progress(epoch: int, m: dict[str, float]) -> None:
        log.info(
            "  %s epoch %2d  loss %.4f  acc %.4f  val_acc %.4f  %.1fs",
            name,
            epoch,
            m["loss"],
            m["accuracy"],
            m["val_accuracy"],
            m["seconds"],
        )

    started = time.perf_counter()
    model.fit(X, y, validation_data=(X_val, y_val), on_epoch=progress)
    seconds = time.perf_counter() - started
    accuracy = float((model.predict(X_test) == y_test).mean())
    log.info(
        "%s: test accuracy %.2f%%, train time %.1f s (%d rows, %d epochs, %d threads)",
        name,
        100 * accuracy,
        seconds,
        len(X),
        len(model.history_),
        default_threads(),
    )


def bare_epoch(X: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> float:
    """One epoch of the plainest loop over the same network and optimiser; returns seconds."""
    torch.manual_seed(0)
    net = MLPNet(X.shape[1], 35, 21, 0.3, 10)
    net.set_input_scale(mean, std)
    optimizer = adam(net, 3e-3, l2=0.01, l2_params=(net.hidden2.weight,))
    started = time.perf_counter()
    net.train()
    order = torch.randperm(len(X))
    for start in range(0, len(X), 128):
        index = order[start : start + 128]
        optimizer.zero_grad()
        loss = F.cross_entropy(net(X[index]), y[index])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def headwater_epoch(X: np.ndarray, y: np.ndarray) -> float:
    """One epoch through the estimator, from numpy arrays in to a fitted model out."""
    started = time.perf_counter()
    MLPClassifier(epochs=1, batch_size=128).fit(X, y)
    return time.perf_counter() - started


def compare_epochs(data: tuple[Split, ...], rounds: int) -> None:
    (X, y), (X_val, y_val), _ = data
    X60, y60 = np.concatenate([X, X_val]), np.concatenate([y, y_val])
    X_t, y_t = torch.from_numpy(X60), torch.from_numpy(y60)
    torch.set_num_threads(default_threads())
    mean, std = float(X_t.mean()), float(X_t.std(correction=0))
    headwater_epoch(X60[:2000], y60[:2000])  # warm up both paths once
    bare_epoch(X_t[:2000], y_t[:2000], mean, std)
    bare, ours = [], []
    for _ in range(rounds):  # alternate, so load on the machine hits both alike
        bare.append(bare_epoch(X_t, y_t, mean, std))
        ours.append(headwater_epoch(X60, y60))
    b, h = statistics.median(bare), statistics.median(ours)
    log.info(
        "one MLP epoch over %d rows, batch 128, %d threads, median of %d rounds:",
        len(X60),
        torch.get_num_threads(),
        rounds,
    )
    log.info("  bare PyTorch loop   %.3f s  (rounds: %s)", b, ", ".join(f"{t:.3f}" for t in bare))
    log.info("  MLPClassifier.fit   %.3f s  (rounds: %s)", h, ", ".join(f"{t:.3f}" for t in ours))
    log.info("  ratio               %.3f  (target <= 1.2)", h / b)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, help="mnist.pkl.gz (default: ../shared copy, else data/)"
    )
    parser.add_argument("--quick", action="store_true", help="2 MLP epochs, 1 CNN epoch, 10k rows")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds for the epoch ratio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = args.data or next((p for p in DEFAULT_DATA if p.is_file()), DEFAULT_DATA[-1])
    data = load_mnist(path)
    log.info(
        "MNIST from %s: %s train / %s validation / %s test",
        path,
        *(f"{len(part[1]):,}" for part in data),
    )
    compare_epochs(data, 2 if args.quick else args.rounds)
    mlp, cnn = MLPClassifier(density=35), CNNClassifier()
    if args.quick:
        (X, y), val, test = data
        data = ((X[:10_000], y[:10_000]), val, test)
        mlp, cnn = MLPClassifier(density=35, epochs=2), CNNClassifier(epochs=1)
    train_and_test("MLP", mlp, data)
    train_and_test("CNN", cnn, data)


if __name__ == "__main__":
    main()
