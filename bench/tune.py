"""Hyperparameter search on MNIST: does it beat the default density, and does pruning save time?

    .venv/bin/python bench/tune.py                # 20 trials, pruned then not, 900 s each
    .venv/bin/python bench/tune.py --rows 5000    # the same on the first 5,000 training rows
    .venv/bin/python bench/tune.py --quick        # a smoke run: 6 trials of 3 epochs, 10k rows

Reports, for the acceptance of issue 12 (part 4):

* the best density found and its test accuracy, against the default MLP (density 35);
* trials pruned by the median pruner, and the seconds of the same trials (same seed,
  same sampler) with pruning and without it.

Each search runs in its own fresh home folder (a DuckDB warehouse) with MNIST ingested
into it, so the second search does not resume from the first. Both use sampler seed 0:
Optuna's TPE draws its first 10 trials at random, so those are the same trials in both;
later ones follow what each search saw (a pruned trial has no final score), and the
report counts how many of the 20 parameter sets the two searches shared. Epochs are
searched as ``headwater tune`` searches them unless ``--epochs`` holds them. The load
average is printed beside each search: the figures are wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from headwater.flows import runs as run_flows
from headwater.flows.training import TrainRequest, train
from headwater.flows.tuning import TrialRow, TuneRequest, tune
from headwater.flows.workspace import Workspace
from headwater.settings import Settings

log = logging.getLogger("bench.tune")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    ROOT.parent / "shared" / "datasets" / "mnist" / "mnist.pkl.gz",
    ROOT / "data" / "mnist.pkl.gz",
)


def _subset(source: Path, rows: int, folder: Path) -> Path:
    """The first ``rows`` training rows, a fifth as many validation rows (scored every
    epoch) and the whole 10,000-row test split (scored once per run), as .npz."""
    from headwater.storage.readers.mnist_pickle import load_numpy_pickle

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = load_numpy_pickle(source)  # type: ignore[misc]
    fifth = max(rows // 5, 500)

    def images(x: np.ndarray) -> np.ndarray:
        return np.clip(x.reshape(-1, 28, 28) * 255, 0, 255).astype(np.uint8)

    path = folder / "mnist.npz"
    np.savez(
        path,
        x_train=images(x_tr[:rows]),
        y_train=y_tr[:rows],
        x_val=images(x_va[:fifth]),
        y_val=y_va[:fifth],
        x_test=images(x_te),
        y_test=y_te,
    )
    return path


def _load() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: say how busy it was)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _said(trial: TrialRow) -> None:
    """Each trial as it ends (a long search shows where it is), with the machine's load."""
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    log.warning(
        "trial %d %s %s %s [load %s]", trial.number, trial.state, value, trial.params, _load()
    )


def _search(data: Path, args: argparse.Namespace, *, prune: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home, Workspace(Settings(home=Path(home))) as ws:
        dataset = ws.ingest(data, dataset="mnist").dataset
        fixed = {"epochs": args.epochs} if args.epochs else {}
        load_before, began = _load(), time.perf_counter()
        request = TuneRequest(dataset, "mlp", args.trials, args.timeout, 0, fixed, prune=prune)
        result = tune(ws, request, on_trial=_said)
        found = result.to_dict()
        found["seconds"] = round(time.perf_counter() - began, 1)
        found["loadavg_before_after"] = [load_before, _load()]
        found["trial_params"] = [t.params for t in result.trials]
        found["pruned_at"] = {
            t.number: ws_run.progress.get("epoch")
            for t in result.trials
            if t.state == "pruned" and t.run_id
            for ws_run in [run_flows.run_detail(ws, t.run_id).run]
        }
        if result.best_run_id:
            found["best_density"] = result.best_params.get("density")
        if prune:
            began = time.perf_counter()
            default = train(ws, TrainRequest(dataset, "mlp", fixed))
            found["default_density_35_test_accuracy"] = default.metrics["test_accuracy"]
            found["default_seconds"] = round(time.perf_counter() - began, 1)
            found["default_loadavg_after"] = _load()
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--epochs", type=int, default=0, help="Hold epochs (0: search them).")
    parser.add_argument("--rows", type=int, default=0, help="Train on the first N rows only.")
    parser.add_argument(
        "--only",
        choices=["pruned", "plain"],
        default=None,
        help="Run one of the two searches (two processes side by side, under the same load).",
    )
    parser.add_argument("--subset-out", type=Path, default=None, help="Write the subset .npz.")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.rows = 6, 3, 10_000
    logging.basicConfig(level=logging.WARNING)
    source = args.data or next((p for p in DEFAULT_DATA if p.exists()), None)
    if source is None:
        raise SystemExit("no mnist.pkl.gz found; pass --data PATH")
    if args.subset_out is not None:
        args.subset_out.mkdir(parents=True, exist_ok=True)
        print(_subset(source, args.rows, args.subset_out))
        return
    if args.only is not None:
        with tempfile.TemporaryDirectory() as scratch:
            data = _subset(source, args.rows, Path(scratch)) if args.rows else source
            found = _search(data, args, prune=args.only == "pruned")
        print(json.dumps({args.only: found}, indent=2, default=str))
        return
    with tempfile.TemporaryDirectory() as scratch:
        data = _subset(source, args.rows, Path(scratch)) if args.rows else source
        pruned = _search(data, args, prune=True)
        print(json.dumps({"pruned": pruned}, indent=2, default=str), flush=True)
        plain = _search(data, args, prune=False)
    shared = sum(p in plain["trial_params"] for p in pruned["trial_params"])  # type: ignore[operator]
    print(json.dumps({"without_pruning": plain}, indent=2, default=str))
    print(f"{shared} of {pruned['trials']} trials had the same parameters in both searches")
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
