"""What the flows hand the faces to show: reports of an ingest and of its quality checks.

They are made in the data layer; the faces take them from here, so no face imports
below the flows (the import-linter ``forbidden`` contract in pyproject.toml).
"""

from __future__ import annotations

from headwater.data.ingest import BatchReport, IngestReport, ProgressFn, dataset_name_for
from headwater.data.quality import Contract, QualityReport

__all__ = [
    "BatchReport",
    "Contract",
    "IngestReport",
    "ProgressFn",
    "QualityReport",
    "dataset_name_for",
]
