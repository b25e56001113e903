"""SDV's side of ``bench/synth.py --sdv``: run by SDV's own Python, never Headwater's.

SDV is BSL-licensed and never a dependency of Headwater: it lives in a throwaway
environment (``python3 -m venv /tmp/sdv && /tmp/sdv/bin/pip install torch==2.13.0 &&
/tmp/sdv/bin/pip install sdv``), and this file imports nothing of Headwater. Given a
folder holding ``train.csv`` (the real rows fitted) and ``<name>.csv`` synthetic tables
made by Headwater's methods, it fits SDV's GaussianCopula and TVAE on ``train.csv``,
writes their samples as ``sdv_gaussian_copula.csv`` and ``sdv_tvae.csv`` beside them,
and prints one JSON line per table: fit and sample seconds (SDV's) and SDMetrics'
QualityReport score (0-100) of every synthetic table against ``train.csv``.

    /tmp/sdv/bin/python bench/sdv_side.py FOLDER --tvae-epochs 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from sdmetrics.reports.single_table import QualityReport
from sdv.metadata import Metadata
from sdv.single_table import GaussianCopulaSynthesizer, TVAESynthesizer


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["signup"])
    return frame.astype({"region": "object", "segment": "object"})


def _score(real: pd.DataFrame, made: pd.DataFrame, metadata: Metadata) -> float:
    report = QualityReport()
    report.generate(real, made[real.columns], metadata.to_dict()["tables"]["table"], verbose=False)
    return round(100.0 * float(report.get_score()), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tvae-epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    real = _read(args.folder / "train.csv")
    metadata = Metadata.detect_from_dataframes({"table": real})
    for name, synth in (
        ("sdv_gaussian_copula", GaussianCopulaSynthesizer(metadata)),
        ("sdv_tvae", TVAESynthesizer(metadata, epochs=args.tvae_epochs)),
    ):
        started = time.perf_counter()
        synth.fit({"table": real})  # SDV 2.0 takes the tables by name
        fit = time.perf_counter() - started
        started = time.perf_counter()
        made = synth.sample(len(real))
        made = made["table"] if isinstance(made, dict) else made
        sample = time.perf_counter() - started
        made.to_csv(args.folder / f"{name}.csv", index=False)
        print(json.dumps({"name": name, "fit_s": fit, "sample_s": sample}), flush=True)
    for path in sorted(args.folder.glob("*.csv")):
        if path.stem != "train":
            score = _score(real, _read(path), metadata)
            print(json.dumps({"name": path.stem, "sdmetrics_quality": score}), flush=True)


if __name__ == "__main__":
    main()
