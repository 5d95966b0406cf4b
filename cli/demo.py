"""`imn-monitor demo`: a synthetic cohort pushed through the real ingest path, reassessed nightly.

The simulation replays the cohort in arrival order, as the feeds deliver it in operation: each
simulated day's arrivals are ingested as one NDJSON payload on that day (inbox -> parse -> store ->
reassess the touched patients as of that day), and every `step_days` the nightly run reassesses the
patients due that day (valid_until reached, new results), or every patient with --full-nightly.
`step_days` spaces the nightly runs only: batching two weeks of arrivals into one reassessment would
hide what the system raises between them (an albumin of 15 g/L a week before the anticoagulant
starts, a late creatinine already followed by a normal one). A few results arrive weeks late
(placed in clinical order), and a few lines are malformed (quarantined).
It always runs embedded (SQLite, in-process) so it works on a bare machine.
"""

from __future__ import annotations

import io
import json
import os
import random
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer

from cli.output import console, evidence_lines

DEMO_START = date(2023, 1, 1)
DEFAULT_STEP_DAYS = 14  # `imn-monitor demo --step-days`: simulated days between nightly runs
LATE_SHARE = 0.03  # results that reach us weeks after they were taken
BAD_LINES = [
    '{"type":"lab","patient_id":"DEMO-BAD-1","analyte":"serum_albumin","value":31,"unit":"parsecs","effective_at":"2023-03-01"}',
    '{"type":"lab","patient_id":"DEMO-BAD-2","analyte":"anti_pla2r","value":true,"unit":"RU/mL","effective_at":"2023-03-01"}',
    '{"type":"lab","patient_id":"DEMO-BAD-3","analyte":"serum_albumin","value":310,"unit":"g/L","effective_at":"2023-03-01"}',
    '{"type":"lab","patient_id":"DEMO-BAD-4","analyte":"ferritin","value":80,"unit":"ug/L","effective_at":"2023-03-01"}',
    '{"type":"medication","patient_id":"DEMO-BAD-5","drug":"cyclosporine","dose":100,"unit":"mg","start":"2023-04-01","end":"2023-02-01"}',
    '{"type":"lab","patient_id":"DEMO-BAD-6","analyte":"csa_trough" "value":80}',
]


def _arrival_day(event: dict[str, Any], rng: random.Random) -> date:
    day = date.fromisoformat(str(event.get("effective_at") or event.get("start") or DEMO_START.isoformat())[:10])
    if event["type"] == "lab":
        delay = rng.randint(20, 60) if rng.random() < LATE_SHARE else rng.randint(0, 2)
        return day + timedelta(days=delay)
    return day


def _schedule(events: list[dict[str, Any]], seed: int) -> dict[date, list[dict[str, Any]]]:
    rng = random.Random(seed)
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    first_seen: dict[str, date] = {}
    patients = {e["patient_id"]: e for e in events if e["type"] == "patient"}
    for e in events:
        if e["type"] == "patient":
            continue
        day = _arrival_day(e, rng)
        by_day[day].append(e)
        first_seen[e["patient_id"]] = min(day, first_seen.get(e["patient_id"], day))
    for pid, p in patients.items():  # demographics arrive with the patient's first result
        by_day[first_seen.get(pid, DEMO_START)].insert(0, p)
    return by_day


def plan(arrivals: dict[date, list[dict[str, Any]]], step_days: int,
         end: date) -> list[tuple[date, list[dict[str, Any]], bool]]:
    """(day, the events arriving that day, whether the nightly run falls on it), in day order, from
    DEMO_START to `end`: every day with arrivals, and every `step_days` a nightly run."""
    nightly = {DEMO_START + timedelta(days=k) for k in range(0, (end - DEMO_START).days + 1, step_days)}
    days = sorted(nightly | {d for d, batch in arrivals.items() if batch and DEMO_START <= d <= end})
    return [(d, arrivals.get(d, []), d in nightly) for d in days]


def run_demo(patients: int, years: float, seed: int, step_days: int, data_dir: Path,
             full_nightly: bool = False) -> None:
    from storage import views
    from storage.db import session
    from synthetic import ARCHETYPES, assignments, generate_cohort
    from tasks import bootstrap, service
    from tasks.reassess import all_patient_chunks
    from tasks.settings import Settings

    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "demo.db"
    overrides: dict[str, Any] = {"broker_url": None}
    if "IMN_FULL_REASSESS_WEEKDAY" not in os.environ:
        # the simulated nights step from a Sunday by whole weeks: the weekly safety net would make
        # every one of them full, so the demo shows the due-only run unless --full-nightly
        overrides["full_reassess_weekday"] = "never"
    if "IMN_DATABASE_URL" not in os.environ:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        overrides["database_url"] = f"sqlite:///{db_path}"
    rt = bootstrap.init(Settings(**overrides), schema="upgrade")

    end = DEMO_START + timedelta(days=round(365.25 * years))
    events = generate_cohort(patients, DEMO_START, years, seed)
    cohort_file = data_dir / "cohort.ndjson"
    cohort_file.write_text("\n".join(json.dumps(e) for e in events) + "\n" + "\n".join(BAD_LINES) + "\n")
    arrivals = _schedule(events, seed)
    console.print(f"[bold]imn-monitor demo[/]: {patients} synthetic patients, {len(events):,} events, "
                  f"{DEMO_START} .. {end}, nightly run every {step_days} days"
                  f"{' (full: every patient)' if full_nightly else ' (due patients only)'}")

    totals: Counter[str] = Counter()
    nights = 0
    pending_bad = True
    for day, batch, nightly in plan(arrivals, step_days, end):
        lines = [json.dumps(e) for e in batch]
        if pending_bad and day >= date(2023, 3, 5):
            lines += BAD_LINES
            pending_bad = False
        if lines:
            payload = io.BytesIO(("\n".join(lines) + "\n").encode())
            done = service.submit(rt, [(payload, f"demo-arrivals-{day.isoformat()}.ndjson")], "ndjson", day)
            totals.update(service.ingest_counts(rt, done.todo))
        if nightly:
            service.run_nightly(rt, day, "demo", full=full_nightly)
            nights += 1
    elapsed = time.perf_counter() - t0

    with session(rt.engine, write=False) as s:
        alerts = views.list_alerts(s)
        quarantined = views.list_quarantine(s)
    # distinct patients stored, not the per-batch counts summed over the steps
    totals["patients"] = sum(len(ids) for ids in all_patient_chunks(rt, 5000))
    _summary(alerts, quarantined, totals, nights, elapsed, rt, cohort_file, assignments(patients, seed), ARCHETYPES)


def _summary(alerts: list[dict[str, Any]], quarantined: list[dict[str, Any]], totals: Any, nights: int,
             elapsed: float, rt: Any, cohort_file: Path, assigned: dict[str, str], archetypes: Any) -> None:
    from rich.table import Table

    console.print(f"ingested: {dict(totals)} over {nights} simulated nights in {elapsed:.1f} s")
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for a in alerts:
        by_rule[a["rule"]][a["status"]] += 1
        by_rule[a["rule"]]["patients:" + a["patient_id"]] = 1
    t = Table(title="alerts per rule")
    for col in ("rule", "alerts", "patients", "still open", "resolved"):
        t.add_column(col)
    for rule in sorted(by_rule):
        c = by_rule[rule]
        n_pat = sum(1 for k in c if k.startswith("patients:"))
        total = sum(v for k, v in c.items() if not k.startswith("patients:"))
        t.add_row(rule, str(total), str(n_pat), str(total - c["resolved"]), str(c["resolved"]))
    console.print(t)
    patients = len(assigned)
    with_alert = {a["patient_id"] for a in alerts if a["severity"] != "info"}
    console.print(f"patients with a warning or critical alert: {len(with_alert)} of {patients}; "
                  f"{patients - len(with_alert)} raised nothing above info")

    per_arch: dict[str, list[str]] = defaultdict(list)
    for pid, name in assigned.items():
        per_arch[name].append(pid)
    fired = defaultdict(set)
    for a in alerts:
        fired[a["patient_id"]].add(a["rule"])
    t = Table(title="expected vs raised, by archetype")
    for col in ("archetype", "patients", "expected rules",
                "patients where all expected fired (none expected: nothing above info)"):
        t.add_column(col, overflow="fold")
    for name, arch in sorted(archetypes.items()):
        pids = [p for p in per_arch.get(name, [])]
        if arch.expected_rules:
            ok = sum(1 for p in pids if arch.expected_rules <= fired.get(p, set()))
        else:  # a quiet course must stay quiet: an empty expectation is not met by any alert above info
            ok = sum(1 for p in pids if p not in with_alert)
        t.add_row(name, str(len(pids)), ", ".join(sorted(arch.expected_rules)) or "(none)", f"{ok}/{len(pids)}")
    console.print(t)

    console.print("[bold]examples[/]")
    shown = set()
    for a in alerts:
        if a["rule"] in shown or a["severity"] == "info" or len(shown) >= 4:
            continue
        shown.add(a["rule"])
        console.print(f"#{a['id']} {a['patient_id']} [bold]{a['rule']}[/] {a['severity']} ({a['status']}, "
                      f"last seen as of {a.get('as_of')}): {a['message']}")
        for line in evidence_lines(a["evidence"]):
            console.print(f"    {line}")
        console.print(f"    source: {a['reference']}")
    reasons = Counter(q["reason"].split(" (")[0][:70] for q in quarantined)
    console.print(f"quarantined: {len(quarantined)} lines; " + "; ".join(f"{r} x{n}" for r, n in reasons.most_common(6)))
    url = rt.engine.url.render_as_string(hide_password=True)
    console.print(f"data: database {url}; cohort {cohort_file}")
    typer.echo(f"try: IMN_DATABASE_URL={url} imn-monitor alerts --status firing")
