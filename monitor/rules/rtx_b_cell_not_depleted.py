"""PLACEHOLDER: rule rtx_b_cell_not_depleted, to be implemented (see clinical-rules.md)."""

from __future__ import annotations

from monitor.findings import Finding
from monitor.rules.base import RuleContext

RULE_ID = "rtx_b_cell_not_depleted"
REFERENCE = "TODO"


def evaluate(ctx: RuleContext) -> list[Finding]:
    return []
