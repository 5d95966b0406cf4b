"""Benchmark of ingest end to end: NDJSON file -> Redis -> celery workers -> PostgreSQL -> reassessed.

Not a test: it prints figures. Needs the PostgreSQL at 127.0.0.1:5432 (a database of its own,
imn_bench_<random>, dropped at the end) and redis-server (one of its own, bench/_common.py).

    .venv/bin/python bench/ingest.py [--patients 2000] [--workers 1,2,4,8] [--noop 5000] [--json PATH]
                                     [--profile]

For each worker count N: a fresh schema, N real `celery -A tasks.worker worker` processes (prefork,
--concurrency 1 each: N pool children doing the work), then
  1. the ceiling: N_noop no-op tasks (bench._worker_ext) sent to the same queue of the same broker,
     timed until all ran (a Redis counter incremented by the task);
  2. the pipeline: `imn-monitor ingest --no-wait --as-of D file` (accept: bytes -> inbox rows of
     IMN_BATCH_LINES lines, one ingest_batch per row), timed from the command's start until every
     inbox row is processed AND no patient is dirty (every touched patient reassessed); then until
     the broker is drained (redundant reassess_patient messages of a burst finish after that).
The ratio compares task throughput: the pipeline's tasks per second (ingest_batch +
reassess_patient, counted by the workers) over the no-op tasks per second; "ceiling lab/s" is
what the pipeline would reach if each of its tasks cost what a no-op costs.
Also: store_events alone, in-process (no Celery, no reassessment), once per invocation.

The raw PostgreSQL bulk insert rate, measured in every worker-count run (after its workers stopped):
the same event rows (as store_events builds them: identity, content hash, version 1, payload,
effective_at, recorded_at, ...) prepared once in memory, then written into a scratch copy of the
events table (CREATE TABLE events_scratch (LIKE events INCLUDING ALL): same columns, defaults,
unique key and indexes; no foreign keys) one transaction per IMN_BATCH_LINES rows, timed from the
client-side encoding to the commit, in two ways:
  - COPY: psycopg's cursor.copy(), one row at a time with write_row (payload as JSON text);
  - INSERT: the very statement store_events uses on PostgreSQL (event_store._RECORDSET_SQL aimed at
    the scratch table: jsonb_to_recordset(:rows) ... ON CONFLICT (identity, content_hash) DO NOTHING,
    5,000 rows per statement, the rows encoded with json.dumps as _insert_rows_recordset does).
The pipeline's events/s is then given as a ratio to each raw rate, and its lab results/s (and its
tasks/s) as a ratio to the no-op tasks/s.

--json PATH writes {"meta": {...}, "rows": [one dict per worker count]} (rates per second, times in
seconds, peak RSS in MiB, load averages as [1, 5, 15]-minute triples) for a plot script.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from bench import _common as c  # noqa: E402

START = date(2023, 1, 1)
YEARS = 3.0


def write_cohort(path: Path, patients: int, seed: int) -> tuple[int, int]:
    from synthetic.cohort import iter_cohort

    lines = labs = 0
    with path.open("w") as f:
        for events in iter_cohort(patients, START, YEARS, seed):
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
                lines += 1
                labs += e["type"] == "lab"
    return lines, labs


def store_events_rate(db_url: str, data: bytes, batch_lines: int) -> dict[str, float]:
    """The parsed file stored with storage.repository.store_events alone, one transaction per batch
    of `batch_lines` lines (as ingest_batch does), on an empty schema: events per second."""
    from monitor.interop import ValidationContext, parse_payload
    from storage import repository as repo
    from storage.db import make_engine, session

    c.reset_schema(db_url)
    lines = data.splitlines(keepends=True)
    context = ValidationContext(received_at=datetime.now(UTC))  # the time of receipt bounds clinical dates
    t0 = time.perf_counter()
    parsed = [parse_payload(b"".join(lines[i:i + batch_lines]), "ndjson", context=context).events
              for i in range(0, len(lines), batch_lines)]
    t_parse = time.perf_counter() - t0
    engine = make_engine(db_url)
    n = 0
    t0 = time.perf_counter()
    for events in parsed:
        with session(engine) as s:
            repo.store_events(s, None, events, datetime.now(timezone.utc))
        n += len(events)
    t_store = time.perf_counter() - t0
    engine.dispose()
    return {"events": n, "parse_s": t_parse, "store_s": t_store}


SCRATCH = "events_scratch"
_RAW_COLUMNS = ("identity", "patient_id", "kind", "status", "content_hash", "version", "is_current", "payload",
                "effective_at", "recorded_at", "received_at", "inbox_id")


def event_rows(data: bytes, batch_lines: int) -> list[list[dict[str, object]]]:
    """The rows store_events would insert for this file on an empty schema (first versions, all
    current), batch by batch of `batch_lines` lines; built once, outside any timing."""
    from monitor.interop import ValidationContext, parse_payload
    from storage.event_store import _effective_at, _stamp

    lines = data.splitlines(keepends=True)
    now = datetime.now(UTC)
    context = ValidationContext(received_at=now)
    out = []
    for i in range(0, len(lines), batch_lines):
        events = parse_payload(b"".join(lines[i:i + batch_lines]), "ndjson", context=context).events
        seen: set[tuple[str, str]] = set()
        rows = []
        for ev in _stamp(events, now):
            key = (ev.identity, ev.content_hash)
            if key in seen:
                continue
            seen.add(key)
            rows.append({"identity": key[0], "patient_id": ev.patient_id, "kind": ev.type, "status": ev.status,
                         "content_hash": key[1], "version": 1, "is_current": True,
                         "payload": ev.model_dump(mode="json"), "effective_at": _effective_at(ev),
                         "recorded_at": getattr(ev, "recorded_at", None), "received_at": now, "inbox_id": None})
        out.append(rows)
    return out


def raw_insert_rates(db_url: str, batches: list[list[dict[str, object]]]) -> dict[str, float]:
    """Rows per second into a scratch copy of `events`: COPY, then store_events' jsonb_to_recordset
    INSERT ... ON CONFLICT DO NOTHING; one transaction per batch; the table emptied in between."""
    from storage.event_store import _RECORDSET_SQL, _iso

    sql = _RECORDSET_SQL.text
    if "INSERT INTO events (" not in sql:
        raise RuntimeError("storage.event_store._RECORDSET_SQL changed shape; adapt the bench")
    insert_sql = sa.text(sql.replace("INSERT INTO events (", f"INSERT INTO {SCRATCH} (", 1))
    copy_sql = f"COPY {SCRATCH} ({', '.join(_RAW_COLUMNS)}) FROM STDIN"
    n = sum(len(b) for b in batches)
    engine = sa.create_engine(db_url)
    out: dict[str, float] = {"rows": n}
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {SCRATCH}"))
            conn.execute(sa.text(f"CREATE TABLE {SCRATCH} (LIKE events INCLUDING ALL)"))
        with engine.connect() as conn:
            pg = conn.connection.driver_connection  # the psycopg connection under SQLAlchemy's
            t0 = time.perf_counter()
            for rows in batches:
                with pg.cursor() as cur, cur.copy(copy_sql) as cp:
                    for r in rows:
                        cp.write_row([json.dumps(r[k], separators=(",", ":")) if k == "payload" else r[k]
                                      for k in _RAW_COLUMNS])
                pg.commit()
            out["copy_s"] = time.perf_counter() - t0
            got = conn.execute(sa.text(f"SELECT count(*) FROM {SCRATCH}")).scalar()
            conn.execute(sa.text(f"TRUNCATE {SCRATCH}"))
            conn.commit()
            if got != n:
                raise RuntimeError(f"COPY stored {got} of {n} rows")

            t0 = time.perf_counter()
            for rows in batches:
                for i in range(0, len(rows), 5000):  # as _insert_rows_recordset
                    doc = [{**r, "effective_at": _iso(r["effective_at"]), "recorded_at": _iso(r["recorded_at"]),
                            "received_at": _iso(r["received_at"])} for r in rows[i:i + 5000]]
                    conn.execute(insert_sql, {"rows": json.dumps(doc, separators=(",", ":"))})
                conn.commit()
            out["insert_s"] = time.perf_counter() - t0
            got = conn.execute(sa.text(f"SELECT count(*) FROM {SCRATCH}")).scalar()
            if got != n:
                raise RuntimeError(f"jsonb_to_recordset INSERT stored {got} of {n} rows")
            conn.execute(sa.text(f"DROP TABLE {SCRATCH}"))
            conn.commit()
    finally:
        engine.dispose()
    out["copy_rows_per_s"] = n / out["copy_s"]
    out["insert_rows_per_s"] = n / out["insert_s"]
    return out


def one_run(db_url: str, path: Path, n_workers: int, n_noop: int, as_of: date, logdir: Path,
            expect_events: int, raw_batches: list[list[dict[str, object]]]) -> dict[str, object]:
    load_start = os.getloadavg()
    c.reset_schema(db_url)
    c.flush_redis()
    r = c.redis_client()
    app = c.configure_client(db_url)
    env = c.bench_env(db_url)
    engine = sa.create_engine(db_url)

    def scalar(sql: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)

    with c.running_workers(env, logdir / f"n{n_workers}", n_workers) as workers:
        noop_per_s, publish_per_s = c.noop_rate(app, r, n_noop)
        r.delete(c.TASKS_KEY, c.TASK_S_KEY)

        run_id = c.redis_run_id(r)
        t0 = time.perf_counter()
        cli = subprocess.run([str(Path(sys.executable).with_name("imn-monitor")), "ingest", "--no-wait", "--json",
                              "--as-of", as_of.isoformat(), str(path)],
                             env=env, capture_output=True, text=True, timeout=600)
        t_cli = time.perf_counter()
        if cli.returncode != 0:
            raise RuntimeError(f"imn-monitor ingest failed: {cli.stderr[-2000:]}")
        busy_sql = ("select (select count(*) from inbox where state <> 'processed')"
                    " + (select count(*) from patients where dirty_since is not null)")
        t_settled = c.wait_until(lambda: scalar(busy_sql) == 0, 1200, 0.05, "pipeline settled")
        t_drained = c.wait_until(lambda: c.broker_drained(r), 600, 0.02, "broker drained")
        peaks = workers.peaks()
        if c.redis_run_id(r) != run_id:
            raise RuntimeError("Redis restarted during the run (not by this bench): figures void")

    counts = c.task_counts(r)
    task_s = c.task_seconds(r)
    failed = c.failed_counts(r)
    events = scalar("select count(*) from events")
    inbox_counts: dict[str, int] = {}
    with engine.connect() as conn:
        for (cnt,) in conn.execute(sa.text("select counts from inbox")):
            for k, v in (cnt or {}).items():
                inbox_counts[k] = inbox_counts.get(k, 0) + int(v)
    patients = scalar("select count(*) from patients")
    not_current = scalar(f"select count(*) from patients where last_as_of is distinct from '{as_of}'")
    alerts = scalar("select count(*) from alerts")
    engine.dispose()
    raw = raw_insert_rates(db_url, raw_batches)  # the workers have stopped
    return {
        "raw": raw, "load_start": load_start, "load_end": os.getloadavg(),
        "workers": n_workers, "noop_per_s": noop_per_s, "publish_per_s": publish_per_s, "task_s": task_s,
        "cli_s": t_cli - t0, "settled_s": t_settled - t0, "drained_s": t_drained - t0,
        "tasks": counts, "failed": failed, "events": events, "expect_events": expect_events,
        "inbox_counts": inbox_counts, "patients": patients, "not_current": not_current, "alerts": alerts,
        "peaks": peaks,
    }


def profile_in_process(db_url: str, data: bytes, batch_lines: int, as_of: date, batches: int = 4) -> None:
    """cProfile of what one worker does, in this process (embedded runtime, same PostgreSQL): a few
    ingest_batch bodies, then reassess_patient bodies for the patients they touched."""
    from tasks import runtime
    from tasks.ingest import accept, process_inbox
    from tasks.reassess import reassess
    from tasks.settings import Settings

    c.reset_schema(db_url)
    rt = runtime.init(Settings(database_url=db_url, broker_url=None, batch_lines=batch_lines, _env_file=None))
    lines = data.splitlines(keepends=True)[: batches * batch_lines]
    ids = [a.inbox_id for a in accept(rt, b"".join(lines), "ndjson", "profile.ndjson")]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    touched: set[str] = set()
    for inbox_id in ids:
        counts = process_inbox(rt, inbox_id)
        touched |= counts.patients if counts else set()
    prof.disable()
    t_ingest = time.perf_counter() - t0
    print(f"\n  profile: ingest_batch body x{len(ids)} ({len(lines)} lines) in {t_ingest:.2f} s "
          f"({len(lines) / t_ingest:,.0f} lines/s on one core)")
    print(c.profile_breakdown(prof, [
        ("parse_payload (NDJSON -> validated events)", "monitor/interop/__init__.py", "parse_payload"),
        ("store_events", "storage/event_store.py", "store_events"),
        ("  _lock_patients (upsert + FOR UPDATE)", "storage/event_store.py", "_lock_patients"),
        ("  _existing_versions (SELECT by identity)", "storage/event_store.py", "_existing_versions"),
        ("  _insert_rows (jsonb_to_recordset INSERT)", "storage/event_store.py", "_insert_rows"),
        ("  _mark_dirty", "storage/event_store.py", "_mark_dirty"),
        ("quarantine_items + inbox_mark", "storage/inbox.py", "inbox_mark"),
        ("commit", "sqlalchemy/orm/session.py", "commit"),
        ("psycopg execute (all SQL, server wait included)", "psycopg/cursor.py", "execute"),
    ], t_ingest))
    print("  top own time:")
    print(c.top_functions(prof, 12))

    pids = sorted(touched)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for pid in pids:  # reassess_patient: one patient per task, one transaction each
        reassess(rt, [pid], as_of)
    prof.disable()
    t_re = time.perf_counter() - t0
    print(f"\n  profile: reassess_patient body x{len(pids)} in {t_re:.2f} s "
          f"({len(pids) / t_re:,.0f} patients/s on one core)")
    print(c.profile_breakdown(prof, c.REASSESS_PARTS, t_re))
    print("  top own time:")
    print(c.top_functions(prof, 12))
    runtime.reset()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--workers", default="1,2,4,8", help="comma-separated worker process counts")
    ap.add_argument("--noop", type=int, default=5000, help="no-op tasks per ceiling measurement")
    ap.add_argument("--seed", type=int, default=None, help="cohort seed (default: synthetic's)")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--profile", action="store_true", help="also cProfile one worker's work in-process")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the result rows as JSON here")
    args = ap.parse_args()

    from synthetic.cohort import DEFAULT_SEED
    from tasks.settings import Settings

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    batch_lines = Settings(_env_file=None).batch_lines
    machine = c.machine()
    load_start = os.getloadavg()
    print(f"machine: {machine}; {c.load_note()} at start")
    c.wait_for_bench_redis()
    with tempfile.TemporaryDirectory(prefix="imn-bench-") as tmp, c.bench_database() as db_url:
        path = Path(tmp) / "cohort.ndjson"
        t0 = time.perf_counter()
        lines, labs = write_cohort(path, args.patients, seed)
        print(f"cohort: {args.patients} patients (seed {seed}), {lines} events of which {labs} lab results, "
              f"{path.stat().st_size / 1e6:.1f} MB NDJSON, {-(-lines // batch_lines)} batches of {batch_lines} "
              f"lines (written in {time.perf_counter() - t0:.1f} s)")
        data = path.read_bytes()

        raw = store_events_rate(db_url, data, batch_lines)
        print(f"store_events alone (in-process, one transaction per {batch_lines}-line batch, empty schema): "
              f"{raw['events'] / raw['store_s']:,.0f} events/s ({raw['store_s']:.1f} s); "
              f"parse_payload: {raw['events'] / raw['parse_s']:,.0f} events/s ({raw['parse_s']:.1f} s)")

        raw_batches = event_rows(data, batch_lines)
        results = []
        for n in [int(x) for x in args.workers.split(",")]:
            res = one_run(db_url, path, n, args.noop, args.as_of, Path(tmp) / "logs", lines, raw_batches)
            results.append(res)
            t = res["tasks"]
            print(f"\n{n} worker process(es): no-op {res['noop_per_s']:,.0f} tasks/s run "
                  f"({args.noop} pre-queued; this client publishes {res['publish_per_s']:,.0f} tasks/s)")
            print(f"  ingest CLI (accept + enqueue) {res['cli_s']:.1f} s; settled {res['settled_s']:.1f} s; "
                  f"broker drained {res['drained_s']:.1f} s")
            print(f"  tasks run: {t}; failures/retries: {res['failed'] or 'none'}")
            ts = res["task_s"]
            busy = sum(ts.values()) / (n * res["settled_s"])
            print("  time inside tasks: " + ", ".join(f"{k} {v:.1f} s ({1000 * v / max(t.get(k, 1), 1):.1f} ms each)"
                                                      for k, v in sorted(ts.items()))
                  + f"; pool children busy {100 * busy:.0f} % of the wall time")
            print(f"  inbox counts: {res['inbox_counts']}; events stored {res['events']} of {res['expect_events']} "
                  f"lines; patients {res['patients']}, not assessed as of {args.as_of}: {res['not_current']}; "
                  f"alerts {res['alerts']}")
            pk = res["peaks"]
            print(f"  peak RSS (VmHWM): parent {pk['parent'] / 1024:.0f} MiB, pool child {pk['child'] / 1024:.0f} MiB, "
                  f"sum of {pk['processes']} processes {pk['sum'] / 1024:.0f} MiB")
            rw = res["raw"]
            print(f"  raw bulk insert of the same {rw['rows']:.0f} rows into {SCRATCH}: COPY "
                  f"{rw['copy_rows_per_s']:,.0f} rows/s ({rw['copy_s']:.1f} s), jsonb_to_recordset INSERT "
                  f"{rw['insert_rows_per_s']:,.0f} rows/s ({rw['insert_s']:.1f} s)")
            la, lb = res["load_start"], res["load_end"]
            print(f"  load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} at start, {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} at end")
            if failed := res["failed"]:
                print(f"  WARNING: failures or retries: {failed}")

        rows, json_rows = [], []
        for res in results:
            tasks = sum(v for k, v in res["tasks"].items() if k.startswith("imn."))
            wall = res["settled_s"]
            lab_ps, ev_ps, tps = labs / wall, lines / wall, tasks / wall
            rw, pk = res["raw"], res["peaks"]
            rows.append([str(res["workers"]), f"{wall:.1f}", f"{lab_ps:,.0f}", f"{ev_ps:,.0f}", str(tasks),
                         f"{res['noop_per_s']:,.0f}", f"{lab_ps / res['noop_per_s']:.1f}",
                         f"{tps / res['noop_per_s']:.3f}", f"{rw['copy_rows_per_s']:,.0f}",
                         f"{rw['insert_rows_per_s']:,.0f}", f"{ev_ps / rw['copy_rows_per_s']:.3f}",
                         f"{ev_ps / rw['insert_rows_per_s']:.3f}", f"{pk['child'] / 1024:.0f}",
                         f"{res['load_start'][0]:.1f}-{res['load_end'][0]:.1f}"])
            json_rows.append({
                "workers": res["workers"], "wall_s": wall, "lab_per_s": lab_ps, "events_per_s": ev_ps,
                "tasks": tasks, "tasks_per_s": tps, "task_counts": res["tasks"], "failed": res["failed"],
                "noop_per_s": res["noop_per_s"], "publish_per_s": res["publish_per_s"],
                "lab_per_s_over_noop_per_s": lab_ps / res["noop_per_s"],
                "tasks_per_s_over_noop_per_s": tps / res["noop_per_s"],
                "raw_copy_rows_per_s": rw["copy_rows_per_s"], "raw_insert_rows_per_s": rw["insert_rows_per_s"],
                "events_per_s_over_raw_copy": ev_ps / rw["copy_rows_per_s"],
                "events_per_s_over_raw_insert": ev_ps / rw["insert_rows_per_s"],
                "cli_s": res["cli_s"], "drained_s": res["drained_s"], "task_s": res["task_s"],
                "events_stored": res["events"], "patients": res["patients"], "not_current": res["not_current"],
                "alerts": res["alerts"],
                "peak_rss_mib": {"parent": pk["parent"] / 1024, "child": pk["child"] / 1024,
                                 "sum": pk["sum"] / 1024, "processes": pk["processes"]},
                "loadavg_start": list(res["load_start"]), "loadavg_end": list(res["load_end"]),
            })
        print(f"\nend to end, {args.patients} patients, {labs} lab results ({lines} events), "
              f"workers = celery prefork processes x concurrency 1:")
        print(c.table(["workers", "wall s", "lab results/s", "events/s", "tasks", "no-op tasks/s",
                       "lab/s / no-op/s", "tasks/s / no-op/s", "raw COPY rows/s", "raw INSERT rows/s",
                       "events/s / COPY", "events/s / INSERT", "peak child MiB", "load 1-min"], rows))
        print("(raw = the same rows into a scratch copy of events, one transaction per batch, measured in the "
              "same run after the workers stopped; INSERT = store_events' jsonb_to_recordset statement; "
              "load 1-min = at the start and end of that worker count's run)")

        print(f"({c.load_note()} at the end of the runs)")
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            meta = {"bench": "ingest", "machine": machine, "patients": args.patients, "seed": seed,
                    "as_of": args.as_of.isoformat(), "events": lines, "lab_results": labs,
                    "batch_lines": batch_lines, "noop_tasks": args.noop,
                    "store_events_alone_events_per_s": raw["events"] / raw["store_s"],
                    "parse_payload_events_per_s": raw["events"] / raw["parse_s"],
                    "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg()),
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
            args.json.write_text(json.dumps({"meta": meta, "rows": json_rows}, indent=2) + "\n")
            print(f"wrote {args.json}")
        if args.profile:
            profile_in_process(db_url, data, batch_lines, args.as_of)


if __name__ == "__main__":
    main()
