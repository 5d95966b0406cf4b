"""Remission state machine over the proteinuria series (clinical-rules.md, "Remission state").

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
from datetime import date, timedelta
from typing import Literal

from monitor.events import LabResult
from monitor.timeline import Timeline

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


def _span_days(run: list[LabResult]) -> int:
    return (run[-1].effective_date - run[0].effective_date).days if run else 0


def _albumin_normal(timeline: Timeline, on: date) -> bool:
    """KDIGO21 CR needs a normal albumin *when measured*: no recent albumin does not block CR."""
    # the last albumin (in clinical order) dated within the lookback; scanned from the end because
    # this runs for every value of a CR run (it was a full scan per value: quadratic)
    start = on - timedelta(days=ALBUMIN_FOR_CR_LOOKBACK_DAYS)
    # dates in clinical (UTC instant) order can be out of order by a day across time-zone offsets:
    # stop only well before the window
    stop = start - timedelta(days=2)
    for a in reversed(timeline.series("serum_albumin")):
        d = a.effective_date
        if start <= d <= on:
            return a.value >= ALBUMIN_LOWER_NORMAL_G_L
        if d < stop:
            break
    return True


@dataclass
class _Builder:
    """Mutable state of one pass over the series."""

    state: State = "no_data"
    since: date | None = None
    episode_start: date | None = None
    peak: LabResult | None = None
    remitted: Remission | None = None  # the remission in force
    remitted_kind: Literal["partial", "complete"] | None = None  # may fall from complete to partial
    cr_run: list[LabResult] = field(default_factory=list)
    pr_run: list[LabResult] = field(default_factory=list)
    hi_run: list[LabResult] = field(default_factory=list)
    relapse_first: LabResult | None = None
    relapse_after: Remission | None = None
    relapse_confirmed_at: date | None = None
    hi_run_all: list[LabResult] = field(default_factory=list)  # every value > 3.5 of the open relapse
    remissions: list[Remission] = field(default_factory=list)
    relapses: list[Relapse] = field(default_factory=list)

    def enter(self, state: State, on: date) -> None:
        if state != self.state:
            self.state, self.since = state, on

    def close_relapse(self, on: date, by: Literal["remission", "not_confirmed"]) -> None:
        assert self.relapse_first is not None and self.relapse_after is not None
        self.relapses.append(Relapse(self.relapse_first, tuple(self.hi_run_all), self.relapse_after,
                                     self.relapse_confirmed_at, on, by))
        self.relapse_first = self.relapse_after = self.relapse_confirmed_at = None


def _egfr_stable(egfr: tuple[LabResult, ...], episode_start: date | None, on: date) -> bool:
    """No eGFR fall >= 25% from the episode's baseline by `on` (no eGFR data: nothing speaks against)."""
    if not egfr or episode_start is None:
        return True
    earliest = episode_start - timedelta(days=EGFR_BASELINE_LOOKBACK_DAYS)
    before = [e for e in egfr if earliest <= e.effective_date <= episode_start]
    after = [e for e in egfr if episode_start < e.effective_date <= on]
    baseline = before[-1] if before else (after[0] if after else None)
    latest = after[-1] if after else (before[-1] if before else None)
    if baseline is None or latest is None or baseline.value <= 0:
        return True
    return latest.value > baseline.value * (1 - UNSTABLE_EGFR_FALL_FRACTION)


def remission_history(timeline: Timeline, proteinuria: tuple[LabResult, ...] | None = None,
                      egfr: tuple[LabResult, ...] | None = None) -> RemissionHistory:
    """Walk the proteinuria series once and return the state it ends in, with its history.

    `egfr` (reported and computed, monitor.egfr.egfr_series) guards PR/CR: not while kidney
    function falls; without it only reported eGFR values are used.
    """
    series = timeline.proteinuria() if proteinuria is None else proteinuria
    kidney = timeline.series("egfr") if egfr is None else egfr
    b = _Builder()
    for x in series:
        d = x.effective_date
        if b.episode_start is None:
            b.episode_start, b.peak = d, x
        if b.remitted is not None:  # in remission, or an unconfirmed relapse of one
            if _relapse_step(b, x, d):
                continue
        _disease_step(b, timeline, x, d, kidney)

    open_relapse = None
    if b.relapse_first is not None and b.relapse_after is not None:
        open_relapse = Relapse(b.relapse_first, tuple(b.hi_run_all), b.relapse_after,
                               b.relapse_confirmed_at, None, None)
    return RemissionHistory(
        state=b.state, since=b.since, episode_start=b.episode_start, episode_peak=b.peak,
        latest=series[-1] if series else None, remissions=tuple(b.remissions),
        relapses=tuple(b.relapses) + ((open_relapse,) if open_relapse else ()),
    )


def _relapse_step(b: _Builder, x: LabResult, d: date) -> bool:
    """Handle a value while in remission (or during an unconfirmed relapse). True if consumed."""
    if x.value > NEPHROTIC_G_PER_DAY:
        b.hi_run.append(x)
        if b.relapse_first is None:
            b.relapse_first, b.relapse_after, b.hi_run_all = x, b.remitted, []
        b.hi_run_all.append(x)
        if _span_days(b.hi_run) >= CONFIRMATION_DAYS:
            # confirmed: the remission is over and a new disease episode starts at the first value
            b.relapse_confirmed_at = d
            b.remitted = b.remitted_kind = None
            b.episode_start = b.hi_run[0].effective_date
            b.peak = max(b.hi_run, key=lambda r: r.value)
            b.cr_run, b.pr_run, b.hi_run = [], [], []
            b.enter("relapse", d)
        else:
            b.enter("possible_relapse", d)
        return True
    b.hi_run = []
    if b.relapse_first is not None and b.relapse_confirmed_at is None:
        b.close_relapse(d, "not_confirmed")  # one high value, then back down: not a relapse
    return False


def _confirmed(run: list[LabResult]) -> bool:
    """The run spans >= 7 days (a run of one value spans none: skip the date arithmetic)."""
    return len(run) > 1 and _span_days(run) >= CONFIRMATION_DAYS


_REMISSION_STATE: dict[str, State] = {"partial": "partial_remission", "complete": "complete_remission"}


def _disease_step(b: _Builder, timeline: Timeline, x: LabResult, d: date,
                  egfr: tuple[LabResult, ...] = ()) -> None:
    # runs once per proteinuria value of every patient: the value and the peak are read into locals
    assert b.peak is not None
    value = x.value
    if b.remitted is None and value > b.peak.value:
        b.peak = x
    # runs grow in place (copying them at every value was quadratic); a run is never shared, as a
    # Remission keeps only its first and last value
    if value < COMPLETE_REMISSION_G_PER_DAY:
        b.cr_run.append(x)
    else:
        b.cr_run = []
    if value < NEPHROTIC_G_PER_DAY and value <= PARTIAL_REMISSION_FRACTION_OF_PEAK * b.peak.value:
        b.pr_run.append(x)
    else:
        b.pr_run = []
    complete = _confirmed(b.cr_run) and _albumin_normal(timeline, d)

    if b.remitted is None:
        kind: Literal["partial", "complete"] | None = None
        run: list[LabResult] = []
        if complete and _egfr_stable(egfr, b.episode_start, d):
            kind, run = "complete", b.cr_run
        elif _confirmed(b.pr_run) and _egfr_stable(egfr, b.episode_start, d):
            kind, run = "partial", b.pr_run
        if kind is not None:
            b.remitted = Remission(kind, d, (run[0], run[-1]))
            b.remitted_kind = kind
            b.remissions.append(b.remitted)
            if b.relapse_first is not None:
                b.close_relapse(d, "remission")
            b.enter(_REMISSION_STATE[kind], d)
        elif b.relapse_first is not None:
            b.enter("relapse", d)  # a confirmed relapse stays open until a confirmed remission
        else:
            b.enter("nephrotic" if value >= NEPHROTIC_G_PER_DAY else "non_nephrotic", d)
        return

    # in remission and <= 3.5 g/d: upgrade to CR once confirmed, fall back to PR when >= 0.3 g/d
    if b.remitted_kind == "partial" and complete:
        b.remitted = Remission("complete", d, (b.cr_run[0], b.cr_run[-1]))
        b.remitted_kind = "complete"
        b.remissions.append(b.remitted)
    elif b.remitted_kind == "complete" and value >= COMPLETE_REMISSION_G_PER_DAY:
        b.remitted_kind = "partial"
    b.enter(_REMISSION_STATE[b.remitted_kind], d)  # type: ignore[index]
