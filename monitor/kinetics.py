"""Anti-PLA2R kinetics: how fast the titer is falling in the current treatment course, and when it is
expected to cross 14 RU/mL (immunological remission) and 2 RU/mL (complete immunological remission).

Why: the titer falls months before proteinuria (seed review; GEMRITUX, RI-CYCLO and MENTOR saw the
immunological response first), so the projected date tells the clinician when to expect remission,
and a projection far later than usual flags a slow course early. Pure: takes as_of, no clock.

Method (titer_kinetics):
- Window: the current treatment course (monitor.courses.current_course; with no immunosuppressive
  course, supportive care from the first titer). The series is the course's baseline titer (the
  latest in the 90 days up to and including its start: the value treatment started from) and every
  titer after the start, up to as_of.
- Peak: the highest value of the series (the first of equal highs); the titer may still rise in
  the first weeks of a course while depletion takes hold. The decline is fitted on the peak and the
  values after it; at least three measured values are needed (MIN_FIT_VALUES). A peak that is the
  latest value means the titer is rising (state `rising`). A single spike above the true peak would
  hide the decline behind it, so the highest earlier value is tried as the start as well, and kept
  when the leave-one-out test below rejects exactly the spike.
- Model: ln(titer) = a + b x days, ordinary least squares. An assay's
  error is multiplicative (a coefficient of variation), so it is additive and roughly normal on the
  log scale, and a first-order (exponential) decline is a straight line there: the t-based
  intervals of OLS are then exact even for three to six values, which is all a course has. Theil-Sen
  or Huber estimators are robust without a rule, but their intervals are asymptotic and meaningless
  at n = 3-6; instead the one outlier this method tolerates is found by leave-one-out:
- Outlier (at most one): with >= 4 values, each value is compared with the line fitted to the others
  (its externally studentised residual, a t statistic with n - 3 degrees of freedom). If the largest
  one is significant at 5 % after a Bonferroni correction for the n tests, that value is left out
  and named (TiterKinetics.outlier). Three values cannot reveal an outlier: said in the message.
- Half-life = ln 2 / -b days, with the 95 % interval from b's t-interval (a monotone transform, so
  the coverage is the slope's). If b's interval reaches 0 the half-life's upper bound is open.
- Crossing of a target T: the date where the fitted line reaches ln T; its 95 % interval is the set
  of dates where the 95 % confidence band of the line contains ln T (Fieller's theorem: the true
  crossing date lies in it with 95 % probability). Open-ended when the decline is not significant.
  Projections further than PROJECTION_HORIZON_DAYS after as_of are not given as dates.
- Censored values ('<2', or 0): the true value is unknown, so they are not fitted (using the limit
  would flatten the slope); they count as evidence that the titer was below the limit on that date,
  so a latest '<2' means both targets are reached. A '>' value (above the assay's range) can be the
  peak but is not fitted either.
States: no_titers, negative (every value below 14: nothing to model), too_few_values, falling,
not_falling (b >= 0, or no clear trend), rising (b's whole interval above 0). Each target is
reached, projected, beyond_horizon or not_projected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
from scipy import special

from monitor.courses import REGIMENS, TreatmentCourse, current_course
from monitor.events import LabResult
from monitor.timeline import Timeline
from monitor.trends import ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML, ANTI_PLA2R_NEGATIVE_BELOW_RU_ML

MIN_FIT_VALUES = 3  # issue 15: at least three titers to fit a decline
CONFIDENCE = 0.95
OUTLIER_ALPHA = 0.05  # family-wise (Bonferroni over the values tested)
BASELINE_LOOKBACK_DAYS = 90  # the course's baseline titer: the latest one in the 90 days up to its start
PROJECTION_HORIZON_DAYS = 730  # a log-linear decline is not extrapolated further than 2 years
# the two crossings projected: KDIGO21 immunological remission < 14 RU/mL, complete < 2 RU/mL
TARGETS: tuple[tuple[str, float], ...] = (
    ("immunological remission", ANTI_PLA2R_NEGATIVE_BELOW_RU_ML),
    ("complete immunological remission", ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML),
)

REGIMEN_NAMES = {k: r.label.split(" (")[0] for k, r in REGIMENS.items()}

State = Literal["no_titers", "negative", "too_few_values", "falling", "not_falling", "rising"]
CrossingState = Literal["reached", "projected", "beyond_horizon", "not_projected"]


@dataclass(frozen=True)
class TiterPoint:
    result: LabResult
    # after_floor: after complete immunological remission (< 2 RU/mL), at the assay's floor: not fitted
    role: Literal["baseline", "before_peak", "fitted", "outlier", "censored", "after_floor"]

    @property
    def day(self) -> date:
        return self.result.effective_date

    @property
    def value(self) -> float:
        return self.result.value

    def shown(self) -> str:
        return f"{self.result.comparator or ''}{self.result.value:g}"


@dataclass(frozen=True)
class Crossing:
    label: str
    target: float  # RU/mL
    state: CrossingState
    on: date | None = None  # reached: the first value of the final run below; projected: the estimate
    earliest: date | None = None  # the 95 % interval (None: open on that side)
    latest: date | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "below_ru_ml": self.target, "state": self.state,
                "date": _iso(self.on), "earliest": _iso(self.earliest), "latest": _iso(self.latest),
                "note": self.note or None}


@dataclass(frozen=True)
class Fit:
    """ln(titer) = intercept + slope x (days since origin), with what its intervals need."""

    origin: date
    slope: float  # per day
    intercept: float
    n: int
    mean_x: float
    sxx: float
    residual_sd: float
    t_crit: float

    def slope_interval(self) -> tuple[float, float]:
        half = self.t_crit * self.residual_sd / math.sqrt(self.sxx)
        return self.slope - half, self.slope + half

    def value_on(self, day: date) -> float:
        return math.exp(self.intercept + self.slope * (day - self.origin).days)

    def band_on(self, day: date) -> tuple[float, float]:
        """The 95 % confidence band of the fitted line (RU/mL) on `day`."""
        x = (day - self.origin).days
        half = self.t_crit * self.residual_sd * math.sqrt(1 / self.n + (x - self.mean_x) ** 2 / self.sxx)
        centre = self.intercept + self.slope * x
        return math.exp(centre - half), math.exp(centre + half)


@dataclass(frozen=True)
class TiterKinetics:
    as_of: date
    state: State
    course: TreatmentCourse | None  # None: supportive care (no immunosuppressive course)
    since: date | None  # the start of the window analysed
    points: tuple[TiterPoint, ...] = ()
    fit: Fit | None = None
    half_life_days: float | None = None
    half_life_interval: tuple[float | None, float | None] = (None, None)
    outlier: TiterPoint | None = None
    crossings: tuple[Crossing, ...] = field(default_factory=tuple)
    message: str = ""

    @property
    def peak(self) -> TiterPoint | None:
        fitted = [p for p in self.points if p.role in ("fitted", "outlier")]
        return fitted[0] if fitted else None

    def crossing(self, target: float) -> Crossing | None:
        return next((c for c in self.crossings if c.target == target), None)

    def as_dict(self) -> dict[str, Any]:
        c = self.course
        low, high = self.half_life_interval
        return {
            "as_of": self.as_of.isoformat(),
            "state": self.state,
            "course": ({"regimen": c.regimen, "start": c.start.isoformat(), "agents": list(c.agents)}
                       if c else None),
            "since": _iso(self.since),
            "values": [{"date": p.day.isoformat(), "value": p.value, "comparator": p.result.comparator,
                        "role": p.role} for p in self.points],
            "fitted_values": sum(1 for p in self.points if p.role == "fitted"),
            "half_life_days": _round(self.half_life_days),
            "half_life_ci_days": [_round(low), _round(high)],
            "slope_per_30_days": _round(self.fit.slope * 30, 4) if self.fit else None,
            "outlier": ({"date": self.outlier.day.isoformat(), "value": self.outlier.value}
                        if self.outlier else None),
            "crossings": [x.as_dict() for x in self.crossings],
            "message": self.message,
        }


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def _measured(r: LabResult) -> bool:
    """A number that can be fitted: no comparator (or '='), and above 0 (a log exists)."""
    return r.comparator in (None, "=") and r.value > 0


def _below(r: LabResult, limit: float) -> bool:
    """Certainly below `limit`: '<2' is below 2 and below 14; '>20' is below nothing; 0 is below all."""
    if r.comparator in (">", ">="):
        return False
    if r.comparator == "<":
        return r.value <= limit
    return r.value < limit


def _window(titers: tuple[LabResult, ...], start: date) -> list[LabResult]:
    """The course's baseline titer (latest in the 90 days up to its start) and every later titer."""
    before = [r for r in titers if start - timedelta(days=BASELINE_LOOKBACK_DAYS) <= r.effective_date <= start]
    return before[-1:] + [r for r in titers if r.effective_date > start]


def titer_kinetics(timeline: Timeline, as_of: date) -> TiterKinetics:
    """The anti-PLA2R decline of the current course as of `as_of` (module docstring)."""
    known = timeline.until(as_of)
    titers = tuple(r for r in known.series("anti_pla2r") if r.effective_date <= as_of)
    course = current_course(known, as_of)
    since = course.start if course else (titers[0].effective_date if titers else None)
    window = _window(titers, since) if since is not None else []
    if since is None or not window:
        return _told(TiterKinetics(as_of, "no_titers", course, since))
    if all(_below(r, ANTI_PLA2R_NEGATIVE_BELOW_RU_ML) for r in window):
        points = tuple(TiterPoint(r, "censored" if not _measured(r) else "before_peak") for r in window)
        return _told(TiterKinetics(as_of, "negative", course, since, points,
                                   crossings=_reached_or_not(window, None)))

    start_i, fit_idx, outlier_i = _fit_set(window)
    roles: list[str] = []
    for i, r in enumerate(window):
        if not _measured(r):
            roles.append("censored")
        elif i == outlier_i:
            roles.append("outlier")
        elif i < start_i:
            roles.append("baseline" if i == 0 and r.effective_date <= since else "before_peak")
        elif i in fit_idx:
            roles.append("fitted")
        else:
            roles.append("after_floor")
    points = tuple(TiterPoint(r, role) for r, role in zip(window, roles))  # type: ignore[arg-type]
    outlier = points[outlier_i] if outlier_i is not None else None
    used = [i for i in fit_idx if i != outlier_i]
    if len(used) < MIN_FIT_VALUES or len({window[i].effective_date for i in used}) < 2:
        # the peak is the latest value (with an earlier, lower one): rising, whatever the count
        rising = fit_idx == [len(window) - 1] and sum(map(_measured, window)) >= 2
        return _told(TiterKinetics(as_of, "rising" if rising else "too_few_values", course, since, points,
                                   outlier=outlier, crossings=_reached_or_not(window, None)), len(used))

    origin = window[used[0]].effective_date
    x = np.array([(window[i].effective_date - origin).days for i in used], dtype=float)
    fit = _ols(x, np.log([window[i].value for i in used]), origin)
    lo, hi = fit.slope_interval()
    half_life: float | None = None
    interval: tuple[float | None, float | None] = (None, None)
    if fit.slope >= 0:
        state: State = "rising" if lo > 0 else "not_falling"
    else:
        state = "falling" if hi < 0 else "not_falling"
        half_life = math.log(2) / -fit.slope
        interval = (math.log(2) / -lo, math.log(2) / -hi if hi < 0 else None)
    crossings = _reached_or_not(window, fit if fit.slope < 0 else None, as_of)
    return _told(TiterKinetics(as_of, state, course, since, points, fit, half_life, interval, outlier, crossings),
                 len(used))


def _fit_set(window: list[LabResult]) -> tuple[int, list[int], int | None]:
    """(index of the first value fitted, indices of the measured values from it on, the outlier's index).

    The decline starts at the highest value. That value may itself be the outlier (a spike): then the
    highest earlier value is tried as the start, and taken if the leave-one-out test rejects exactly
    the spike."""

    def height(i: int) -> float:
        r = window[i]
        return r.value if _measured(r) or r.comparator in (">", ">=") else -1.0

    early = sorted(range(len(window)), key=lambda i: (-height(i), i))
    top = early[0]
    before = [i for i in early[1:] if i < top and _measured(window[i])]
    starts = ([before[0]] if before else []) + [top]
    for start in starts:
        fit_idx = _until_floor(window, [i for i in range(start, len(window)) if _measured(window[i])])
        if len(fit_idx) < MIN_FIT_VALUES:
            continue
        origin = window[fit_idx[0]].effective_date
        x = np.array([(window[i].effective_date - origin).days for i in fit_idx], dtype=float)
        pos = _outlier(x, np.log([window[i].value for i in fit_idx]))
        outlier = fit_idx[pos] if pos is not None else None
        if start != top and outlier != top:
            continue  # the earlier start only stands in for a rejected spike
        return start, fit_idx, outlier
    return top, _until_floor(window, [i for i in range(top, len(window)) if _measured(window[i])]), None


def _until_floor(window: list[LabResult], fit_idx: list[int]) -> list[int]:
    """Drop the values after the first one below 2 RU/mL, unless the titer came back to >= 14 since.

    Below 2 RU/mL (complete immunological remission) the assay reads at its floor: later values are
    noise around the detection limit, and fitting them would turn the decline into a plateau."""
    if not fit_idx:
        return fit_idx
    floor = ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML
    first = next((i for i in range(fit_idx[0], len(window)) if _below(window[i], floor)), None)
    if first is None or any(not _below(r, ANTI_PLA2R_NEGATIVE_BELOW_RU_ML) for r in window[first + 1:]):
        return fit_idx
    return [i for i in fit_idx if i <= first]


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line: what scipy.stats.linregress returns for them,
    without its argument handling, which cost ~100 us a call, and a summary makes up to a dozen calls
    (the leave-one-out test): half of GET /patients/{id}'s CPU (bench/api.py)."""
    mean_x, mean_y = x.mean(), y.mean()
    dx = x - mean_x
    slope = float(dx @ (y - mean_y)) / float(dx @ dx)
    return slope, float(mean_y - slope * mean_x)


def _t_sf(t: float, df: int) -> float:
    """Student's t survival function: scipy.stats.t.sf's own special function, called directly."""
    return float(special.stdtr(df, -t))


def _t_ppf(q: float, df: int) -> float:
    return float(special.stdtrit(df, q))


def _ols(x: np.ndarray, y: np.ndarray, origin: date) -> Fit:
    slope, intercept = _line(x, y)
    n = len(x)
    residuals = y - (intercept + slope * x)
    df = n - 2
    sd = math.sqrt(float(residuals @ residuals) / df) if df > 0 else 0.0
    mean_x = float(x.mean())
    sxx = float(((x - mean_x) ** 2).sum())
    t_crit = _t_ppf(0.5 + CONFIDENCE / 2, df) if df > 0 else math.inf
    return Fit(origin, slope, intercept, n, mean_x, sxx, sd, t_crit)


def _outlier(x: np.ndarray, y: np.ndarray) -> int | None:
    """The index of the one value the others' line rejects (leave-one-out), or None.

    Each value's externally studentised residual: its distance from the line fitted without it, in
    units of that fit's prediction standard error; t-distributed with n - 3 degrees of freedom. The
    first value (the peak the decline starts from) is not a candidate: a decline that slows down
    would otherwise reject its own start. A spike above the true start is handled by _fit_set."""
    n = len(x)
    if n < MIN_FIT_VALUES + 1:
        return None
    scores = np.zeros(n)
    for i in range(1, n):
        keep = np.arange(n) != i
        xs, ys = x[keep], y[keep]
        if len(np.unique(xs)) < 2:
            continue
        slope, intercept = _line(xs, ys)
        resid = ys - (intercept + slope * xs)
        df = n - 3
        s = math.sqrt(float(resid @ resid) / df)
        mean = float(xs.mean())
        se = s * math.sqrt(1 + 1 / (n - 1) + (x[i] - mean) ** 2 / float(((xs - mean) ** 2).sum()))
        gap = float(y[i] - (intercept + slope * x[i]))
        if abs(gap) < 1e-9:
            continue
        scores[i] = math.inf if se == 0 else abs(gap) / se
    worst = int(np.argmax(scores))
    if scores[worst] == 0:
        return None
    p = 2 * _t_sf(float(scores[worst]), n - 3) if math.isfinite(scores[worst]) else 0.0
    return worst if p * n < OUTLIER_ALPHA else None


def _reached_or_not(window: list[LabResult], fit: Fit | None, as_of: date | None = None) -> tuple[Crossing, ...]:
    out = []
    for label, target in TARGETS:
        run = []
        for r in reversed(window):
            if not _below(r, target):
                break
            run.append(r)
        if run:
            out.append(Crossing(label, target, "reached", run[-1].effective_date))
        elif fit is None or as_of is None:
            out.append(Crossing(label, target, "not_projected"))
        else:
            out.append(_projected(label, target, fit, as_of))
    return tuple(out)


def _projected(label: str, target: float, fit: Fit, as_of: date) -> Crossing:
    """Where the fitted line reaches ln(target), with Fieller's 95 % interval (module docstring)."""
    goal = math.log(target)
    x_hat = (goal - fit.intercept) / fit.slope
    horizon = as_of + timedelta(days=PROJECTION_HORIZON_DAYS)
    limit = (horizon - fit.origin).days  # in days since origin: anything later is not given as a date
    # {x : (a + b x - goal)^2 <= g (1/n + (x - mean)^2 / sxx)}, g = t^2 s^2; with u = x - mean:
    # A u^2 + B u + C <= 0, A = b^2 - g/sxx (> 0 iff the slope is significant), B = 2 m b, C = m^2 - g/n
    g = (fit.t_crit * fit.residual_sd) ** 2
    m = fit.intercept + fit.slope * fit.mean_x - goal
    a_, b_, c_ = fit.slope ** 2 - g / fit.sxx, 2 * m * fit.slope, m ** 2 - g / fit.n
    low_x = high_x = None
    if a_ > 0:
        root = math.sqrt(max(b_ * b_ - 4 * a_ * c_, 0.0))
        u1, u2 = sorted(((-b_ - root) / (2 * a_), (-b_ + root) / (2 * a_)))
        low_x, high_x = u1 + fit.mean_x, u2 + fit.mean_x
    note = "" if a_ > 0 else "the decline is not yet clear enough to bound the date"

    def when(x: float | None, rounding: Any) -> date | None:
        return None if x is None or x > limit else fit.origin + timedelta(days=rounding(max(x, -36500)))

    earliest, latest = when(low_x, math.floor), when(high_x, math.ceil)
    if x_hat > limit:
        return Crossing(label, target, "beyond_horizon", None, earliest, None,
                        f"not expected within {PROJECTION_HORIZON_DAYS // 365} years at this rate")
    estimate = fit.origin + timedelta(days=round(x_hat))
    if estimate < as_of and not note:
        note = "the projected date has passed with no value below it yet"
    return Crossing(label, target, "projected", estimate, earliest, latest, note)


def _days(v: float | None) -> str:
    return "not bounded" if v is None else f"{v:.0f}"


def _told(k: TiterKinetics, n_fit: int = 0) -> TiterKinetics:
    """The kinetics with its message: what was found, in plain words, then each target."""
    if k.course is not None:
        where = f"since {REGIMEN_NAMES.get(k.course.regimen, k.course.regimen)} started on {k.course.start}"
    else:
        where = f"on supportive care since {k.since}" if k.since else "on supportive care"
    low, high = k.half_life_interval
    lead = {
        "no_titers": f"No anti-PLA2R result {where}",
        "negative": f"Every anti-PLA2R {where} is below {ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:g} RU/mL: no decline "
                    "to model (PLA2R-negative, or already in immunological remission)",
        "too_few_values": f"Too few anti-PLA2R values to fit a decline {where}: {n_fit} measured from the peak "
                          f"on, {MIN_FIT_VALUES} needed",
        "rising": f"anti-PLA2R rising {where}" + (f" ({n_fit} values fitted)" if k.fit else
                                                    ": the latest value is the highest"),
        "falling": f"anti-PLA2R falling {where}: half-life {k.half_life_days or 0:.0f} days "
                   f"(95% CI {_days(low)}-{_days(high)}), {n_fit} values fitted",
        "not_falling": (f"anti-PLA2R not clearly falling {where}: half-life {k.half_life_days:.0f} days "
                        f"(95% CI {_days(low)}-{_days(high)}), {n_fit} values fitted"
                        if k.half_life_days is not None else f"anti-PLA2R not falling {where} ({n_fit} values fitted)"),
    }[k.state]
    parts = [lead]
    if k.outlier is not None:
        parts.append(f"{k.outlier.shown()} RU/mL on {k.outlier.day} left out as an outlier")
    elif k.fit is not None and n_fit == MIN_FIT_VALUES:
        parts.append("three values cannot reveal an outlier")
    for c in k.crossings:
        what = f"< {c.target:g} RU/mL"
        if c.state == "reached":
            parts.append(f"{what} reached on {c.on}")
        elif c.state == "projected":
            span = f" (95% CI {c.earliest or 'not bounded'} to {c.latest or 'not bounded'})"
            parts.append(f"{what} expected around {c.on}{span}" + (f": {c.note}" if c.note else ""))
        elif c.state == "beyond_horizon":
            parts.append(f"{what} {c.note}")
        elif k.state in ("falling", "not_falling", "rising"):
            parts.append(f"{what} not projected")
    return TiterKinetics(k.as_of, k.state, k.course, k.since, k.points, k.fit, k.half_life_days,
                         k.half_life_interval, k.outlier, k.crossings, "; ".join(parts) + ".")
