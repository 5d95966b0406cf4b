"""Would a compact per-patient snapshot of current events pay? (issue 14, item 4; a measurement.)

Not a test. Needs a database loaded by bench/nightly.py (--database NAME --load-only), on PostgreSQL.

    .venv/bin/python bench/snapshot.py --database imn_bench_i14n_10k [--patients 2000] [--rounds 3]

The nightly load path (storage.event_store.load_timelines) reads ~68 current event rows per patient,
json-decodes each payload and rebuilds each event (event_from_payload) into a Timeline. A snapshot
would keep one row per patient holding all its current events as one JSON array, so the load reads
one row and decodes one document per patient; the events are rebuilt the same way. This builds such
snapshots in a temporary table from the stored events and times, in this process, on the same
patients and in alternation (the machine is noisy):
  A. load_timelines as it is (SQL + per-row json.loads + event_from_payload + Timeline);
  B. snapshot: one SELECT of the patients' documents + one json.loads each + the same rebuild;
  C. the rebuild alone (event_from_payload + Timeline from already decoded payloads): what no
     storage layout can remove;
and a cold assess() of each timeline for scale (what the nightly does next).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import _common as c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", required=True)
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=500)
    args = ap.parse_args()

    from monitor.assess import assess
    from monitor.timeline import Timeline
    from storage.db import make_engine, session
    from storage.event_store import event_from_payload, load_timelines

    url = c.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.database}"
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = list(conn.execute(sa.text("select patient_id from patients order by patient_id limit :n"),
                                {"n": args.patients}).scalars())
        conn.execute(sa.text("create temp table snap as select patient_id, json_agg(json_build_array(kind, payload)"
                             " order by id)::text as doc from events where patient_id = any(:ids) and is_current"
                             " and status <> 'entered-in-error' group by patient_id"), {"ids": ids})
        conn.execute(sa.text("create index on snap (patient_id)"))
        size = conn.execute(sa.text("select sum(length(doc)) from snap")).scalar()
        rows = conn.execute(sa.text("select count(*) from events where patient_id = any(:ids) and is_current"),
                            {"ids": ids}).scalar()
        conn.commit()
        print(f"{len(ids)} patients, {rows} current event rows ({rows / len(ids):.0f} per patient); snapshot "
              f"documents {size / len(ids) / 1024:.1f} KiB per patient")
        chunks = [ids[i:i + args.chunk] for i in range(0, len(ids), args.chunk)]

        def via_rows() -> dict[str, Timeline]:
            out: dict[str, Timeline] = {}
            with session(engine, write=False) as s:
                for part in chunks:
                    out.update(load_timelines(s, part))
            return out

        def via_snapshot() -> dict[str, Timeline]:
            out: dict[str, Timeline] = {}
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for part in chunks:
                cur.execute("select patient_id, doc from snap where patient_id = any(%s)", (part,))
                for pid, doc in cur.fetchall():
                    out[pid] = Timeline.of_current(pid, [event_from_payload(k, p) for k, p in json.loads(doc)])
            cur.close()
            return out

        decoded = {pid: json.loads(doc) for pid, doc in conn.execute(sa.text("select patient_id, doc from snap"))}

        def rebuild_only() -> dict[str, Timeline]:
            return {pid: Timeline.of_current(pid, [event_from_payload(k, p) for k, p in evs])
                    for pid, evs in decoded.items()}

        times: dict[str, list[float]] = {"A rows (today)": [], "B snapshot": [], "C rebuild only": []}
        for _ in range(args.rounds):
            for name, fn in (("A rows (today)", via_rows), ("B snapshot", via_snapshot),
                             ("C rebuild only", rebuild_only)):
                t0 = time.perf_counter()
                got = fn()
                times[name].append(time.perf_counter() - t0)
                assert len(got) == len(ids)
        a, b = via_rows(), via_snapshot()
        assert all(a[p].labs == b[p].labs and a[p].medications == b[p].medications for p in ids)
        t0 = time.perf_counter()
        for tl in a.values():
            assess(tl, date(2026, 1, 2))
        assess_s = time.perf_counter() - t0
    engine.dispose()
    base = statistics.median(times["A rows (today)"])
    print(f"{'path':<18} {'median s':>9} {'ms/patient':>11} {'vs today':>9}   (rounds: {args.rounds}, {c.load_note()})")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<18} {m:>9.2f} {1000 * m / len(ids):>11.3f} {m / base:>9.2f}")
    print(f"{'assess() cold':<18} {assess_s:>9.2f} {1000 * assess_s / len(ids):>11.3f} {assess_s / base:>9.2f}")


if __name__ == "__main__":
    main()
