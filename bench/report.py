"""Benchmark of the clinic outcome report (tasks.report.clinic_report) on a large cohort.

Not a test (figures are printed, never asserted). PostgreSQL at 127.0.0.1:5432 (a database of its own,
imn_bench_<random>, dropped at the end) or a SQLite file (--backend sqlite); no Redis, no Celery.

    .venv/bin/python bench/report.py [--patients 100000] [--base 10000] [--backend postgresql|sqlite]
                                     [--assess-procs 2] [--recompute-sample 2000] [--json PATH]

1. Load: --base synthetic patients (fixed seed, 3 years from 2023-01-01) generated, parsed and stored
   with store_events (bench/nightly.py's loader), then on PostgreSQL copied in SQL up to --patients
   (bench/nightly.py's copy_cohort: patient ids `<id>~c001`, ...). SQLite: no copies (--patients =
   --base).
2. Nightly: every patient assessed as of D and saved, as the nightly run does (tasks.reassess.reassess
   in 500-patient chunks, in --assess-procs processes, in-process tasks: no broker). This stores each
   patient's course outcomes with the assessment. Timed, but not the subject.
3. The report as of D (what `imn-monitor report` and the page compute), timed in stages: reading the
   stored outcomes, reading the alerts, building the report (lifelines), and the total; the process's
   peak RSS. Run twice (a cold and a warm database cache); the cache of tasks.report is bypassed.
4. The recompute path (a report for a date other than the stored one rebuilds timelines): timed on
   --recompute-sample patients and given per patient, with its projection to the whole cohort.
--json PATH appends {"meta": ..., "runs": [...]} to the JSON list in PATH.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import _common as c
from bench.nightly import copy_cohort, load_cohort

AS_OF = date(2026, 1, 1)
CHUNK = 500


def _assess_range(args: tuple[str, list[str], str]) -> tuple[int, float]:
    """Assess and save the given patients as of D (one process of the nightly stand-in)."""
    db_url, ids, as_of = args
    from tasks import runtime
    from tasks.reassess import reassess
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=db_url, broker_url=None, timeline_cache=0, _env_file=None))
    t0 = time.process_time()
    for i in range(0, len(ids), CHUNK):
        reassess(rt, ids[i:i + CHUNK], date.fromisoformat(as_of))
    runtime.reset()
    return len(ids), time.process_time() - t0


def nightly(db_url: str, procs: int, as_of: date) -> dict[str, float]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("select patient_id from patients order by patient_id"))]
    engine.dispose()
    parts = [ids[i::procs] for i in range(procs)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        done = pool.map(_assess_range, [(db_url, sorted(p), as_of.isoformat()) for p in parts])
    wall = time.perf_counter() - t0
    return {"patients": sum(d[0] for d in done), "wall_s": wall, "cpu_s": sum(d[1] for d in done)}


def time_report(db_url: str, as_of: date) -> dict[str, Any]:
    from monitor.outcome_report import build_report
    from tasks import runtime
    from tasks.report import gather_alerts, gather_outcomes
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=db_url, broker_url=None, _env_file=None))
    cpu0, t0 = time.process_time(), time.perf_counter()
    outcomes, sources = gather_outcomes(rt, as_of)
    t1 = time.perf_counter()
    alerts = gather_alerts(rt)
    t2 = time.perf_counter()
    report = build_report(outcomes, alerts, as_of, sources)
    t3 = time.perf_counter()
    runtime.reset()
    return {"outcomes_s": t1 - t0, "alerts_s": t2 - t1, "build_s": t3 - t2, "total_s": t3 - t0,
            "cpu_s": time.process_time() - cpu0, "patients": report.patients, "courses": report.courses,
            "sources": sources, "alerts": len(alerts),
            "regimens": {r.regimen: r.courses for r in report.regimens},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def time_recompute(db_url: str, as_of: date, sample: int) -> dict[str, float]:
    from monitor.outcomes import outcomes_as_of
    from storage.db import make_engine, session
    from storage.event_store import load_timelines

    engine = make_engine(db_url)
    with session(engine, write=False) as s:
        ids = list(s.execute(sa.text("select patient_id from patients order by patient_id limit :n"),
                             {"n": sample}).scalars())
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(ids), CHUNK):
        with session(engine, write=False) as s:
            timelines = load_timelines(s, ids[i:i + CHUNK])
        for tl in timelines.values():
            outcomes_as_of(tl, as_of)
            n += 1
    wall = time.perf_counter() - t0
    engine.dispose()
    return {"patients": n, "wall_s": wall, "ms_per_patient": 1000 * wall / max(n, 1)}


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="imn-bench-report-") as tmp:
        url = f"sqlite:///{tmp}/report.db"
        from storage.db import upgrade

        upgrade(url)
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--base", type=int, default=10_000)
    ap.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--load-procs", type=int, default=2)
    ap.add_argument("--assess-procs", type=int, default=2)
    ap.add_argument("--recompute-sample", type=int, default=2000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from synthetic.cohort import DEFAULT_SEED

    base = min(args.patients, args.base)
    if args.backend == "sqlite" and args.patients != base:
        ap.error("SQLite: --patients must not exceed --base (no SQL copies)")
    if args.patients % base:
        ap.error("--patients must be a multiple of --base")
    print(f"machine: {c.machine()}; {c.load_note()} at start", flush=True)
    meta: dict[str, Any] = {"patients": args.patients, "base": base, "backend": args.backend,
                            "as_of": AS_OF.isoformat(), "machine": c.machine(), "load_start": os.getloadavg()}
    database = c.bench_database() if args.backend == "postgresql" else sqlite_database()
    with database as db_url:
        if args.backend == "postgresql":
            events, _, load_s = load_cohort(db_url, base, DEFAULT_SEED, args.load_procs)
        else:  # one writer (SQLite serialises them anyway); nightly.load_cohort's VACUUM ANALYZE is PostgreSQL's
            from bench.nightly import LOAD_PATIENTS_PER_TX, _load_range

            t0 = time.perf_counter()
            events, _ = _load_range((db_url, DEFAULT_SEED, 0, base, LOAD_PATIENTS_PER_TX))
            load_s = time.perf_counter() - t0
        print(f"load: {base:,} patients, {events:,} events in {load_s:.0f} s", flush=True)
        meta["load"] = {"events": events, "s": load_s}
        if args.patients > base:
            meta["copy"] = copy_cohort(db_url, args.patients // base - 1, args.load_procs)
            print(f"copied to {args.patients:,} patients: {meta['copy']['events']:,.0f} events "
                  f"({meta['copy']['copy_s']:.0f} s copy, {meta['copy']['events_mb'] / 1024:.1f} GiB)", flush=True)
        meta["nightly"] = nightly(db_url, args.assess_procs, AS_OF)
        n = meta["nightly"]
        print(f"nightly stand-in: {n['patients']:,} patients assessed and saved in {n['wall_s']:.0f} s "
              f"({args.assess_procs} processes, {1000 * n['cpu_s'] / n['patients']:.2f} ms CPU per patient)", flush=True)
        if args.backend == "postgresql":
            eng = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
            with eng.connect() as conn:
                conn.execute(sa.text("vacuum analyze patients"))
                conn.execute(sa.text("vacuum analyze alerts"))
                conn.execute(sa.text("vacuum analyze alert_audit"))
            eng.dispose()
        runs = []
        for label in ("first", "second"):
            r = time_report(db_url, AS_OF)
            r["run"] = label
            runs.append(r)
            print(f"report ({label}): {r['patients']:,} patients, {r['courses']:,} courses, {r['alerts']:,} alerts: "
                  f"stored outcomes {r['outcomes_s']:.1f} s + alerts {r['alerts_s']:.1f} s + build "
                  f"{r['build_s']:.1f} s = {r['total_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU), sources "
                  f"{r['sources']}, peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
        rec = time_recompute(db_url, AS_OF - timedelta(days=1), args.recompute_sample)
        print(f"recompute path (a report for another date): {rec['ms_per_patient']:.2f} ms per patient over "
              f"{rec['patients']:,} patients -> ~{rec['ms_per_patient'] * args.patients / 1000:.0f} s for "
              f"{args.patients:,} in one process", flush=True)
        print(f"({c.load_note()} at the end)")
        meta["load_end"] = os.getloadavg()
        if args.json:
            prior = json.loads(args.json.read_text()) if args.json.exists() else []
            prior.append({"meta": meta, "runs": runs, "recompute": rec})
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(prior, indent=1, default=str))


if __name__ == "__main__":
    main()
