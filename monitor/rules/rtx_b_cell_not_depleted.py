"""Rule `rtx_b_cell_not_depleted`: B cells still present after an anti-CD20 course.

Definition (docs/clinical-rules.md): CD19 >= 5 cells/uL measured 7-60 days after the last dose of an
anti-CD20 course (incomplete depletion, e.g. urinary loss of the antibody in nephrotic patients).
Severity warning. Resolves with a later CD19 < 5 cells/uL.

Source: KDIGO 2021 GN guideline ch.3 (practice points on monitoring B-cell depletion after
rituximab); docs/clinical-rules.md thresholds.

Interpretations:
- Only the latest course is evaluated (as for rtx_non_response): a new course is a new episode, and
  the previous course's alert resolves with it. Episode = the course (AntiCD20Course.episode).
- "Last dose" = the course's last administration known on as_of; while a course is still being
  given, a later dose moves the window and a CD19 drawn before that dose no longer counts.
- 7 and 60 days are inclusive. The finding rests on the window's counts >= 5 dated after the last
  count < 5: a count < 5 dated after them (in or after the window) resolves it, a count >= 5 in the
  window after a depleted one raises it again (early repopulation), and a count >= 5 after the
  window neither raises nor resolves anything (repopulation months later is expected).
"""

from __future__ import annotations

from datetime import date, timedelta

from monitor.events import LabResult
from monitor.findings import Evidence, Finding
from monitor.rules._common import shown
from monitor.rules.base import RuleContext
from monitor.therapy import AntiCD20Course

RULE_ID = "rtx_b_cell_not_depleted"
REFERENCE = ("KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, ch.3 "
             "(practice points on B-cell monitoring after rituximab)")

# docs/clinical-rules.md (KDIGO21 practice points): depletion = CD19 < 5 cells/uL
DEPLETED_BELOW_CELLS_UL = 5.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"cd19_count": (DEPLETED_BELOW_CELLS_UL,)}
# docs/clinical-rules.md: the count is judged 7-60 days after the last dose of the course
WINDOW_FROM_DAYS = 7
WINDOW_TO_DAYS = 60


def _not_depleted(course: AntiCD20Course, cd19: tuple[LabResult, ...]) -> list[LabResult]:
    """The window's counts >= 5 dated after the last count < 5 ([] when none: depleted or unknown)."""
    start = course.last_dose + timedelta(days=WINDOW_FROM_DAYS)
    end = course.last_dose + timedelta(days=WINDOW_TO_DAYS)
    lows = [r for r in cd19 if r.value < DEPLETED_BELOW_CELLS_UL]
    after = lows[-1].effective_at if lows else None
    return [r for r in cd19
            if start <= r.effective_date <= end and r.value >= DEPLETED_BELOW_CELLS_UL
            and (after is None or r.effective_at > after)]


def _days_after_note(r: LabResult, course: AntiCD20Course) -> str:
    days = (r.effective_date - course.last_dose).days
    return f">= {DEPLETED_BELOW_CELLS_UL:g} cells/uL, {days} days after the last dose"


def evaluate(ctx: RuleContext) -> list[Finding]:
    if not ctx.courses:
        return []
    course = ctx.courses[-1]
    high = _not_depleted(course, ctx.timeline.series("cd19_count"))
    if not high:
        return []
    latest = high[-1]
    days = (latest.effective_date - course.last_dose).days
    message = (f"B cells are not depleted: CD19 {shown(latest)} on {latest.effective_date}, "
               f"{days} days after the last {course.agent} dose ({course.last_dose}; course started "
               f"{course.first_dose}). Depletion is expected below {DEPLETED_BELOW_CELLS_UL:g} cells/\u00b5L "
               f"{WINDOW_FROM_DAYS}-{WINDOW_TO_DAYS} days after a course; incomplete depletion can follow "
               "urinary loss of the antibody in nephrotic patients and may limit the response. A repeat "
               "count and a review of the dosing may be worth considering.")
    evidence = [Evidence.of_medication(course.doses[-1], note="last dose of the course")]
    evidence += [Evidence.of_lab(r, note=_days_after_note(r, course)) for r in high]
    return [ctx.finding(RULE_ID, course.episode, "warning", message, evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """No boundary (monitor.validity): the window is counted from the course's last dose, and the course
    changes only with a dose (assess() adds the next dose of a repeated record)."""
    return None
