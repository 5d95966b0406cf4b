"""Rule `titer_rising`: the anti-PLA2R titer is climbing to a positive level.

Definition (docs/clinical-rules.md): the latest anti-PLA2R is >= 20 RU/mL, and >= 1.5x the lowest value
of the preceding 12 months, and >= 10 RU/mL above it. The window must hold at least one earlier
measurement (so the comparison spans two measurements). Severity warning. Resolves when a later
value no longer meets the condition.

Sources: KDIGO 2021 GN guideline ch.3 (the titer tracks immunological activity; measure it every
3-6 months); seed review (titer changes precede proteinuria by months).

Interpretations:
- "12 months" = 365 days before the latest value's date, inclusive; "preceding" = earlier in the
  series (a same-day earlier result counts).
- The 1.5x and +10 RU/mL limits are inclusive ("≥"); a tiny tolerance absorbs float rounding so that
  exactly 1.5x (e.g. 13.3 -> 19.95) counts.
- "Rising" also needs the latest value to be no lower than the measurement before it: a titer that
  fell since (e.g. after re-treatment, 114.7 -> 41.8 RU/mL) is not rising any more, even while it
  is still >= 1.5x the 12-month low (docs/clinical-rules.md is silent; the rule's name and purpose).
- Episode = date of the first value of the current run of values that each met the condition
  against their own window, so a still-rising titer keeps one alert and a new rise after the
  condition cleared is a new one.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date

from monitor.events import LabResult
from monitor.findings import Evidence, Finding
from monitor.rules._common import num, shown
from monitor.rules.base import RuleContext
from monitor.timeline import SeriesArrays
from monitor.trends import ANTI_PLA2R_POSITIVE_FROM_RU_ML

RULE_ID = "titer_rising"
REFERENCE = ("KDIGO 2021 Clinical Practice Guideline for the Management of Glomerular Diseases, ch.3 "
             "(anti-PLA2R titer tracks disease activity); 2023 review of IMN treatment")

# docs/clinical-rules.md (KDIGO21: titer tracks activity): the latest must be positive, >= 20 RU/mL
RISING_TITER_MIN_RU_ML = ANTI_PLA2R_POSITIVE_FROM_RU_ML
# docs/clinical-rules.md: >= 1.5x the lowest value of the preceding 12 months
RISE_FACTOR = 1.5
# values shown in messages and evidence stay on their side of these (monitor.display)
DISPLAY_LIMITS = {"anti_pla2r_rise_ratio": (RISE_FACTOR,)}
# docs/clinical-rules.md: and >= 10 RU/mL higher (a doubling of a tiny titer is assay noise)
RISE_MIN_RU_ML = 10.0
# docs/clinical-rules.md: preceding 12 months (titers are measured every 3-6 months, KDIGO21)
LOOKBACK_DAYS = 365
_EPS = 1e-9  # float tolerance for the inclusive limits


def _lowest_before(titers: tuple[LabResult, ...], i: int, arrays: SeriesArrays) -> LabResult | None:
    """The lowest value in the 12 months before titers[i] (None when the window is empty); the first
    of equal lows, as min() picks."""
    days, values = arrays.days, arrays.values
    since = days[i] - LOOKBACK_DAYS
    # date ordinals and values from the series' arrays; on ascending days the window starts where a
    # bisection puts it (earlier values are all older), otherwise every earlier value is checked
    lowest = -1
    for j in range(bisect_left(days, since, 0, i) if arrays.ascending else 0, i):
        if days[j] >= since and (lowest < 0 or values[j] < values[lowest]):
            lowest = j
    return titers[lowest] if lowest >= 0 else None


def _rise(titers: tuple[LabResult, ...], i: int, arrays: SeriesArrays) -> LabResult | None:
    """The window's lowest value when titers[i] meets the condition, else None."""
    value = arrays.values[i]
    # the cheap tests first: most titers are below 20 RU/mL or lower than the one before
    if value < RISING_TITER_MIN_RU_ML or i == 0 or value < arrays.values[i - 1]:
        return None
    lowest = _lowest_before(titers, i, arrays)
    if lowest is None:
        return None
    if value + _EPS >= RISE_FACTOR * lowest.value and value - lowest.value + _EPS >= RISE_MIN_RU_ML:
        return lowest
    return None


def _run_start(titers: tuple[LabResult, ...], arrays: SeriesArrays) -> int:
    """Index of the first value of the trailing run that meets the condition (len when none)."""
    i = len(titers)
    while i > 0 and _rise(titers, i - 1, arrays) is not None:
        i -= 1
    return i


def evaluate(ctx: RuleContext) -> list[Finding]:
    titers = ctx.timeline.series("anti_pla2r")
    arrays = ctx.timeline.arrays(titers)
    start = _run_start(titers, arrays)
    if start == len(titers):
        return []
    latest = titers[-1]
    lowest = _rise(titers, len(titers) - 1, arrays)
    assert lowest is not None  # the run is non-empty, so the latest value meets the condition
    ratio = latest.value / lowest.value if lowest.value > 0 else float("inf")
    ratio_text = f"{num(ratio, 1, (RISE_FACTOR,))}x" if lowest.value > 0 else "up from 0"
    rise = num(latest.value - lowest.value, 1, (RISE_MIN_RU_ML,))
    marks = (lowest.value * RISE_FACTOR, lowest.value + RISE_MIN_RU_ML)  # the latest stays beside both
    message = (f"Anti-PLA2R is rising: {shown(latest, *marks)} on {latest.effective_date}, up from "
               f"{shown(lowest)} on {lowest.effective_date} ({ratio_text}, +{rise} RU/mL; lowest value "
               f"of the preceding {LOOKBACK_DAYS} days). A rising titer signals "
               "renewed immunological activity and may precede a rise in proteinuria; a review of "
               "proteinuria and of the treatment plan may be worth considering.")
    evidence = [Evidence.of_lab(lowest, note=f"lowest in the preceding {LOOKBACK_DAYS} days"),
                Evidence.of_lab(latest, note="latest value")]
    if lowest.value > 0:
        evidence.append(Evidence.derived("anti_pla2r_rise_ratio", ratio, "ratio", latest.effective_at,
                                         f"latest / lowest; fires at >= {RISE_FACTOR:g}"))
    return [ctx.finding(RULE_ID, titers[start].effective_date.isoformat(), "warning", message,
                        evidence, REFERENCE)]


def next_change(ctx: RuleContext) -> date | None:
    """No boundary (monitor.validity): the titers' own dates set every window, so only a new titer changes it."""
    return None
