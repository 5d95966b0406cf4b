"""Benchmark of the pure engine: microseconds per assess() call on synthetic 5-year timelines.

Not a test: bench/ scripts print figures; the tests make no timed assertions.

    .venv/bin/python bench/assess.py [--patients 400] [--rounds 5] [--profile]

Each synthetic patient (fixed seed) has about 110 events over 5 years: anti-PLA2R every 3 months,
proteinuria monthly (24-h urine or UPCR), albumin and creatinine every 6 months, CsA troughs during a
cyclosporine year, two rituximab courses (1 g x 2, 14 days apart). Timelines are built once; the
figure is assess(timeline, as_of) alone (what the nightly reassessment repeats), on one core, with a
per-stage breakdown of the same work. "assess()" repeats the call on the same timelines (memos kept
in the immutable Timeline and its events are warm after the first round); "assess() cold" is the
first call on a freshly built copy (what a nightly run on just-loaded timelines pays).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.assess import assess
from monitor.egfr import egfr_series
from monitor.events import LabResult, MedicationEvent, Patient
from monitor.proteinuria import KDIGO_MG_PER_MMOL_PER_G_PER_DAY
from monitor.remission import remission_history
from monitor.risk import risk_category
from monitor.rules import RULES
from monitor.rules.base import RuleContext
from monitor.therapy import active_therapies, anti_cd20_courses
from monitor.timeline import Timeline

START = date(2021, 1, 1)
YEARS = 5
AS_OF = START + timedelta(days=365 * YEARS)


def _lab(pid: str, analyte: str, value: float, unit: str, on: date, n: int) -> LabResult:
    return LabResult(patient_id=pid, analyte=analyte, value=round(value, 2), unit=unit,
                     effective_at=datetime(on.year, on.month, on.day, 8, tzinfo=UTC),
                     source="bench", source_id=f"{pid}-{n}")


def synthetic_patient(pid: str, rng: random.Random) -> list[Any]:
    """~110 events: a nephrotic start, rituximab, a remission and often a relapse, with noise."""
    events: list[Any] = [Patient(patient_id=pid, birth_date=date(1950 + rng.randrange(40), 1 + rng.randrange(12), 1),
                                 sex=rng.choice(["male", "female"]), weight_kg=rng.uniform(55, 100),
                                 height_cm=rng.uniform(155, 195))]
    n = 0
    rtx_day = rng.randrange(60, 240)
    relapse_day = rng.choice([None, rng.randrange(700, 1500)])
    peak = rng.uniform(4, 14)
    for month in range(12 * YEARS):
        day = START + timedelta(days=30 * month + rng.randrange(0, 5))
        t = (day - START).days
        level = peak if t < rtx_day + 90 else max(0.1, peak * 0.9 ** ((t - rtx_day - 90) / 30))
        if relapse_day is not None and t >= relapse_day:
            level = peak * 0.8
        n += 1
        if rng.random() < 0.6:
            events.append(_lab(pid, "proteinuria_24h", level * rng.uniform(0.85, 1.15), "g/d", day, n))
        else:
            # reported in mg/mmol as the monitor reads it (KDIGO: mg/mmol / 100 ~ g/d, monitor.proteinuria),
            # so a UPCR says the same g/d as a 24-h collection of that month; the exact molar factor
            # (/ 0.00884) made every UPCR read 13% higher than the curve meant
            events.append(_lab(pid, "upcr", level * rng.uniform(0.8, 1.2) * KDIGO_MG_PER_MMOL_PER_G_PER_DAY,
                               "mg/mmol", day, n))
        if month % 3 == 0:
            n += 1
            titer = 180 * (0.5 ** (max(0, t - rtx_day) / 60)) + (90 if relapse_day and t > relapse_day - 120 else 1)
            events.append(_lab(pid, "anti_pla2r", titer, "RU/mL", day, n))
        if month % 6 == 0:
            n += 2
            events.append(_lab(pid, "serum_albumin", max(12, 40 - 3 * level), "g/L", day, n - 1))
            events.append(_lab(pid, "serum_creatinine", rng.uniform(70, 130) + 4 * month / 6, "umol/L", day, n))
    for course in (rtx_day, rtx_day + 900):
        for k, offset in enumerate((0, 14)):
            events.append(MedicationEvent(patient_id=pid, drug="rituximab", dose=1000, unit="mg", route="iv",
                                          start=START + timedelta(days=course + offset),
                                          source="bench", source_id=f"{pid}-rtx{course}-{k}"))
    csa_start = START + timedelta(days=rng.randrange(400, 800))
    events.append(MedicationEvent(patient_id=pid, drug="cyclosporine", dose=100, unit="mg", frequency="bid",
                                  start=csa_start, end=csa_start + timedelta(days=365),
                                  source="bench", source_id=f"{pid}-csa"))
    events.append(MedicationEvent(patient_id=pid, drug="ace_inhibitor", dose=10, unit="mg", frequency="qd",
                                  start=START, source="bench", source_id=f"{pid}-acei"))
    for month in range(0, 12, 2):
        n += 1
        events.append(_lab(pid, "csa_trough", rng.uniform(60, 220), "ng/mL", csa_start + timedelta(days=30 * month + 7), n))
    rng.shuffle(events)  # arrival order is not clinical order
    return events


def stages(timeline: Timeline, as_of: date) -> dict[str, Callable[[], Any]]:
    """The steps of assess(), each runnable alone on pre-computed inputs (for the breakdown)."""
    known = timeline.until(as_of)
    proteinuria = known.proteinuria()
    remission = remission_history(known, proteinuria)
    egfr = egfr_series(known)
    courses = anti_cd20_courses(known, as_of)
    ctx = RuleContext(known, as_of, proteinuria, egfr, remission, courses)
    out: dict[str, Callable[[], Any]] = {
        "timeline.until": lambda: timeline.until(as_of),
        "proteinuria series": known.proteinuria,
        "remission_history": lambda: remission_history(known, proteinuria),
        "egfr_series": lambda: egfr_series(known),
        "anti_cd20_courses": lambda: anti_cd20_courses(known, as_of),
        "risk_category": lambda: risk_category(ctx),
        "active_therapies": lambda: active_therapies(known, as_of),
    }
    for rule in RULES:
        out[f"rule {rule.RULE_ID}"] = lambda rule=rule: rule.evaluate(ctx)
    return out


def fresh_copy(timeline: Timeline) -> Timeline:
    """The same timeline rebuilt from field-for-field copies of its events: nothing memoised yet.

    The nightly run loads each patient from storage before assessing it (its timeline cache rarely
    hits, docs/performance.md), so per-timeline and per-event memos start empty there: this is what
    the "cold" figure measures."""
    def copy(e: Any) -> Any:
        return type(e).model_construct(_fields_set=set(e.model_fields_set),
                                       **{k: getattr(e, k) for k in type(e).model_fields})
    return Timeline._make(timeline.patient_id, copy(timeline.patient) if timeline.patient else None,
                          [copy(r) for r in timeline.labs], [copy(m) for m in timeline.medications],
                          [copy(r) for r in timeline.preliminary])


def time_per_call(fn: Callable[[], Any], items: int) -> float:
    # the previous round's garbage (fresh copies, assessments) is collected before the clock starts:
    # otherwise a full collection of the whole heap lands in some rounds and not others (it doubled
    # single cold rounds); collections triggered by what assess() itself allocates stay inside
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the cProfile hot spots of assess()")
    args = parser.parse_args()

    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    rng = random.Random(20250101)
    t0 = time.perf_counter()
    histories = [(f"B{i:05d}", synthetic_patient(f"B{i:05d}", rng)) for i in range(args.patients)]
    t1 = time.perf_counter()
    timelines = [Timeline.build(pid, evs) for pid, evs in histories]
    t2 = time.perf_counter()
    n_events = sum(len(evs) for _, evs in histories)
    print(f"{args.patients} synthetic patients, {n_events / args.patients:.0f} events each (5 years)")
    print(f"  event validation (pydantic): {(t1 - t0) / n_events * 1e6:8.1f} us per event")
    print(f"  Timeline.build:              {(t2 - t1) / args.patients * 1e6:8.1f} us per patient")

    def run_all() -> None:
        for t in timelines:
            assess(t, AS_OF)

    run_all()  # warm-up
    per_call = [time_per_call(run_all, len(timelines)) for _ in range(args.rounds)]
    best, median = min(per_call), statistics.median(per_call)
    print(f"  assess():                    {median:8.1f} us per call (median of {args.rounds} rounds, best {best:.1f})")
    print(f"  => {1e6 / median:,.0f} patients per second on one core (assess only); "
          f"{1e6 / (median + (t2 - t1) / args.patients * 1e6):,.0f} with Timeline.build")

    # cold: the first assess() of a freshly built timeline (copies made outside the timed region)
    cold = []
    for _ in range(args.rounds):
        copies = [fresh_copy(t) for t in timelines]
        cold.append(time_per_call(lambda copies=copies: [assess(t, AS_OF) for t in copies], len(copies)))
    cold_best, cold_median = min(cold), statistics.median(cold)
    print(f"  assess() cold:               {cold_median:8.1f} us per call (median of {args.rounds} rounds, best "
          f"{cold_best:.1f}; first call on a freshly built timeline)")
    print(f"  => {1e6 / cold_median:,.0f} patients per second on one core (cold assess only)")

    print("  per stage (us per patient):")
    sample = timelines[: min(200, len(timelines))]
    prepared = [stages(t, AS_OF) for t in sample]
    for name in prepared[0]:
        # best of 3: the machine may be shared, and the breakdown is about relative weight
        us = min(time_per_call(lambda name=name: [p[name]() for p in prepared], len(prepared)) for _ in range(3))
        print(f"    {name:34s} {us:8.1f}")

    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_all()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
