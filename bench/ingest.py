"""Benchmark of ingest end to end: NDJSON file -> Redis -> celery workers -> PostgreSQL -> reassessed.

Not a test (design.md, "Performance yardsticks"). Needs the PostgreSQL at 127.0.0.1:5432 (a database
of its own, imn_bench_<random>, dropped at the end) and Redis database 12 (flushed).

    .venv/bin/python bench/ingest.py [--patients 2000] [--workers 1,2,4] [--noop 5000] [--profile]

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
Also: store_events alone, in-process (the raw PostgreSQL bulk rate, no Celery, no reassessment).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
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
    from monitor.interop import parse_payload
    from storage import repository as repo
    from storage.db import make_engine, session

    c.reset_schema(db_url)
    lines = data.splitlines(keepends=True)
    t0 = time.perf_counter()
    parsed = [parse_payload(b"".join(lines[i:i + batch_lines]), "ndjson").events
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


def one_run(db_url: str, path: Path, n_workers: int, n_noop: int, as_of: date, logdir: Path,
            expect_events: int) -> dict[str, object]:
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
    return {
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
    ap.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    ap.add_argument("--noop", type=int, default=5000, help="no-op tasks per ceiling measurement")
    ap.add_argument("--seed", type=int, default=None, help="cohort seed (default: synthetic's)")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--profile", action="store_true", help="also cProfile one worker's work in-process")
    args = ap.parse_args()

    from synthetic.cohort import DEFAULT_SEED
    from tasks.settings import Settings

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    batch_lines = Settings(_env_file=None).batch_lines
    print(f"machine: {c.machine()}; {c.load_note()} at start")
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

        results = []
        for n in [int(x) for x in args.workers.split(",")]:
            res = one_run(db_url, path, n, args.noop, args.as_of, Path(tmp) / "logs", lines)
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
            print(f"  peak RSS (VmHWM): parent {pk['parent'] / 1024:.0f} MiB, pool child {pk['child'] / 1024:.0f} MiB")
            if failed := res["failed"]:
                print(f"  WARNING: failures or retries: {failed}")

        rows = []
        for res in results:
            tasks = sum(v for k, v in res["tasks"].items() if k.startswith("imn."))
            pipeline_tps = tasks / res["settled_s"]
            ceiling_labs = res["noop_per_s"] * labs / tasks
            rows.append([str(res["workers"]), f"{res['settled_s']:.1f}", f"{labs / res['settled_s']:,.0f}",
                         f"{lines / res['settled_s']:,.0f}", str(tasks), f"{pipeline_tps:,.0f}",
                         f"{res['noop_per_s']:,.0f}", f"{ceiling_labs:,.0f}",
                         f"{pipeline_tps / res['noop_per_s']:.3f}"])
        print(f"\nend to end, {args.patients} patients, {labs} lab results ({lines} events), "
              f"workers = celery prefork processes x concurrency 1:")
        print(c.table(["workers", "wall s", "lab results/s", "events/s", "tasks", "tasks/s",
                       "no-op tasks/s", "ceiling lab/s", "ratio"], rows))

        print(f"({c.load_note()} at the end of the runs)")
        if args.profile:
            profile_in_process(db_url, data, batch_lines, args.as_of)


if __name__ == "__main__":
    main()
