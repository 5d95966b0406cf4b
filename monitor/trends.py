"""Small pure helpers over result series: titer class, percent change, trailing minimum, log-linear
slope and halving time. No thresholds of rules live here except the anti-PLA2R classes.

anti-PLA2R classes (Euroimmun ELISA, RU/mL; clinical-rules.md "Series the rules read"): negative < 14
(KDIGO21 uses < 14 RU/mL as immunological remission; Mayo Clinic Laboratories PLA2M reference values),
borderline 14-19.9, positive >= 20 (the manufacturer's cut-off). These two cut-offs are defined here
once; the rules that read the titer (immunological_relapse, titer_rising, relapse, rtx_non_response,
monitoring_overdue) import them.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Literal, Sequence

from monitor.events import LabResult

# KDIGO21 / Euroimmun ELISA (Mayo PLA2M reference values): < 14 RU/mL negative = immunological remission
ANTI_PLA2R_NEGATIVE_BELOW_RU_ML = 14.0
# Euroimmun ELISA manufacturer's cut-off (Mayo PLA2M): >= 20 RU/mL positive; 14-19.9 borderline
ANTI_PLA2R_POSITIVE_FROM_RU_ML = 20.0
SLOPE_PERIOD_DAYS = 30  # slopes are reported per 30 days (about a month)

TiterClass = Literal["negative", "borderline", "positive"]


def titer_class(value_ru_ml: float) -> TiterClass:
    """anti-PLA2R class of a value in RU/mL: negative < 14, borderline 14-19.9, positive >= 20."""
    if value_ru_ml < ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:
        return "negative"
    if value_ru_ml < ANTI_PLA2R_POSITIVE_FROM_RU_ML:
        return "borderline"
    return "positive"


def percent_change(old: float, new: float) -> float | None:
    """(new - old) / old x 100; None when old is 0 (no meaningful relative change)."""
    if old == 0:
        return None
    return (new - old) / abs(old) * 100.0


def trailing_min(series: Sequence[LabResult], end: date, days: int, *,
                 include_end: bool = True) -> LabResult | None:
    """The lowest value dated in [end - days, end] (or [end - days, end) without include_end).

    Ties go to the earliest value, so the evidence points at the first time the low was reached.
    """
    start = end - timedelta(days=days)
    best: LabResult | None = None
    for r in series:
        d = r.effective_date
        if start <= d and (d <= end if include_end else d < end) and (best is None or r.value < best.value):
            best = r
    return best


def log_slope_per_30_days(series: Sequence[LabResult], *, floor: float | None = None) -> float | None:
    """Least-squares slope of ln(value) against time, per 30 days; None with < 2 distinct days.

    A value <= 0 has no logarithm: it is skipped, unless `floor` (> 0, e.g. the assay's detection
    limit) is given, in which case values below it are raised to it. exp(slope) is the fold change
    per 30 days (0.5 = halving every 30 days).
    """
    if floor is not None and floor <= 0:
        raise ValueError("floor must be > 0")
    points = [(r.effective_at.timestamp() / 86400.0, math.log(max(r.value, floor) if floor else r.value))
              for r in series if floor is not None or r.value > 0]
    if len({t for t, _ in points}) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    sxy = sum((t - mean_t) * (y - mean_y) for t, y in points)
    return sxy / sxx * SLOPE_PERIOD_DAYS


def halving_time_days(series: Sequence[LabResult], *, floor: float | None = None) -> float | None:
    """Days for the value to halve on the log-linear fit; None when the series is not falling."""
    slope = log_slope_per_30_days(series, floor=floor)
    if slope is None or slope >= 0:
        return None
    return math.log(2) / (-slope / SLOPE_PERIOD_DAYS)
