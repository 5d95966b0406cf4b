"""The series-array speed-ups of the engine (issue 7) compute exactly what the plain definitions compute.

Each fast path is compared with the straightforward definition it replaced (kept here as the
reference, as in test_engine_fast_paths.py): Timeline.arrays/SeriesArrays (dates as ordinals,
values, window look-ups), the remission walk over runs kept as (first value, day), egfr_decline's
baselines on arrays, its rounding shortcut and its skipped creatinine walk, the risk look-ups, the
rules' titer and proteinuria scans, drug_run's early return, egfr_series, anti_cd20_courses and
Evidence's one-assignment construction.

Three corpora: the hypothesis timelines of tests/strategies.py; timelines whose results are drawn
near midnight in zones from -12 h to +14 h, so that local dates run backwards in clinical (instant)
order, the one case where the date ordinals of a series do not ascend (the look-ups must then scan
instead of bisecting; the shared strategies keep every result on its UTC date); and the synthetic
cohort (synthetic/), cut at dates every two months.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.analytes import ANALYTES, EGFR_ANALYTES
from monitor.egfr import DERIVED_SOURCE, EGFR_UNIT, age_on, ckd_epi_2021, egfr_series
from monitor.events import ANTI_CD20, LabResult, MedicationEvent, Patient, construct_trusted, parse_event
from monitor.findings import Evidence
from monitor.proteinuria import estimate
from monitor.remission import (
    ALBUMIN_FOR_CR_LOOKBACK_DAYS,
    ALBUMIN_LOWER_NORMAL_G_L,
    COMPLETE_REMISSION_G_PER_DAY,
    CONFIRMATION_DAYS,
    EGFR_BASELINE_LOOKBACK_DAYS,
    NEPHROTIC_G_PER_DAY,
    PARTIAL_REMISSION_FRACTION_OF_PEAK,
    UNSTABLE_EGFR_FALL_FRACTION,
    Relapse,
    Remission,
    RemissionHistory,
    State,
    remission_history,
)
from monitor.risk import (
    ACEI_ARB_BASELINE_GRACE_DAYS,
    ACEI_ARB_BASELINE_LOOKBACK_DAYS,
    RAPID_EGFR_FALL_FRACTION,
    RAPID_EGFR_FALL_WINDOW_DAYS,
    RAS_BLOCKERS,
    SIX_MONTHS_DAYS,
    AceiArbResponse,
    _ras_exposure,
    acei_arb_response,
    rapid_egfr_fall,
)
from monitor.rules import (
    csa_trough_low,
    egfr_decline,
    immunological_relapse,
    relapse,
    rtx_non_response,
    tac_trough_low,
    titer_rising,
)
from monitor.rules._common import DrugRun, current_run, drug_run
from monitor.rules.base import RuleContext
from monitor.therapy import (
    ANTI_CD20_COURSE_GAP_DAYS,
    COURSE_BASELINE_LOOKBACK_DAYS,
    AntiCD20Course,
    _administrations,
    active,
    anti_cd20_courses,
    course_baseline_proteinuria,
)
from monitor.timeline import SeriesArrays, Timeline
from monitor.trends import ANTI_PLA2R_NEGATIVE_BELOW_RU_ML, ANTI_PLA2R_POSITIVE_FROM_RU_ML
from synthetic import generate_cohort
from tests.strategies import timelines

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AS_OF_DAYS = st.dates(date(2019, 1, 1), date(2028, 1, 1))


# ------------------------------------------------------------------------------ corpora

_ZONES = [timezone(timedelta(hours=h)) for h in (-12, -5, 0, 5, 14)]
# canonical-unit values, with the rules' thresholds among them
_VALUES: dict[str, st.SearchStrategy[float]] = {
    "proteinuria_24h": st.sampled_from([0.1, 0.25, 0.3, 0.5, 1.5, 2.0, 3.5, 3.6, 5.0, 8.5, 12.0]),
    "upcr": st.sampled_from([0.1, 0.29, 0.3, 1.0, 3.4, 3.5, 4.0, 9.0]),
    "anti_pla2r": st.sampled_from([2.0, 13.9, 14.0, 19.9, 20.0, 30.0, 51.0, 160.0]),
    "serum_albumin": st.sampled_from([15.0, 19.9, 24.9, 25.0, 34.9, 35.0, 40.0]),
    "serum_creatinine": st.sampled_from([50.0, 70.0, 85.0, 100.0, 121.0, 150.0, 300.0]),
    "egfr": st.sampled_from([20.0, 44.9, 45.0, 59.9, 60.0, 75.0, 80.0, 100.0]),
    "csa_trough": st.sampled_from([60.0, 99.9, 100.0, 150.0, 191.0]),
    "tac_trough": st.sampled_from([2.0, 3.0, 6.0, 11.0]),
    "cd19_count": st.sampled_from([0.0, 4.9, 5.0, 20.0]),
}
_DRUGS = (
    "rituximab",
    "obinutuzumab",
    "cyclosporine",
    "tacrolimus",
    "ace_inhibitor",
    "arb",
    "anticoagulant",
    "glucocorticoid",
)


@st.composite
def zoned_timelines(draw: st.DrawFn, max_labs: int = 45) -> Timeline:
    """Results drawn near midnight in zones -12 h to +14 h: local dates run backwards in clinical order."""
    pid = "P1"
    events: list[Any] = []
    if draw(st.integers(0, 4)):
        events.append(
            Patient(
                patient_id=pid,
                birth_date=draw(st.sampled_from([date(1960, 2, 29), date(1985, 7, 1)])),
                sex=draw(st.sampled_from(["male", "female", "other"])),
            )
        )
    day = draw(st.dates(date(2021, 1, 1), date(2022, 6, 1)))
    first = day
    for k in range(draw(st.integers(0, max_labs))):
        day += timedelta(days=draw(st.sampled_from([0, 1, 1, 1, 2, 8, 30, 60, 120])))
        analyte = draw(
            st.sampled_from([*sorted(_VALUES), *["proteinuria_24h", "upcr"] * 4])
        )  # walks need runs
        when = datetime.combine(
            day, time(draw(st.sampled_from([0, 1, 12, 22, 23])), 30), draw(st.sampled_from(_ZONES))
        )
        comparator = draw(st.sampled_from([None] * 8 + ["<", ">", "<=", ">="]))
        events.append(
            LabResult(
                patient_id=pid,
                analyte=analyte,
                value=draw(_VALUES[analyte]),
                unit=ANALYTES[analyte].canonical_unit,
                effective_at=when,
                comparator=comparator,
                source="lab",
                source_id=f"L{k}",
            )
        )
    for k in range(draw(st.integers(0, 6))):
        start = first + timedelta(days=draw(st.integers(-30, 700)))
        drug = draw(st.sampled_from(_DRUGS))
        frequency = draw(st.sampled_from(["once", "qd", "bid", "qw"]))
        end = draw(st.sampled_from([None, start, start + timedelta(days=200)]))
        events.append(
            MedicationEvent(
                patient_id=pid,
                drug=drug,
                dose=1000,
                unit="mg",
                frequency=frequency,
                start=start,
                end=end,
                source="pharmacy",
                source_id=f"M{k}",
            )
        )
    return Timeline.build(pid, events)


@functools.lru_cache(maxsize=1)
def _cohort() -> tuple[tuple[Timeline, date], ...]:
    """The synthetic cohort (every archetype), each patient cut every two months."""
    by_patient: dict[str, list[Any]] = {}
    for raw in generate_cohort(48, date(2023, 1, 1), 3.0):
        by_patient.setdefault(raw["patient_id"], []).append(parse_event(raw))
    out = []
    for pid, evs in by_patient.items():
        full = Timeline.build(pid, evs)
        for months in range(0, 40, 2):
            as_of = date(2023, 1, 1) + timedelta(days=30 * months)
            out.append((full.until(as_of), as_of))
    return tuple(out)


def _context(t: Timeline, as_of: date) -> RuleContext:
    """A RuleContext built the way assess() builds it (t already cut at as_of)."""
    proteinuria, egfr = t.proteinuria(), egfr_series(t)
    return RuleContext(
        t, as_of, proteinuria, egfr, remission_history(t, proteinuria, egfr), anti_cd20_courses(t, as_of)
    )


# ------------------------------------------------------------------------------ reference definitions


def _ref_arrays(results: tuple[LabResult, ...]) -> tuple[list[int], list[float]]:
    return [r.effective_date.toordinal() for r in results], [r.value for r in results]


def _ref_last_in(days: list[int], lo: int, hi: int) -> int:
    found = [i for i, d in enumerate(days) if lo <= d <= hi]
    return found[-1] if found else -1


def _ref_first_in(days: list[int], lo: int, hi: int) -> int:
    found = [i for i, d in enumerate(days) if lo <= d <= hi]
    return found[0] if found else -1


def _ref_span_days(run: list[LabResult]) -> int:
    return (run[-1].effective_date - run[0].effective_date).days if run else 0


def _ref_albumin_normal(timeline: Timeline, on: date) -> bool:
    window = [
        a
        for a in timeline.series("serum_albumin")
        if on - timedelta(days=ALBUMIN_FOR_CR_LOOKBACK_DAYS) <= a.effective_date <= on
    ]
    return window[-1].value >= ALBUMIN_LOWER_NORMAL_G_L if window else True


def _ref_egfr_stable(egfr: tuple[LabResult, ...], episode_start: date | None, on: date) -> bool:
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


class _RefBuilder:
    """The remission walk's state with every run kept as the list of its values."""

    def __init__(self) -> None:
        self.state: State = "no_data"
        self.since: date | None = None
        self.episode_start: date | None = None
        self.peak: LabResult | None = None
        self.remitted: Remission | None = None
        self.remitted_kind: Any = None
        self.cr_run: list[LabResult] = []
        self.pr_run: list[LabResult] = []
        self.hi_run: list[LabResult] = []
        self.relapse_first: LabResult | None = None
        self.relapse_after: Remission | None = None
        self.relapse_confirmed_at: date | None = None
        self.hi_run_all: list[LabResult] = []
        self.remissions: list[Remission] = []
        self.relapses: list[Relapse] = []

    def enter(self, state: State, on: date) -> None:
        if state != self.state:
            self.state, self.since = state, on

    def close_relapse(self, on: date, by: Any) -> None:
        assert self.relapse_first is not None and self.relapse_after is not None
        self.relapses.append(
            Relapse(
                self.relapse_first,
                tuple(self.hi_run_all),
                self.relapse_after,
                self.relapse_confirmed_at,
                on,
                by,
            )
        )
        self.relapse_first = self.relapse_after = self.relapse_confirmed_at = None


def _ref_confirmed(run: list[LabResult]) -> bool:
    return len(run) > 1 and _ref_span_days(run) >= CONFIRMATION_DAYS


def _ref_relapse_step(b: _RefBuilder, x: LabResult, d: date) -> bool:
    if x.value > NEPHROTIC_G_PER_DAY:
        b.hi_run.append(x)
        if b.relapse_first is None:
            b.relapse_first, b.relapse_after, b.hi_run_all = x, b.remitted, []
        b.hi_run_all.append(x)
        if _ref_span_days(b.hi_run) >= CONFIRMATION_DAYS:
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
        b.close_relapse(d, "not_confirmed")
    return False


_STATE_OF: dict[str, State] = {"partial": "partial_remission", "complete": "complete_remission"}


def _ref_disease_step(
    b: _RefBuilder, timeline: Timeline, x: LabResult, d: date, egfr: tuple[LabResult, ...]
) -> None:
    assert b.peak is not None
    if b.remitted is None and x.value > b.peak.value:
        b.peak = x
    b.cr_run = b.cr_run + [x] if x.value < COMPLETE_REMISSION_G_PER_DAY else []
    b.pr_run = (
        b.pr_run + [x]
        if x.value < NEPHROTIC_G_PER_DAY and x.value <= PARTIAL_REMISSION_FRACTION_OF_PEAK * b.peak.value
        else []
    )
    complete = _ref_confirmed(b.cr_run) and _ref_albumin_normal(timeline, d)
    if b.remitted is None:
        kind, run = None, []
        if complete and _ref_egfr_stable(egfr, b.episode_start, d):
            kind, run = "complete", b.cr_run
        elif _ref_confirmed(b.pr_run) and _ref_egfr_stable(egfr, b.episode_start, d):
            kind, run = "partial", b.pr_run
        if kind is not None:
            b.remitted = Remission(kind, d, (run[0], run[-1]))  # type: ignore[arg-type]
            b.remitted_kind = kind
            b.remissions.append(b.remitted)
            if b.relapse_first is not None:
                b.close_relapse(d, "remission")
            b.enter(_STATE_OF[kind], d)
        elif b.relapse_first is not None:
            b.enter("relapse", d)
        else:
            b.enter("nephrotic" if x.value >= NEPHROTIC_G_PER_DAY else "non_nephrotic", d)
        return
    if b.remitted_kind == "partial" and complete:
        b.remitted = Remission("complete", d, (b.cr_run[0], b.cr_run[-1]))
        b.remitted_kind = "complete"
        b.remissions.append(b.remitted)
    elif b.remitted_kind == "complete" and x.value >= COMPLETE_REMISSION_G_PER_DAY:
        b.remitted_kind = "partial"
    b.enter(_STATE_OF[b.remitted_kind], d)


def _ref_remission_history(
    timeline: Timeline, series: tuple[LabResult, ...], egfr: tuple[LabResult, ...]
) -> RemissionHistory:
    b = _RefBuilder()
    for x in series:
        d = x.effective_date
        if b.episode_start is None:
            b.episode_start, b.peak = d, x
        if b.remitted is not None and _ref_relapse_step(b, x, d):
            continue
        _ref_disease_step(b, timeline, x, d, egfr)
    open_relapse = None
    if b.relapse_first is not None and b.relapse_after is not None:
        open_relapse = Relapse(
            b.relapse_first, tuple(b.hi_run_all), b.relapse_after, b.relapse_confirmed_at, None, None
        )
    return RemissionHistory(
        state=b.state,
        since=b.since,
        episode_start=b.episode_start,
        episode_peak=b.peak,
        latest=series[-1] if series else None,
        remissions=tuple(b.remissions),
        relapses=tuple(b.relapses) + ((open_relapse,) if open_relapse else ()),
    )


def _ref_egfr_series(t: Timeline) -> tuple[LabResult, ...]:
    # one equation: the one whose latest value is the latest, CKD-EPI 2021 (reported or computed)
    # first on a tie, then the catalogue's order of the other equations
    series = [s for s in (_ref_ckd_epi_2021_series(t), *(t.series(k) for k in EGFR_ANALYTES[1:])) if s]
    if not series:
        return ()
    latest = max(s[-1].effective_date for s in series)
    return next(s for s in series if s[-1].effective_date == latest)


def _ref_ckd_epi_2021_series(t: Timeline) -> tuple[LabResult, ...]:
    reported = t.series("egfr")
    p = t.patient
    if p is None or p.birth_date is None or p.sex not in ("male", "female"):
        return reported
    days = {r.effective_date for r in reported}
    low, high = ANALYTES["egfr"].plausible
    computed = []
    for cr in t.series("serum_creatinine"):
        if cr.effective_date in days:
            continue
        value = round(ckd_epi_2021(cr.value, age_on(p.birth_date, cr.effective_date), p.sex), 1)
        if low <= value <= high:
            computed.append(
                construct_trusted(
                    LabResult,
                    {
                        "patient_id": cr.patient_id,
                        "analyte": "egfr",
                        "value": value,
                        "unit": EGFR_UNIT,
                        "effective_at": cr.effective_at,
                        "source": DERIVED_SOURCE,
                        "source_id": cr.identity,
                        "status": cr.status,
                    },
                )
            )
    if not computed:
        return reported
    return tuple(sorted((*reported, *computed), key=lambda r: (r.effective_at, r.identity)))


def _ref_acei_arb_response(
    proteinuria: tuple[LabResult, ...], meds: tuple[MedicationEvent, ...], as_of: date
) -> AceiArbResponse | None:
    exposure = _ras_exposure(meds, as_of)
    if exposure is None:
        return None
    start, end = exposure
    lookback = start - timedelta(days=ACEI_ARB_BASELINE_LOOKBACK_DAYS)
    grace = start + timedelta(days=ACEI_ARB_BASELINE_GRACE_DAYS)
    six_months = start + timedelta(days=SIX_MONTHS_DAYS)
    before = after_start = after = None
    for r in proteinuria:
        d = r.effective_date
        if lookback <= d <= start:
            before = r
        elif start < d <= grace and after_start is None:
            after_start = r
        if six_months <= d <= end:
            after = r
    return AceiArbResponse(start, (end - start).days, before or after_start, after)


def _ref_rapid_egfr_fall(egfr: tuple[LabResult, ...]) -> tuple[LabResult, LabResult] | None:
    if len(egfr) < 2:
        return None
    latest = egfr[-1]
    window = timedelta(days=RAPID_EGFR_FALL_WINDOW_DAYS)
    recent_start = latest.effective_date - window
    candidates = [r for r in egfr if r.effective_date >= recent_start - window]
    worst = None
    for i, b in enumerate(candidates):
        if b.effective_date < recent_start:
            continue
        for a in candidates[:i]:
            if (b.effective_date - a.effective_date) > window or a.value <= 0:
                continue
            limit = (1 - RAPID_EGFR_FALL_FRACTION) * a.value
            if b.value > limit or latest.value > limit:
                continue
            if worst is None or b.value / a.value < worst[1].value / worst[0].value:
                worst = (a, b)
    return worst


def _ref_baseline(series: tuple[LabResult, ...], i: int) -> tuple[float, tuple[LabResult, ...]] | None:
    on = series[i].effective_date
    window = tuple(
        r
        for r in series[:i]
        if on - timedelta(days=egfr_decline.BASELINE_WINDOW_DAYS) <= r.effective_date < on
    )
    if len(window) < egfr_decline.BASELINE_MIN_VALUES:
        return None
    value = float(statistics.median(r.value for r in window))
    return (value, window) if value > 0 else None


def _ref_current_run(series: tuple[LabResult, ...], meets: Callable[[LabResult, float], bool]) -> Any:
    run = None
    for i, x in enumerate(series):
        if run is not None and meets(x, run.baseline):
            run = egfr_decline._Run(run.first, x, run.baseline, run.baseline_values)
            continue
        found = _ref_baseline(series, i)
        run = (
            egfr_decline._Run(x, x, found[0], found[1]) if found is not None and meets(x, found[0]) else None
        )
    return run


def _ref_latest_from(series: tuple[LabResult, ...], since: date) -> LabResult | None:
    judged = [r for r in series if r.effective_date >= since]
    return judged[-1] if judged else None


def _ref_titer_rise(titers: tuple[LabResult, ...], i: int) -> LabResult | None:
    since = titers[i].effective_date - timedelta(days=titer_rising.LOOKBACK_DAYS)
    window = [r for r in titers[:i] if r.effective_date >= since]
    lowest = min(window, key=lambda r: r.value) if window else None
    value = titers[i].value
    if lowest is None or value < titer_rising.RISING_TITER_MIN_RU_ML or value < titers[i - 1].value:
        return None
    eps = titer_rising._EPS
    if (
        value + eps >= titer_rising.RISE_FACTOR * lowest.value
        and value - lowest.value + eps >= titer_rising.RISE_MIN_RU_ML
    ):
        return lowest
    return None


def _ref_open_reappearance(titers: tuple[LabResult, ...], treated_on: date) -> Any:
    negative = opened = None
    for r in titers:
        if r.effective_date <= treated_on:
            continue
        if r.value < ANTI_PLA2R_NEGATIVE_BELOW_RU_ML:
            negative, opened = r, None
        elif r.value >= ANTI_PLA2R_POSITIVE_FROM_RU_ML and negative is not None and opened is None:
            opened = (negative, r)
    return None if opened is None else (opened[0], opened[1], titers[-1])


def _ref_supporting_titer(rel: Relapse, titers: tuple[LabResult, ...]) -> LabResult | None:
    near = [
        t
        for t in titers
        if t.value >= relapse.SUPPORTING_TITER_MIN_RU_ML
        and any(
            abs((t.effective_date - v.effective_date).days) <= relapse.SUPPORTING_TITER_WITHIN_DAYS
            for v in rel.values
        )
    ]
    return near[-1] if near else None


def _ref_drug_run(
    ctx: RuleContext, drug: str, analyte: str, meets: Callable[[LabResult], bool]
) -> DrugRun | None:
    on_now = active(ctx.timeline, drug, ctx.as_of)
    courses = ctx.timeline.drugs(drug)
    run = current_run(
        ctx.timeline.series(analyte),
        lambda r: any(m.active_on(r.effective_date) for m in courses) and meets(r),
    )
    if on_now is None or not run:
        return None
    course = active(ctx.timeline, drug, run[-1].effective_date)
    return None if course is None else DrugRun(run, course, on_now)


def _ref_anti_cd20_courses(t: Timeline, as_of: date) -> tuple[AntiCD20Course, ...]:
    courses = []
    for agent in sorted(ANTI_CD20):
        doses = [d for m in t.drugs(agent) for d in _administrations(m, as_of)]
        doses.sort(key=lambda m: (m.start, m.identity))
        group: list[MedicationEvent] = []
        for dose in doses:
            if group and (dose.start - group[-1].start).days > ANTI_CD20_COURSE_GAP_DAYS:
                courses.append(AntiCD20Course(agent, tuple(group)))
                group = []
            group.append(dose)
        if group:
            courses.append(AntiCD20Course(agent, tuple(group)))
    return tuple(sorted(courses, key=lambda c: (c.first_dose, c.agent)))


# ------------------------------------------------------------------------------ checks, one per fast path


def _check_lookups(arrays: SeriesArrays, days: list[int], extra: tuple[int, ...] = ()) -> None:
    """Every window look-up against a scan: windows around each day of the series, and others."""
    for d in (*days, *extra):
        for a, b in ((d, d), (d - 1, d + 1), (d - 2, d), (d, d + 3), (d - 400, d), (d + 1, d + 900)):
            assert arrays.last_in(a, b) == _ref_last_in(days, a, b)
            assert arrays.first_in(a, b) == _ref_first_in(days, a, b)
            assert arrays.last_from(a) == _ref_last_in(days, a, 10**7)


def check_series_arrays(t: Timeline, as_of: date) -> None:
    for results in (*(t.series(a) for a in ANALYTES), t.proteinuria(), egfr_series(t)):
        arrays = t.arrays(results)
        assert t.arrays(results) is arrays  # memoised
        days, values = _ref_arrays(results)
        assert list(arrays.days) == days and list(arrays.values) == values
        assert arrays.ascending == (days == sorted(days))
        _check_lookups(arrays, days, (as_of.toordinal(), 0, 10**6))


def check_remission_walk(t: Timeline, as_of: date) -> None:
    ctx = _context(t, as_of)
    assert ctx.remission == _ref_remission_history(t, ctx.proteinuria, ctx.egfr)
    assert remission_history(t) == _ref_remission_history(t, t.proteinuria(), t.series("egfr"))


def check_proteinuria_and_egfr_series(t: Timeline, as_of: date) -> None:
    days = {r.effective_date for r in t.series("proteinuria_24h")}
    assert t.proteinuria() == tuple(
        estimate(r)  # a mg/mmol UPCR as its KDIGO estimate (monitor.proteinuria)
        for r in t.labs
        if r.analyte == "proteinuria_24h" or (r.analyte == "upcr" and r.effective_date not in days)
    )
    assert egfr_series(t) == _ref_egfr_series(t)


def check_egfr_decline(t: Timeline, as_of: date) -> None:
    ctx = _context(t, as_of)
    creatinine = t.series(egfr_decline.CREATININE)
    for series, meets in (
        (ctx.egfr, egfr_decline._egfr_declined),
        (creatinine, egfr_decline._creatinine_rose),
    ):
        ref_run = _ref_current_run(series, meets)
        assert egfr_decline._current_run(series, meets, t.arrays(series)) == ref_run
        assert egfr_decline._current_run(series, meets, SeriesArrays(*_scanned_arrays(series))) == ref_run
        for i in range(len(series)):
            assert egfr_decline._baseline(series, i, 0, t.arrays(series)) == _ref_baseline(series, i)
    # the creatinine walk is skipped when no CNI is active at as_of: same outcome as walking it
    run = egfr_decline._current_run(creatinine, egfr_decline._creatinine_rose)
    course = egfr_decline._cni_course(ctx, run.latest.effective_date) if run else None
    assert egfr_decline._creatinine_rise_on_cni(ctx) == ((run, course) if run and course else None)


def _scanned_arrays(results: tuple[LabResult, ...]) -> tuple[tuple[int, ...], tuple[float, ...], bool]:
    """Arrays flagged as not ascending, so that the walk scans where it would bisect."""
    days, values = _ref_arrays(results)
    return tuple(days), tuple(values), False


def check_risk_lookups(t: Timeline, as_of: date) -> None:
    ctx = _context(t, as_of)
    meds = t.drugs(*RAS_BLOCKERS)
    assert meds == tuple(m for m in t.medications if m.drug in RAS_BLOCKERS)
    expected = _ref_acei_arb_response(ctx.proteinuria, meds, as_of)
    assert acei_arb_response(ctx.proteinuria, meds, as_of, t.arrays(ctx.proteinuria)) == expected
    assert acei_arb_response(ctx.proteinuria, meds, as_of) == expected
    assert (
        rapid_egfr_fall(ctx.egfr, t.arrays(ctx.egfr).days)
        == rapid_egfr_fall(ctx.egfr)
        == _ref_rapid_egfr_fall(ctx.egfr)
    )


def check_rule_scans(t: Timeline, as_of: date) -> None:
    ctx = _context(t, as_of)
    titers = t.series("anti_pla2r")
    arrays = t.arrays(titers)
    # titer_rising: each value's rise against the lowest of its 12 months
    for i in range(len(titers)):
        assert titer_rising._rise(titers, i, arrays) == _ref_titer_rise(titers, i)
    # immunological_relapse: the reappearance after any treatment date
    for treated in (as_of - timedelta(days=900), as_of - timedelta(days=300), as_of):
        found = immunological_relapse._open_reappearance(titers, treated, arrays)
        expected = _ref_open_reappearance(titers, treated)
        assert (found and (found.negative, found.first_positive, found.latest)) == expected
    # relapse: the supporting titer of any relapse of the history
    for rel in ctx.remission.relapses:
        assert relapse._supporting_titer(rel, titers, arrays) == _ref_supporting_titer(rel, titers)
    # rtx_non_response: the titer and proteinuria criteria of every course
    for course in ctx.courses:
        positive = [
            r
            for r in titers
            if r.effective_date <= course.first_dose
            and r.value >= rtx_non_response.TITER_PERSISTENT_FROM_RU_ML
        ]
        judged = course.first_dose + timedelta(days=rtx_non_response.RESULT_MIN_DAYS_AFTER_FIRST_DOSE)
        titer = rtx_non_response._titer(ctx, course)
        assert titer == (
            rtx_non_response._Titer(positive[-1], _ref_latest_from(titers, judged)) if positive else None
        )
        since = course.first_dose - timedelta(days=COURSE_BASELINE_LOOKBACK_DAYS)
        before = [r for r in ctx.proteinuria if since <= r.effective_date <= course.first_dose]
        # the course baseline (shared by the anti-CD20 rules) is the last of them
        assert course_baseline_proteinuria(ctx.proteinuria, course) == (before[-1] if before else None)
        expected = (
            rtx_non_response._Proteinuria(before[-1], _ref_latest_from(ctx.proteinuria, judged))
            if before and before[-1].value > 0
            else None
        )
        assert rtx_non_response._proteinuria(ctx, course) == expected


def check_drug_runs_and_courses(t: Timeline, as_of: date) -> None:
    ctx = _context(t, as_of)
    for rule in (csa_trough_low, tac_trough_low):
        assert drug_run(ctx, rule.DRUG, rule.ANALYTE, rule._low) == _ref_drug_run(
            ctx, rule.DRUG, rule.ANALYTE, rule._low
        )
    assert anti_cd20_courses(t, as_of) == _ref_anti_cd20_courses(t, as_of)


CHECKS = [
    check_series_arrays,
    check_remission_walk,
    check_proteinuria_and_egfr_series,
    check_egfr_decline,
    check_risk_lookups,
    check_rule_scans,
    check_drug_runs_and_courses,
]


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@SETTINGS
@given(t=zoned_timelines(), as_of=st.dates(date(2021, 6, 1), date(2024, 6, 1)))
def test_fast_paths_on_timelines_whose_dates_run_backwards(
    check: Callable[[Timeline, date], None], t: Timeline, as_of: date
) -> None:
    check(t.until(as_of), as_of)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@SETTINGS
@given(t=timelines(max_size=60), as_of=AS_OF_DAYS)
def test_fast_paths_on_hypothesis_timelines(
    check: Callable[[Timeline, date], None], t: Timeline, as_of: date
) -> None:
    check(t.until(as_of), as_of)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_fast_paths_on_the_synthetic_cohort(check: Callable[[Timeline, date], None]) -> None:
    for t, as_of in _cohort():
        check(t, as_of)


def test_zoned_timelines_do_have_descending_dates() -> None:
    """The zoned corpus exercises the scanning fallbacks (a series whose dates do not ascend)."""
    found: list[bool] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(zoned_timelines())
    def look(t: Timeline) -> None:
        found.append(
            any(not t.arrays(s).ascending for s in (t.proteinuria(), *(t.series(a) for a in _VALUES)))
        )

    look()
    assert any(found)


@given(st.floats(1.0, 500.0), st.floats(-0.02, 0.02), st.sampled_from([-1, 1]))
def test_rounding_shortcut_equals_the_rounded_percentage(baseline: float, off: float, sign: int) -> None:
    # values at and around the thresholds: exactly 25% / 20% apart, and just inside and outside them
    for threshold in (egfr_decline.EGFR_DECLINE_WARNING_PCT, egfr_decline.CREATININE_RISE_ON_CNI_PCT):
        for nudge in (0.0, off, 1e-7, -1e-7, 5e-7, -5e-7, 1e-4, -1e-4, 2e-4):
            value = baseline * (1 + sign * (threshold / 100 + nudge))
            pct = egfr_decline._pct(value, baseline, sign)
            assert egfr_decline._pct_reaches(value, baseline, sign, threshold, strictly=False) == (
                pct >= threshold
            )
            assert egfr_decline._pct_reaches(value, baseline, sign, threshold, strictly=True) == (
                pct > threshold
            )


def test_arrays_memo_is_per_series_and_bounded() -> None:
    t = _cohort()[-1][0]
    titers, albumin = t.series("anti_pla2r"), t.series("serum_albumin")
    assert t.arrays(titers) is t.arrays(titers) and t.arrays(titers) != t.arrays(albumin)
    copy = tuple(titers)  # an equal series that is another object: its own entry, same arrays
    assert t.arrays(copy) == t.arrays(titers)
    for _ in range(100):  # a caller's own tuples: correct arrays, but the memo stops growing
        assert t.arrays(tuple(albumin)) == SeriesArrays.of(albumin)
    assert len(t._derived["arrays"]) <= 32  # type: ignore[arg-type]
    assert t.until(date(2020, 1, 1)).arrays(titers) == SeriesArrays.of(titers)  # its own memo


def _ref_of_lab(r: LabResult, note: str | None = None) -> Evidence:
    reported = (
        f"{r.reported_value:g} {r.reported_unit}"
        if r.reported_unit is not None and r.reported_value is not None
        else None
    )
    return Evidence(
        "lab",
        r.analyte,
        r.value,
        r.unit,
        r.effective_at.isoformat(),
        r.identity,
        reported,
        note if r.comparator is None else f"{r.comparator}{r.value:g}" + (f"; {note}" if note else ""),
    )


def _ref_of_medication(m: MedicationEvent, note: str | None = None) -> Evidence:
    span = m.start.isoformat() if m.end is None or m.frequency == "once" else f"{m.start}..{m.end}"
    return Evidence(
        "medication",
        m.drug,
        m.dose,
        m.unit,
        m.start.isoformat(),
        m.identity,
        None,
        note or (f"{m.frequency} {span}" if m.frequency != "once" else None),
    )


def _same_evidence(fast: Evidence, plain: Evidence) -> None:
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert list(fast.__dict__.items()) == list(plain.__dict__.items())  # same fields, same order
    assert fast.as_dict() == plain.as_dict()


@SETTINGS
@given(
    t=st.one_of(zoned_timelines(), timelines(max_size=30)),
    note=st.one_of(st.none(), st.just("a note")),
    cohort_patient=st.integers(0, 10_000),
)
def test_evidence_built_in_one_assignment_equals_the_dataclass_init(
    t: Timeline, note: str | None, cohort_patient: int
) -> None:
    cohort = _cohort()
    other = cohort[cohort_patient % len(cohort)][0]
    for r in (*t.labs, *other.labs[:20]):
        _same_evidence(Evidence.of_lab(r, note), _ref_of_lab(r, note))
        _same_evidence(
            Evidence.derived("x", r.value, r.unit, r.effective_at, "n"),
            Evidence("derived", "x", round(r.value, 3), r.unit, r.effective_at.isoformat(), None, None, "n"),
        )
    for m in (*t.medications, *other.medications):
        _same_evidence(Evidence.of_medication(m, note), _ref_of_medication(m, note))


# ------------------------------------------------------------------------------ single-series checks
# Each series is drawn alone, many values, near midnight in zones -12 h to +14 h: the look-ups'
# edges (a window's first or last day, values out of date order) come up far more often than in
# whole timelines.


@st.composite
def zoned_series(
    draw: st.DrawFn,
    analyte: str,
    max_size: int = 30,
    values: st.SearchStrategy[float] | None = None,
    steps: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 29, 30, 31, 88, 89, 90, 91, 200),
) -> tuple[LabResult, ...]:
    """One analyte's series in clinical order (by instant), its dates often out of order."""
    day = date(2022, 1, 1)
    labs = []
    for k in range(draw(st.integers(0, max_size))):
        day += timedelta(days=draw(st.sampled_from(steps)))
        when = datetime.combine(
            day, time(draw(st.sampled_from([0, 1, 12, 22, 23])), 30), draw(st.sampled_from(_ZONES))
        )
        labs.append(
            LabResult(
                patient_id="P1",
                analyte=analyte,
                value=draw(_VALUES[analyte] if values is None else values),
                unit=ANALYTES[analyte].canonical_unit,
                effective_at=when,
                source="lab",
                source_id=f"{analyte}-{k}",
            )
        )
    return Timeline.build("P1", labs).series(analyte)


@given(st.lists(st.integers(738_000, 738_060), max_size=25), st.booleans(), st.integers(737_990, 738_070))
def test_window_lookups_equal_scans(days: list[int], ascending: bool, extra: int) -> None:
    if ascending:
        days = sorted(days)
    arrays = SeriesArrays(tuple(days), tuple(float(d) for d in days), days == sorted(days))
    _check_lookups(arrays, days, (extra,))


@SETTINGS
@given(zoned_series("serum_albumin"), zoned_series("egfr"), st.integers(-5, 800), st.integers(0, 900))
def test_remission_lookups_equal_the_plain_definitions(
    albumin: tuple[LabResult, ...], egfr: tuple[LabResult, ...], start_offset: int, span: int
) -> None:
    from monitor import remission

    t = Timeline.build("P1", [*albumin, *egfr])
    assert t.series("serum_albumin") == albumin and t.series("egfr") == egfr
    b = remission._Builder(t.arrays(albumin), egfr, t.arrays(egfr).days)
    episode_start = date(2022, 1, 1) + timedelta(days=start_offset)
    b.episode_day = episode_start.toordinal()
    # the albumin look-back's edges: each result's own day, and 88-92 days after it
    edges = [r.effective_date + timedelta(days=k) for r in albumin for k in (0, 88, 89, 90, 91, 92)]
    for on in (episode_start + timedelta(days=span), *edges, *(r.effective_date for r in egfr)):
        on_day = on.toordinal()
        assert remission._albumin_normal(b, on_day) == _ref_albumin_normal(t, on)
        assert remission._egfr_stable(b, on_day) == _ref_egfr_stable(egfr, episode_start, on)


@SETTINGS
@given(
    zoned_series("anti_pla2r"),
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([-31, -30, -29, 0, 29, 30, 31])), min_size=1, max_size=6
    ),
    st.integers(-10, 900),
)
def test_titer_scans_equal_the_plain_definitions(
    titers: tuple[LabResult, ...], near: list[tuple[int, int]], treated_offset: int
) -> None:
    arrays = SeriesArrays.of(titers)
    # relapse values at and around 30 days from titers (the supporting window's edge), else anywhere
    base = date(2022, 1, 1).toordinal()
    relapse_days = [
        (titers[i % len(titers)].effective_date.toordinal() - base if titers else i * 20) + k for i, k in near
    ]
    for i in range(len(titers)):
        assert titer_rising._rise(titers, i, arrays) == _ref_titer_rise(titers, i)
    treated = date(2022, 1, 1) + timedelta(days=treated_offset)
    found = immunological_relapse._open_reappearance(titers, treated, arrays)
    assert (found and (found.negative, found.first_positive, found.latest)) == _ref_open_reappearance(
        titers, treated
    )
    # a relapse run on arbitrary days (local dates in any zone), against every titer
    values = tuple(
        LabResult(
            patient_id="P1",
            analyte="proteinuria_24h",
            value=5.0,
            unit="g/d",
            effective_at=datetime.combine(
                date(2022, 1, 1) + timedelta(days=d), time(23, 30), _ZONES[d % len(_ZONES)]
            ),
        )
        for d in relapse_days
    )
    after = Remission("partial", date(2021, 12, 1), (values[0], values[0]))
    rel = Relapse(values[0], values, after, None, None, None)
    assert relapse._supporting_titer(rel, titers, arrays) == _ref_supporting_titer(rel, titers)


@SETTINGS
@given(zoned_series("egfr"), zoned_series("serum_creatinine"))
def test_baseline_walks_equal_the_plain_definition(
    egfr: tuple[LabResult, ...], creatinine: tuple[LabResult, ...]
) -> None:
    for series, meets in ((egfr, egfr_decline._egfr_declined), (creatinine, egfr_decline._creatinine_rose)):
        expected = _ref_current_run(series, meets)
        assert egfr_decline._current_run(series, meets, SeriesArrays.of(series)) == expected
        assert egfr_decline._current_run(series, meets) == expected


@pytest.mark.parametrize("drug", ["cyclosporine", "tacrolimus"])
def test_creatinine_rise_on_either_cni_is_still_found(drug: str) -> None:
    """_creatinine_rise_on_cni walks the creatinine series whenever a CNI is active at as_of."""
    pid = "P1"
    labs = [
        LabResult(
            patient_id=pid,
            analyte="serum_creatinine",
            value=v,
            unit="umol/L",
            effective_at=datetime(2024, m, 1, 8, tzinfo=timezone.utc),
        )
        for m, v in ((1, 80), (3, 82), (5, 110))
    ]
    course = MedicationEvent(
        patient_id=pid, drug=drug, dose=100, unit="mg", frequency="bid", start=date(2023, 12, 1)
    )
    t = Timeline.build(pid, [Patient(patient_id=pid, birth_date=date(1970, 1, 1), sex="male"), *labs, course])
    ctx = _context(t, date(2024, 6, 1))
    found = egfr_decline._creatinine_rise_on_cni(ctx)
    assert found is not None and found[1] == course and found[0].latest == labs[-1]
    check_egfr_decline(t, date(2024, 6, 1))
    stopped = Timeline.build(pid, [*t.labs, course.model_copy(update={"end": date(2024, 5, 1)})])
    assert egfr_decline._creatinine_rise_on_cni(_context(stopped, date(2024, 6, 1))) is None


_PROTEINURIA_AT_THRESHOLDS = st.sampled_from([0.1, 0.29, 0.3, 0.31, 1.0, 1.75, 3.5, 3.51, 6.0, 9.0])


@SETTINGS
@given(
    zoned_series("proteinuria_24h", 45, _PROTEINURIA_AT_THRESHOLDS, (0, 1, 3, 6, 7, 7, 8, 30, 90)),
    zoned_series("serum_albumin", 8),
    zoned_series("egfr", 8),
)
def test_remission_walk_at_the_thresholds_equals_the_plain_definition(
    proteinuria: tuple[LabResult, ...], albumin: tuple[LabResult, ...], egfr: tuple[LabResult, ...]
) -> None:
    """Long proteinuria series at and around 0.3 and 3.5 g/d: CR/PR runs, relapses and their edges."""
    t = Timeline.build("P1", [*proteinuria, *albumin, *egfr])
    assert remission_history(t, t.proteinuria(), t.series("egfr")) == _ref_remission_history(
        t, t.proteinuria(), t.series("egfr")
    )
