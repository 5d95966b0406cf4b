"""Small pure helpers over result series: titer class, immunological state, percent change, trailing
minimum, log-linear slope and halving time. No thresholds of rules live here except the anti-PLA2R
classes.

anti-PLA2R classes (Euroimmun ELISA, RU/mL; docs/clinical-rules.md "Series the rules read" and
"Immunological state"): negative < 14 (KDIGO21 uses < 14 RU/mL as immunological remission; Mayo Clinic
Laboratories PLA2M reference values), borderline 14-19.9, positive >= 20 (the manufacturer's
cut-off), and complete immunological remission < 2 RU/mL (KDIGO21; the assay's lower reporting
limit). These cut-offs are defined here once; the rules that read the titer (immunological_relapse,
titer_rising, relapse, rtx_non_response, monitoring_overdue), the risk category's display and the
patient summary import them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, Sequence

from monitor.events import LabResult

# KDIGO21 / Euroimmun ELISA (Mayo PLA2M reference values): < 14 RU/mL negative = immunological remission
ANTI_PLA2R_NEGATIVE_BELOW_RU_ML = 14.0
# Euroimmun ELISA manufacturer's cut-off (Mayo PLA2M): >= 20 RU/mL positive; 14-19.9 borderline
ANTI_PLA2R_POSITIVE_FROM_RU_ML = 20.0
# KDIGO21: complete immunological remission = anti-PLA2R < 2 RU/mL (the ELISA's lower reporting limit)
ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML = 2.0
SLOPE_PERIOD_DAYS = 30  # slopes are reported per 30 days (about a month)

TiterClass = Literal["negative", "borderline", "positive"]
ImmunologicalStateName = Literal["positive", "borderline", "negative", "complete immunological remission"]


def titer_class(value_ru_ml: float) -> TiterClass:
    """anti-PLA2R class of a value in RU/mL: negative < 14, borderline 14-19.9, positive >= 20."""
    if value_ru_ml < ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:
        return "negative"
    if value_ru_ml < ANTI_PLA2R_POSITIVE_FROM_RU_ML:
        return "borderline"
    return "positive"


def immunological_class(value_ru_ml: float, comparator: str | None = None) -> ImmunologicalStateName | None:
    """The immunological state a titer shows: positive >= 20, borderline 14-19.9, negative < 14,
    complete immunological remission < 2 RU/mL; None when a censored result ("<50", ">10") allows
    values of two states, so that no state is claimed that the result does not show."""
    v = value_ru_ml
    if comparator is None:
        if v < ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML:
            return "complete immunological remission"
        return titer_class(v)
    if comparator in ("<", "<="):
        # every value allowed lies below v ("<") or at most at v ("<=")
        def below(limit: float) -> bool:
            return v <= limit if comparator == "<" else v < limit
        if below(ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML):
            return "complete immunological remission"
        return "negative" if below(ANTI_PLA2R_NEGATIVE_BELOW_RU_ML) else None
    # ">" / ">=": every value allowed lies above v (or at v)
    at_least_positive = v >= ANTI_PLA2R_POSITIVE_FROM_RU_ML
    return "positive" if at_least_positive else None


@dataclass(frozen=True)
class ImmunologicalState:
    """The patient's immunological state: the class of the latest anti-PLA2R titer, with its date."""

    state: ImmunologicalStateName | None  # None: the latest result is censored across two states
    titer: LabResult

    def as_dict(self) -> dict[str, Any]:
        t = self.titer
        return {"state": self.state or "indeterminate", "value": t.value, "comparator": t.comparator,
                "unit": t.unit, "effective_at": t.effective_at.isoformat(),
                "date": t.effective_date.isoformat()}


def immunological_state(titers: Sequence[LabResult]) -> ImmunologicalState | None:
    """The state shown by the latest titer of the series (None without any titer)."""
    if not titers:
        return None
    latest = titers[-1]
    return ImmunologicalState(immunological_class(latest.value, latest.comparator), latest)


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
