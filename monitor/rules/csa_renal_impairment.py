"""Rule `csa_renal_impairment`: cyclosporine started in a patient whose kidney function was already
impaired.

Definition (docs/clinical-rules.md, "Rules for every therapy of the seed review"): cyclosporine was
started while the latest eGFR in the 90 days up to its start was < 60 mL/min/1.73 m2. Severity
warning. Resolves when cyclosporine is stopped.

Sources: seed review section 2.4.1 (IMN with impaired renal function should avoid cyclosporine; 6
months of alternating glucocorticoid and an alkylating agent instead); KDIGO 2012 CKD guideline (GFR
category G3a begins below 60 mL/min/1.73 m2).

The check itself is `renal_impairment_at(egfr, start)`, a pure function of an eGFR series and a start
date, so that an order-entry integration can ask it about a cyclosporine order that has not started
yet (the planned start date) with the same logic the rule applies to a course that has.

Readings where the rule book leaves room:
- eGFR = the series the rules read (reported eGFR, and CKD-EPI 2021 from creatinine where none was
  reported: monitor.egfr.egfr_series). "Latest" = the last one in clinical order dated within the 90
  days up to and including the start day; none in that window: nothing is known, nothing fires.
- A censored eGFR (">60", "<15") counts only if every value it allows is < 60 (rules._common).
- "Started" = the start of the current cyclosporine course (monitor.therapy.therapy_courses: a dose
  change is not a new start). The alert is raised while a record of that course is active on as_of;
  a course stopped (or between records) resolves it. Episode = cyclosporine:<course start>.
- A later recovery of eGFR does not resolve it: the rule book ties resolution to stopping the drug.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from monitor.egfr import DERIVED_SOURCE
from monitor.events import LabResult
from monitor.findings import Evidence, Finding
from monitor.rules._common import certainly_below, shown
from monitor.rules.base import RuleContext
from monitor.therapy import TherapyCourse, active, therapy_courses
from monitor.timeline import SeriesArrays
from monitor.validity import active_stops

RULE_ID = "csa_renal_impairment"
REFERENCE = ("2023 review of IMN treatment, section 2.4.1 (avoid cyclosporine in IMN with impaired renal "
             "function); KDIGO 2012 CKD guideline (G3a begins below 60 mL/min/1.73 m2)")

DRUG = "cyclosporine"
# KDIGO 2012 CKD: GFR category G3a (mildly to moderately decreased) begins below 60 mL/min/1.73 m2
EGFR_IMPAIRED_BELOW = 60.0
# values shown in messages and evidence stay on their side of these (display precision)
DISPLAY_LIMITS = {"egfr": (EGFR_IMPAIRED_BELOW,)}
# the rule book: the latest eGFR in the 90 days up to the start judges the kidney function at the start
LOOKBACK_DAYS = 90


def renal_impairment_at(egfr: Sequence[LabResult], start: date,
                        arrays: SeriesArrays | None = None) -> LabResult | None:
    """The eGFR that makes starting cyclosporine on `start` a concern, or None.

    `egfr`: an eGFR series in clinical order (e.g. monitor.egfr.egfr_series(timeline), or
    RuleContext.egfr); `start`: the day cyclosporine starts (or would start). Returns the latest eGFR
    dated in the 90 days up to and including `start` when it is certainly below 60; None when it is
    not, or when there is no eGFR in the window. `arrays`: the series' SeriesArrays, when at hand."""
    if arrays is None:
        arrays = SeriesArrays.of(egfr)
    on = start.toordinal()
    i = arrays.last_in(on - LOOKBACK_DAYS, on)
    if i < 0:
        return None
    latest = egfr[i]
    return latest if certainly_below(latest, EGFR_IMPAIRED_BELOW) else None


def _current_course(ctx: RuleContext) -> TherapyCourse | None:
    """The cyclosporine course with a record active on as_of, or None (stopped or never given)."""
    record = active(ctx.timeline, DRUG, ctx.as_of)
    if record is None:
        return None
    return next((c for c in therapy_courses(ctx.timeline, DRUG) if record in c.records), None)


def evaluate(ctx: RuleContext) -> list[Finding]:
    course = _current_course(ctx)
    if course is None:
        return []
    egfr = renal_impairment_at(ctx.egfr, course.start, ctx.timeline.arrays(ctx.egfr))
    if egfr is None:
        return []
    how = " (CKD-EPI 2021 from serum creatinine)" if egfr.source == DERIVED_SOURCE else ""
    message = (f"Cyclosporine was started on {course.start.isoformat()} while the latest eGFR before it was "
               f"{shown(egfr)} on {egfr.effective_date.isoformat()}{how}, below {EGFR_IMPAIRED_BELOW:g} "
               f"(CKD category G3a or worse). The seed review advises avoiding cyclosporine in membranous "
               f"nephropathy with impaired kidney function, where its nephrotoxicity weighs more, and "
               f"names 6 months of alternating glucocorticoid and an alkylating agent as the alternative. "
               f"A review of the choice of therapy, and close monitoring of kidney function and "
               f"cyclosporine levels while it continues, may be worth considering.")
    note = f"latest eGFR in the {LOOKBACK_DAYS} days up to the start"
    if how:
        note += "; computed by CKD-EPI 2021 from serum creatinine"
    evidence = [Evidence.of_medication(course.records[0], note="start of the cyclosporine course"),
                Evidence.of_lab(egfr, note=note)]
    return [ctx.finding(RULE_ID, course.episode, "warning", message, evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the finding lasts while a cyclosporine record is active: it may
    change the day one stops."""
    return active_stops(ctx.timeline, (DRUG,), ctx.as_of)
