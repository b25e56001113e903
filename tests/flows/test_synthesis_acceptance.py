"""Acceptance through the flow, on both backends: a mixed table of 3,000 rows.

PCA and the VAE each reach an overall fidelity of at least 85 and beat the copula
baseline; a random forest trained on their rows scores within 5 points of one trained
on the real rows (both tested on the real holdout); at most 5% of their rows sit closer
to a training row than the holdout's 5th percentile; no row copies a training row.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv

from headwater.flows.synthesis import SynthesisRequest, synthesize
from headwater.flows.workspace import Workspace
from headwater.learning.synth.example import mixed_table


def _figure(report: dict[str, object], part: str, key: str) -> float:
    section = report[part]
    assert isinstance(section, dict)
    return float(section[key])


def test_pca_and_vae_are_faithful_useful_private_and_beat_the_copula(
    workspace: Workspace, tmp_path: Path
) -> None:
    pacsv.write_csv(mixed_table(3000, seed=21), tmp_path / "mixed.csv")
    workspace.ingest(tmp_path / "mixed.csv", dataset="mixed", label="segment")
    reports = {
        method: synthesize(
            workspace, SynthesisRequest("mixed", method, 2400, f"mixed_{method}", seed=5)
        )
        for method in ("copula", "pca", "vae")
    }
    baseline = _figure(reports["copula"], "fidelity", "overall")
    for method in ("pca", "vae"):
        report = reports[method]
        assert _figure(report, "fidelity", "overall") >= 85, method
        assert _figure(report, "fidelity", "overall") > baseline, method
        assert _figure(report, "utility", "accuracy_gap") <= 0.05, method
        assert _figure(report, "privacy", "closer_than_holdout_p5") <= 0.05, method
        assert _figure(report, "privacy", "exact_copies") == 0, method
        assert workspace.dataset(f"mixed_{method}").rows == 2400
