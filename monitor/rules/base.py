"""What every rule receives: the patient's history as of a date, with the derived series computed once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from monitor.events import LabResult
from monitor.findings import Evidence, Finding, Severity
from monitor.remission import RemissionHistory
from monitor.therapy import AntiCD20Course
from monitor.timeline import Timeline


@dataclass(frozen=True)
class RuleContext:
    timeline: Timeline  # already cut at as_of: nothing in it is later than as_of
    as_of: date
    proteinuria: tuple[LabResult, ...]  # g/d: 24-h collections, UPCR on days without one
    egfr: tuple[LabResult, ...]  # reported eGFR, and CKD-EPI 2021 from creatinine where not reported
    remission: RemissionHistory
    courses: tuple[AntiCD20Course, ...]  # anti-CD20 courses up to as_of

    @property
    def patient_id(self) -> str:
        return self.timeline.patient_id

    def finding(self, rule: str, episode: str, severity: Severity, message: str,
                evidence: list[Evidence] | tuple[Evidence, ...], reference: str) -> Finding:
        return Finding(self.patient_id, rule, episode, severity, message, tuple(evidence), reference)


class Rule(Protocol):
    RULE_ID: str
    REFERENCE: str

    def evaluate(self, ctx: RuleContext) -> list[Finding]: ...

    # The first day after ctx.as_of on which evaluate() could return anything else (fingerprints,
    # severities, messages, evidence) if no event is added; None when only a new event can change
    # it; monitor.validity.next_day(ctx.as_of) when the rule cannot tell (always safe). assess()
    # takes the earliest over the rules as Assessment.valid_until (monitor.validity).
    def next_change(self, ctx: RuleContext) -> date | None: ...
