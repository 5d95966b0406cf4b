"""How many nights each patient is due when the nightly run reassesses only at Assessment.valid_until.

Pure and in-memory (no database, no workers): for each patient of the synthetic cohort (fixed seed,
three years from 2023-01-01), walk every night from the patient's first event to the end of the period;
a night is due when its date has reached the valid_until of the patient's last assessment (the first
night always is). Events are known in advance here, so valid_until also stops at the next event's
date (monitor.validity.next_event), which stands for the dirty patients of the real nightly run.

    .venv/bin/python bench/validity.py [--patients 200] [--verify] [--per-archetype]

Prints the share of patient-nights due, split into nights with a new event and nights due only by
a date the rules named. --verify also assesses every night and checks that each one equals the last
due assessment in what valid_until promises (monitor.validity.promised): a full proof over the
cohort, about 2.5 s per patient.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.assess import assess
from monitor.events import parse_event
from monitor.timeline import Timeline
from monitor.validity import promised
from synthetic.cohort import archetype_of, iter_cohort

START = date(2023, 1, 1)
YEARS = 3.0


def patient_nights(timeline: Timeline, end: date, verify: bool = False) -> tuple[int, int, int, list[str]]:
    """(nights, due nights, due nights with an event that day, rule ids whose boundary was the
    earliest one on the due nights without an event) for one patient; with verify, every night
    not due is checked against the last due assessment."""
    event_days = {r.effective_date for r in timeline.labs} | {m.start for m in timeline.medications}
    first = min(event_days)
    nights = due = due_event = 0
    causes: list[str] = []
    held = None
    d = first
    while d <= end:
        nights += 1
        if held is None or d >= held.valid_until:
            due += 1
            if d in event_days:
                due_event += 1
            elif held is not None:
                causes.append(_cause(timeline, held.as_of))
            held = assess(timeline, d)
        elif verify:
            now = assess(timeline, d)
            if promised(now) != promised(held):
                raise AssertionError(f"{timeline.patient_id}: assessed on {held.as_of} valid until "
                                     f"{held.valid_until}, but differs on {d}")
        d += timedelta(days=1)
    return nights, due, due_event, causes


def _cause(timeline: Timeline, as_of: date) -> str:
    """Which boundary made the assessment of as_of end first (for the report)."""
    from monitor.assess import RULES, RuleContext, risk_next_change
    from monitor.egfr import egfr_series
    from monitor.remission import remission_history
    from monitor.therapy import anti_cd20_courses
    from monitor.validity import active_stops, next_administration

    known = timeline.until(as_of)
    p = known.proteinuria()
    e = egfr_series(known)
    ctx = RuleContext(known, as_of, p, e, remission_history(known, p, e), anti_cd20_courses(known, as_of))
    named: dict[str, date | None] = {
        "medication stops": active_stops(known, {m.drug for m in known.medications}, as_of),
        "anti-CD20 dose": next_administration(known, as_of),
        "risk": risk_next_change(ctx),
    }
    named.update({r.RULE_ID: r.next_change(ctx) for r in RULES})
    dated = {k: v for k, v in named.items() if v is not None and v > as_of}
    return min(dated, key=lambda k: dated[k]) if dated else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--per-archetype", action="store_true")
    args = ap.parse_args(argv)
    end = START + timedelta(days=round(365.25 * YEARS))
    totals: Counter[str] = Counter()
    by_arch: dict[str, Counter[str]] = defaultdict(Counter)
    causes: Counter[str] = Counter()
    t0 = time.perf_counter()
    for raw in iter_cohort(args.patients, START, YEARS):
        events = [parse_event(r) for r in raw]
        pid = events[0].patient_id
        nights, due, due_event, why = patient_nights(Timeline.build(pid, events), end, args.verify)
        causes.update(why)
        for c in (totals, by_arch[archetype_of(pid) or "?"]):
            c.update(nights=nights, due=due, due_event=due_event, patients=1)
    elapsed = time.perf_counter() - t0
    n, due, ev = totals["nights"], totals["due"], totals["due_event"]
    print(f"{totals['patients']} patients, {n} patient-nights, {elapsed:.1f} s"
          f"{' (every night verified)' if args.verify else ''}")
    print(f"due: {due} ({due / n:.1%}); with a new event that day: {ev} ({ev / n:.1%}); "
          f"due by a date alone: {due - ev} ({(due - ev) / n:.1%})")
    print("date boundaries by what named them:", ", ".join(f"{k} {v}" for k, v in causes.most_common()))
    if args.per_archetype:
        for name, c in sorted(by_arch.items()):
            print(f"  {name:32s} {c['patients']:4d} patients  due {c['due'] / c['nights']:6.1%}  "
                  f"(event {c['due_event'] / c['nights']:5.1%}, date {(c['due'] - c['due_event']) / c['nights']:5.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
