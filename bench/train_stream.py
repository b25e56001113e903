"""A training run through the whole flow, features held in memory against memory-mapped.

    .venv/bin/python bench/train_stream.py [--epochs 5] [--file data/mnist.pkl.gz]

Both scenarios ingest MNIST into a fresh DuckDB home and train the default MLP through
`headwater.flows.training.train`, each in its own child process (so its peak RSS is its
own). `in-memory` keeps the feature matrices in RAM (the default under
HEADWATER_TRAIN_MEMORY_MB); `memory-mapped` sets the budget to 0, so the features are
written a chunk at a time into files under the run's cache and the training loop reads
them through the page cache: the path a dataset larger than memory takes. The in-memory
run is the floor: the same flow, the same rows, with nothing on disk.

Reported per scenario: seconds to build the features, seconds of training, test
accuracy, peak RSS. RSS counts the mapped pages the loop has touched, so the two peaks
look alike on a dataset that fits in memory; the difference is that mapped pages are
the kernel's to drop and read again, heap pages are not. Benchmarks are not tests:
nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"in-memory": 2048, "memory-mapped": 0}


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scenario(budget_mb: int, path: Path, epochs: int) -> dict[str, float]:
    import headwater.flows.training as training_flow
    from headwater.flows.training import TrainRequest, train
    from headwater.flows.workspace import Workspace
    from headwater.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), train_memory_mb=budget_mb)
        with Workspace(settings) as ws:
            ws.ingest(path, dataset="mnist")
            spent = [0.0]
            original = training_flow.feature_matrices

            def timed(*args: object, **kwargs: object) -> object:
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)  # type: ignore[arg-type]  # passed through as given
                finally:
                    spent[0] += time.perf_counter() - start

            training_flow.feature_matrices = timed  # type: ignore[assignment]  # timed stand-in
            run = train(ws, TrainRequest("mnist", "mlp", {"epochs": epochs}))
    return {
        "features_s": spent[0],
        "train_s": float(run.train_seconds or 0.0),
        "accuracy": float(str(run.metrics["test_accuracy"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=ROOT / "data" / "mnist.pkl.gz")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    if args.scenario:
        result = scenario(SCENARIOS[args.scenario], args.file, args.epochs)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return
    print(f"MLP through the training flow, {args.epochs} epochs, MNIST from {args.file.name}\n")
    print(f"{'scenario':<16}{'features s':>12}{'train s':>10}{'test acc':>10}{'peak MiB':>10}")
    results = {}
    for name in SCENARIOS:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--scenario",
                name,
                "--file",
                str(args.file),
                "--epochs",
                str(args.epochs),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        r = results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{name:<16}{r['features_s']:>12.2f}{r['train_s']:>10.2f}"
            f"{r['accuracy']:>10.4f}{r['peak_rss_mib']:>10.0f}"
        )
    floor, mapped = results["in-memory"], results["memory-mapped"]
    features = mapped["features_s"] / floor["features_s"]
    training = mapped["train_s"] / floor["train_s"]
    same = mapped["accuracy"] == floor["accuracy"]
    print(
        f"\nmemory-mapped vs in-memory: features {features:.2f}x, training {training:.2f}x, "
        f"same accuracy: {same}"
    )


if __name__ == "__main__":
    main()
