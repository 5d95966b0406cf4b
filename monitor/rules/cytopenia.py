"""Rule `cytopenia`: a low white-cell or neutrophil count during a therapy that suppresses the marrow.

Definition (docs/clinical-rules.md, "Rules for every therapy of the seed review"): during an
exposure window
- cyclophosphamide: from the start of a course to 30 days after its last day;
- mycophenolate: while a course is being taken;
- anti-CD20: the 12 months after the first dose of a course;
the latest white-cell count (WBC) < 3.0 x10^9/L is a warning, the latest neutrophil count < 1.0
x10^9/L is critical (both: critical). Resolves when WBC >= 3.0 and neutrophils >= 1.0, or when the
exposure window ends.

Sources: NCI CTCAE v5.0 (white blood cell decreased grade 2: < 3.0 x10^9/L; neutrophil count
decreased grade 3: < 1.0 x10^9/L); seed review (cyclophosphamide: leukopenia 18%, infection 17%;
mycophenolate and obinutuzumab: leukopenia and infection); CJASN review table of IMN protocols
(modified Ponticelli: WBC weekly for 8 weeks, then every 2 months).

Readings where the rule book leaves room:
- Only counts drawn during the current exposure are judged: the exposure runs from the start of the
  window that contains as_of, windows of different drugs that overlap or touch being one exposure.
  A count from before the therapy began says nothing about the therapy's effect on the marrow.
- Each series is judged on its own latest count: a low WBC stays the judged value until a later WBC
  arrives, whatever the neutrophils did meanwhile.
- A censored count ("<0.5") meets a limit only when every value it allows does (rules._common).
- Episode: the date of the first count of the earliest current run of low counts (WBC < 3.0 or
  neutrophils < 1.0) within the exposure. A normal count ends its run; a later fall is a new episode.
- Window ends are inclusive: day 30 after cyclophosphamide's last day and day 365 after the first
  anti-CD20 dose still count; the next day does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from monitor.events import LabResult, MedicationEvent
from monitor.findings import Evidence, Finding, Severity
from monitor.rules._common import certainly_below, current_run, run_evidence, shown
from monitor.rules.base import RuleContext
from monitor.therapy import therapy_courses
from monitor.validity import earliest

RULE_ID = "cytopenia"
REFERENCE = ("NCI CTCAE v5.0 (white blood cell decreased grade 2 < 3.0 x10^9/L; neutrophil count decreased "
             "grade 3 < 1.0 x10^9/L); 2023 review of IMN treatment (cyclophosphamide: leukopenia 18%, "
             "infection 17%; mycophenolate, obinutuzumab: leukopenia); CJASN review of IMN protocols "
             "(WBC weekly for 8 weeks, then every 2 months, on cyclophosphamide)")

WBC = "wbc"
NEUTROPHILS = "neutrophils"
# CTCAE5: white blood cell decreased grade 2 begins below 3.0 x10^9/L
WBC_LOW_BELOW = 3.0
# CTCAE5: neutrophil count decreased grade 3 (severe; infection risk) begins below 1.0 x10^9/L
NEUTROPHILS_LOW_BELOW = 1.0
# the rule book: cyclophosphamide exposure lasts to 30 days after its last day (the nadir of an
# alkylating agent falls 1-2 weeks after a dose; recovery takes weeks)
CYCLOPHOSPHAMIDE_TAIL_DAYS = 30
# the rule book: anti-CD20 exposure lasts 12 months after a course's first dose (late-onset
# neutropenia after rituximab appears weeks to months after it)
ANTI_CD20_EXPOSURE_DAYS = 365
# values shown in messages and evidence stay on their side of these (display precision)
DISPLAY_LIMITS = {WBC: (WBC_LOW_BELOW,), NEUTROPHILS: (NEUTROPHILS_LOW_BELOW,)}
# drugs whose courses open an exposure window for their whole duration (no tail)
ON_COURSE_DRUGS = ("mycophenolate",)


@dataclass(frozen=True)
class Exposure:
    """One window in which a drug may suppress the marrow (end inclusive; None = still open)."""

    drug: str
    start: date
    end: date | None
    record: MedicationEvent  # the record (or dose) that opened it
    how: str  # plain words for the message

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def exposures(ctx: RuleContext) -> list[Exposure]:
    """Every exposure window of the patient up to as_of, by start."""
    found: list[Exposure] = []
    for c in therapy_courses(ctx.timeline, "cyclophosphamide"):
        end = None if c.end is None else c.end + timedelta(days=CYCLOPHOSPHAMIDE_TAIL_DAYS)
        last = "still going on" if c.end is None else f"last day {c.end.isoformat()}"
        found.append(Exposure(c.drug, c.start, end, c.records[0],
                              f"cyclophosphamide (course started {c.start.isoformat()}, {last}; counts "
                              f"until {CYCLOPHOSPHAMIDE_TAIL_DAYS} days after its last day)"))
    for drug in ON_COURSE_DRUGS:
        for c in therapy_courses(ctx.timeline, drug):
            last = "still going on" if c.end is None else f"last day {c.end.isoformat()}"
            found.append(Exposure(c.drug, c.start, c.end, c.records[0],
                                  f"{drug} (course started {c.start.isoformat()}, {last})"))
    for course in ctx.courses:  # anti-CD20 courses
        end = course.first_dose + timedelta(days=ANTI_CD20_EXPOSURE_DAYS)
        found.append(Exposure(course.agent, course.first_dose, end, course.doses[0],
                              f"the {ANTI_CD20_EXPOSURE_DAYS} days after the first {course.agent} dose "
                              f"of the course started {course.first_dose.isoformat()}"))
    found.sort(key=lambda e: e.start)
    return found


def current_exposure(ctx: RuleContext) -> tuple[date, list[Exposure]] | None:
    """The start of the exposure that contains as_of and the windows covering as_of, or None.

    Windows that overlap or touch are chained into one exposure, so a count drawn on
    cyclophosphamide still counts once mycophenolate has followed it without a break."""
    windows = [w for w in exposures(ctx) if w.start <= ctx.as_of]
    if not any(w.covers(ctx.as_of) for w in windows):
        return None
    start: date | None = None
    reach: date | None = None  # the last day of the chain so far (date.max: open)
    for w in windows:
        w_end = w.end or date.max
        if start is None or reach is None or (w.start - reach).days > 1:
            start, reach = w.start, w_end  # a break: a new chain starts here
        else:
            reach = max(reach, w_end)
    assert start is not None
    return start, [w for w in windows if w.covers(ctx.as_of)]


def _low_run(ctx: RuleContext, analyte: str, limit: float, since: date) -> list[LabResult]:
    """The current run of counts below `limit`, all drawn on or after `since`."""
    series = ctx.timeline.series(analyte)
    return current_run(series, lambda r: r.effective_date >= since and certainly_below(r, limit))


def _message(wbc: list[LabResult], neut: list[LabResult], covering: list[Exposure]) -> str:
    observed = []
    if neut:
        observed.append(f"neutrophils {shown(neut[-1])} on {neut[-1].effective_date.isoformat()} "
                        f"(below {NEUTROPHILS_LOW_BELOW:.1f})")
    if wbc:
        observed.append(f"white cells {shown(wbc[-1])} on {wbc[-1].effective_date.isoformat()} "
                        f"(below {WBC_LOW_BELOW:.1f})")
    during = "; ".join(w.how for w in covering)
    text = f"Low blood count: {' and '.join(observed)}, during {during}."
    if neut:
        text += (f" A neutrophil count below {NEUTROPHILS_LOW_BELOW:.1f} x10^9/L is severe neutropenia "
                 f"(CTCAE grade 3) with a high risk of infection.")
    else:
        text += (f" A white-cell count below {WBC_LOW_BELOW:.1f} x10^9/L is leukopenia of CTCAE grade 2 or "
                 f"worse; the seed review reports leukopenia in 18% of cyclophosphamide courses.")
    return (text + " Consider repeating the blood count with a differential, looking for infection, "
            "and reviewing the immunosuppressive therapy.")


def evaluate(ctx: RuleContext) -> list[Finding]:
    # cheapest test first: most patients have no blood count at all
    if not ctx.timeline.series(WBC) and not ctx.timeline.series(NEUTROPHILS):
        return []
    exposure = current_exposure(ctx)
    if exposure is None:
        return []
    since, covering = exposure
    wbc = _low_run(ctx, WBC, WBC_LOW_BELOW, since)
    neut = _low_run(ctx, NEUTROPHILS, NEUTROPHILS_LOW_BELOW, since)
    if not wbc and not neut:
        return []
    severity: Severity = "critical" if neut else "warning"
    evidence = [Evidence.of_medication(w.record, note=f"opens the exposure: {w.how}") for w in covering]
    if neut:
        evidence += run_evidence(neut, "first low neutrophil count of this run")
    if wbc:
        evidence += run_evidence(wbc, "first low white-cell count of this run")
    episode = min(run[0].effective_date for run in (wbc, neut) if run).isoformat()
    return [ctx.finding(RULE_ID, episode, severity, _message(wbc, neut, covering), evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the day after the end of an exposure window that covers
    as_of (the exposure, and with it the finding, may end then). Windows open only with a new record
    or dose; the counts judged are results."""
    if not ctx.timeline.series(WBC) and not ctx.timeline.series(NEUTROPHILS):
        return None  # no count: nothing to find until one arrives
    return earliest(ctx.as_of, [w.end + timedelta(days=1) for w in exposures(ctx)
                                if w.end is not None and w.covers(ctx.as_of)])
