"""Rule `rtx_non_response`: no response 6 months after the first dose of an anti-CD20 course.

Definition (docs/clinical-rules.md): >= 183 days after the first dose of the latest anti-CD20 course, no
PR/CR reached since, and either
- immunological non-response: anti-PLA2R still >= 14 RU/mL in a PLA2R-positive patient, or
- clinical failure: proteinuria reduced < 25% from the pre-course baseline.
Both: critical; one: warning. Resolves when PR/CR is reached; a new course is a new episode (only
the latest course is evaluated, so the old course's alert resolves).

Sources: Fervenza NEJM 2019 (MENTOR: reduction of proteinuria < 25% at 6 months = treatment failure;
a second course at 6 months for partial responders); KDIGO 2021 GN guideline ch.3 (response to
rituximab judged at 6 months; anti-PLA2R < 14 RU/mL = immunological remission); seed review
(30-40% show no immunological response to rituximab).

Interpretations:
- "PLA2R-positive" here = any titer >= 14 RU/mL on or before the first dose: a borderline titer
  (14-19.9) is not immunological remission either (KDIGO21 < 14), so its persistence is a
  non-response just the same.
- The baseline proteinuria is the course baseline (monitor.therapy.course_baseline_proteinuria: the
  latest value in the 90 days up to and including the first dose), shared with rtx_redose_due. No
  such value: the clinical criterion is not evaluated (said in the message when the titer fires).
- The titer and the proteinuria judged are the latest ones, and only if drawn >= 90 days after the
  first dose: KDIGO21 asks for the titer at 3 and 6 months; earlier values still show antibody and
  proteinuria clearance in progress and would call responders non-responders.
- "No PR/CR reached since" = no remission confirmed between the first dose and as_of, and the
  patient not in remission on as_of (a course given during a remission, e.g. for a returning titer,
  must not be judged by a proteinuria that was already low).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from monitor.display import proteinuria_text
from monitor.events import LabResult
from monitor.findings import Evidence, Finding, Severity
from monitor.rules._common import num, shown
from monitor.rules.base import RuleContext
from monitor.therapy import COURSE_BASELINE_LOOKBACK_DAYS, AntiCD20Course, course_baseline_proteinuria
from monitor.timeline import SeriesArrays
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
from monitor.validity import earliest

RULE_ID = "rtx_non_response"
REFERENCE = ("Fervenza FC et al. NEJM 2019;381:36-46 (MENTOR: proteinuria reduction < 25% at 6 months = "
             "treatment failure); KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular "
             "Diseases, ch.3 (response at 6 months; anti-PLA2R < 14 RU/mL = immunological remission); "
             "2023 review of IMN treatment")

# MENTOR / KDIGO21: the response to rituximab is judged 6 months after the first dose
EVALUATION_AFTER_DAYS = 183
# KDIGO21 (measure anti-PLA2R at 3 and 6 months): a value earlier than 3 months does not judge response
RESULT_MIN_DAYS_AFTER_FIRST_DOSE = 90
# KDIGO21: anti-PLA2R < 14 RU/mL = immunological remission; >= 14 = no immunological response
TITER_PERSISTENT_FROM_RU_ML = ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
# MENTOR: proteinuria reduced by < 25% from baseline at 6 months = treatment failure
MIN_PROTEINURIA_REDUCTION = 0.25
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"proteinuria_reduction": (MIN_PROTEINURIA_REDUCTION * 100,)}
_EPS = 1e-9  # float tolerance: a reduction of exactly 25% is a response, not a failure


@dataclass(frozen=True)
class _Titer:
    baseline: LabResult  # the last titer >= 14 on/before the first dose: PLA2R-positive
    latest: LabResult | None  # the latest titer drawn >= 90 days after the first dose

    @property
    def persistent(self) -> bool:
        return self.latest is not None and self.latest.value >= TITER_PERSISTENT_FROM_RU_ML


@dataclass(frozen=True)
class _Proteinuria:
    baseline: LabResult  # the course baseline: the latest proteinuria in the 90 days up to the first dose
    latest: LabResult | None  # the latest proteinuria drawn >= 90 days after the first dose

    @property
    def reduction(self) -> float | None:
        if self.latest is None:
            return None
        return (self.baseline.value - self.latest.value) / self.baseline.value

    @property
    def failed(self) -> bool:
        # compared as latest > 75% of baseline, so that exactly 25% counts as a response
        return self.latest is not None and (
            self.latest.value > (1 - MIN_PROTEINURIA_REDUCTION) * self.baseline.value + _EPS)


def _latest_from(series: tuple[LabResult, ...], arrays: SeriesArrays, since: date) -> LabResult | None:
    """The last result of the series dated on or after `since`."""
    i = arrays.last_from(since.toordinal())
    return series[i] if i >= 0 else None


def _judged_from(course: AntiCD20Course) -> date:
    return course.first_dose + timedelta(days=RESULT_MIN_DAYS_AFTER_FIRST_DOSE)


def _titer(ctx: RuleContext, course: AntiCD20Course) -> _Titer | None:
    """The titer criterion's data, or None when the patient was not PLA2R-positive before the course."""
    titers = ctx.timeline.series("anti_pla2r")
    days = ctx.timeline.arrays(titers)
    first_dose = course.first_dose.toordinal()
    # the last positive titer on or before the first dose: scanned from the end, on date ordinals
    baseline = next((t for t, d in zip(reversed(titers), reversed(days.days))
                     if d <= first_dose and t.value >= TITER_PERSISTENT_FROM_RU_ML), None)
    if baseline is None:
        return None
    return _Titer(baseline, _latest_from(titers, days, _judged_from(course)))


def _proteinuria(ctx: RuleContext, course: AntiCD20Course) -> _Proteinuria | None:
    """The clinical criterion's data, or None when there is no usable pre-course baseline."""
    days = ctx.timeline.arrays(ctx.proteinuria)
    baseline = course_baseline_proteinuria(ctx.proteinuria, course, days)
    if baseline is None or baseline.value <= 0:
        return None  # no fall can be measured from a baseline of 0
    return _Proteinuria(baseline, _latest_from(ctx.proteinuria, days, _judged_from(course)))


def _remission_reached(ctx: RuleContext, course: AntiCD20Course) -> bool:
    return (ctx.remission.in_remission
            or ctx.remission.remission_confirmed_between(course.first_dose, ctx.as_of) is not None)


def _change(reduction: float) -> str:
    # a reduction of 24.6% reads "24.6%", never "25%", beside "short of the 25% reduction"
    pct = num(abs(reduction) * 100, 0, (MIN_PROTEINURIA_REDUCTION * 100,))
    return f"reduced by {pct}%" if reduction >= 0 else f"increased by {pct}%"


def _message(course: AntiCD20Course, titer: _Titer | None, prot: _Proteinuria | None) -> str:
    # the evaluation day, not "N days after": the message stays the same from day to day
    judged = course.first_dose + timedelta(days=EVALUATION_AFTER_DAYS)
    parts = [(f"No partial or complete remission has been reached since the first {course.agent} dose of the "
              f"course started {course.first_dose}, and its 6-month evaluation point (day "
              f"{EVALUATION_AFTER_DAYS}, {judged}) has passed.")]
    if titer is not None and titer.persistent and titer.latest is not None:
        parts.append(f"Anti-PLA2R is still {shown(titer.latest)} on {titer.latest.effective_date} "
                     f"(was {shown(titer.baseline)} on {titer.baseline.effective_date}; "
                     f">= {TITER_PERSISTENT_FROM_RU_ML:g} = no immunological response).")
    if prot is not None and prot.failed and prot.latest is not None and prot.reduction is not None:
        failure_mark = (1 - MIN_PROTEINURIA_REDUCTION) * prot.baseline.value
        parts.append(f"Proteinuria {proteinuria_text(prot.latest, (failure_mark,))} on "
                     f"{prot.latest.effective_date} vs "
                     f"{proteinuria_text(prot.baseline)} before the course ({prot.baseline.effective_date}): "
                     f"{_change(prot.reduction)}, short of the {MIN_PROTEINURIA_REDUCTION:.0%} reduction "
                     "below which MENTOR counted treatment failure.")
    elif prot is None:
        parts.append(f"No proteinuria in the {COURSE_BASELINE_LOOKBACK_DAYS} days up to the first dose, so "
                     "the clinical criterion could not be judged.")
    parts.append("This suggests non-response to anti-CD20 therapy; a review of the treatment "
                 "(e.g. B-cell count, alternative options) may be worth considering.")
    return " ".join(parts)


def _evidence(course: AntiCD20Course, titer: _Titer | None, prot: _Proteinuria | None) -> list[Evidence]:
    out = [Evidence.of_medication(course.doses[0], note="first dose of the course")]
    if prot is not None:
        out.append(Evidence.of_lab(prot.baseline, note="pre-course baseline proteinuria"))
        if prot.latest is not None and prot.reduction is not None:
            out.append(Evidence.of_lab(prot.latest, note="latest proteinuria"))
            note = f"from baseline; treatment failure below {MIN_PROTEINURIA_REDUCTION:.0%}"
            out.append(Evidence.derived("proteinuria_reduction", prot.reduction * 100, "%",
                                        prot.latest.effective_at, note))
    if titer is not None:
        out.append(Evidence.of_lab(titer.baseline, note="anti-PLA2R before the course"))
        if titer.latest is not None:
            out.append(Evidence.of_lab(titer.latest, note="latest anti-PLA2R"))
    return out


def evaluate(ctx: RuleContext) -> list[Finding]:
    if not ctx.courses:
        return []
    course = ctx.courses[-1]  # only the latest course is judged: a new course is a new episode
    days = (ctx.as_of - course.first_dose).days
    if days < EVALUATION_AFTER_DAYS or _remission_reached(ctx, course):
        return []
    titer, prot = _titer(ctx, course), _proteinuria(ctx, course)
    met = int(titer is not None and titer.persistent) + int(prot is not None and prot.failed)
    if met == 0:
        return []
    severity: Severity = "critical" if met == 2 else "warning"
    return [ctx.finding(RULE_ID, course.episode, severity, _message(course, titer, prot),
                        _evidence(course, titer, prot), REFERENCE)]


# The clinical criterion's data (course baseline, the proteinuria judged, the < 25% comparison), read
# by rtx_redose_due too: its ">= 25% without complete remission" is this criterion's complement.
course_proteinuria = _proteinuria


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the latest course's day 183, when the judgement starts.
    After it the finding reads results and remissions only (the course changes with a dose)."""
    if not ctx.courses:
        return None
    return earliest(ctx.as_of, [ctx.courses[-1].first_dose + timedelta(days=EVALUATION_AFTER_DAYS)])
