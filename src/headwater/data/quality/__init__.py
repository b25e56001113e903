"""Quality checks on every batch: a contract, row checks with a quarantine, a report."""

from __future__ import annotations

from headwater.data.quality.checks import RowFailure, check_rows
from headwater.data.quality.contract import BatchRules, ColumnRule, Contract, infer_contract
from headwater.data.quality.gate import BatchGate
from headwater.data.quality.report import CheckOutcome, QualityReport

__all__ = [
    "BatchGate",
    "BatchRules",
    "CheckOutcome",
    "ColumnRule",
    "Contract",
    "QualityReport",
    "RowFailure",
    "check_rows",
    "infer_contract",
]
