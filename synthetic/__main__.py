"""`python -m synthetic N [--start YYYY-MM-DD] [--years Y] [--seed S] [--prefix P] [--bench]`

Writes the cohort as NDJSON to stdout, or with --bench only measures generation speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date

from synthetic.cohort import DEFAULT_SEED, iter_cohort


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synthetic", description=__doc__)
    ap.add_argument("patients", type=int)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    ap.add_argument("--years", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--prefix", default="DEMO")
    ap.add_argument("--bench", action="store_true", help="generate without writing; print patients/s")
    args = ap.parse_args(argv)
    cohort = iter_cohort(args.patients, args.start, args.years, args.seed, args.prefix)
    if args.bench:
        t0, cpu0, events = time.perf_counter(), time.process_time(), 0
        for patient in cohort:
            events += len(patient)
        dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(f"{args.patients} patients, {events} events in {dt:.2f} s ({cpu:.2f} s CPU): "
              f"{args.patients / dt:,.0f} patients/s, {events / dt:,.0f} events/s "
              f"({events / max(args.patients, 1):.1f} events/patient)")
        return 0
    out = sys.stdout
    try:
        for patient in cohort:
            out.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in patient))
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
