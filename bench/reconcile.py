"""Benchmark of alert reconciliation alone: storage.repository.reconcile_many, in-process, on PostgreSQL.

Not a test. The nightly (bench/nightly.py) spends most of its time loading timelines and assessing;
reconciliation is a small share of it, too small to see in the nightly's wall time on a shared
machine. This times it alone, on a database of its own (imn_bench_<random>, dropped at the end):

    .venv/bin/python bench/reconcile.py [--patients 10000] [--chunk 500]

--patients patient rows (no events: reconciliation reads alerts only), each given four synthetic
findings (relapse critical, titer_rising warning, csa_trough_low warning, monitoring_overdue info),
reconciled in chunks of --chunk patients (one transaction each, as tasks.reassess does), through
four passes:
  1 fire        every finding new: alerts, audit rows and notifications written
  2 same        the same findings and as_of: nothing changes
  3 next day    the same findings as of the next day: only as_of moves
  4 change      relapse and monitoring_overdue gone (resolved), csa_trough_low critical (escalated)
Prints, per pass, milliseconds per patient: wall time and this process's CPU time (PostgreSQL's own
CPU is not included), and the rows written.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import _common as c
from monitor.findings import Evidence, Finding

T0 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
D0 = date(2026, 1, 1)


def _finding(pid: str, rule: str, severity: str, value: float) -> Finding:
    ev = tuple(Evidence("lab", "anti_pla2r", value + i, "RU/mL", f"2025-12-0{i + 1}T00:00:00+00:00",
                        f"lab:{pid}:{rule}:{i}") for i in range(3))
    return Finding(pid, rule, "2025-12-01", severity, f"{rule} for {pid}: {value:g}", ev,  # type: ignore[arg-type]
                   "KDIGO 2021 ch.3")


def findings(pid: str, changed: bool) -> list[Finding]:
    if changed:
        return [_finding(pid, "titer_rising", "warning", 60), _finding(pid, "csa_trough_low", "critical", 70)]
    return [_finding(pid, "relapse", "critical", 5), _finding(pid, "titer_rising", "warning", 60),
            _finding(pid, "csa_trough_low", "warning", 70), _finding(pid, "monitoring_overdue", "info", 0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=500)
    args = ap.parse_args()

    from storage import repository as repo
    from storage.db import make_engine, session

    print(f"machine: {c.machine()}; {c.load_note()} at start")
    pids = [f"B{i:07d}" for i in range(args.patients)]
    with c.bench_database() as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO patients (patient_id, active, first_seen_at) VALUES (:p, true, :t)"),
                         [{"p": p, "t": T0} for p in pids])
        passes = [("1 fire", D0, T0, False), ("2 same", D0, T0 + timedelta(minutes=1), False),
                  ("3 next day", D0 + timedelta(days=1), T0 + timedelta(days=1), False),
                  ("4 change", D0 + timedelta(days=2), T0 + timedelta(days=2), True)]
        rows = []
        for name, as_of, now, changed in passes:
            counts = {t: 0 for t in ("alerts", "alert_audit", "outbox")}
            with engine.connect() as conn:
                before = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in counts}
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(pids), args.chunk):
                part = pids[i:i + args.chunk]
                with session(engine) as s:
                    repo.reconcile_many(s, {p: findings(p, changed) for p in part}, as_of, now)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with engine.connect() as conn:
                counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() - before[t]
                          for t in counts}
            rows.append([name, f"{1000 * wall / len(pids):.3f}", f"{1000 * cpu / len(pids):.3f}",
                         str(counts["alerts"]), str(counts["alert_audit"]), str(counts["outbox"])])
        engine.dispose()
    print(f"reconcile_many, {args.patients} patients x 4 findings, chunks of {args.chunk}:")
    print(c.table(["pass", "wall ms/patient", "CPU ms/patient", "+alerts", "+audit rows", "+outbox rows"], rows))
    print(f"({c.load_note()} at the end)")


if __name__ == "__main__":
    main()
