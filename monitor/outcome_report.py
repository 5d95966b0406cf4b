"""The clinic outcome report: per regimen, what followed its courses, beside the published figures.

Pure aggregation of per-course outcomes (monitor.outcomes, computed by the nightly assessment) and of
alerts dated on the clinical time axis; no I/O. Survival estimates use lifelines' Kaplan-Meier
estimator (Greenwood variance, log(-log) 95 % intervals), never a hand-written one.

Per regimen (monitor.courses.REGIMENS, in that order; only those the clinic used):
- courses, patients, first-line courses; courses evaluable for remission and why the others are not;
- remission (PR or CR, KDIGO 2021 via monitor.remission) at 6, 12 and 24 months: the Kaplan-Meier
  cumulative incidence 1 - S(t) with its 95 % interval and the number still followed without the
  event at t; not given ("-") when follow-up ended before t without every course having had the
  event; complete remission likewise;
- relapse after remission: relapsed / remitted, and the Kaplan-Meier cumulative relapse 12 and 24
  months after the remission;
- time to immunological remission (anti-PLA2R < 14 RU/mL) for courses starting >= 14: Kaplan-Meier
  median in days with its 95 % interval, and the cumulative share by 6 months (KDIGO21 judges the
  immunological response at 6 months);
- alerts per patient-year: alerts first raised (on the clinical time axis) within the courses'
  exposure windows, divided by the windows' total length in years; all severities, and warning or
  critical only;
- the published figures for the regimen (monitor.published).
A patient with several courses contributes each of them to its regimen (follow-up of one course ends
where the next begins, monitor.outcomes); `patients` counts each patient once per regimen.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from monitor.courses import REGIMENS
from monitor.outcomes import CourseOutcome
from monitor.published import PublishedFigure, published_for
from monitor.severity import SEVERITIES, rank

TIMEPOINTS_MONTHS = (6, 12, 24)
RELAPSE_TIMEPOINTS_MONTHS = (12, 24)
IMMUNOLOGICAL_TIMEPOINT_MONTHS = 6  # KDIGO21: the immunological response is evaluated at 6 months
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25
# alerts counted as serious in the report: warning and above (monitor.severity's order)
SERIOUS = frozenset(s for s in SEVERITIES if rank(s) >= rank("warning"))

CAVEAT = ("Not a randomised trial: this is the clinic's own observational cohort. Patients were not "
          "allocated to regimens at random: differences between regimens reflect who was given them "
          "(severity, anti-PLA2R level, kidney function, earlier treatment, era) as much as how well the "
          "regimens work. Supportive care especially: its follow-up ends when immunosuppression starts, "
          "usually because the patient was not improving, so those left on it are the ones doing well "
          "and its remission figures are biased upwards. The clinic's figures are the share that "
          "reached a first remission by each time (a later relapse is reported separately); trials "
          "mostly report the share in remission at that time, relapses counted out. Each published "
          "figure is its trial's own endpoint in its own enrolled patients: it orients, it does not "
          "benchmark. Small numbers give wide intervals.")

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("course", (
        "one line of treatment with one regimen (see each regimen's definition); supportive care only = "
        "the time from the first proteinuria result to the first immunosuppressive course")),
    ("time zero", (
        "the course's first day of exposure (supportive care: the first proteinuria result)")),
    ("evaluable", (
        "nephrotic-range proteinuria (>= 3.5 g/d) at baseline (latest value in the 90 days up to time "
        "zero, else the first in the 14 days after) and not in remission at time zero")),
    ("remission", (
        "the first partial or complete remission confirmed after time zero by the monitor's KDIGO 2021 "
        "logic (PR < 3.5 g/d and >= 50% below the peak, CR < 0.3 g/d, each confirmed >= 7 days apart, "
        "stable eGFR); dated at its confirmation")),
    ("censoring", (
        "follow-up ends at the next immunosuppressive course (switch or add-on), the last proteinuria "
        "result, or the report date, whichever comes first")),
    ("several regimens", (
        "each course counts for its own regimen; courses starting the same day (a combination) are each "
        "credited with the outcome")),
    ("relapse", (
        "proteinuria > 3.5 g/d again after the remission, confirmed (KDIGO 2021), dated at its first "
        "value; time from the remission")),
    ("immunological remission", (
        "first anti-PLA2R < 14 RU/mL after time zero, for courses starting with >= 14 RU/mL; follow-up "
        "ends at the next course or the last titer")),
    ("alerts per patient-year", (
        "alerts first raised within a course's exposure window (time zero to the next course or the "
        "report date), per year of those windows")),
)


@dataclass(frozen=True)
class Estimate:
    months: float
    percent: float | None  # None: no course followed that long (not estimable)
    low: float | None
    high: float | None
    at_risk: int

    def as_dict(self) -> dict[str, Any]:
        return {"months": self.months, "percent": _r(self.percent), "ci": [_r(self.low), _r(self.high)],
                "at_risk": self.at_risk}


@dataclass(frozen=True)
class Curve:
    """A cumulative-incidence step curve (days, percent) with its 95 % band, for plotting."""

    days: tuple[float, ...]
    percent: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Median:
    days: float | None  # None: not reached (fewer than half reached the event)
    low: float | None
    high: float | None  # None: not bounded

    def as_dict(self) -> dict[str, Any]:
        return {"days": _r(self.days, 0), "ci": [_r(self.low, 0), _r(self.high, 0)]}


@dataclass(frozen=True)
class RegimenOutcome:
    regimen: str
    label: str
    definition: str
    courses: int
    patients: int
    first_line: int
    evaluable: int
    excluded: dict[str, int]
    remissions: int  # evaluable courses with a remission observed
    remission: tuple[Estimate, ...]
    complete_remission: tuple[Estimate, ...]
    remission_curve: Curve | None
    relapsed: int
    relapse: tuple[Estimate, ...]
    titer_positive: int
    immunological_remissions: int
    immunological_median: Median | None
    immunological_at_6_months: Estimate | None
    alerts: int
    serious_alerts: int
    patient_years: float
    published: tuple[PublishedFigure, ...] = field(default_factory=tuple)

    @property
    def alerts_per_patient_year(self) -> float | None:
        return self.alerts / self.patient_years if self.patient_years > 0 else None

    @property
    def serious_alerts_per_patient_year(self) -> float | None:
        return self.serious_alerts / self.patient_years if self.patient_years > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "regimen": self.regimen, "label": self.label, "definition": self.definition,
            "courses": self.courses, "patients": self.patients, "first_line": self.first_line,
            "evaluable": self.evaluable, "excluded": dict(self.excluded), "remissions": self.remissions,
            "remission": [e.as_dict() for e in self.remission],
            "complete_remission": [e.as_dict() for e in self.complete_remission],
            "relapse": {"remitted": self.remissions, "relapsed": self.relapsed,
                        "cumulative": [e.as_dict() for e in self.relapse]},
            "immunological_remission": {
                "positive_at_start": self.titer_positive, "reached": self.immunological_remissions,
                "median": self.immunological_median.as_dict() if self.immunological_median else None,
                "by_6_months": self.immunological_at_6_months.as_dict() if self.immunological_at_6_months else None,
            },
            "alerts": {"count": self.alerts, "warning_or_critical": self.serious_alerts,
                       "patient_years": round(self.patient_years, 1),
                       "per_patient_year": _r(self.alerts_per_patient_year, 2),
                       "warning_or_critical_per_patient_year": _r(self.serious_alerts_per_patient_year, 2)},
            "published": [p.as_dict() for p in self.published],
        }


@dataclass(frozen=True)
class OutcomeReport:
    as_of: date
    patients: int
    courses: int  # immunosuppressive courses (supportive-care phases not counted)
    regimens: tuple[RegimenOutcome, ...]
    unused: tuple[str, ...]  # regimens of the registry no patient received
    sources: dict[str, int] = field(default_factory=dict)  # how the outcomes were gathered

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "patients": self.patients, "courses": self.courses,
                "caveat": CAVEAT, "definitions": dict(DEFINITIONS),
                "regimens": [r.as_dict() for r in self.regimens],
                "not_used": [REGIMENS[k].label for k in self.unused], "gathered": dict(self.sources)}


def _r(v: float | None, digits: int = 1) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


@dataclass(frozen=True)
class AlertMark:
    """One alert on the clinical time axis: the date its condition was first found."""

    patient_id: str
    day: date
    severity: str


def build_report(outcomes: Mapping[str, Sequence[CourseOutcome]], alerts: Iterable[AlertMark], as_of: date,
                 sources: dict[str, int] | None = None) -> OutcomeReport:
    """The report over every patient's course outcomes as of `as_of` (module docstring)."""
    by_regimen: dict[str, list[tuple[str, CourseOutcome]]] = defaultdict(list)
    for pid, rows in outcomes.items():
        for o in rows:
            if o.start <= as_of:
                by_regimen[o.regimen].append((pid, o))
    alert_days: dict[str, list[tuple[date, bool]]] = defaultdict(list)
    for a in alerts:
        if a.day <= as_of:
            alert_days[a.patient_id].append((a.day, a.severity in SERIOUS))
    for v in alert_days.values():
        v.sort()
    regimens = tuple(_regimen(key, by_regimen[key], alert_days, as_of) for key in REGIMENS if by_regimen.get(key))
    unused = tuple(key for key in REGIMENS if not by_regimen.get(key))
    courses = sum(r.courses for r in regimens if r.regimen != "supportive")
    return OutcomeReport(as_of, len(outcomes), courses, regimens, unused, dict(sources or {}))


def _regimen(key: str, rows: list[tuple[str, CourseOutcome]], alert_days: dict[str, list[tuple[date, bool]]],
             as_of: date) -> RegimenOutcome:
    spec = REGIMENS[key]
    evaluable = [o for _, o in rows if o.evaluable]
    excluded: dict[str, int] = defaultdict(int)
    for _, o in rows:
        if o.excluded:
            excluded[o.excluded] += 1
    rem_t = [_event(o.start, o.remission, o.follow_up_end) for o in evaluable]
    cr_t = [_event(o.start, o.complete_remission, o.follow_up_end) for o in evaluable]
    remission_km = _km(rem_t)
    remitted = [o for o in evaluable if o.remission is not None]
    relapse_t = [_event(o.remission, o.relapse, o.relapse_follow_up_end or o.remission)  # type: ignore[arg-type]
                 for o in remitted]
    positive = [o for o in rows if o[1].titer_follow_up_end is not None]
    imm_t = [_event(o.start, o.immunological_remission, o.titer_follow_up_end)  # type: ignore[arg-type]
             for _, o in positive]
    imm_km = _km(imm_t)
    alerts = serious = 0
    days = 0
    for pid, o in rows:
        # the window is [start, next course) or, for the latest course, [start, as_of]
        end = o.exposure_end if o.exposure_end < as_of else as_of + timedelta(days=1)
        marks = alert_days.get(pid, ())
        window = marks[bisect_left(marks, (o.start, False)):bisect_left(marks, (end, False))]
        alerts += len(window)
        serious += sum(1 for _, s in window if s)
        days += max((o.exposure_end - o.start).days, 0)
    return RegimenOutcome(
        regimen=key, label=spec.label, definition=spec.definition, courses=len(rows),
        patients=len({pid for pid, _ in rows}), first_line=sum(1 for _, o in rows if o.line == 1),
        evaluable=len(evaluable), excluded=dict(excluded), remissions=len(remitted),
        remission=_at(remission_km, rem_t, TIMEPOINTS_MONTHS),
        complete_remission=_at(_km(cr_t), cr_t, TIMEPOINTS_MONTHS),
        remission_curve=_curve(remission_km),
        relapsed=sum(1 for o in remitted if o.relapse is not None),
        relapse=_at(_km(relapse_t), relapse_t, RELAPSE_TIMEPOINTS_MONTHS),
        titer_positive=len(positive),
        immunological_remissions=sum(1 for _, o in positive if o.immunological_remission is not None),
        immunological_median=_median(imm_km),
        immunological_at_6_months=(_at(imm_km, imm_t, (IMMUNOLOGICAL_TIMEPOINT_MONTHS,))[0] if positive else None),
        alerts=alerts, serious_alerts=serious, patient_years=days / DAYS_PER_YEAR,
        published=published_for(key),
    )


def _event(start: date, event: date | None, censor: date) -> tuple[float, bool]:
    """(days from start to the event, True) or (days to censoring, False)."""
    if event is not None:
        return float((event - start).days), True
    return float(max((censor - start).days, 0)), False


def _km(times: list[tuple[float, bool]]) -> Any:
    """A fitted lifelines KaplanMeierFitter, or None without data."""
    if not times:
        return None
    from lifelines import KaplanMeierFitter  # heavy import (pandas): only where a report is built

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KaplanMeierFitter().fit([t for t, _ in times], [e for _, e in times])


def _at(km: Any, times: list[tuple[float, bool]], months: Sequence[float]) -> tuple[Estimate, ...]:
    out = []
    longest = max((t for t, _ in times), default=-1.0)
    for m in months:
        day = m * DAYS_PER_MONTH
        at_risk = sum(1 for t, _ in times if t >= day)
        cum = km.cumulative_density_ if km is not None else None
        # beyond the longest follow-up the estimate is known only if every course had the event
        if cum is None or (day > longest and float(cum.iloc[-1, 0]) < 1.0):
            out.append(Estimate(m, None, None, None, at_risk))
            continue
        band = km.confidence_interval_cumulative_density_
        i = cum.index.searchsorted(day, side="right") - 1
        value = float(cum.iloc[i, 0])
        low, high = float(band.iloc[i, 0]), float(band.iloc[i, 1])
        events = sum(1 for t, e in times if e and t <= day)
        if value in (0.0, 1.0) and low == high:
            # Greenwood's variance is 0 when nobody (or everybody) had the event: the log(-log) interval
            # collapses to a point. The estimate is then a plain proportion among the courses whose
            # status at t is known, so the exact (Clopper-Pearson) interval is used instead.
            low, high = _exact(events, events + at_risk)
        out.append(Estimate(m, 100 * value, 100 * low, 100 * high, at_risk))
    return tuple(out)


def _exact(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def _curve(km: Any) -> Curve | None:
    if km is None:
        return None
    cum, band = km.cumulative_density_, km.confidence_interval_cumulative_density_
    return Curve(tuple(float(x) for x in cum.index), tuple(100 * float(v) for v in cum.iloc[:, 0]),
                 tuple(100 * float(v) for v in band.iloc[:, 0]), tuple(100 * float(v) for v in band.iloc[:, 1]))


def _median(km: Any) -> Median | None:
    if km is None:
        return None
    from lifelines.utils import median_survival_times

    med = float(km.median_survival_time_)
    ci = median_survival_times(km.confidence_interval_)
    low, high = float(ci.iloc[0, 0]), float(ci.iloc[0, 1])
    return Median(med if math.isfinite(med) else None, low if math.isfinite(low) else None,
                  high if math.isfinite(high) else None)
