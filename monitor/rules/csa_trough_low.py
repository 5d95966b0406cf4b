"""PLACEHOLDER: rule csa_trough_low, to be implemented (see clinical-rules.md)."""

from __future__ import annotations

from monitor.findings import Finding
from monitor.rules.base import RuleContext

RULE_ID = "csa_trough_low"
REFERENCE = "TODO"


def evaluate(ctx: RuleContext) -> list[Finding]:
    return []
