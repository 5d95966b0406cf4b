"""Rule `course_non_response`: an immunosuppressive course (other than anti-CD20) reached the point
at which its response is judged, and no remission has come since it started.

Definition (docs/clinical-rules.md, "Rules for every therapy of the seed review"): at the
evaluation point of the drug (EVALUATION_POINTS below) no partial or complete remission has been
reached since the course started. Severity warning; one alert per course (episode = the drug and the
course's start). Resolves when a partial or complete remission is reached, or when another
immunosuppressive course starts. Anti-CD20 courses are judged by rtx_non_response instead.

Sources: KDIGO 2012 GN guideline ch.7 and the CJASN review table of IMN protocols (stop a calcineurin
inhibitor that has brought no response by 6 months); KDIGO 2021 GN guideline ch.3 (wait at least 6
months after completing cyclophosphamide before calling it a failure); seed review (ACTH: 55%
remission at 9 months; belimumab case report evaluated at 28 weeks); Cattran 2007 (cyclosporine).

Readings where the rule book leaves room:
- A course is a drug's records merged across dose changes and short breaks
  (monitor.therapy.therapy_courses); its start is its first record's start.
- Cyclophosphamide's evaluation point is the later of 12 months after the course's start and 6 months
  after its last day: for a 6-month regimen (modified Ponticelli) both fall together, and a longer
  course is not judged before KDIGO21's 6 months after completion. While the course has no known end
  it is not judged. The course starts with the first cyclophosphamide; a steroid month that opens a
  modified Ponticelli regimen is not counted, which puts the point one month later, never earlier.
- Glucocorticoids are an adjunct here ("cyclophosphamide +/- glucocorticoid"): a glucocorticoid
  course is neither judged nor "another course" that ends the alert. Any other immunosuppressant or
  an anti-CD20 course started after the judged course's start is another course.
- "No PR/CR since its start" = no remission confirmed between the start and as_of, and the patient not
  in remission on as_of (monitor.remission), as for rtx_non_response.
- Evaluation points are inclusive: day 183 after a calcineurin inhibitor's start is judged, day 182
  is not. A course stopped before its evaluation point is still judged at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from monitor.findings import Evidence, Finding
from monitor.rules._common import shown
from monitor.rules.base import RuleContext
from monitor.therapy import IMMUNOSUPPRESSANTS, TherapyCourse, therapy_courses
from monitor.validity import earliest

RULE_ID = "course_non_response"
REFERENCE = ("KDIGO 2012 GN guideline ch.7 and CJASN review of IMN protocols (calcineurin inhibitors: stop "
             "at 6 months without response); KDIGO 2021 GN guideline ch.3 (judge cyclophosphamide at least "
             "6 months after completion); 2023 review of IMN treatment (ACTH, belimumab at 28 weeks)")


@dataclass(frozen=True)
class EvaluationPoint:
    after_start_days: int  # judged this many days after the course's start ...
    after_end_days: int | None  # ... and, if set, not before this many days after its last day
    why: str  # where the point comes from, in plain words for the message


SIX_MONTHS_DAYS = 183
TWELVE_MONTHS_DAYS = 365
TWENTY_EIGHT_WEEKS_DAYS = 28 * 7
# the evaluation point of each drug judged by this rule, with its source (the rule book's table)
EVALUATION_POINTS: dict[str, EvaluationPoint] = {
    "cyclosporine": EvaluationPoint(
        SIX_MONTHS_DAYS, None, "KDIGO 2012 and the CJASN review advise stopping a calcineurin inhibitor "
        "that has brought no response by 6 months"),
    "tacrolimus": EvaluationPoint(
        SIX_MONTHS_DAYS, None, "KDIGO 2012 and the CJASN review advise stopping a calcineurin inhibitor "
        "that has brought no response by 6 months"),
    "cyclophosphamide": EvaluationPoint(
        TWELVE_MONTHS_DAYS, SIX_MONTHS_DAYS, "KDIGO 2021 judges cyclophosphamide (with or without a "
        "glucocorticoid) 12 months after its start, at least 6 months after the course ends"),
    "mycophenolate": EvaluationPoint(
        SIX_MONTHS_DAYS, None, "the seed review judges mycophenolate at 6 months"),
    "acth": EvaluationPoint(
        SIX_MONTHS_DAYS, None, "the seed review judges ACTH at 6 months (55% remission at 9 months)"),
    "belimumab": EvaluationPoint(
        TWENTY_EIGHT_WEEKS_DAYS, None, "the seed review's belimumab case was judged at 28 weeks"),
}
assert set(EVALUATION_POINTS) <= IMMUNOSUPPRESSANTS
# drugs whose later course ends the alert ("another immunosuppressive course starts"); anti-CD20
# courses (RuleContext.courses) count too
_ADJUNCTS = frozenset({"glucocorticoid"})
SUPERSEDING_DRUGS = tuple(sorted(IMMUNOSUPPRESSANTS - _ADJUNCTS))


def evaluation_date(course: TherapyCourse) -> date | None:
    """The day the course's response is judged (None: not yet known, the course has no end yet)."""
    point = EVALUATION_POINTS[course.drug]
    when = course.start + timedelta(days=point.after_start_days)
    if point.after_end_days is not None:
        if course.end is None:
            return None
        when = max(when, course.end + timedelta(days=point.after_end_days))
    return when


def _latest_start(ctx: RuleContext) -> date | None:
    """The start of the most recent immunosuppressive course of any kind (adjuncts aside)."""
    starts = [c.start for drug in SUPERSEDING_DRUGS for c in therapy_courses(ctx.timeline, drug)]
    starts += [c.first_dose for c in ctx.courses]
    return max(starts, default=None)


def _remission_reached(ctx: RuleContext, since: date) -> bool:
    return ctx.remission.in_remission or ctx.remission.remission_confirmed_between(since, ctx.as_of) is not None


def _message(course: TherapyCourse, judged_on: date, ctx: RuleContext) -> str:
    point = EVALUATION_POINTS[course.drug]
    status = ("still being taken" if course.end is None or course.end >= ctx.as_of
              else f"last given {course.end.isoformat()}")
    text = (f"The {course.drug} course started {course.start.isoformat()} ({status}) reached its "
            f"evaluation point on {judged_on.isoformat()} ({(judged_on - course.start).days} days after its "
            f"start) without a partial or complete remission since it started.")
    latest, peak = ctx.remission.latest, ctx.remission.episode_peak
    if latest is None or latest.effective_date < course.start:
        text += " No proteinuria has been measured since the course started, so no response can be seen."
    else:
        text += f" Latest proteinuria {shown(latest)} on {latest.effective_date.isoformat()}"
        if peak is not None and peak.identity != latest.identity:
            text += f" (peak of this episode {shown(peak)} on {peak.effective_date.isoformat()})"
        text += "."
    return (f"{text} {point.why[0].upper()}{point.why[1:]}. This suggests non-response to {course.drug}; a "
            "review of the treatment (adherence, drug levels where measured, alternative options) may be "
            "worth considering.")


def _evidence(course: TherapyCourse, judged_on: date, ctx: RuleContext) -> list[Evidence]:
    out = [Evidence.of_medication(course.records[0], note="first record of the course")]
    if len(course.records) > 1:
        out.append(Evidence.of_medication(course.records[-1], note="latest record of the course"))
    latest, peak = ctx.remission.latest, ctx.remission.episode_peak
    if peak is not None and (latest is None or peak.identity != latest.identity):
        out.append(Evidence.of_lab(peak, note="peak proteinuria of this episode"))
    if latest is not None:
        out.append(Evidence.of_lab(latest, note="latest proteinuria"))
    # the evaluation point, not the days since the start: evidence that stays the same from day to day
    out.append(Evidence.derived("evaluation_point_days", (judged_on - course.start).days, "d", judged_on,
                                f"evaluation point {judged_on.isoformat()}, counted from the course's start"))
    return out


def evaluate(ctx: RuleContext) -> list[Finding]:
    judged = [c for drug in EVALUATION_POINTS for c in therapy_courses(ctx.timeline, drug)]
    if not judged:
        return []  # most patients: no such course at all
    latest_start = _latest_start(ctx)
    out = []
    for course in judged:
        if latest_start is not None and latest_start > course.start:
            continue  # another course started since: this one is no longer the one to judge
        judged_on = evaluation_date(course)
        if judged_on is None or ctx.as_of < judged_on or _remission_reached(ctx, course.start):
            continue
        out.append(ctx.finding(RULE_ID, course.episode, "warning", _message(course, judged_on, ctx),
                               _evidence(course, judged_on, ctx), REFERENCE))
    return out


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the evaluation point of a course still to be judged, and
    the day after a course's planned end (the message says "still being taken" until then)."""
    candidates: list[date | None] = []
    for drug in EVALUATION_POINTS:
        for course in therapy_courses(ctx.timeline, drug):
            candidates.append(evaluation_date(course))
            if course.end is not None:
                candidates.append(course.end + timedelta(days=1))
    return earliest(ctx.as_of, candidates)
