"""Hyperparameter search on MNIST: does it beat the default density, and does pruning save time?

    .venv/bin/python bench/tune.py           # 20 trials, pruned then not, 900 s each
    .venv/bin/python bench/tune.py --quick   # a smoke run: 6 trials of 3 epochs, 10k rows

Reports, for the acceptance of issue 12 (part 4):

* the best density found and its test accuracy, against the default MLP (density 35);
* trials pruned by the median pruner, and the seconds of the same trials (same seed,
  same sampler) with pruning and without it.

Each search runs in its own fresh home folder (a DuckDB warehouse), so the second
search does not resume from the first.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from headwater.flows.training import TrainRequest, train
from headwater.flows.tuning import TuneRequest, tune
from headwater.flows.workspace import Workspace
from headwater.settings import Settings

log = logging.getLogger("bench.tune")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    ROOT.parent / "shared" / "datasets" / "mnist" / "mnist.pkl.gz",
    ROOT / "data" / "mnist.pkl.gz",
)


def _subset(source: Path, rows: int, folder: Path) -> Path:
    """The first ``rows`` training rows (and a tenth as many validation and test) as .npz."""
    from headwater.storage.readers.mnist_pickle import load_numpy_pickle

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = load_numpy_pickle(source)  # type: ignore[misc]
    tenth = max(rows // 10, 100)

    def images(x: np.ndarray) -> np.ndarray:
        return np.clip(x.reshape(-1, 28, 28) * 255, 0, 255).astype(np.uint8)

    path = folder / "mnist.npz"
    np.savez(
        path,
        x_train=images(x_tr[:rows]),
        y_train=y_tr[:rows],
        x_val=images(x_va[:tenth]),
        y_val=y_va[:tenth],
        x_test=images(x_te[:tenth]),
        y_test=y_te[:tenth],
    )
    return path


def _search(data: Path, args: argparse.Namespace, *, prune: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home, Workspace(Settings(home=Path(home))) as ws:
        dataset = ws.ingest(data, dataset="mnist").dataset
        fixed = {"epochs": args.epochs} if args.epochs else {}
        began = time.perf_counter()
        request = TuneRequest(dataset, "mlp", args.trials, args.timeout, 0, fixed, prune=prune)
        found = tune(ws, request).to_dict()
        found["seconds"] = round(time.perf_counter() - began, 1)
        if prune:
            default = train(ws, TrainRequest(dataset, "mlp", fixed))
            found["default_density_35_test_accuracy"] = default.metrics["test_accuracy"]
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--epochs", type=int, default=0, help="Hold epochs (0: search them).")
    parser.add_argument("--rows", type=int, default=0, help="Train on the first N rows only.")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.rows = 6, 3, 10_000
    logging.basicConfig(level=logging.WARNING)
    source = args.data or next((p for p in DEFAULT_DATA if p.exists()), None)
    if source is None:
        raise SystemExit("no mnist.pkl.gz found; pass --data PATH")
    with tempfile.TemporaryDirectory() as scratch:
        data = _subset(source, args.rows, Path(scratch)) if args.rows else source
        pruned = _search(data, args, prune=True)
        plain = _search(data, args, prune=False)
    print(json.dumps({"pruned": pruned, "without_pruning": plain}, indent=2, default=str))
    saved = float(str(plain["seconds"])) - float(str(pruned["seconds"]))
    print(
        f"best density {pruned['best_params'].get('density')}: test accuracy "  # type: ignore[union-attr]
        f"{pruned['best_test_accuracy']} vs default 35: "
        f"{pruned['default_density_35_test_accuracy']}; {pruned['pruned']} of {pruned['trials']} "
        f"trials pruned; {pruned['seconds']} s with pruning, {plain['seconds']} s without "
        f"({saved:.1f} s saved)"
    )


if __name__ == "__main__":
    main()
