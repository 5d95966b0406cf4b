"""Remission state machine over the proteinuria series (docs/clinical-rules.md, "Remission state").

KDIGO 2021 (chapter 3, membranous nephropathy):
- complete remission (CR): proteinuria < 0.3 g/d confirmed by two values >= 1 week apart, with a
  normal serum albumin (when measured);
- partial remission (PR): proteinuria < 3.5 g/d and >= 50% below the peak, confirmed the same way;
- relapse: after CR or PR, proteinuria > 3.5 g/d again. One value is a *possible* relapse; a run of
  values > 3.5 spanning >= 7 days confirms it and opens a new disease episode with its own peak.
"Confirmed" = consecutive values all meeting the condition, the first and the last >= 7 days apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from monitor.events import LabResult
from monitor.timeline import SeriesArrays, Timeline

NEPHROTIC_G_PER_DAY = 3.5  # KDIGO21: nephrotic-range proteinuria; PR < 3.5; relapse > 3.5
COMPLETE_REMISSION_G_PER_DAY = 0.3  # KDIGO21: CR < 0.3 g/d (UPCR < 0.3 g/g, < 30 mg/mmol)
PARTIAL_REMISSION_FRACTION_OF_PEAK = 0.5  # KDIGO21: PR needs >= 50% reduction from the peak
CONFIRMATION_DAYS = 7  # KDIGO21: two values at least one week apart
# KDIGO21 CR requires "a normal serum albumin"; 35 g/L is the usual lower reference limit
ALBUMIN_LOWER_NORMAL_G_L = 35.0
ALBUMIN_FOR_CR_LOOKBACK_DAYS = 90  # an albumin older than this says nothing about the remission
# KDIGO21 PR/CR need a stable (CR: normal) serum creatinine: proteinuria that falls while the kidney
# fails is a shrinking filtered load, not a remission (Troyanov, Kidney Int 2004). "Stable" here =
# the eGFR at confirmation has not fallen >= 25% below the episode's baseline (the egfr_decline
# threshold, KDIGO21: a >= 25-30% fall marks progression).
UNSTABLE_EGFR_FALL_FRACTION = 0.25
EGFR_BASELINE_LOOKBACK_DAYS = 90  # the episode's baseline eGFR: the last one up to 90 days before it

State = Literal[
    "no_data", "nephrotic", "non_nephrotic", "partial_remission", "complete_remission",
    "possible_relapse", "relapse",
]
REMISSION_STATES = frozenset({"partial_remission", "complete_remission"})


@dataclass(frozen=True)
class Remission:
    kind: Literal["partial", "complete"]
    confirmed_at: date
    evidence: tuple[LabResult, ...]  # the first and the confirming value of the run


@dataclass(frozen=True)
class Relapse:
    first: LabResult  # the first value > 3.5 g/d after a remission
    values: tuple[LabResult, ...]  # the run of values > 3.5 g/d
    after: Remission  # the remission it ended
    confirmed_at: date | None
    ended_at: date | None  # a later confirmed remission, or the value that showed it unconfirmed
    ended_by: Literal["remission", "not_confirmed"] | None

    @property
    def episode(self) -> str:
        return self.first.effective_date.isoformat()


@dataclass(frozen=True)
class RemissionHistory:
    state: State
    since: date | None
    episode_start: date | None
    episode_peak: LabResult | None
    latest: LabResult | None
    remissions: tuple[Remission, ...] = ()
    relapses: tuple[Relapse, ...] = ()

    @property
    def in_remission(self) -> bool:
        return self.state in REMISSION_STATES

    def remission_confirmed_between(self, start: date, end: date) -> Remission | None:
        for r in self.remissions:
            if start <= r.confirmed_at <= end:
                return r
        return None

    @property
    def open_relapse(self) -> Relapse | None:
        """A relapse not (yet) followed by a confirmed remission nor shown unconfirmed."""
        return self.relapses[-1] if self.relapses and self.relapses[-1].ended_at is None else None


def _albumin_normal(b: "_Builder", on: int) -> bool:
    """KDIGO21 CR needs a normal albumin *when measured*: no recent albumin does not block CR.

    `on` is a date ordinal (see timeline.SeriesArrays)."""
    # the last albumin (in clinical order) dated within the lookback; scanned from the end because
    # this runs for every value of a CR run (it was a full scan per value: quadratic)
    start = on - ALBUMIN_FOR_CR_LOOKBACK_DAYS
    # dates in clinical (UTC instant) order can be out of order by a day across time-zone offsets:
    # stop only well before the window
    stop = start - 2
    albumin = b.albumin
    for value, d in zip(reversed(albumin.values), reversed(albumin.days)):
        if start <= d <= on:
            return value >= ALBUMIN_LOWER_NORMAL_G_L
        if d < stop:
            break
    return True


def _egfr_stable(b: "_Builder", on: int) -> bool:
    """No eGFR fall >= 25% from the episode's baseline by `on` (no eGFR data: nothing speaks against).

    The baseline is the last eGFR in the 90 days up to the episode's start, else the first one after
    it; the latest is the last one after the start up to `on`, else the baseline. One pass over
    ordinals, keeping only the values the definition reads (it built two lists per call)."""
    if not b.egfr:
        return True
    start = b.episode_day
    earliest = start - EGFR_BASELINE_LOOKBACK_DAYS
    before = first_after = last_after = None
    for e, d in zip(b.egfr, b.egfr_days):
        if earliest <= d <= start:
            before = e
        elif start < d <= on:
            if first_after is None:
                first_after = e
            last_after = e
    baseline = before if before is not None else first_after
    latest = last_after if last_after is not None else before
    if baseline is None or latest is None or baseline.value <= 0:
        return True
    return latest.value > baseline.value * (1 - UNSTABLE_EGFR_FALL_FRACTION)


@dataclass(slots=True)
class _Builder:
    """Mutable state of one pass over the series; days are date ordinals (timeline.SeriesArrays).

    Each run of values (cr: consecutive values < 0.3 g/d; pr: meeting the PR condition; hi: values
    > 3.5 g/d in remission) is kept as its first value and that value's day: the walk reads only a
    run's first value, its last one (always the current value) and the days between them. Growing
    and resetting lists per value, and computing dates, was a large share of assess() (this runs for
    the ~60 values of a 5-year series of every patient, every night).
    """

    albumin: SeriesArrays
    egfr: tuple[LabResult, ...]
    egfr_days: tuple[int, ...]
    state: State = "no_data"
    since: date | None = None
    episode_start: date | None = None
    episode_day: int = 0
    peak: LabResult | None = None
    peak_value: float = 0.0  # peak.value, read for every value
    remitted: Remission | None = None  # the remission in force
    remitted_kind: Literal["partial", "complete"] | None = None  # may fall from complete to partial
    cr_first: LabResult | None = None  # first value of the CR run (None: no run)
    cr_day: int = 0
    pr_first: LabResult | None = None
    pr_day: int = 0
    hi_first: LabResult | None = None
    hi_day: int = 0
    hi_peak: LabResult | None = None  # the first highest value of the hi run
    relapse_first: LabResult | None = None
    relapse_after: Remission | None = None
    relapse_confirmed_at: date | None = None
    hi_run_all: list[LabResult] = field(default_factory=list)  # every value > 3.5 of the open relapse
    remissions: list[Remission] = field(default_factory=list)
    relapses: list[Relapse] = field(default_factory=list)

    def enter(self, state: State, x: LabResult) -> None:
        if state != self.state:
            self.state, self.since = state, x.effective_date

    def close_relapse(self, on: date, by: Literal["remission", "not_confirmed"]) -> None:
        assert self.relapse_first is not None and self.relapse_after is not None
        self.relapses.append(Relapse(self.relapse_first, tuple(self.hi_run_all), self.relapse_after,
                                     self.relapse_confirmed_at, on, by))
        self.relapse_first = self.relapse_after = self.relapse_confirmed_at = None


def remission_history(timeline: Timeline, proteinuria: tuple[LabResult, ...] | None = None,
                      egfr: tuple[LabResult, ...] | None = None) -> RemissionHistory:
    """Walk the proteinuria series once and return the state it ends in, with its history.

    `egfr` (reported and computed, monitor.egfr.egfr_series) guards PR/CR: not while kidney
    function falls; without it only reported eGFR values are used.
    """
    series = timeline.proteinuria() if proteinuria is None else proteinuria
    kidney = timeline.series("egfr") if egfr is None else egfr
    b = _Builder(timeline.arrays(timeline.series("serum_albumin")), kidney, timeline.arrays(kidney).days)
    arrays = timeline.arrays(series)
    for x, day, value in zip(series, arrays.days, arrays.values):
        if b.peak is None:  # the first value opens the first episode
            b.episode_start, b.episode_day, b.peak, b.peak_value = x.effective_date, day, x, value
        if b.remitted is not None:  # in remission, or an unconfirmed relapse of one
            if _relapse_step(b, x, day, value):
                continue
        _disease_step(b, x, day, value)

    open_relapse = None
    if b.relapse_first is not None and b.relapse_after is not None:
        open_relapse = Relapse(b.relapse_first, tuple(b.hi_run_all), b.relapse_after,
                               b.relapse_confirmed_at, None, None)
    return RemissionHistory(
        state=b.state, since=b.since, episode_start=b.episode_start, episode_peak=b.peak,
        latest=series[-1] if series else None, remissions=tuple(b.remissions),
        relapses=tuple(b.relapses) + ((open_relapse,) if open_relapse else ()),
    )


def _relapse_step(b: _Builder, x: LabResult, day: int, value: float) -> bool:
    """Handle a value while in remission (or during an unconfirmed relapse). True if consumed."""
    if value > NEPHROTIC_G_PER_DAY:
        if b.hi_first is None:
            b.hi_first, b.hi_day, b.hi_peak = x, day, x
        elif value > b.hi_peak.value:  # type: ignore[union-attr]
            b.hi_peak = x  # strictly higher: the first of equal highs stays (as max() picks)
        if b.relapse_first is None:
            b.relapse_first, b.relapse_after, b.hi_run_all = x, b.remitted, []
        b.hi_run_all.append(x)
        if day - b.hi_day >= CONFIRMATION_DAYS:
            # confirmed: the remission is over and a new disease episode starts at the first value
            assert b.hi_first is not None and b.hi_peak is not None
            b.relapse_confirmed_at = x.effective_date
            b.remitted = b.remitted_kind = None
            b.episode_start, b.episode_day = b.hi_first.effective_date, b.hi_day
            b.peak, b.peak_value = b.hi_peak, b.hi_peak.value
            b.cr_first = b.pr_first = b.hi_first = b.hi_peak = None
            b.enter("relapse", x)
        else:
            b.enter("possible_relapse", x)
        return True
    b.hi_first = b.hi_peak = None
    if b.relapse_first is not None and b.relapse_confirmed_at is None:
        b.close_relapse(x.effective_date, "not_confirmed")  # one high value, then back down: not a relapse
    return False


def _complete(b: _Builder, day: int) -> bool:
    """The CR run ending at the current value spans >= 7 days, with a normal albumin (if measured).

    Evaluated only where the walk reads it (the albumin look-up is not needed in CR already)."""
    return b.cr_first is not None and day - b.cr_day >= CONFIRMATION_DAYS and _albumin_normal(b, day)


_REMISSION_STATE: dict[str, State] = {"partial": "partial_remission", "complete": "complete_remission"}


def _disease_step(b: _Builder, x: LabResult, day: int, value: float) -> None:
    # runs once per proteinuria value of every patient
    if b.remitted is None and value > b.peak_value:
        b.peak, b.peak_value = x, value
    if value >= COMPLETE_REMISSION_G_PER_DAY:
        b.cr_first = None
    elif b.cr_first is None:
        b.cr_first, b.cr_day = x, day
    if value < NEPHROTIC_G_PER_DAY and value <= PARTIAL_REMISSION_FRACTION_OF_PEAK * b.peak_value:
        if b.pr_first is None:
            b.pr_first, b.pr_day = x, day
    else:
        b.pr_first = None

    if b.remitted is None:
        _disease_outcome(b, x, day, value)
        return

    # in remission and <= 3.5 g/d: upgrade to CR once confirmed, fall back to PR when >= 0.3 g/d
    if b.remitted_kind == "partial" and _complete(b, day):
        b.remitted = Remission("complete", x.effective_date, (b.cr_first, x))  # type: ignore[arg-type]
        b.remitted_kind = "complete"
        b.remissions.append(b.remitted)
    elif b.remitted_kind == "complete" and value >= COMPLETE_REMISSION_G_PER_DAY:
        b.remitted_kind = "partial"
    b.enter(_REMISSION_STATE[b.remitted_kind], x)  # type: ignore[index]


def _disease_outcome(b: _Builder, x: LabResult, day: int, value: float) -> None:
    """Not in remission: a confirmed CR or PR (with stable eGFR) starts one, else the disease state."""
    first: LabResult | None = None
    kind: Literal["partial", "complete"] | None = None
    if _complete(b, day) and _egfr_stable(b, day):
        kind, first = "complete", b.cr_first
    elif b.pr_first is not None and day - b.pr_day >= CONFIRMATION_DAYS and _egfr_stable(b, day):
        kind, first = "partial", b.pr_first
    if kind is not None:
        assert first is not None
        b.remitted = Remission(kind, x.effective_date, (first, x))
        b.remitted_kind = kind
        b.remissions.append(b.remitted)
        if b.relapse_first is not None:
            b.close_relapse(x.effective_date, "remission")
        b.enter(_REMISSION_STATE[kind], x)
    elif b.relapse_first is not None:
        b.enter("relapse", x)  # a confirmed relapse stays open until a confirmed remission
    else:
        b.enter("nephrotic" if value >= NEPHROTIC_G_PER_DAY else "non_nephrotic", x)
