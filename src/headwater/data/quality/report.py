"""The quality report of one batch: each check's outcome and counts, as JSON and as HTML."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["BatchStatus", "CheckOutcome", "QualityReport"]

Outcome = Literal["pass", "warn", "fail"]
BatchStatus = Literal["passed", "warned", "failed"]


@dataclass
class CheckOutcome:
    name: str
    level: Literal["row", "batch"]
    outcome: Outcome
    count: int = 0
    detail: str = ""


@dataclass
class QualityReport:
    dataset: str
    batch_id: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    status: BatchStatus
    checks: list[CheckOutcome] = field(default_factory=list)
    contract_approved: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> QualityReport:
        raw = json.loads(text)
        raw["checks"] = [CheckOutcome(**c) for c in raw["checks"]]
        return cls(**raw)

    def to_html(self) -> str:
        """A small self-contained page: a person reads a table faster than JSON."""
        colours = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td><td>{c.level}</td>"
            f'<td style="color:{colours[c.outcome]};font-weight:600">{c.outcome}</td>'
            f"<td>{c.count:,}</td><td>{html.escape(c.detail)}</td></tr>"
            for c in self.checks
        )
        title = f"Quality of {html.escape(self.dataset)} batch {self.batch_id}"
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            f"<title>{title}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}"
            "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
            "padding:.4rem;text-align:left}</style>"
            f"<h1>{title}</h1><p>Status: <strong>{self.status}</strong>. "
            f"{self.rows_read:,} rows read, {self.rows_loaded:,} loaded, "
            f"{self.rows_quarantined:,} quarantined, {self.rows_duplicate:,} duplicates. "
            f"Contract {'approved' if self.contract_approved else 'inferred, not yet approved'}."
            "</p><table><tr><th>check</th><th>level</th><th>outcome</th><th>rows</th>"
            f"<th>detail</th></tr>{rows}</table></html>"
        )
