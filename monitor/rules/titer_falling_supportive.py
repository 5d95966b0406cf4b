"""Rule `titer_falling_supportive`: on supportive care alone, the anti-PLA2R titer is falling, a sign
that the disease may be remitting without immunosuppression.

Definition (docs/clinical-rules.md, "Rules for every therapy of the seed review"): no
immunosuppression active or given in the past 6 months; the anti-PLA2R titer was >= 14 RU/mL and the
latest value is at least 15% below a value 60-120 days earlier; and no egfr_decline. Severity info
("non-immunosuppressive therapy may be extended 3-6 months"). Resolves when no longer met.

Sources: seed review section 2.1 (a falling titer on supportive care supports waiting 3-6 months
longer before immunosuppression); Rodriguez-Spanish cohort, CKJ/NDT 2021 (PMC8690096): on
conservative therapy, anti-PLA2R <= 97.5 RU/mL with a >= 15% fall at 3 months predicted a >= 50%
reduction of proteinuria at 6 months.

Readings where the rule book leaves room:
- Immunosuppression = any immunosuppressant of monitor.therapy.IMMUNOSUPPRESSANTS or anti-CD20
  agent (an open-ended record counts to as_of; a single administration on its day). "None active or
  in the past 6 months" is required of the whole fall: none in the 183 days before the earlier
  titer, nor since. A fall that began under treatment (the titer halving after cyclophosphamide,
  then measured again once six months have passed) is the treatment's effect, not a remission on
  supportive care.
- "Was >= 14" is read on the earlier value the fall is measured from: a fall within the negative
  range (e.g. 8 -> 5 RU/mL) is no sign of remission of an active disease. That value is the latest
  one dated 60-120 days (inclusive) before the latest titer that is >= 14 and from which the latest
  titer fell by >= 15% (exactly 15% counts); any such value meets the definition.
- Censored titers: a "<2" latest value has certainly fallen; an earlier value bounded from above
  ("<200") is not known to be >= 14 and is not used (rules._common).
- "No egfr_decline" is egfr_decline's own condition (egfr_decline.declining), not a copy of it.
- The 15% fall is within twice the between-run variation of the ELISA (CV about 8%), which is one
  reason the finding is information, not a warning.
- Episode: the date of the first titer of the trailing run of titers that each fell by >= 15% from a
  value 60-120 days before them, so a titer that keeps falling keeps one finding.
"""

from __future__ import annotations

from datetime import date

from monitor.events import ANTI_CD20, LabResult
from monitor.findings import Evidence, Finding
from monitor.rules import egfr_decline
from monitor.rules._common import may_be_higher, may_be_lower, num, shown
from monitor.rules.base import RuleContext
from monitor.therapy import IMMUNOSUPPRESSANTS, record_end
from monitor.timeline import SeriesArrays
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML

RULE_ID = "titer_falling_supportive"
REFERENCE = ("2023 review of IMN treatment, section 2.1 (a falling titer on supportive care: non-"
             "immunosuppressive therapy may be extended 3-6 months); Rodriguez-Spanish cohort, CKJ/NDT 2021, "
             "PMC8690096 (anti-PLA2R fall >= 15% at 3 months predicted a >= 50% proteinuria reduction)")

# the rule book: no immunosuppression active or given in the past 6 months
NO_IMMUNOSUPPRESSION_DAYS = 183
# KDIGO21 (< 14 RU/mL = negative): the earlier value must be antibody-positive (>= 14)
EARLIER_TITER_FROM_RU_ML = ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
# Rodriguez-Spanish cohort: a fall of >= 15% ...
MIN_FALL = 0.15
# ... at about 3 months: the earlier value is dated 60-120 days before the latest one
COMPARED_FROM_DAYS = 60
COMPARED_TO_DAYS = 120
# values shown in messages and evidence stay on their side of these (display precision)
DISPLAY_LIMITS = {"anti_pla2r": (EARLIER_TITER_FROM_RU_ML,), "anti_pla2r_fall_pct": (MIN_FALL * 100,)}
_EPS = 1e-9  # float tolerance: a fall of exactly 15% counts
# clinical order is by instant: local dates can run a day backwards across time-zone offsets
_ORDER_SLACK_DAYS = 2
TREATMENT_DRUGS = IMMUNOSUPPRESSANTS | ANTI_CD20


def _positive(r: LabResult) -> bool:
    return not may_be_lower(r) and r.value >= EARLIER_TITER_FROM_RU_ML


def _fell_from(latest: LabResult, earlier: LabResult) -> bool:
    """latest is certainly >= 15% below earlier (an upper-bounded '<2' certainly is; '>10' may not be)."""
    if may_be_higher(latest):
        return False
    return latest.value <= (1 - MIN_FALL) * earlier.value + _EPS


def _earlier(titers: tuple[LabResult, ...], arrays: SeriesArrays, i: int, not_before: int) -> LabResult | None:
    """The latest value dated 60-120 days before titers[i], and on or after `not_before` (a date
    ordinal), that is >= 14 and from which titers[i] fell by >= 15%."""
    day = arrays.days[i]
    lo, hi = max(day - COMPARED_TO_DAYS, not_before), day - COMPARED_FROM_DAYS
    stop = lo - _ORDER_SLACK_DAYS
    for j in range(i - 1, -1, -1):  # newest first
        d = arrays.days[j]
        if lo <= d <= hi and _positive(titers[j]) and _fell_from(titers[i], titers[j]):
            return titers[j]
        if d < stop:
            break
    return None


def last_treated(ctx: RuleContext) -> date | None:
    """The last day up to as_of on which an immunosuppressant or anti-CD20 record was active (an
    open-ended record: as_of), or None when there was none."""
    last: date | None = None
    for m in ctx.timeline.medications:
        if m.drug in TREATMENT_DRUGS and m.start <= ctx.as_of:
            end = record_end(m)
            day = ctx.as_of if end is None or end > ctx.as_of else end
            if last is None or day > last:
                last = day
    return last


def _not_before(ctx: RuleContext) -> int:
    """The first day (ordinal) on which the earlier titer may be drawn: more than 183 days after the
    last immunosuppression, so that the whole fall happened on supportive care."""
    treated = last_treated(ctx)
    return 0 if treated is None else treated.toordinal() + NO_IMMUNOSUPPRESSION_DAYS + 1


def evaluate(ctx: RuleContext) -> list[Finding]:
    titers = ctx.timeline.series("anti_pla2r")
    if len(titers) < 2:
        return []
    arrays = ctx.timeline.arrays(titers)
    last = len(titers) - 1
    # cheapest test first: most titers did not fall by 15% at all; then whether the whole fall came
    # after six months without immunosuppression; egfr_decline's walk last
    if _earlier(titers, arrays, last, 0) is None:
        return []
    not_before = _not_before(ctx)
    earlier = _earlier(titers, arrays, last, not_before)
    if earlier is None or egfr_decline.declining(ctx):
        return []
    start = last
    while start > 0 and _earlier(titers, arrays, start - 1, not_before) is not None:
        start -= 1
    latest = titers[last]
    fall = (earlier.value - latest.value) / earlier.value
    gap = (latest.effective_date - earlier.effective_date).days
    message = (f"Anti-PLA2R fell from {shown(earlier)} on {earlier.effective_date.isoformat()} to "
               f"{shown(latest)} on {latest.effective_date.isoformat()} ({num(fall * 100, 0)}% lower over "
               f"{gap} days) with no immunosuppression in the past {NO_IMMUNOSUPPRESSION_DAYS} days, and kidney "
               f"function is not declining. On supportive care a titer fall of at least {MIN_FALL:.0%} at about "
               f"3 months (from a titer of at most 97.5 RU/mL in that cohort) predicted a proteinuria reduction "
               f"of at least 50% at 6 months; the seed review suggests that non-immunosuppressive therapy may "
               f"be extended by 3-6 months before immunosuppression is decided.")
    evidence = [Evidence.of_lab(earlier, note=f"earlier titer, {gap} days before the latest"),
                Evidence.of_lab(latest, note="latest titer"),
                Evidence.derived("anti_pla2r_fall_pct", fall * 100, "%", latest.effective_at,
                                 f"fall from the earlier titer; informative from {MIN_FALL:.0%}")]
    return [ctx.finding(RULE_ID, titers[start].effective_date.isoformat(), "info", message, evidence,
                        REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """No boundary (monitor.validity). The last treated day moves with as_of only while a record is
    still going on, and it only moves later, so a fall it excludes stays excluded, and a fall it
    allows (every record ended long before) stays allowed. egfr_decline's question reads whether a
    calcineurin inhibitor is active, but a CNI active on as_of is immunosuppression on as_of, which
    excludes every fall whatever the answer; the rest of it reads results only."""
    return None
