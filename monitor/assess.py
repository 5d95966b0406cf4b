"""assess(timeline, as_of) -> Assessment: where the patient stands on a date and which alerts are due.

Pure and deterministic: no clock, no I/O. Events dated after as_of are ignored, so assessing a past
date reproduces what was knowable then.

valid_until (issue 14): the earliest day after as_of on which, with no new event, a finding (its
fingerprint, severity, message or evidence), the remission state or the risk assessment could differ.
Each rule names its own next boundary (the rule contract's next_change, monitor.validity); assess()
takes the earliest of them, the risk's, and its own (the next event already in the timeline, a
medication record that stops, the next dose of a repeated anti-CD20 record). The remission walk reads
no date but the events', so it adds none. A due-only nightly run reassesses a patient on valid_until
(or when a new event arrives) and gets what a full run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from monitor.analytes import ANALYTES
from monitor.display import immunological_text, latest_text
from monitor.egfr import egfr_series
from monitor.events import LabResult
from monitor.findings import SEVERITY_RANK, Finding
from monitor.outcomes import CourseOutcome, course_outcomes
from monitor.proteinuria import estimate, molar_ratio
from monitor.remission import RemissionHistory, remission_history
from monitor.risk import RiskAssessment, risk_category, risk_next_change
from monitor.rules import RULES
from monitor.rules.base import RuleContext
from monitor.therapy import AntiCD20Course, active_therapies, anti_cd20_courses
from monitor.timeline import Timeline
from monitor.trends import ImmunologicalState, immunological_state
from monitor.validity import NEVER, active_stops, earliest, next_administration, next_day, next_event


@dataclass(frozen=True)
class Assessment:
    patient_id: str
    as_of: date
    remission: RemissionHistory
    risk: RiskAssessment
    active_therapies: tuple[str, ...]
    courses: tuple[AntiCD20Course, ...]
    latest: dict[str, LabResult]
    findings: tuple[Finding, ...]
    immunological: ImmunologicalState | None = None  # the latest anti-PLA2R's state, with its date
    # every treatment course (and the supportive-care phase) with its outcome so far: stored with the
    # summary, read by the clinic outcome report (monitor.outcomes, monitor.outcome_report)
    course_outcomes: tuple[CourseOutcome, ...] = ()
    # the first day after as_of on which, with no new event, the findings, the remission state or the
    # risk could differ (monitor.validity); NEVER when only a new event can change them. Not part of
    # summary(): it says when to look again, not where the patient stands.
    valid_until: date = NEVER

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: values in canonical units at full precision, each with `display`, the
        text people are shown (monitor.display: the lab's precision, the reported value and unit)."""
        r = self.remission
        return {
            "patient_id": self.patient_id,
            "as_of": self.as_of.isoformat(),
            "remission": {
                "state": r.state,
                "since": r.since.isoformat() if r.since else None,
                "episode_start": r.episode_start.isoformat() if r.episode_start else None,
                "episode_peak_g_per_day": r.episode_peak.value if r.episode_peak else None,
            },
            "risk": self.risk.as_dict(),
            "active_therapies": list(self.active_therapies),
            "anti_cd20_courses": [
                {"agent": c.agent, "first_dose": c.first_dose.isoformat(),
                 "last_dose": c.last_dose.isoformat(), "doses": len(c.doses)}
                for c in self.courses
            ],
            "latest": {k: _latest_item(k, v) for k, v in sorted(self.latest.items())},
            "immunological_state": _immunological_item(self.immunological),
            "findings": [
                {"fingerprint": f.fingerprint, "rule": f.rule, "severity": f.severity, "message": f.message}
                for f in self.findings
            ],
            "courses": [c.as_dict() for c in self.course_outcomes],
        }


def _latest_item(key: str, r: LabResult) -> dict[str, Any]:
    item: dict[str, Any] = {"value": r.value, "unit": r.unit, "effective_at": r.effective_at.isoformat()}
    if r.comparator is not None:
        item["comparator"] = r.comparator
    if r.reported_value is not None and r.reported_unit is not None:
        item["reported_value"], item["reported_unit"] = r.reported_value, r.reported_unit
    equation = ANALYTES[r.analyte].equation
    if equation is not None:
        item["equation"] = equation  # the eGFR's equation (the series holds one: monitor.egfr)
        if r.analyte != key:
            item["analyte"] = r.analyte  # a reported eGFR of another equation than CKD-EPI 2021
    mg_per_mmol = molar_ratio(r)
    if mg_per_mmol is not None:
        item["estimate_g_per_day"] = estimate(r).value  # how the rules read it (monitor.proteinuria)
    item["display"] = latest_text(key, item)
    return item


def _immunological_item(state: ImmunologicalState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    item = state.as_dict()
    item["display"] = immunological_text(item)
    return item


def assess(timeline: Timeline, as_of: date) -> Assessment:
    known = timeline.until(as_of)
    proteinuria = known.proteinuria()
    egfr = egfr_series(known)
    remission = remission_history(known, proteinuria, egfr)
    courses = anti_cd20_courses(known, as_of)
    ctx = RuleContext(known, as_of, proteinuria, egfr, remission, courses)
    findings = [f for rule in RULES for f in rule.evaluate(ctx)]
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.rule, f.episode))
    latest = {k: v[-1] for k in ("anti_pla2r", "proteinuria_24h", "upcr", "serum_albumin",
                                 "serum_creatinine", "csa_trough", "tac_trough", "cd19_count", "wbc",
                                 "neutrophils")
              if (v := known.series(k))}
    if egfr:
        latest["egfr"] = egfr[-1]
    risk = risk_category(ctx)
    return Assessment(
        patient_id=timeline.patient_id,
        as_of=as_of,
        remission=remission,
        risk=risk,
        active_therapies=active_therapies(known, as_of),
        courses=courses,
        latest=latest,
        findings=tuple(findings),
        immunological=immunological_state(known.series("anti_pla2r")),
        course_outcomes=course_outcomes(known, as_of, proteinuria, remission),
        valid_until=valid_until(timeline, ctx),
    )


def valid_until(timeline: Timeline, ctx: RuleContext) -> date:
    """The earliest boundary of the rules, the risk and the context (`timeline` uncut, ctx cut at
    as_of); NEVER when none. A rule module without next_change is reassessed the next day."""
    as_of, known = ctx.as_of, ctx.timeline
    boundaries = [
        next_event(timeline, as_of),  # an event already recorded for a later date
        # a record stopping: active_therapies, and every rule that asks whether a drug is active
        active_stops(known, {m.drug for m in known.medications}, as_of),
        next_administration(known, as_of),  # anti-CD20 courses count doses up to as_of
        risk_next_change(ctx),
    ]
    for rule in RULES:
        next_change = getattr(rule, "next_change", None)
        boundaries.append(next_change(ctx) if next_change is not None else next_day(as_of))
    return earliest(as_of, boundaries) or NEVER
