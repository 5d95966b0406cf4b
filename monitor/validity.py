"""How long an assessment stays true without a new event: the boundaries behind Assessment.valid_until.

An assessment made on `as_of` changes on a later day only because (a) a new event arrives, or (b) a
date the rules read passes: a monitoring deadline, the end of a window after a course, a course's
planned end, a cumulative dose crossing a threshold. (a) is the caller's business (a new event marks
the patient dirty); this module names the dates of (b).

The rule contract (monitor.rules.base): every rule module provides

    next_change(ctx: RuleContext) -> date | None

the earliest day after ctx.as_of on which the rule's findings (fingerprints, severities, messages and
evidence) could differ from those on ctx.as_of if no event is added; None when they cannot change
without a new event. A rule that cannot name its boundary returns `next_day(ctx.as_of)`, which is
always safe. assess() takes the earliest of the rules' boundaries, the risk category's and its own
(the next event already in the timeline, a medication record stopping, the next administration of a
repeated anti-CD20 record): Assessment.valid_until, NEVER when nothing bounds it.

Pure: dates in, dates out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from monitor.events import ANTI_CD20, MedicationEvent
from monitor.timeline import Timeline

NEVER = date.max  # nothing bounds the assessment: only a new event changes it
ONE_DAY = timedelta(days=1)
# the repeated schedules therapy._administrations expands into single doses (days between doses)
_DOSE_STEP_DAYS = {"qw": 7, "q2w": 14, "q4w": 28}


def next_day(as_of: date) -> date:
    """The safe boundary: reassess tomorrow."""
    return as_of + ONE_DAY


def earliest(as_of: date, candidates: Iterable[date | None]) -> date | None:
    """The earliest candidate later than as_of (None and earlier dates ignored), or None."""
    found: date | None = None
    for d in candidates:
        if d is not None and d > as_of and (found is None or d < found):
            found = d
    return found


def day_after(d: date) -> date | None:
    """d + 1 day, None when d is the last representable day (nothing comes after it)."""
    return None if d >= NEVER else d + ONE_DAY


def stops(m: MedicationEvent) -> date | None:
    """The first day on which the record is no longer active (MedicationEvent.active_on), or None
    for an open-ended course."""
    if m.frequency == "once":
        return day_after(m.end or m.start)
    return None if m.end is None else day_after(m.end)


def active_stops(timeline: Timeline, drugs: Iterable[str], as_of: date) -> date | None:
    """The earliest day after as_of on which a record of `drugs` active on as_of stops being active:
    whatever reads "is the drug active on as_of" (monitor.therapy.active) may change then."""
    return earliest(as_of, (stops(m) for drug in drugs for m in timeline.drugs(drug) if m.active_on(as_of)))


def next_event(timeline: Timeline, as_of: date) -> date | None:
    """The earliest date after as_of of a usable lab result or a medication record in the timeline.

    Timeline.until(as_of) drops them, so assess() on their date sees them: the assessment is valid
    only until then. (In the nightly run no event is dated after today; a test timeline has many.)"""
    candidates: list[date] = []
    for r in reversed(timeline.labs):  # clinical order: the latest dates are at the end
        if r.effective_date <= as_of:
            # dates in instant order may step back a day across time-zone offsets: look a little further
            if r.effective_date < as_of - ONE_DAY:
                break
            continue
        candidates.append(r.effective_date)
    candidates += [m.start for m in timeline.medications if m.start > as_of]
    return earliest(as_of, candidates)


def next_administration(timeline: Timeline, as_of: date) -> date | None:
    """The next single dose (after as_of) of a repeated anti-CD20 record (qw, q2w, q4w) already
    started: monitor.therapy.anti_cd20_courses counts the doses up to as_of, so a course grows then."""
    found: list[date] = []
    for agent in ANTI_CD20:
        for m in timeline.drugs(agent):
            step = _DOSE_STEP_DAYS.get(m.frequency)
            if step is None or m.start > as_of:
                continue
            k = (as_of - m.start).days // step + 1
            nxt = m.start + timedelta(days=k * step)
            if m.end is None or nxt <= m.end:
                found.append(nxt)
    return earliest(as_of, found)


def promised(assessment: Any) -> tuple[Any, ...]:
    """What valid_until promises stays the same until then (an Assessment; typed loosely because
    monitor.assess imports this module): every finding with its fingerprint, severity, message and
    evidence, the remission history, the risk assessment (category, reasons, activity marker), the
    active therapies and the anti-CD20 courses. Not the course outcomes: their follow-up and exposure
    run to as_of by definition (monitor.outcomes), so they are read as of the assessment's date."""
    return (
        tuple((f.fingerprint, f.severity, f.message, f.evidence) for f in assessment.findings),
        assessment.remission,
        assessment.risk,
        assessment.active_therapies,
        assessment.courses,
    )
