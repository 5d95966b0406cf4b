"""Small builders shared by the rule tests: events through the pydantic models, and assessment.

Dates: every helper takes a `date`, an ISO string, or an int = days after DAY0 (2025-01-01), so a
test reads as a clinical timeline ("day 183 after the first dose").
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Sequence

from monitor.assess import Assessment, assess
from monitor.egfr import egfr_series
from monitor.events import LabResult, MedicationEvent, Patient, parse_event
from monitor.findings import Finding
from monitor.remission import remission_history
from monitor.rules.base import RuleContext
from monitor.therapy import anti_cd20_courses
from monitor.timeline import Timeline

PID = "P1"
DAY0 = date(2025, 1, 1)

Day = date | str | int
AnyEvent = Patient | LabResult | MedicationEvent


def day(d: Day) -> date:
    """A date from a date, an ISO string, or a number of days after DAY0."""
    if isinstance(d, date):
        return d
    if isinstance(d, int):
        return DAY0 + timedelta(days=d)
    return date.fromisoformat(d)


def patient(pid: str = PID, **fields: Any) -> Patient:
    event = parse_event({"type": "patient", "patient_id": pid, **fields})
    assert isinstance(event, Patient)
    return event


def lab(pid: str, analyte: str, value: float, unit: str, on: Day, **fields: Any) -> LabResult:
    event = parse_event({"type": "lab", "patient_id": pid, "analyte": analyte, "value": value,
                         "unit": unit, "effective_at": day(on).isoformat(), **fields})
    assert isinstance(event, LabResult)
    return event


def med(pid: str, drug: str, start: Day, dose: float | None = None, unit: str | None = None,
        frequency: str = "once", end: Day | None = None, **fields: Any) -> MedicationEvent:
    raw: dict[str, Any] = {"type": "medication", "patient_id": pid, "drug": drug,
                           "start": day(start).isoformat(), "frequency": frequency, **fields}
    if dose is not None:
        raw["dose"], raw["unit"] = dose, unit
    if end is not None:
        raw["end"] = day(end).isoformat()
    event = parse_event(raw)
    assert isinstance(event, MedicationEvent)
    return event


def timeline(events: Sequence[AnyEvent], pid: str = PID) -> Timeline:
    return Timeline.build(pid, events)


def assess_on(events: Sequence[AnyEvent], as_of: Day, pid: str = PID) -> Assessment:
    """The full assessment, exactly as production runs it."""
    return assess(Timeline.build(pid, events), day(as_of))


def context(events: Sequence[AnyEvent], as_of: Day, pid: str = PID) -> RuleContext:
    """A RuleContext built the way assess() builds it, for calling one rule's evaluate()."""
    when = day(as_of)
    known = Timeline.build(pid, events).until(when)
    proteinuria = known.proteinuria()
    return RuleContext(known, when, proteinuria, egfr_series(known),
                       remission_history(known, proteinuria), anti_cd20_courses(known, when))


def findings_of(rule_id: str, events: Sequence[AnyEvent], as_of: Day, pid: str = PID) -> list[Finding]:
    """The findings of one rule in the full assessment on `as_of`."""
    return [f for f in assess_on(events, as_of, pid).findings if f.rule == rule_id]
