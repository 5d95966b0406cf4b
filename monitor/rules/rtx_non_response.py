"""PLACEHOLDER: rule rtx_non_response, to be implemented (see clinical-rules.md)."""

from __future__ import annotations

from monitor.findings import Finding
from monitor.rules.base import RuleContext

RULE_ID = "rtx_non_response"
REFERENCE = "TODO"


def evaluate(ctx: RuleContext) -> list[Finding]:
    return []
