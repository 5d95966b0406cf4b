"""Rule `monitoring_overdue`: a result that should be measured on therapy has not been.

Definition (docs/clinical-rules.md): on immunosuppression, or within 12 months after the last dose of an
anti-CD20 course, and
- no proteinuria in 90 days; or
- no anti-PLA2R in 90 days, for a PLA2R-positive patient; or
- on a calcineurin inhibitor with no trough of that drug (csa_trough for cyclosporine, tac_trough
  for tacrolimus) in 60 days.
Severity info; one finding per missing series. Resolves when the missing result arrives.

Source: KDIGO 2021 GN guideline ch.3 (proteinuria and anti-PLA2R at 3 and 6 months after the start
of therapy; CNI levels monitored during treatment); docs/clinical-rules.md.

Interpretations:
- "Days since" run from an anchor = max(last result's date, start of monitoring) to as_of, where the
  start of monitoring is the earliest start among the immunosuppressants active on as_of and the
  first doses of the anti-CD20 courses still within their 12 months (for a trough: the earliest
  start among the records of that CNI active on as_of). So a therapy started less than the window
  ago is not overdue yet, and the anchor stays put while nothing arrives.
- "No result in 90 days" = none in the 90 days up to as_of inclusive: overdue from day 91.
  "Within 12 months" = at most 365 days after the last anti-CD20 dose.
- "PLA2R-positive" = any anti-PLA2R >= 14 RU/mL up to as_of: a borderline titer is not immunological
  remission (KDIGO21 < 14), so it needs following just the same.
- Episode = "<series>:<anchor date>": stable while the result stays missing, new once a result has
  arrived and gone missing again.
- Immunosuppression as monitor.therapy.on_immunosuppression defines it: a single-administration
  record ("once", e.g. an IV cyclophosphamide pulse) counts only on its day.

Extensions (docs/clinical-rules.md, "Rules for every therapy of the seed review"):
- In the 12 months after a calcineurin inhibitor stops (no CNI active, the last CNI course ended at
  most 365 days before as_of), proteinuria is due every 90 days even without other therapy: about
  half of patients relapse after tacrolimus is withdrawn (seed review), 40-50% after CNIs (CJASN
  review table).
- During a cyclophosphamide course, from its start to 30 days after its last day, a white-cell count
  is due every 14 days during the course's first 8 weeks (days 0-55 from its start), then every 60
  days (CJASN review table: WBC weekly for 8 weeks, then every 2 months; 14 days leaves room for one
  missed weekly count). Courses as monitor.therapy.therapy_courses merges them: the alternate
  months of a modified Ponticelli regimen are one course. Episode = "wbc:<anchor>".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from monitor.display import proteinuria_text
from monitor.events import CALCINEURIN_INHIBITORS, LabResult, MedicationEvent
from monitor.findings import Evidence, Finding
from monitor.rules._common import shown
from monitor.rules.base import RuleContext
from monitor.therapy import IMMUNOSUPPRESSANTS, TherapyCourse, active, on_immunosuppression, therapy_courses
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
from monitor.validity import active_stops, earliest

RULE_ID = "monitoring_overdue"
REFERENCE = ("KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, ch.3 "
             "(monitor proteinuria and anti-PLA2R at 3 and 6 months of therapy; CNI trough levels)")

# KDIGO21: proteinuria at 3-month intervals during and after therapy
PROTEINURIA_EVERY_DAYS = 90
# KDIGO21: anti-PLA2R at 3 and 6 months after the start of therapy
ANTI_PLA2R_EVERY_DAYS = 90
# docs/clinical-rules.md: a CNI trough at least every 2 months while on the drug (KDIGO12/KDIGO21: CNI
# doses are adjusted to trough levels; the 60-day interval itself is this project's choice)
CNI_TROUGH_EVERY_DAYS = 60
# docs/clinical-rules.md: monitoring continues 12 months after the last dose of an anti-CD20 course
AFTER_ANTI_CD20_DAYS = 365
# KDIGO21: < 14 RU/mL is negative; any titer >= 14 makes the titer worth following
PLA2R_FOLLOWED_FROM_RU_ML = ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
# seed review (~50% relapse after tacrolimus withdrawal), CJASN review (40-50% after CNIs): proteinuria
# stays due every PROTEINURIA_EVERY_DAYS for 12 months after a calcineurin inhibitor stops
AFTER_CNI_DAYS = 365
# CJASN review table (modified Ponticelli: WBC weekly x8, then every 2 months): a white-cell count is
# due every 14 days in the first 8 weeks of a cyclophosphamide course, then every 60 days ...
WBC_EARLY_EVERY_DAYS = 14
WBC_EARLY_PERIOD_DAYS = 8 * 7
WBC_LATER_EVERY_DAYS = 60
# ... until 30 days after its last day (the leukocyte nadir follows the last dose by 1-2 weeks)
WBC_AFTER_CYCLOPHOSPHAMIDE_DAYS = 30
# docs/clinical-rules.md: the trough that belongs to each calcineurin inhibitor
CNI_TROUGH_SERIES: dict[str, str] = {"cyclosporine": "csa_trough", "tacrolimus": "tac_trough"}
assert set(CNI_TROUGH_SERIES) == CALCINEURIN_INHIBITORS

_LABELS = {"proteinuria": "proteinuria", "anti_pla2r": "anti-PLA2R",
           "csa_trough": "cyclosporine trough", "tac_trough": "tacrolimus trough", "wbc": "white-cell count"}


@dataclass(frozen=True)
class _Due:
    series: str  # episode prefix: proteinuria, anti_pla2r, csa_trough, tac_trough
    results: tuple[LabResult, ...]
    every_days: int
    since: MedicationEvent  # the therapy record that opened the monitoring
    why: str  # plain words for the message: when this result is expected
    source: str = "KDIGO 2021"
    therapy: str = ""  # the therapy as the message names it (default: "<drug> started <date>")

    @property
    def therapy_text(self) -> str:
        return self.therapy or f"{self.since.drug} started {self.since.start}"


def _monitoring_start(ctx: RuleContext) -> MedicationEvent | None:
    """The therapy record from which monitoring is due (earliest start), or None when none is."""
    starts: list[MedicationEvent] = []
    if on_immunosuppression(ctx.timeline, ctx.as_of):
        starts += [m for m in ctx.timeline.medications
                   if m.drug in IMMUNOSUPPRESSANTS and m.active_on(ctx.as_of)]
    starts += [c.doses[0] for c in ctx.courses if (ctx.as_of - c.last_dose).days <= AFTER_ANTI_CD20_DAYS]
    return min(starts, key=lambda m: m.start) if starts else None


def _cni_start(ctx: RuleContext, drug: str) -> MedicationEvent | None:
    active = [m for m in ctx.timeline.drugs(drug) if m.active_on(ctx.as_of)]
    return min(active, key=lambda m: m.start) if active else None


def _stopped_cni(ctx: RuleContext) -> TherapyCourse | None:
    """The last calcineurin-inhibitor course, when it ended at most AFTER_CNI_DAYS before as_of and no
    calcineurin inhibitor is active on as_of."""
    if any(active(ctx.timeline, drug, ctx.as_of) is not None for drug in CNI_TROUGH_SERIES):
        return None
    ended = [c for drug in sorted(CNI_TROUGH_SERIES) for c in therapy_courses(ctx.timeline, drug)
             if c.end is not None and c.end < ctx.as_of]
    if not ended:
        return None
    last = max(ended, key=lambda c: (c.end, c.drug))
    assert last.end is not None
    return last if (ctx.as_of - last.end).days <= AFTER_CNI_DAYS else None


def _cyclophosphamide_course(ctx: RuleContext) -> TherapyCourse | None:
    """The cyclophosphamide course whose monitoring window (start to 30 days after its end) holds as_of."""
    tail = timedelta(days=WBC_AFTER_CYCLOPHOSPHAMIDE_DAYS)
    for c in reversed(therapy_courses(ctx.timeline, "cyclophosphamide")):
        if c.start <= ctx.as_of and (c.end is None or ctx.as_of <= c.end + tail):
            return c
    return None


def _wbc_due(ctx: RuleContext) -> _Due | None:
    course = _cyclophosphamide_course(ctx)
    if course is None:
        return None
    early = (ctx.as_of - course.start).days < WBC_EARLY_PERIOD_DAYS
    every = WBC_EARLY_EVERY_DAYS if early else WBC_LATER_EVERY_DAYS
    why = (f"During the first {WBC_EARLY_PERIOD_DAYS // 7} weeks of a cyclophosphamide course" if early else
           f"During a cyclophosphamide course and the {WBC_AFTER_CYCLOPHOSPHAMIDE_DAYS} days after it")
    return _Due("wbc", ctx.timeline.series("wbc"), every, course.records[0], why,
                "CJASN review of IMN protocols", f"cyclophosphamide course started {course.start}")


def _due(ctx: RuleContext) -> list[_Due]:
    start = _monitoring_start(ctx)
    due: list[_Due] = []
    if start is None and (stopped := _stopped_cni(ctx)) is not None:
        due.append(_Due("proteinuria", ctx.proteinuria, PROTEINURIA_EVERY_DAYS, stopped.records[0],
                        f"In the {AFTER_CNI_DAYS} days after a calcineurin inhibitor stops, when 40-50% of "
                        f"patients relapse,", "CJASN review; 2023 review of IMN treatment",
                        f"{stopped.drug} course {stopped.start}..{stopped.end}, stopped"))
    if start is not None:
        why = "During immunosuppression and in the 12 months after anti-CD20 therapy"
        due.append(_Due("proteinuria", ctx.proteinuria, PROTEINURIA_EVERY_DAYS, start, why))
        titers = ctx.timeline.series("anti_pla2r")
        if any(t.value >= PLA2R_FOLLOWED_FROM_RU_ML for t in titers):
            why = f"In a PLA2R-positive patient ({why[0].lower()}{why[1:]})"
            due.append(_Due("anti_pla2r", titers, ANTI_PLA2R_EVERY_DAYS, start, why))
    for drug, series in sorted(CNI_TROUGH_SERIES.items()):
        cni = _cni_start(ctx, drug)
        if cni is not None:
            due.append(_Due(series, ctx.timeline.series(series), CNI_TROUGH_EVERY_DAYS, cni,
                            f"While on {drug}, dosed by its level,", "KDIGO 2012/2021"))
    wbc = _wbc_due(ctx)
    if wbc is not None:
        due.append(wbc)
    return due


def _last_text(r: LabResult) -> str:
    # a proteinuria with what it is (24-h urine, UPCR), any other result with its unit
    return proteinuria_text(r) if r.analyte in ("proteinuria_24h", "upcr") else shown(r)


def _anchor(due: _Due) -> date:
    """The day the interval runs from: the last result, or the start of monitoring if later."""
    last = due.results[-1] if due.results else None
    return max(last.effective_date, due.since.start) if last else due.since.start


def _overdue_from(due: _Due) -> date:
    """The first day on which the result is overdue (no result in the `every_days` days up to it)."""
    return _anchor(due) + timedelta(days=due.every_days + 1)


def _overdue(ctx: RuleContext, due: _Due) -> Finding | None:
    # The message and evidence name the dates (last result, overdue from), never "N days" counted to
    # as_of: the finding then reads the same every day until the result arrives, so an assessment
    # stays valid (Assessment.valid_until) and the alert is not rewritten every night.
    anchor, overdue_from = _anchor(due), _overdue_from(due)
    if ctx.as_of < overdue_from:
        return None
    last = due.results[-1] if due.results else None
    label = _LABELS[due.series]
    therapy = due.therapy_text
    every = due.every_days
    if last is not None:
        observed = (f"No {label} result for more than {every} days: the last was "
                    f"{_last_text(last)} on {last.effective_date} ({therapy}).")
    elif due.therapy:
        observed = f"No {label} result in the more than {every} days since {due.since.start} ({therapy})."
    else:
        observed = (f"No {label} result since {due.since.drug} started more than {every} days ago "
                    f"({due.since.start}).")
    message = (f"{observed} {due.why} the {label} is worth measuring at least every {every} "
               f"days ({due.source}), so a measurement may be due.")
    evidence = [Evidence.of_medication(due.since, note="therapy that makes monitoring due")]
    if last is not None:
        evidence.append(Evidence.of_lab(last, note=f"last {label}"))
    evidence.append(Evidence.derived("result_due_every_days", every, "d", overdue_from,
                                     f"{label}: none since {anchor}; overdue from {overdue_from}"))
    return ctx.finding(RULE_ID, f"{due.series}:{anchor.isoformat()}", "info", message, evidence, REFERENCE)


def evaluate(ctx: RuleContext) -> list[Finding]:
    return [f for due in _due(ctx) if (f := _overdue(ctx, due)) is not None]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the day a due result becomes overdue, and every day on
    which what is due changes: a therapy record stops (immunosuppressant or CNI), an anti-CD20 course
    leaves its 12 months, a stopped CNI's 12 months end, a cyclophosphamide course leaves its first 8
    weeks or its 30-day tail. Once overdue, the finding names dates only and stays as it is."""
    as_of = ctx.as_of
    one = timedelta(days=1)
    candidates: list[date | None] = [_overdue_from(due) for due in _due(ctx)]
    candidates.append(active_stops(ctx.timeline, IMMUNOSUPPRESSANTS | CALCINEURIN_INHIBITORS, as_of))
    candidates += [c.last_dose + timedelta(days=AFTER_ANTI_CD20_DAYS) + one for c in ctx.courses]
    for drug in sorted(CNI_TROUGH_SERIES):
        candidates += [c.end + timedelta(days=AFTER_CNI_DAYS) + one
                       for c in therapy_courses(ctx.timeline, drug) if c.end is not None]
    for c in therapy_courses(ctx.timeline, "cyclophosphamide"):
        candidates.append(c.start + timedelta(days=WBC_EARLY_PERIOD_DAYS))
        if c.end is not None:
            candidates.append(c.end + timedelta(days=WBC_AFTER_CYCLOPHOSPHAMIDE_DAYS) + one)
    return earliest(as_of, candidates)
