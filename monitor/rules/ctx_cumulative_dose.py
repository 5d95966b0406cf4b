"""Rule `ctx_cumulative_dose`: cumulative cyclophosphamide exposure.

The cumulative dose (monitor.therapy.cumulative_dose: oral days x daily dose + IV pulses, up to
`as_of`; body weight/height only for doses per kg or per m2) fires
- >= 10 g: warning (a 6-month modified Ponticelli course already gives about 10-15 g; further
  courses should count what has been given);
- >= 36 g: critical (Faurschou M et al. J Rheumatol 2008: bladder cancer risk rose above 36 g;
  van den Brand JA et al. JASN 2014: in membranous nephropathy the malignancy risk grows with the
  cumulative dose).
One episode per patient ("cumulative"): the alert escalates from warning to critical as the dose
grows and never resolves by itself (it is history); a clinician acknowledges it.

Records that cannot be counted (a dose in mg/kg without a body weight, mg/m2 without height, no dose)
are named in the message and the evidence. Reading where docs/clinical-rules.md is silent: when such
records exist and the counted total is below 10 g, the true total is unknown, so an `info` finding
(same episode) says what is missing instead of staying silent; it escalates to warning/critical once
the missing data make the total reach a threshold.
"""

from __future__ import annotations

from datetime import date, timedelta

from monitor.display import decimals_for
from monitor.events import MedicationEvent
from monitor.findings import Evidence, Finding, Severity
from monitor.rules._common import num
from monitor.rules.base import RuleContext
from monitor.therapy import CumulativeDose, administrations_until, cumulative_dose
from monitor.validity import next_day

RULE_ID = "ctx_cumulative_dose"
REFERENCE = ("Seed review (2023): cumulative cyclophosphamide causes leukopenia (18%) and malignancy (8%); "
             "Faurschou M et al. J Rheumatol 2008 (bladder cancer above 36 g); van den Brand JA et al. "
             "JASN 2014; KDIGO 2021 GN guideline ch.3")

DRUG = "cyclophosphamide"
EPISODE = "cumulative"
# docs/clinical-rules.md: a 6-month modified Ponticelli course already gives about 10-15 g
CTX_WARNING_G = 10.0
# Faurschou 2008: bladder cancer risk above 36 g cumulative cyclophosphamide
CTX_CRITICAL_G = 36.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"cyclophosphamide_cumulative": (CTX_WARNING_G, CTX_CRITICAL_G)}
# grams are rounded before comparison so that 10 x 1000 mg is exactly 10 g
_GRAM_DIGITS = 6


def _severity(grams: float, incomplete: bool) -> Severity | None:
    if grams >= CTX_CRITICAL_G:
        return "critical"
    if grams >= CTX_WARNING_G:
        return "warning"
    return "info" if incomplete else None


def _counted_note(m: MedicationEvent, mg: float, as_of: date) -> str:
    n = administrations_until(m, as_of)
    per = mg / n if n else 0.0
    route = f"{m.route} " if m.route else ""
    span = m.start.isoformat() if m.frequency == "once" else f"{m.start}..{min(m.end or as_of, as_of)}"
    return (f"{route}{m.frequency} {span}: counted {num(mg, 3)} mg = {n:g} administration(s) x "
            f"{num(per, 3)} mg")


def _counted_until(m: MedicationEvent, as_of: date) -> date:
    """The last day of the record counted up to as_of (a single administration: its day)."""
    return m.start if m.frequency == "once" else min(m.end or as_of, as_of)


def _last_counted(dose: CumulativeDose, as_of: date) -> date:
    """The last day counted in the total. The total is dated by it, not by as_of, so that once the
    course is over the finding reads the same every day (Assessment.valid_until)."""
    records = [m for m, _ in dose.contributions] + [m for m, _ in dose.uncounted]
    return max((_counted_until(m, as_of) for m in records), default=as_of)


def _evidence(dose: CumulativeDose, grams: float, as_of: date) -> list[Evidence]:
    items = [Evidence.of_medication(m, note=_counted_note(m, mg, as_of)) for m, mg in dose.contributions]
    items += [Evidence.of_medication(m, note=f"not counted: {why}") for m, why in dose.uncounted]
    until = _last_counted(dose, as_of)
    note = f"sum of {len(dose.contributions)} record(s) up to {until.isoformat()}"
    if dose.uncounted:
        note += f"; {len(dose.uncounted)} record(s) not counted, so the true total is higher"
    items.append(Evidence.derived("cyclophosphamide_cumulative", grams, "g", until, note))
    return items


def _uncounted_text(dose: CumulativeDose) -> str:
    if not dose.uncounted:
        return ""
    reasons = "; ".join(f"{m.start.isoformat()}: {why}" for m, why in dose.uncounted)
    return (f" {len(dose.uncounted)} record(s) could not be counted ({reasons}), so the true total is "
            f"higher than shown.")


def _message(severity: Severity, grams: float, dose: CumulativeDose, as_of: date) -> str:
    # the precision its evidence row is shown with (monitor.display: derived grams), never "10 g" for
    # 9.96 g: more decimals only beside a threshold
    total = num(grams, decimals_for("cyclophosphamide_cumulative", "g"), (CTX_WARNING_G, CTX_CRITICAL_G))
    head = (f"Cumulative cyclophosphamide is {total} g by {_last_counted(dose, as_of).isoformat()} "
            f"({len(dose.contributions)} record(s) counted).{_uncounted_text(dose)}")
    if severity == "critical":
        return (f"{head} This is at or above {CTX_CRITICAL_G:g} g, above which the risk of bladder cancer "
                f"rose (Faurschou 2008) and malignancy risk in membranous nephropathy grows with the "
                f"cumulative dose (van den Brand 2014). Consider weighing further cyclophosphamide against "
                f"alternatives and keeping up cancer surveillance (urinalysis for haematuria).")
    if severity == "warning":
        return (f"{head} This is at or above {CTX_WARNING_G:g} g (a 6-month modified Ponticelli course "
                f"gives about 10-15 g). Leukopenia, infection, infertility and malignancy risks grow with "
                f"the cumulative dose; consider counting this exposure when planning further treatment.")
    return (f"{head} The counted total is below {CTX_WARNING_G:g} g, but the cumulative exposure cannot be "
            f"checked against the {CTX_WARNING_G:g} g and {CTX_CRITICAL_G:g} g limits until the missing "
            f"data (body weight/height or dose) are recorded.")


def evaluate(ctx: RuleContext) -> list[Finding]:
    dose = cumulative_dose(ctx.timeline, DRUG, ctx.as_of)
    grams = round(dose.grams, _GRAM_DIGITS)
    severity = _severity(grams, bool(dose.uncounted))
    if severity is None:
        return []
    return [ctx.finding(RULE_ID, EPISODE, severity, _message(severity, grams, dose, ctx.as_of),
                        _evidence(dose, grams, ctx.as_of), REFERENCE)]


# how far ahead next_change looks for an open-ended course crossing the warning threshold
_HORIZON_DAYS = 100 * 365


def _going_on(m: MedicationEvent, as_of: date) -> bool:
    """A repeated record that still gives doses after as_of."""
    return m.frequency != "once" and (m.end is None or m.end > as_of)


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity). While a course still gives doses, a finding's total (and
    its date) changes with the next one: the next day. Without a finding yet, the day the counted
    total reaches the warning threshold (the total only grows: a bisection over days). No course
    going on: the total is final, and so is the finding."""
    as_of = ctx.as_of
    going = [m for m in ctx.timeline.drugs(DRUG) if _going_on(m, as_of)]
    if not going:
        return None
    dose = cumulative_dose(ctx.timeline, DRUG, as_of)
    if _severity(round(dose.grams, _GRAM_DIGITS), bool(dose.uncounted)) is not None:
        return next_day(as_of)
    ends = [m.end for m in going if m.end is not None]
    # the last day any dose can be given (an open-ended course: as far as the horizon)
    hi = max(ends) if len(ends) == len(going) else as_of + timedelta(days=_HORIZON_DAYS)
    lo = as_of  # below the threshold on lo; find the first day at or above it, if any

    def reached(d: date) -> bool:
        return round(cumulative_dose(ctx.timeline, DRUG, d).grams, _GRAM_DIGITS) >= CTX_WARNING_G

    if not reached(hi):
        return None
    while hi - lo > timedelta(days=1):
        mid = lo + (hi - lo) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi
