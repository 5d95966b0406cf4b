"""Rule `egfr_decline`: a sustained fall in kidney function, and CNI nephrotoxicity on a CNI.

Fires when
- the latest eGFR (ctx.egfr: reported, or CKD-EPI 2021 from creatinine where not reported) is >= 25%
  below the patient's baseline, the median of the eGFR values of the 12 months before it (>= 2
  values needed): warning; >= 40% below: critical; or
- on a calcineurin inhibitor (cyclosporine or tacrolimus active when the latest creatinine was drawn
  and at `as_of`), the latest serum creatinine is > 20% above its own baseline (median of the
  previous 12 months, >= 2 values): warning. The message names CNI nephrotoxicity and asks for a
  trough level.
Resolves when the values are back within these limits.

The series is one equation's (monitor.egfr.egfr_series): a reported eGFR of another equation is
never judged against a baseline of CKD-EPI 2021 values, nor the other way round.

Sources: KDIGO 2021 GN guideline ch.3 (a creatinine rise >= 30% within 6-12 months, or an unexplained
fall in kidney function, marks high/very high risk of progression); KDIGO 2012 GN guideline ch.7
(check CNI levels on an unexplained rise in serum creatinine > 20% during treatment).

Readings where docs/clinical-rules.md leaves room (each one also commented where it is coded):
- Baseline of a run. The first value of a run is judged exactly as written: against the median of
  the values of the 12 months before it. Later values of the same run are judged against that same
  baseline, not their own rolling one: otherwise a sustained fall would pull the rolling median down
  and "resolve" itself after a few values although kidney function never recovered ("back within
  the limits" is read as back within the limits of the baseline the fall was measured from).
- "Unexplained" cannot be known from laboratory data; the message asks the reader to exclude other
  causes instead of asserting nephrotoxicity.
- One finding per episode for both conditions (they usually describe the same event: a creatinine
  rise is an eGFR fall); its episode is the date of the first value of the earliest current run.
- A result with a comparator is used as its bound in baselines, and a latest value bounded the wrong
  way (eGFR ">60", creatinine "<50") never counts as a decline/rise, since the true value is unknown.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from monitor.display import unit_label, value_text
from monitor.egfr import DERIVED_SOURCE
from monitor.events import CALCINEURIN_INHIBITORS, LabResult, MedicationEvent
from monitor.findings import Evidence, Finding, Severity
from monitor.rules._common import may_be_higher, may_be_lower, num, shown
from monitor.rules.base import RuleContext
from monitor.therapy import active
from monitor.timeline import SeriesArrays
from monitor.validity import active_stops

RULE_ID = "egfr_decline"
REFERENCE = ("KDIGO 2021 GN guideline ch.3 (unexplained decline of kidney function marks high risk of "
             "progression); KDIGO 2012 GN guideline ch.7 (check CNI levels on an unexplained creatinine "
             "rise > 20%)")

# docs/clinical-rules.md (KDIGO21 risk of progression): eGFR >= 25% below baseline fires (warning)
EGFR_DECLINE_WARNING_PCT = 25.0
# docs/clinical-rules.md: a fall of >= 40% is critical (a 40% eGFR decline is an accepted surrogate of
# kidney failure risk, and the KDIGO21 creatinine-rise criterion of 30% is far exceeded)
EGFR_DECLINE_CRITICAL_PCT = 40.0
# KDIGO12: check CNI levels whenever serum creatinine rises unexpectedly by > 20% (strictly)
CREATININE_RISE_ON_CNI_PCT = 20.0
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"egfr_decline_pct": (EGFR_DECLINE_WARNING_PCT, EGFR_DECLINE_CRITICAL_PCT),
                  "creatinine_rise_pct": (CREATININE_RISE_ON_CNI_PCT,)}
# docs/clinical-rules.md: baseline = median of the values of the previous 12 months, >= 2 values
BASELINE_WINDOW_DAYS = 365
BASELINE_MIN_VALUES = 2
# percentages are rounded before comparison so that 60 vs 80 is exactly a 25% fall
_PCT_DIGITS = 6

CREATININE = "serum_creatinine"


@dataclass(frozen=True)
class _Run:
    """The current run of values meeting the condition, judged against one baseline."""

    first: LabResult
    latest: LabResult
    baseline: float
    baseline_values: tuple[LabResult, ...]

    def change_pct(self, sign: int) -> float:
        """Change of the latest value from the baseline in %, positive in the alarming direction."""
        return _pct(self.latest.value, self.baseline, sign)


def _baseline(series: tuple[LabResult, ...], i: int, lo: int = 0,
              arrays: SeriesArrays | None = None) -> tuple[float, tuple[LabResult, ...]] | None:
    """Median of the values of the 12 months before series[i] (same-day repeats excluded).

    `lo`: an index before which no value can be in the window (a scan start, to stay linear).
    `arrays`: the series' SeriesArrays (Timeline.arrays), when the caller has them."""
    if arrays is None:
        arrays = SeriesArrays.of(series)
    value = _baseline_value(arrays, i, lo)
    return None if value is None else (value, _window(series, arrays, i, lo))


def _window(series: tuple[LabResult, ...], arrays: SeriesArrays, i: int, lo: int) -> tuple[LabResult, ...]:
    """The results dated in the 12 months before series[i], from index lo on (in series order)."""
    days = arrays.days
    on = days[i]
    start = on - BASELINE_WINDOW_DAYS
    if arrays.ascending:  # the window is a contiguous slice
        a = bisect_left(days, start, lo, i)
        return series[a:bisect_left(days, on, a, i)]
    return tuple([series[j] for j in range(lo, i) if start <= days[j] < on])


def _baseline_value(arrays: SeriesArrays, i: int, lo: int) -> float | None:
    """_baseline's median alone, from the series' arrays: the walk needs the window's results only
    for the run it ends with, so it builds them once (_window) instead of once per value."""
    days, values = arrays.days, arrays.values
    on = days[i]
    start = on - BASELINE_WINDOW_DAYS
    if arrays.ascending:  # the window is a contiguous slice: two bisections instead of a scan
        a = bisect_left(days, start, lo, i)
        window = list(values[a:bisect_left(days, on, a, i)])
    else:
        window = [values[j] for j in range(lo, i) if start <= days[j] < on]
    if len(window) < BASELINE_MIN_VALUES:
        return None
    value = float(_median(window))
    return value if value > 0 else None


def _median(values: list[float]) -> float:
    """statistics.median, without its generality (it runs for every value of two series per assess)."""
    values.sort()
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


# clinical order is by instant: local dates can run a day backwards across time-zone offsets
_ORDER_SLACK_DAYS = 2


def _current_run(series: tuple[LabResult, ...], meets: Callable[[LabResult, float], bool],
                 arrays: SeriesArrays | None = None) -> _Run | None:
    """Walk the series once; a run's later values are judged against the run's first baseline.

    `arrays`: the series' SeriesArrays (Timeline.arrays), when the caller has them."""
    if arrays is None:
        arrays = SeriesArrays.of(series)
    days = arrays.days
    first: LabResult | None = None  # the current run, kept as its parts (a _Run is built at the end)
    latest: LabResult | None = None
    baseline: float | None = None
    run_at = run_lo = 0  # where the run's baseline window was taken (its results are built at the end)
    lo = 0
    for i, x in enumerate(series):
        if baseline is not None and meets(x, baseline):
            latest = x
            continue
        baseline = None
        # values older than the window (with slack for offsets) are never needed again
        oldest = days[i] - BASELINE_WINDOW_DAYS - _ORDER_SLACK_DAYS
        while lo < i and days[lo] < oldest:
            lo += 1
        found = _baseline_value(arrays, i, lo)
        if found is not None and meets(x, found):
            first = latest = x
            baseline, run_at, run_lo = found, i, lo
    if baseline is None or first is None or latest is None:
        return None
    return _Run(first, latest, baseline, _window(series, arrays, run_at, run_lo))


def _pct(value: float, baseline: float, sign: int) -> float:
    return round(sign * (value - baseline) / baseline * 100.0, _PCT_DIGITS)


# round() is monotonic, so a percentage this far from a threshold is on the same side of it whether
# rounded or not (_PCT_DIGITS rounding moves it by at most 5e-7)
_ROUNDING_MARGIN = 1e-4


def _pct_reaches(value: float, baseline: float, sign: int, threshold: float, strictly: bool) -> bool:
    """_pct(value, baseline, sign) >= threshold (> when strictly), rounding only near the threshold:
    the predicates below run for every value of two series per assess(), and round() was a third of
    their cost."""
    raw = sign * (value - baseline) / baseline * 100.0  # _pct before rounding
    if raw > threshold + _ROUNDING_MARGIN:
        return True
    if raw < threshold - _ROUNDING_MARGIN:
        return False
    pct = round(raw, _PCT_DIGITS)
    return pct > threshold if strictly else pct >= threshold


def _egfr_declined(r: LabResult, baseline: float) -> bool:
    if may_be_higher(r):
        return False  # ">60" may be no decline at all
    return _pct_reaches(r.value, baseline, -1, EGFR_DECLINE_WARNING_PCT, strictly=False)


def _creatinine_rose(r: LabResult, baseline: float) -> bool:
    if may_be_lower(r):
        return False  # "<50" may be no rise at all
    return _pct_reaches(r.value, baseline, +1, CREATININE_RISE_ON_CNI_PCT, strictly=True)


_CNI_ORDER = tuple(sorted(CALCINEURIN_INHIBITORS))


def _cni_course(ctx: RuleContext, on: date) -> MedicationEvent | None:
    """The calcineurin-inhibitor course active on `on` and still active at as_of, if any."""
    for drug in _CNI_ORDER:
        course = active(ctx.timeline, drug, on)
        if course is not None and active(ctx.timeline, drug, ctx.as_of) is not None:
            return course
    return None


def _creatinine_rise_on_cni(ctx: RuleContext) -> tuple[_Run, MedicationEvent] | None:
    """The current creatinine rise and the CNI course it was drawn on, if the course is still active
    at as_of (a creatinine rise alone fires only on a calcineurin inhibitor)."""
    if all(active(ctx.timeline, drug, ctx.as_of) is None for drug in _CNI_ORDER):
        return None  # no CNI at as_of: _cni_course is None whatever the run, so the walk is skipped
    creatinine = ctx.timeline.series(CREATININE)
    run = _current_run(creatinine, _creatinine_rose, ctx.timeline.arrays(creatinine))
    course = _cni_course(ctx, run.latest.effective_date) if run else None
    return (run, course) if run is not None and course is not None else None


def _span(values: tuple[LabResult, ...]) -> str:
    return (f"median of {len(values)} values from {values[0].effective_date.isoformat()} to "
            f"{values[-1].effective_date.isoformat()}")


class _Evidence:
    """Evidence items in order, each stored result once."""

    def __init__(self) -> None:
        self.items: list[Evidence] = []
        self._seen: set[str] = set()

    def lab(self, r: LabResult, note: str) -> None:
        if r.identity not in self._seen:
            self._seen.add(r.identity)
            self.items.append(Evidence.of_lab(r, note=note))

    def add(self, e: Evidence) -> None:
        self.items.append(e)


def _creatinine_of(ctx: RuleContext, egfr: LabResult) -> LabResult | None:
    """The creatinine a computed eGFR came from (egfr_series stores its identity as source_id)."""
    if egfr.source != DERIVED_SOURCE:
        return None
    return next((c for c in ctx.timeline.series(CREATININE) if c.identity == egfr.source_id), None)


def _egfr_lab(ctx: RuleContext, ev: _Evidence, r: LabResult, role: str) -> None:
    creatinine = _creatinine_of(ctx, r)
    if creatinine is None:
        ev.lab(r, role)
        return
    ev.lab(r, f"{role}; computed by CKD-EPI 2021 from serum creatinine")
    ev.lab(creatinine, f"creatinine behind the computed eGFR of {r.effective_date.isoformat()}")


def _baseline_text(run: _Run, latest: LabResult) -> str:
    """The baseline (a median) at the precision of the values it is the median of."""
    return f"{value_text(run.baseline, latest.analyte, latest.unit)} {unit_label(latest.unit)}"


def _egfr_part(ctx: RuleContext, run: _Run, ev: _Evidence) -> str:
    latest, pct = run.latest, run.change_pct(-1)
    for r in run.baseline_values:
        _egfr_lab(ctx, ev, r, "baseline")
    if run.first.identity != latest.identity:
        _egfr_lab(ctx, ev, run.first, "first value of this decline")
    _egfr_lab(ctx, ev, latest, "latest")
    ev.add(Evidence.derived("egfr_baseline", run.baseline, latest.unit, latest.effective_date,
                            _span(run.baseline_values)))
    ev.add(Evidence.derived("egfr_decline_pct", pct, "%", latest.effective_date,
                            f"latest eGFR vs baseline (warning >= {EGFR_DECLINE_WARNING_PCT:g}%, "
                            f"critical >= {EGFR_DECLINE_CRITICAL_PCT:g}%)"))
    computed = _creatinine_of(ctx, latest)
    how = (f" (computed by CKD-EPI 2021 from serum creatinine {shown(computed)})" if computed else "")
    since = (f" eGFR has been this far below baseline since {run.first.effective_date.isoformat()}."
             if run.first.identity != latest.identity else "")
    shown_pct = num(pct, 0, (EGFR_DECLINE_WARNING_PCT, EGFR_DECLINE_CRITICAL_PCT))
    # the latest value stays on its side of the baseline's 25% and 40% marks, as the percentage does
    marks = (run.baseline * (1 - EGFR_DECLINE_WARNING_PCT / 100),
             run.baseline * (1 - EGFR_DECLINE_CRITICAL_PCT / 100))
    return (f"eGFR {shown(latest, *marks)} on {latest.effective_date.isoformat()}{how} is {shown_pct}% below "
            f"the baseline of {_baseline_text(run, latest)} ({_span(run.baseline_values)}).{since}")


def _creatinine_part(run: _Run, course: MedicationEvent, ev: _Evidence) -> str:
    latest, pct = run.latest, run.change_pct(+1)
    for r in run.baseline_values:
        ev.lab(r, "creatinine baseline")
    if run.first.identity != latest.identity:
        ev.lab(run.first, "first creatinine of this rise")
    ev.lab(latest, "latest creatinine")
    ev.add(Evidence.derived("creatinine_baseline", run.baseline, latest.unit, latest.effective_date,
                            _span(run.baseline_values)))
    ev.add(Evidence.derived("creatinine_rise_pct", pct, "%", latest.effective_date,
                            f"latest creatinine vs baseline (fires > {CREATININE_RISE_ON_CNI_PCT:g}% "
                            f"on a CNI)"))
    mark = run.baseline * (1 + CREATININE_RISE_ON_CNI_PCT / 100)
    return (f"Serum creatinine {shown(latest, mark)} on {latest.effective_date.isoformat()} is "
            f"{num(pct, 0, (CREATININE_RISE_ON_CNI_PCT,))}% "
            f"above its baseline of {_baseline_text(run, latest)} ({_span(run.baseline_values)}) "
            f"during the {course.drug} course started {course.start.isoformat()}.")


def _cni_advice(course: MedicationEvent) -> str:
    return (f"On {course.drug}, calcineurin-inhibitor nephrotoxicity is a possible cause if the change is "
            f"not otherwise explained: a {course.drug} trough level is advised (KDIGO 2012: check CNI "
            f"levels on an unexplained creatinine rise > {CREATININE_RISE_ON_CNI_PCT:g}%).")


def _why(severity: Severity, has_egfr: bool) -> str:
    if not has_egfr:
        return ""
    if severity == "critical":
        return (f" A fall of {EGFR_DECLINE_CRITICAL_PCT:g}% or more is a major loss of kidney function "
                f"and, unless otherwise explained, marks a very high risk of progression (KDIGO 2021).")
    return (f" A fall of {EGFR_DECLINE_WARNING_PCT:g}% or more that is not otherwise explained marks a high "
            f"risk of progression (KDIGO 2021); consider excluding reversible causes (volume depletion, "
            f"drugs, obstruction, renal vein thrombosis).")


def _decline(ctx: RuleContext) -> tuple[_Run | None, tuple[_Run, MedicationEvent] | None]:
    """The current eGFR decline run and the creatinine rise on a CNI, each None when absent."""
    return _current_run(ctx.egfr, _egfr_declined, ctx.timeline.arrays(ctx.egfr)), _creatinine_rise_on_cni(ctx)


def declining(ctx: RuleContext) -> bool:
    """Whether this rule finds a decline on `ctx` (what titer_falling_supportive asks: "no
    egfr_decline"), decided by the same walk as evaluate() without building the message."""
    egfr_run, rise = _decline(ctx)
    return egfr_run is not None or rise is not None


def evaluate(ctx: RuleContext) -> list[Finding]:
    egfr_run, rise = _decline(ctx)
    creatinine_run, course = rise if rise is not None else (None, None)
    if egfr_run is None and creatinine_run is None:
        return []

    severity: Severity = "warning"
    if egfr_run is not None and egfr_run.change_pct(-1) >= EGFR_DECLINE_CRITICAL_PCT:
        severity = "critical"
    ev = _Evidence()
    parts: list[str] = []
    if egfr_run is not None:
        parts.append(_egfr_part(ctx, egfr_run, ev))
    if creatinine_run is not None and course is not None:
        parts.append(_creatinine_part(creatinine_run, course, ev))
    message = " ".join(parts) + _why(severity, egfr_run is not None)
    cni = course or (_cni_course(ctx, egfr_run.latest.effective_date) if egfr_run else None)
    if cni is not None:
        message += " " + _cni_advice(cni)
        ev.add(Evidence.of_medication(cni))
    starts = [r.first.effective_date for r in (egfr_run, creatinine_run) if r is not None]
    # one alert for both conditions: the earliest current run names the episode
    episode = min(starts).isoformat()
    return [ctx.finding(RULE_ID, episode, severity, message, ev.items, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """The next boundary (monitor.validity): the creatinine criterion and the CNI advice need a
    calcineurin inhibitor active at as_of, so the finding may change the day an active record stops.
    The baselines are windows before each result's own date: only a new result moves them."""
    return active_stops(ctx.timeline, _CNI_ORDER, ctx.as_of)
