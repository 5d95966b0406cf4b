"""Benchmark of the nightly reassessment: tasks.jobs.reassess_all fanned out to real celery workers.

Not a test (design.md, "Performance yardsticks"). Needs the PostgreSQL at 127.0.0.1:5432 (a database
of its own, imn_bench_<random>, dropped at the end) and Redis database 12 (flushed).

    .venv/bin/python bench/nightly.py [--patients 10000] [--workers 1,2] [--load-procs 2] [--profile]

1. Load: the synthetic cohort (fixed seed, 3 years from 2023-01-01) is generated, parsed with
   monitor.interop.parse_payload and stored with storage.repository.store_events directly (no
   inbox, no Celery), patients split over --load-procs processes; the time is printed separately.
   The patients are then marked clean and never assessed, and the tables ANALYZEd.
2. For each worker count N (fresh worker processes, assessments and alerts reset, Redis flushed):
   N `celery -A tasks.worker worker` processes, prefork --concurrency 1 each, and three runs of
   reassess_all (IMN_REASSESS_CHUNK patients per reassess_chunk task), each timed from the send of
   reassess_all until every chunk task ran and the broker is drained:
     run 1: as_of D        (every patient assessed; timeline cache cold)
     run 2: as_of D again  (every patient current: skipped)
     run 3: as_of D+1 day  (every patient assessed again; the in-process timeline caches warm)
   with the peak RSS (VmHWM from /proc) of the worker processes and the cache hits per run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import multiprocessing as mp
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from bench import _common as c  # noqa: E402

START = date(2023, 1, 1)
YEARS = 3.0
LOAD_PATIENTS_PER_TX = 50  # ~3,400 events per store_events transaction


def _load_range(args: tuple[str, int, int, int, int]) -> tuple[int, int]:
    """Generate, parse and store patients [lo, hi) with store_events (one process of the load)."""
    db_url, seed, lo, hi, step = args
    from monitor.interop import parse_payload
    from storage import repository as repo
    from storage.db import make_engine, session
    from synthetic.cohort import generate_patient

    engine = make_engine(db_url)
    events = labs = 0
    for a in range(lo, hi, step):
        lines = []
        for k in range(a, min(a + step, hi)):
            for e in generate_patient(k, START, YEARS, seed):
                lines.append(json.dumps(e, separators=(",", ":")))
                labs += e["type"] == "lab"
        parsed = parse_payload(("\n".join(lines) + "\n").encode(), "ndjson")
        if parsed.rejected:
            raise RuntimeError(f"synthetic events rejected: {parsed.rejected[:3]}")
        with session(engine) as s:
            repo.store_events(s, None, parsed.events, datetime.now(timezone.utc))
        events += len(parsed.events)
    engine.dispose()
    return events, labs


def load_cohort(db_url: str, patients: int, seed: int, procs: int) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    bounds = [round(i * patients / procs) for i in range(procs + 1)]
    jobs = [(db_url, seed, bounds[i], bounds[i + 1], LOAD_PATIENTS_PER_TX) for i in range(procs)]
    with mp.get_context("spawn").Pool(procs) as pool:
        done = pool.map(_load_range, jobs)
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("update patients set dirty_since = null"))  # loaded, as after earlier ingests
        conn.execute(sa.text("vacuum analyze"))
    engine.dispose()
    return sum(d[0] for d in done), sum(d[1] for d in done), time.perf_counter() - t0


def reset_assessments(engine: sa.Engine) -> None:
    """Back to "loaded, never assessed": no alerts, audit, outbox or nightly runs; no last_as_of."""
    with engine.begin() as conn:
        conn.execute(sa.text("truncate alert_audit, outbox, alerts, nightly_runs restart identity cascade"))
        conn.execute(sa.text("update patients set last_as_of = null, last_assessed_at = null, remission_state = null,"
                             " risk_category = null, summary = null, dirty_since = null"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze patients"))


def _cache_totals(r) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    hits = misses = 0
    for v in r.hgetall(c.CACHE_KEY).values():
        h, m = v.decode().split(",")
        hits, misses = hits + int(h), misses + int(m)
    return hits, misses


def run_config(db_url: str, n_workers: int, as_of: date, chunk: int, logdir: Path) -> list[dict[str, object]]:
    engine = sa.create_engine(db_url)

    def scalar(sql: str, **params: object) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar() or 0)

    reset_assessments(engine)
    c.flush_redis()
    r = c.redis_client()
    c.configure_client(db_url)
    from tasks import jobs

    active = scalar("select count(*) from patients where active")
    chunks = math.ceil(active / chunk)
    out = []
    with c.running_workers(c.bench_env(db_url), logdir / f"n{n_workers}", n_workers) as workers:
        for label, day in (("1: as_of D", as_of), ("2: same as_of", as_of), ("3: as_of D+1", as_of + timedelta(days=1))):
            run_id = c.redis_run_id(r)
            before = c.task_counts(r).get("imn.reassess_chunk", 0)
            hits0, misses0 = _cache_totals(r)
            started = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            jobs.reassess_all.delay(day.isoformat())
            c.wait_until(lambda: c.task_counts(r).get("imn.reassess_chunk", 0) >= before + chunks, 600, 0.02,
                         f"{chunks} reassess_chunk tasks")
            t1 = c.wait_until(lambda: c.broker_drained(r), 600, 0.01, "broker drained")
            if c.redis_run_id(r) != run_id:
                raise RuntimeError("Redis restarted during the run (not by this bench): figures void")
            hits1, misses1 = _cache_totals(r)
            assessed = scalar("select count(*) from patients where last_assessed_at >= :t", t=started)
            current = scalar("select count(*) from patients where active and last_as_of = :d", d=day)
            out.append({
                "workers": n_workers, "run": label, "as_of": day, "wall_s": t1 - t0, "assessed": assessed,
                "current": current, "active": active, "chunks": chunks,
                "cache_hits": hits1 - hits0, "cache_misses": misses1 - misses0,
                "alerts": scalar("select count(*) from alerts"),
                "firing": scalar("select count(*) from alerts where status = 'firing'"),
                "peaks": workers.peaks(), "rss_now": workers.rss_now_kb(), "failed": c.failed_counts(r),
            })
    engine.dispose()
    return out


def profile_in_process(db_url: str, as_of: date, chunk: int) -> None:
    """cProfile of reassess_chunk's body in this process: one chunk cold, then the same chunk for the
    next day with the timeline cache warm."""
    from tasks import runtime
    from tasks.reassess import all_patient_chunks, reassess
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=db_url, broker_url=None, reassess_chunk=chunk, _env_file=None))
    ids = next(all_patient_chunks(rt, chunk))
    for label, day in (("cold cache", as_of + timedelta(days=10)), ("warm cache", as_of + timedelta(days=11))):
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        reassess(rt, ids, day, skip_current=True)
        prof.disable()
        dt = time.perf_counter() - t0
        print(f"\n  profile: reassess_chunk body, {len(ids)} patients, {label}: {dt:.2f} s "
              f"({len(ids) / dt:,.0f} patients/s on one core, under cProfile)")
        print(c.profile_breakdown(prof, c.REASSESS_PARTS, dt))
        print("  top own time:")
        print(c.top_functions(prof, 12))
    runtime.reset()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker process counts")
    ap.add_argument("--load-procs", type=int, default=2, help="processes loading the cohort")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--profile", action="store_true", help="also cProfile one chunk in-process")
    args = ap.parse_args()

    from synthetic.cohort import DEFAULT_SEED
    from tasks.settings import Settings

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    settings = Settings(_env_file=None)
    print(f"machine: {c.machine()}; {c.load_note()} at start")
    print(f"settings: IMN_REASSESS_CHUNK={settings.reassess_chunk}, IMN_TIMELINE_CACHE={settings.timeline_cache} "
          f"(patients per worker process)")
    with tempfile.TemporaryDirectory(prefix="imn-bench-") as tmp, c.bench_database() as db_url:
        events, labs, load_s = load_cohort(db_url, args.patients, seed, args.load_procs)
        print(f"load: {args.patients} patients (seed {seed}), {events} events ({labs} lab results) stored with "
              f"store_events by {args.load_procs} processes in {load_s:.1f} s "
              f"({events / load_s:,.0f} events/s, generation and parsing included)")

        results = []
        for n in [int(x) for x in args.workers.split(",")]:
            rows = run_config(db_url, n, args.as_of, settings.reassess_chunk, Path(tmp) / "logs")
            results += rows
            for res in rows:
                pk = res["peaks"]
                print(f"{n} worker(s), run {res['run']} ({res['as_of']}): {res['wall_s']:.2f} s, "
                      f"assessed {res['assessed']}, current {res['current']}/{res['active']}, "
                      f"{res['chunks']} chunks, cache hits {res['cache_hits']} misses {res['cache_misses']}, "
                      f"alerts {res['alerts']} (firing {res['firing']}), peak RSS parent {pk['parent'] / 1024:.0f} "
                      f"MiB child {pk['child'] / 1024:.0f} MiB, failures/retries {res['failed'] or 'none'}")

        table_rows = []
        for res in results:
            pk = res["peaks"]
            lookups = res["cache_hits"] + res["cache_misses"]
            table_rows.append([
                str(res["workers"]), res["run"], f"{res['wall_s']:.2f}", str(res["assessed"]),
                f"{res['assessed'] / res['wall_s']:,.0f}" if res["assessed"] else "-",
                f"{res['active'] / res['wall_s']:,.0f}",
                f"{100 * res['cache_hits'] / lookups:.0f} %" if lookups else "-",
                f"{pk['child'] / 1024:.0f}", f"{pk['parent'] / 1024:.0f}", f"{pk['sum'] / 1024:.0f}",
            ])
        print(f"\nnightly reassess_all, {args.patients} patients ({events} events), as_of D = {args.as_of}, "
              f"workers = celery prefork processes x concurrency 1:")
        print(c.table(["workers", "run", "wall s", "assessed", "assessed/s", "patients/s", "cache hits",
                       "peak child MiB", "peak parent MiB", "sum MiB"], table_rows))
        print("(patients/s = active patients covered / wall; peak RSS = VmHWM, cumulative over the worker's runs;"
              " 'sum' adds every process's peak, shared pages counted in each)")

        print(f"({c.load_note()} at the end of the runs)")
        if args.profile:
            profile_in_process(db_url, args.as_of, settings.reassess_chunk)


if __name__ == "__main__":
    main()
