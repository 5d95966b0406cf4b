"""Benchmark of the nightly load path without a database: stored JSON payloads -> Timeline.

Not a test: bench/ scripts print figures; tests make no timed assertions.

    .venv/bin/python bench/load.py [--patients 400] [--rounds 5]

storage.event_store.load_timelines fetches (kind, payload) rows, where payload is the event's own
`model_dump(mode="json")` already decoded by the driver, and rebuilds each patient's timeline with
event_from_payload (trusted: no re-validation) and _timeline_of_current (one current version per
identity). This times those two steps on the synthetic 5-year patients of bench/assess.py, and
then one cold assess() of each rebuilt timeline (what a nightly run does next), on one core. The
SQL round trips and the driver's JSON decoding are not included.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.assess import AS_OF, synthetic_patient
from monitor.assess import assess
from storage.event_store import _timeline_of_current, event_from_payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(20250101)
    rows: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
    for i in range(args.patients):
        pid = f"B{i:05d}"
        rows.append((pid, [(e.type, e.model_dump(mode="json")) for e in synthetic_patient(pid, rng)]))
    n_events = sum(len(evs) for _, evs in rows)
    print(f"{args.patients} synthetic patients, {n_events / args.patients:.0f} stored events each (5 years)")

    decode, build, first = [], [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        events = [(pid, [event_from_payload(kind, payload) for kind, payload in evs]) for pid, evs in rows]
        t1 = time.perf_counter()
        timelines = [_timeline_of_current(pid, evs) for pid, evs in events]
        t2 = time.perf_counter()
        for t in timelines:
            assess(t, AS_OF)
        t3 = time.perf_counter()
        decode.append((t1 - t0) / n_events * 1e6)
        build.append((t2 - t1) / args.patients * 1e6)
        first.append((t3 - t2) / args.patients * 1e6)

    def show(label: str, values: list[float], unit: str) -> None:
        print(f"  {label:34s} {statistics.median(values):8.1f} {unit} (median of {args.rounds} rounds, "
              f"best {min(values):.1f})")

    show("event_from_payload (trusted):", decode, "us per event")
    show("_timeline_of_current:", build, "us per patient")
    show("first assess() of the timeline:", first, "us per patient")
    per_patient = statistics.median(decode) * n_events / args.patients + statistics.median(build)
    print(f"  => load {per_patient:,.0f} us per patient ({1e6 / per_patient:,.0f} timelines/s); "
          f"load + assess {1e6 / (per_patient + statistics.median(first)):,.0f} patients/s on one core")


if __name__ == "__main__":
    main()
