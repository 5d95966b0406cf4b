"""Per-course outcomes: what happened after each treatment course started (the outcome report's rows).

For every course of monitor.courses (and the supportive-care phase) as of a date: whether and when
remission followed, whether it relapsed, whether and when the anti-PLA2R titer became negative, and
how long each was observable. Pure; the nightly assessment stores these in the patient's summary
(so the clinic report reads them instead of rebuilding every timeline) and the report aggregates them
(monitor.outcome_report).

Definitions (docs/outcome-report.md says the same in prose):
- Time zero: the course's start (monitor.courses); for supportive care, the first proteinuria result.
- Evaluable for remission: nephrotic-range proteinuria at baseline (>= 3.5 g/d: the trials compared
  enrolled nephrotic patients only; MENTOR >= 5, GEMRITUX, RI-CYCLO >= 3.5 g/d) and not in remission
  (PR/CR) at time zero. Baseline = the latest proteinuria in the 90 days up to time zero, else the
  first in the 14 days after it.
- Remission: the first partial or complete remission *confirmed* after time zero, exactly as
  monitor.remission decides it (KDIGO 2021: PR < 3.5 g/d and >= 50 % below the episode's peak, CR
  < 0.3 g/d, each confirmed by two values >= 7 days apart, with stable eGFR). Its date is the
  confirmation date.
- Censoring: follow-up of a course ends at the earliest of the start of the next immunosuppressive
  course (a switch or an add-on: what follows belongs to that course), the last proteinuria result
  (remission cannot be observed without one) and as_of. Courses starting on the same day are a
  combination: each regimen is credited with the outcome.
- Relapse after remission: the first *confirmed* relapse (proteinuria > 3.5 g/d again, KDIGO21)
  after the course's remission; dated at its first value; time measured from the remission; follow-up
  censored as above.
- Immunological remission: for courses starting with anti-PLA2R >= 14 RU/mL (the baseline titer,
  chosen like the proteinuria baseline), the first titer below 14 RU/mL after time zero (a '<2'
  counts); follow-up ends at the next course, the last titer, or as_of.
- Exposure for alerts: from time zero to the next course or as_of (alerts need no result to be
  raised: monitoring_overdue is raised precisely when results stop).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from typing import Any

from monitor.courses import SUPPORTIVE, supportive_phase, treatment_courses
from monitor.events import LabResult
from monitor.remission import NEPHROTIC_G_PER_DAY, RemissionHistory
from monitor.timeline import SeriesArrays, Timeline
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML

BASELINE_LOOKBACK_DAYS = 90  # as rtx_non_response's baseline window, widened to a quarter's visit
BASELINE_GRACE_DAYS = 14  # a baseline drawn in the first two weeks still precedes any effect
# the trials enrolled nephrotic patients only (MENTOR >= 5 g/d; GEMRITUX, RI-CYCLO >= 3.5 g/d)
EVALUABLE_FROM_G_PER_DAY = NEPHROTIC_G_PER_DAY


@dataclass(frozen=True)
class CourseOutcome:
    regimen: str
    start: date  # time zero
    line: int  # 1 = the patient's first immunosuppressive course; 0 = supportive care
    agents: tuple[str, ...]
    exposure_end: date  # next course or as_of: the window alerts are counted in
    baseline_g_per_day: float | None
    excluded: str | None  # why the course is not evaluable for remission (None: evaluable)
    follow_up_end: date  # remission observable until (censoring date)
    remission: date | None  # first PR/CR confirmed after time zero, within follow-up
    remission_kind: str | None
    complete_remission: date | None
    relapse: date | None  # first confirmed relapse after that remission, within follow-up
    relapse_follow_up_end: date | None
    baseline_titer: float | None
    titer_follow_up_end: date | None
    immunological_remission: date | None

    @property
    def evaluable(self) -> bool:
        return self.excluded is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "regimen": self.regimen, "start": self.start.isoformat(), "line": self.line,
            "agents": list(self.agents), "exposure_end": self.exposure_end.isoformat(),
            "baseline_g_per_day": self.baseline_g_per_day, "excluded": self.excluded,
            "follow_up_end": self.follow_up_end.isoformat(), "remission": _iso(self.remission),
            "remission_kind": self.remission_kind, "complete_remission": _iso(self.complete_remission),
            "relapse": _iso(self.relapse), "relapse_follow_up_end": _iso(self.relapse_follow_up_end),
            "baseline_anti_pla2r": self.baseline_titer, "titer_follow_up_end": _iso(self.titer_follow_up_end),
            "immunological_remission": _iso(self.immunological_remission),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CourseOutcome:
        return cls(
            regimen=d["regimen"], start=date.fromisoformat(d["start"]), line=int(d["line"]),
            agents=tuple(d.get("agents") or ()), exposure_end=date.fromisoformat(d["exposure_end"]),
            baseline_g_per_day=d.get("baseline_g_per_day"), excluded=d.get("excluded"),
            follow_up_end=date.fromisoformat(d["follow_up_end"]), remission=_day(d.get("remission")),
            remission_kind=d.get("remission_kind"), complete_remission=_day(d.get("complete_remission")),
            relapse=_day(d.get("relapse")), relapse_follow_up_end=_day(d.get("relapse_follow_up_end")),
            baseline_titer=d.get("baseline_anti_pla2r"), titer_follow_up_end=_day(d.get("titer_follow_up_end")),
            immunological_remission=_day(d.get("immunological_remission")),
        )


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _day(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _baseline(series: tuple[LabResult, ...], arrays: SeriesArrays, start: date) -> LabResult | None:
    """The latest value in the 90 days up to `start`, else the first in the 14 days after it."""
    day = start.toordinal()
    i = arrays.last_in(day - BASELINE_LOOKBACK_DAYS, day)
    if i < 0:
        i = arrays.first_in(day + 1, day + BASELINE_GRACE_DAYS)
    return series[i] if i >= 0 else None


def _below_negative(r: LabResult) -> bool:
    """Certainly below 14 RU/mL ('<2' is; '>10' is not)."""
    if r.comparator in (">", ">="):
        return False
    limit = ANTI_PLA2R_NEGATIVE_BELOW_RU_ML
    return r.value <= limit if r.comparator == "<" else r.value < limit


def in_remission_on(history: RemissionHistory, day: date) -> bool:
    """Whether a remission confirmed by `day` was still in force on it: no relapse (confirmed or still
    possible, i.e. a value > 3.5 g/d not yet shown to be a single one) had begun since by that day."""
    last = None
    for r in history.remissions:
        if r.confirmed_at <= day:
            last = r
    if last is None:
        return False
    return not any(last.confirmed_at < rel.first.effective_date <= day
                   and (rel.ended_at is None or rel.ended_at > day) for rel in history.relapses)


def course_outcomes(timeline: Timeline, as_of: date, proteinuria: tuple[LabResult, ...],
                    history: RemissionHistory) -> tuple[CourseOutcome, ...]:
    """The outcome of every course (and of the supportive-care phase) as of `as_of`.

    `timeline` is already cut at as_of; `proteinuria` and `history` are the ones assess() computed
    (the same remission logic the alerts use)."""
    courses = treatment_courses(timeline, as_of)
    titers = timeline.series("anti_pla2r")
    last_proteinuria = proteinuria[-1].effective_date if proteinuria else None
    last_titer = titers[-1].effective_date if titers else None
    starts = sorted({c.start for c in courses})
    p_arrays, t_arrays = timeline.arrays(proteinuria), timeline.arrays(titers)

    def next_start(after: date) -> date | None:
        return next((s for s in starts if s > after), None)

    out: list[CourseOutcome] = []
    phase = supportive_phase(timeline, as_of, courses)
    spans: list[tuple[str, date, int, tuple[str, ...]]] = []
    if phase is not None:
        spans.append((SUPPORTIVE, phase.start, 0, ()))
    line = {s: i + 1 for i, s in enumerate(starts)}
    spans += [(c.regimen, c.start, line[c.start], c.agents) for c in courses]
    for regimen, start, course_line, agents in spans:
        nxt = next_start(start)
        exposure_end = min(nxt or as_of, as_of)
        follow_up_end = min(d for d in (nxt, last_proteinuria, as_of) if d is not None)
        follow_up_end = max(follow_up_end, start)
        base = _baseline(proteinuria, p_arrays, start)
        excluded = None
        if base is None:
            excluded = "no baseline proteinuria"
        elif base.value < EVALUABLE_FROM_G_PER_DAY:
            excluded = "not nephrotic at baseline"
        elif in_remission_on(history, start):
            excluded = "in remission at start"
        remission = complete = relapse = relapse_end = None
        kind = None
        if excluded is None:
            first = next((r for r in history.remissions if start < r.confirmed_at <= follow_up_end), None)
            if first is not None:
                remission, kind = first.confirmed_at, first.kind
                complete = next((r.confirmed_at for r in history.remissions
                                 if r.kind == "complete" and start < r.confirmed_at <= follow_up_end), None)
                relapse_end = max(min(d for d in (nxt, last_proteinuria, as_of) if d is not None), remission)
                relapse = next((rel.first.effective_date for rel in history.relapses
                                if rel.confirmed_at is not None and rel.first.effective_date > remission
                                and rel.first.effective_date <= relapse_end), None)
        titer = _baseline(titers, t_arrays, start)
        titer_end = imm = None
        if titer is not None and not _below_negative(titer):
            titer_end = max(min(d for d in (nxt, last_titer, as_of) if d is not None), start)
            after = bisect_right(t_arrays.days, start.toordinal()) if t_arrays.ascending else 0
            imm = next((r.effective_date for r in titers[after:]
                        if start < r.effective_date <= titer_end and _below_negative(r)), None)
        out.append(CourseOutcome(
            regimen, start, course_line, agents, exposure_end, base.value if base else None, excluded,
            follow_up_end, remission, kind, complete, relapse, relapse_end,
            titer.value if titer is not None else None, titer_end, imm))
    return tuple(out)



def outcomes_as_of(timeline: Timeline, as_of: date) -> tuple[CourseOutcome, ...]:
    """course_outcomes computed the way assess() computes them, without the rules: for a report on a
    date the stored assessments are not for."""
    from monitor.egfr import egfr_series
    from monitor.remission import remission_history

    known = timeline.until(as_of)
    proteinuria = known.proteinuria()
    return course_outcomes(known, as_of, proteinuria, remission_history(known, proteinuria, egfr_series(known)))
