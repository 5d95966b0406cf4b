"""Benchmark of the nightly reassessment: tasks.jobs.reassess_all fanned out to real celery workers.

Not a test: it prints figures. Needs the PostgreSQL at 127.0.0.1:5432 (a database of its own,
imn_bench_<random>, dropped at the end) and redis-server (one of its own, bench/_common.py).

    .venv/bin/python bench/nightly.py [--patients 10000] [--base 10000] [--workers 1,2] [--runs 1,2,3]
                                      [--load-procs 2] [--json PATH] [--profile]

1. Load: the synthetic cohort (fixed seed, 3 years from 2023-01-01) is generated, parsed with
   monitor.interop.parse_payload and stored with storage.repository.store_events directly (no
   inbox, no Celery), patients split over --load-procs processes; the time is printed separately.
   Cohorts larger than --base patients: the --base generated patients are stored that way, then
   copied in SQL under new patient ids (`<id>~c001`, ...; identity and content hash suffixed, the
   payload's patient_id rewritten) until the cohort has --patients patients: generating and
   validating 60 million events in Python would take hours here. While copying, the events table
   is UNLOGGED and its two secondary indexes are dropped, then rebuilt (times printed); the table
   stays unlogged, which changes nothing for the nightly run (it only reads events).
   The patients are then marked clean and never assessed, and the tables ANALYZEd.
2. For each worker count N (fresh worker processes, assessments and alerts reset, Redis flushed):
   N `celery -A tasks.worker worker` processes, prefork --concurrency 1 each, and three runs of
   reassess_all (IMN_REASSESS_CHUNK patients per reassess_chunk task), each timed from the send of
   reassess_all until every chunk task ran and the broker is drained:
     run 1: as_of D        (every patient assessed; timeline cache cold)
     run 2: as_of D again  (every patient current: skipped)
     run 3: as_of D+1 day  (every patient assessed again; the in-process timeline caches warm)
   with the peak RSS (VmHWM from /proc) of the worker processes and the cache hits per run.
   --runs picks which of the three to do (e.g. --runs 1 for the largest cohorts).
   Sampled during each run (bench/_resources.py): the RSS of the worker pool children every second
   (at 25/50/75/100 % of the run: flat or growing?), the RSS and private memory (RssAnon) of the
   PostgreSQL backends of the bench database, and the CPU seconds used by the workers and by the
   whole PostgreSQL server, per patient.
--database imn_bench_NAME keeps the loaded cohort in that database for later invocations (--load-only:
load and stop; drop it when done); without it the bench uses a database of its own, dropped at the end.
--json PATH appends {"meta": ..., "rows": [...]} to the JSON list in PATH (created if missing).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import multiprocessing as mp
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import _common as c
from bench._resources import RunSampler

START = date(2023, 1, 1)
YEARS = 3.0
LOAD_PATIENTS_PER_TX = 50  # ~3,400 events per store_events transaction
# --database: the bench migrates a kept database and may reset its schema, so it must be the bench's
# own, never one the server holds for anything else (drop it when done: DROP DATABASE)
KEPT_DATABASE = re.compile(r"imn_bench_[a-z0-9_]{1,40}")


def bench_database_name(name: str) -> str:
    """argparse type of --database: only a name of the bench's own."""
    if not KEPT_DATABASE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{name!r} must match {KEPT_DATABASE.pattern}: the bench resets that "
                                         "database's schema, so it must be the bench's own")
    return name


def _load_range(args: tuple[str, int, int, int, int]) -> tuple[int, int]:
    """Generate, parse and store patients [lo, hi) with store_events (one process of the load)."""
    db_url, seed, lo, hi, step = args
    from monitor.interop import parse_payload
    from monitor.validation import ValidationContext
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
        parsed = parse_payload(("\n".join(lines) + "\n").encode(), "ndjson",
                               context=ValidationContext(received_at=datetime.now(UTC)))
        if parsed.rejected:
            raise RuntimeError(f"synthetic events rejected: {parsed.rejected[:3]}")
        with session(engine) as s:
            repo.store_events(s, None, parsed.events, datetime.now(UTC))
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


COPY_COLUMNS = ("identity, patient_id, kind, status, content_hash, version, is_current, payload, effective_at,"
                " recorded_at, received_at, inbox_id")


def _copy_batch(args: tuple[str, list[int]]) -> float:
    """Copy every generated patient and its events once per suffix number in `ks` (one process)."""
    db_url, ks = args
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        for k in ks:
            sfx = f"~c{k:03d}"
            conn.execute(sa.text(
                "insert into patients (patient_id, active, first_seen_at, last_event_at) select patient_id || :s,"
                " active, first_seen_at, last_event_at from patients where strpos(patient_id, '~') = 0"), {"s": sfx})
            conn.execute(sa.text(
                f"insert into events ({COPY_COLUMNS}) select identity || :s, patient_id || :s, kind, status,"
                " encode(sha256(convert_to(content_hash || :s, 'UTF8')), 'hex'), version, is_current,"
                " jsonb_set(payload, '{patient_id}', to_jsonb(patient_id || :s)), effective_at, recorded_at,"
                " received_at, inbox_id from events where id <= :base_max"),
                {"s": sfx, "base_max": _base_max(conn)})
    engine.dispose()
    return time.perf_counter() - t0


def _base_max(conn: sa.Connection) -> int:
    # the generated events have the lowest ids (they were stored first): copies never copy copies
    return int(conn.execute(sa.text("select max(id) from events e join patients p using (patient_id)"
                                    " where strpos(p.patient_id, '~') = 0")).scalar() or 0)


def copy_cohort(db_url: str, copies: int, procs: int) -> dict[str, float]:
    """Grow the stored cohort to (1 + copies) times its size (see the module docstring)."""
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    out: dict[str, float] = {}
    with engine.connect() as conn:
        t0 = time.perf_counter()
        conn.execute(sa.text("alter table events set unlogged"))
        conn.execute(sa.text("alter table events drop constraint uq_events_identity_content_hash"))
        conn.execute(sa.text("drop index ix_events_patient_current"))
        out["prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs = [(db_url, list(range(1 + i, copies + 1, procs))) for i in range(procs)]
    with mp.get_context("spawn").Pool(procs) as pool:
        pool.map(_copy_batch, jobs)
    out["copy_s"] = time.perf_counter() - t0
    with engine.connect() as conn:
        t0 = time.perf_counter()
        conn.execute(sa.text("set maintenance_work_mem = '1GB'"))
        conn.execute(sa.text("create index ix_events_patient_current on events (patient_id, is_current)"))
        out["index_patient_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute(sa.text("alter table events add constraint uq_events_identity_content_hash"
                             " unique (identity, content_hash)"))
        out["index_unique_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute(sa.text("vacuum analyze"))
        out["vacuum_s"] = time.perf_counter() - t0
        out["events"] = float(conn.execute(sa.text("select count(*) from events")).scalar() or 0)
        out["events_mb"] = float(conn.execute(sa.text("select pg_total_relation_size('events')")).scalar() or 0) / 2**20
    engine.dispose()
    return out


def reset_assessments(engine: sa.Engine) -> None:
    """Back to "loaded, never assessed": no alerts, audit, outbox or nightly runs; no last_as_of."""
    with engine.begin() as conn:
        conn.execute(sa.text("truncate alert_audit, outbox, alerts, nightly_runs restart identity cascade"))
        conn.execute(sa.text("update patients set last_as_of = null, last_assessed_at = null, remission_state = null,"
                             " risk_category = null, summary = null, dirty_since = null, valid_until = null"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze patients"))


def _cache_totals(r) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    hits = misses = 0
    for v in r.hgetall(c.CACHE_KEY).values():
        h, m = v.decode().split(",")
        hits, misses = hits + int(h), misses + int(m)
    return hits, misses


RUNS = (("1: as_of D", 0), ("2: same as_of", 0), ("3: as_of D+1", 1))


def run_config(db_url: str, n_workers: int, as_of: date, chunk: int, logdir: Path,
               runs: list[int]) -> list[dict[str, object]]:
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
        for label, shift in [RUNS[i - 1] for i in runs]:
            day = as_of + timedelta(days=shift)
            run_id = c.redis_run_id(r)
            sampler = RunSampler(workers.pids, c.PG_ADMIN_URL, db_url.rsplit("/", 1)[1])
            before = c.task_counts(r).get("imn.reassess_chunk", 0)
            hits0, misses0 = _cache_totals(r)
            started = datetime.now(UTC)
            sampler.start()
            t0 = time.perf_counter()
            jobs.reassess_all.delay(day.isoformat(), "full")  # the old runs: every patient
            limit = max(600.0, active / 50)  # 1M patients: up to 20,000 s
            c.wait_until(lambda b=before: c.task_counts(r).get("imn.reassess_chunk", 0) >= b + chunks, limit, 0.02,
                         f"{chunks} reassess_chunk tasks")
            t1 = c.wait_until(lambda: c.broker_drained(r), limit, 0.01, "broker drained")
            sampler.stop()
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
                "cpu_s": sampler.cpu, "rss_profile": sampler.rss_profile(),
                "pg_backend_peak_rss_mib": sampler.pg_peak_rss_kb / 1024,
                "pg_backend_peak_anon_mib": sampler.pg_peak_anon_kb / 1024,
                "pg_backends": len(sampler.pg_backends_seen),
            })
    engine.dispose()
    return out


# ------------------------------------------------------------------ due-only vs full nights (issue 14)


def set_active_cohort(engine: sa.Engine, patients: int, base: int) -> int:
    """Make the first `patients` patients active (the base and its first copies), the others inactive:
    one loaded database serves several cohort sizes. Returns the number of active patients."""
    copies = patients // base - 1
    with engine.begin() as conn:
        # a base patient, or one of its first k copies ("<id>~c<k>")
        in_cohort = "(strpos(patient_id, '~') = 0 or substr(patient_id, strpos(patient_id, '~') + 2)::int <= :k)"
        conn.execute(sa.text(f"update patients set active = {in_cohort} where active is distinct from {in_cohort}"),
                     {"k": copies})
        n = int(conn.execute(sa.text("select count(*) from patients where active")).scalar() or 0)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze patients"))
    return n


def copy_state_to_copies(engine: sa.Engine) -> dict[str, float]:
    """After a full run over the base patients only: give every active copy its base patient's stored
    assessment (valid_until, summary, ...) and alerts, ids rewritten. A copy's events are its base
    patient's under another id, so a full run would have stored exactly that; this saves a 35-minute
    full pass at 1M. The first due night then reassesses the due copies against real alerts."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "update patients p set last_as_of = b.last_as_of, last_assessed_at = b.last_assessed_at,"
            " remission_state = b.remission_state, risk_category = b.risk_category, valid_until = b.valid_until,"
            " summary = replace(b.summary::text, b.patient_id, p.patient_id)::jsonb"
            " from patients b where p.active and strpos(p.patient_id, '~') > 0"
            " and b.patient_id = split_part(p.patient_id, '~', 1)"))
        conn.execute(sa.text(
            "insert into alerts (fingerprint, patient_id, rule, episode, severity, status, message, evidence,"
            " reference, raised_at, updated_at, resolved_at, resolution, resolved_reason, snoozed_until,"
            " assigned_to, acknowledged_by, as_of, severity_at_resolution, revision, inhibited_by_fingerprint)"
            " select replace(a.fingerprint, a.patient_id, p.patient_id), p.patient_id, a.rule, a.episode,"
            " a.severity, a.status, replace(a.message, a.patient_id, p.patient_id),"
            " replace(a.evidence::text, a.patient_id, p.patient_id)::jsonb, a.reference, a.raised_at,"
            " a.updated_at, a.resolved_at, a.resolution, a.resolved_reason, a.snoozed_until, a.assigned_to,"
            " a.acknowledged_by, a.as_of, a.severity_at_resolution, a.revision,"
            " replace(a.inhibited_by_fingerprint, a.patient_id, p.patient_id)"
            " from alerts a join patients p on p.active and strpos(p.patient_id, '~') > 0"
            " and split_part(p.patient_id, '~', 1) = a.patient_id"))
        conn.execute(sa.text(
            "update alerts t set inhibited_by = i.id from alerts i"
            " where t.inhibited_by_fingerprint is not null and t.inhibited_by is null"
            " and i.fingerprint = t.inhibited_by_fingerprint"))
        alerts = int(conn.execute(sa.text("select count(*) from alerts")).scalar() or 0)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze patients"))
        conn.execute(sa.text("vacuum analyze alerts"))
    return {"copy_state_s": time.perf_counter() - t0, "alerts": alerts}


def grow_for_due_nights(engine: sa.Engine, patients: int, base: int, last_night: date) -> dict[str, float]:
    """--state-from-base at scale without copying 60 million events: every copy gets a patient row, its
    base patient's stored state and alerts (copy_state_to_copies), but events only when its base
    patient is due on one of the measured nights (valid_until <= last_night). A due-only night reads
    the events of the due patients only (the selection is proven exact in tests/unit/test_due_nightly.py),
    so the others' events are never read; what this leaves out is the size of a full events table
    (52 GiB at 1M, beyond the page cache): the due patients' events are read from a smaller table."""
    copies = patients // base - 1
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into patients (patient_id, active, first_seen_at, last_event_at)"
            " select b.patient_id || '~c' || lpad(k::text, 3, '0'), true, b.first_seen_at, b.last_event_at"
            " from patients b cross join generate_series(1, :n) k where strpos(b.patient_id, '~') = 0"
            " on conflict do nothing"), {"n": copies})
    out["patients_s"] = time.perf_counter() - t0
    set_active_cohort(engine, patients, base)
    out.update(copy_state_to_copies(engine))
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("delete from events where strpos(patient_id, '~') > 0"))
        res = conn.execute(sa.text(
            f"insert into events ({COPY_COLUMNS}) select e.identity || s.sfx, e.patient_id || s.sfx, e.kind,"
            " e.status, encode(sha256(convert_to(e.content_hash || s.sfx, 'UTF8')), 'hex'), e.version,"
            " e.is_current, jsonb_set(e.payload, '{patient_id}', to_jsonb(e.patient_id || s.sfx)), e.effective_at,"
            " e.recorded_at, e.received_at, e.inbox_id"
            " from events e join patients b on b.patient_id = e.patient_id and b.valid_until <= :last"
            " cross join (select '~c' || lpad(k::text, 3, '0') as sfx from generate_series(1, :n) k) s"),
            {"last": last_night, "n": copies})
        out["event_rows_copied"] = float(res.rowcount or 0)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze events"))
    out["events_s"] = time.perf_counter() - t0
    return out


def _timed_run(engine: sa.Engine, r, workers, db_url: str, day: date, mode: str,  # type: ignore[no-untyped-def]
               label: str) -> dict[str, Any]:
    from storage import repository as repo
    from storage.db import session
    from tasks import jobs

    def scalar(sql: str, **params: object) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar() or 0)

    t_sel = time.perf_counter()
    with session(engine) as s:
        due = repo.count_due(s, day)
    count_s = time.perf_counter() - t_sel
    run_id = c.redis_run_id(r)
    sampler = RunSampler(workers.pids, c.PG_ADMIN_URL, db_url.rsplit("/", 1)[1])
    before = c.task_counts(r).get("imn.reassess_all", 0)
    audit0 = scalar("select coalesce(max(id), 0) from alert_audit")
    started = datetime.now(UTC)
    sampler.start()
    t0 = time.perf_counter()
    jobs.reassess_all.delay(day.isoformat(), mode)
    limit = max(600.0, due["active"] / 50)
    c.wait_until(lambda: c.task_counts(r).get("imn.reassess_all", 0) >= before + 1, limit, 0.02, "reassess_all")
    t1 = c.wait_until(lambda: c.broker_drained(r), limit, 0.01, "broker drained")
    sampler.stop()
    if c.redis_run_id(r) != run_id:
        raise RuntimeError("Redis restarted during the run: figures void")
    with engine.connect() as conn:
        actions = dict(conn.execute(sa.text("select action, count(*) from alert_audit where id > :a group by action"),
                                    {"a": audit0}).all())
    return {
        "run": label, "mode": mode, "as_of": day, "wall_s": t1 - t0,
        "assessed": scalar("select count(*) from patients where last_assessed_at >= :t", t=started),
        "due": due, "count_due_s": count_s, "active": due["active"], "changes": actions,
        "peaks": workers.peaks(), "failed": c.failed_counts(r), "cpu_s": sampler.cpu,
        "rss_profile": sampler.rss_profile(),
    }


def run_nights(db_url: str, n_workers: int, as_of: date, logdir: Path, nights: int, full_after: bool,
               state_from_base: bool, base: int, patients: int) -> list[dict[str, Any]]:
    """Night D full (or, with state_from_base, the base full and its state copied), then `nights` due-only
    nights D+1.., then (full_after) one full night: each with fresh workers (VmHWM per mode)."""
    engine = sa.create_engine(db_url)
    reset_assessments(engine)
    c.flush_redis()
    r = c.redis_client()
    c.configure_client(db_url)
    out: list[dict[str, Any]] = []
    env = c.bench_env(db_url)
    if state_from_base:
        set_active_cohort(engine, base, base)
        with c.running_workers(env, logdir / "setup", n_workers) as w:
            out.append(_timed_run(engine, r, w, db_url, as_of, "full", f"full D over the {base:,} base"))
        _print_night(out[-1])
        grown = grow_for_due_nights(engine, patients, base, as_of + timedelta(days=nights))
        out[-1]["grown"] = grown
        print(f"grown to {patients:,} patients: {grown}", flush=True)
    else:
        set_active_cohort(engine, patients, base)
        with c.running_workers(env, logdir / "first", n_workers) as w:
            out.append(_timed_run(engine, r, w, db_url, as_of, "full", "full D (first)"))
    with c.running_workers(env, logdir / "due", n_workers) as w:
        for i in range(1, nights + 1):
            out.append(_timed_run(engine, r, w, db_url, as_of + timedelta(days=i), "due", f"due D+{i}"))
            _print_night(out[-1])
    if full_after and not state_from_base:  # (copies not due hold no events: a full night would be void)
        with c.running_workers(env, logdir / "full", n_workers) as w:
            out.append(_timed_run(engine, r, w, db_url, as_of + timedelta(days=nights + 1), "full",
                                  f"full D+{nights + 1}"))
            _print_night(out[-1])
    engine.dispose()
    for res in out:
        res["workers"] = n_workers
    return out


NIGHT_HEADERS = ["patients", "run", "due (share)", "assessed", "wall s", "worker CPU ms/pt", "peak child MiB",
                 "changes"]


def _night_row(res: dict[str, Any]) -> list[str]:
    due, per = res["due"], max(res["assessed"], 1)
    share = due["due"] / max(due["active"], 1)
    return [f"{res['active']:,}", res["run"], f"{due['due']:,} ({100 * share:.2f} %)", f"{res['assessed']:,}",
            f"{res['wall_s']:.1f}", f"{1000 * res['cpu_s'].get('workers', 0) / per:.2f}",
            f"{res['peaks']['child'] / 1024:.0f}", ", ".join(f"{k} {v}" for k, v in sorted(res["changes"].items()))]


def _print_night(res: dict[str, Any]) -> None:
    print(c.table(NIGHT_HEADERS, [_night_row(res)]), flush=True)


def print_nights(results: list[dict[str, Any]]) -> None:
    print("\nnightly runs, full and due-only (due = never assessed + valid_until <= as_of + dirty; share of the "
          "active patients):")
    print(c.table(NIGHT_HEADERS, [_night_row(r) for r in results]))
    dues = [r for r in results if r["mode"] == "due"]
    fulls = [r for r in results if r["mode"] == "full" and r["due"]["new"] == 0]
    if dues:
        shares = [r["due"]["due"] / max(r["active"], 1) for r in dues]
        print(f"share of patients due per night: min {100 * min(shares):.2f} %, mean "
              f"{100 * sum(shares) / len(shares):.2f} %, max {100 * max(shares):.2f} % over {len(dues)} nights")
        mean_due = sum(r["wall_s"] for r in dues) / len(dues)
        print(f"due-only nightly wall: mean {mean_due:.1f} s (selection count query {dues[0]['count_due_s']:.2f} s), "
              f"child VmHWM {max(r['peaks']['child'] for r in dues) / 1024:.0f} MiB")
        if fulls:
            f = fulls[-1]
            print(f"full nightly (same run, same machine): {f['wall_s']:.1f} s, child VmHWM "
                  f"{f['peaks']['child'] / 1024:.0f} MiB; due-only / full wall = {mean_due / f['wall_s']:.3f}")


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



@contextmanager
def kept_database(name: str, template: str | None = None) -> Iterator[str]:
    """--database NAME: a database kept between invocations (created and migrated when missing), so a
    large cohort is loaded once and measured later, when the machine is quiet. --template: created as
    a file copy of that database (e.g. the loaded 10k base, to grow it into a larger cohort)."""
    admin = sa.create_engine(c.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": name}).scalar():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    url = c.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from storage.db import upgrade

    engine = sa.create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


def _count(db_url: str, sql: str) -> int:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def _load(db_url: str, args: argparse.Namespace, base: int, seed: int, meta: dict[str, Any]) -> None:
    held = _count(db_url, "select count(*) from patients")
    if held == base and args.patients > base and not _count(db_url, "select count(*) from alerts"):
        events = _count(db_url, "select count(*) from events")  # the base is there (--template): grow it
        print(f"database holds the {base} base patients ({events} events): copying them", flush=True)
    else:
        if held:
            c.reset_schema(db_url)  # a kept database holding another cohort: start again
        events, labs, load_s = load_cohort(db_url, base, seed, args.load_procs)
        print(f"load: {base} patients (seed {seed}), {events} events ({labs} lab results) stored with "
              f"store_events by {args.load_procs} processes in {load_s:.1f} s "
              f"({events / load_s:,.0f} events/s, generation and parsing included)", flush=True)
        meta.update({"generated_events": events, "generated_load_s": load_s})
    if args.patients > base:
        copied = copy_cohort(db_url, args.patients // base - 1, args.load_procs)
        meta["copy"] = copied
        print(f"copies: {args.patients // base - 1} x {base} patients -> {copied['events']:,.0f} events "
              f"({copied['events_mb'] / 1024:.1f} GiB with indexes): copy {copied['copy_s']:.0f} s "
              f"({(copied['events'] - events) / copied['copy_s']:,.0f} rows/s), patient index "
              f"{copied['index_patient_s']:.0f} s, unique key {copied['index_unique_s']:.0f} s, "
              f"vacuum analyze {copied['vacuum_s']:.0f} s", flush=True)


def _row(res: dict[str, Any]) -> list[str]:
    pk, cpu, rp = res["peaks"], res["cpu_s"], res["rss_profile"]
    lookups = res["cache_hits"] + res["cache_misses"]
    per = max(res["assessed"], 1)
    return [
        f"{res['active']:,}", str(res["workers"]), res["run"], f"{res['wall_s']:.1f}", f"{res['assessed']:,}",
        f"{res['assessed'] / res['wall_s']:,.0f}" if res["assessed"] else "-",
        f"{100 * res['cache_hits'] / lookups:.0f} %" if lookups else "-",
        f"{1000 * cpu.get('workers', 0) / per:.2f}" if res["assessed"] else "-",
        f"{1000 * cpu.get('postgres', 0) / per:.2f}" if res["assessed"] else "-",
        f"{pk['child'] / 1024:.0f}",
        f"{rp.get('rss_25', 0):.0f} / {rp.get('rss_50', 0):.0f} / {rp.get('rss_100', 0):.0f}" if rp else "-",
        f"{res['pg_backend_peak_anon_mib']:.0f} ({res['pg_backend_peak_rss_mib']:.0f})",
    ]


HEADERS = ["patients", "workers", "run", "wall s", "assessed", "assessed/s", "cache hits", "worker CPU ms/pt",
           "PG CPU ms/pt", "peak child MiB", "children RSS 25/50/100 % MiB", "PG backend MiB private (RSS)"]


def _jsonable(res: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--base", type=int, default=10_000, help="patients generated; more are copies (docstring)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker process counts")
    ap.add_argument("--runs", default="1,2,3", help="which runs: 1 as_of D, 2 same again, 3 as_of D+1")
    ap.add_argument("--load-procs", type=int, default=2, help="processes loading the cohort")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--json", type=Path, default=None, help="append the results to this JSON file")
    ap.add_argument("--profile", action="store_true", help="also cProfile one chunk in-process")
    ap.add_argument("--database", default=None, type=bench_database_name,
                    help="use and keep this database (load it only when it does not hold --patients patients)")
    ap.add_argument("--load-only", action="store_true", help="load the cohort and stop (with --database)")
    ap.add_argument("--template", default=None,
                    help="with --database: create it as a copy of this database (holding the loaded base)")
    ap.add_argument("--nights", type=int, default=0,
                    help="issue 14: night D full, then this many due-only nights, then one full night")
    ap.add_argument("--active", default=None,
                    help="with --nights: comma-separated cohort sizes to run in turn (patients made active)")
    ap.add_argument("--no-full-after", action="store_true", help="with --nights: skip the last full night")
    ap.add_argument("--state-from-base", action="store_true",
                    help="with --nights: full night over the base only, its state copied to the copies")
    args = ap.parse_args()

    from synthetic.cohort import DEFAULT_SEED
    from tasks.settings import Settings

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    base = min(args.patients, args.base)
    if args.patients % base:
        ap.error("--patients must be a multiple of --base")
    runs = [int(x) for x in args.runs.split(",")]
    settings = Settings(_env_file=None)
    print(f"machine: {c.machine()}; {c.load_note()} at start", flush=True)
    print(f"settings: IMN_REASSESS_CHUNK={settings.reassess_chunk}, IMN_TIMELINE_CACHE={settings.timeline_cache} "
          f"(patients per worker process)", flush=True)
    meta: dict[str, Any] = {"patients": args.patients, "base": base, "seed": seed, "as_of": args.as_of.isoformat(),
                            "machine": c.machine(), "load_start": os.getloadavg()}
    database = kept_database(args.database, args.template) if args.database else c.bench_database()
    c.redis_url()  # the broker: a redis-server of the bench's own unless IMN_BENCH_REDIS_URL names one
    with tempfile.TemporaryDirectory(prefix="imn-bench-") as tmp, database as db_url:
        if args.database and _count(db_url, "select count(*) from patients") == args.patients:
            print(f"database {args.database} already holds {args.patients} patients: not loaded again", flush=True)
        elif args.state_from_base and _count(db_url, "select count(*) from patients where strpos(patient_id, '~') = 0"
                                             ) == base and not args.load_only:
            print(f"database {args.database} holds the {base:,} base patients: the copies are made after the "
                  "base's full night (--state-from-base)", flush=True)
        else:
            _load(db_url, args, base, seed, meta)
        if args.load_only:
            return
        results = []
        if args.nights:
            sizes = [int(x) for x in args.active.split(",")] if args.active else [args.patients]
            for size in sizes:
                for n in [int(x) for x in args.workers.split(",")]:
                    print(f"\n--- {size:,} active patients, {n} workers", flush=True)
                    results += run_nights(db_url, n, args.as_of, Path(tmp) / "logs" / str(size), args.nights,
                                          not args.no_full_after, args.state_from_base, base, size)
            print_nights(results)
            print(f"({c.load_note()} at the end of the runs)")
            if args.json:
                meta["load_end"] = os.getloadavg()
                prior = json.loads(args.json.read_text()) if args.json.exists() else []
                prior.append({"meta": {**meta, "kind": "nights"}, "rows": [_jsonable(r) for r in results]})
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(prior, indent=1, default=str))
            return

        for n in [int(x) for x in args.workers.split(",")]:
            rows = run_config(db_url, n, args.as_of, settings.reassess_chunk, Path(tmp) / "logs", runs)
            results += rows
            for res in rows:
                print(c.table(HEADERS, [_row(res)]), flush=True)
                print(f"  alerts {res['alerts']} (firing {res['firing']}), failures/retries "
                      f"{res['failed'] or 'none'}, PostgreSQL backends seen {res['pg_backends']}", flush=True)

        print(f"\nnightly reassess_all, {args.patients} patients, as_of D = {args.as_of}, "
              f"workers = celery prefork processes x concurrency 1:")
        print(c.table(HEADERS, [_row(r) for r in results]))
        print("(assessed/s = patients assessed / wall; CPU ms per patient assessed: all worker processes, and the "
              "whole PostgreSQL server; peak child = VmHWM of a pool child, cumulative over the worker's runs; "
              "children RSS = sum over pool children at 25/50/100 % of the run; PG backend = largest private "
              "memory (RssAnon) of a backend of the bench database, its VmRSS in brackets)")
        print(f"({c.load_note()} at the end of the runs)")
        meta["load_end"] = os.getloadavg()
        if args.json:
            prior = json.loads(args.json.read_text()) if args.json.exists() else []
            prior.append({"meta": meta, "rows": [_jsonable(r) for r in results]})
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(prior, indent=1, default=str))
        if args.profile:
            profile_in_process(db_url, args.as_of, settings.reassess_chunk)


if __name__ == "__main__":
    main()
