"""End to end on the real servers: file -> Redis -> celery worker processes -> PostgreSQL -> alerts.

The fault variants (worker SIGKILLed mid-ingest, Redis restarted with queued work) live in tests/faults/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.pipeline.conftest import Stack

pytestmark = pytest.mark.integration
AS_OF = "2025-09-01"


def lab(pid: str, analyte: str, value: float, unit: str, day: str, sid: str | None = None, **kw: object) -> dict:
    d = {"type": "lab", "patient_id": pid, "analyte": analyte, "value": value, "unit": unit, "effective_at": day}
    if sid:
        d.update(source="lis", source_id=sid)
    d.update(kw)
    return d


def cohort() -> list[dict]:
    return [
        {"type": "patient", "patient_id": "P-CSA", "birth_date": "1961-04-02", "sex": "male"},
        {"type": "medication", "patient_id": "P-CSA", "drug": "cyclosporine", "dose": 100, "unit": "mg",
         "frequency": "bid", "start": "2025-01-01"},
        lab("P-CSA", "csa_trough", 70, "ng/mL", "2025-08-20", "CSA-1"),
        lab("P-CSA", "upcr", 180, "mg/mmol", "2025-08-20", "CSA-2"),
        lab("P-CSA", "anti_pla2r", 35, "RU/mL", "2025-08-20", "CSA-3"),
        {"type": "patient", "patient_id": "P-ALB", "birth_date": "1950-06-30", "sex": "female"},
        lab("P-ALB", "serum_albumin", 1.5, "g/dL", "2025-08-25T09:30:00Z", "ALB-1"),
        {"type": "patient", "patient_id": "P-QUIET", "birth_date": "1980-01-01", "sex": "female"},
        lab("P-QUIET", "proteinuria_24h", 1.1, "g/d", "2025-08-01", "Q-1"),
        lab("P-QUIET", "serum_albumin", 41, "g/L", "2025-08-01", "Q-2"),
    ]


def write(path: Path, events: list[dict], bad: list[str] = ()) -> Path:
    path.write_text("\n".join([json.dumps(e) for e in events] + list(bad)) + "\n")
    return path


def open_alerts(stack: Stack) -> set[tuple[str, str, str]]:
    return {(r.patient_id, r.rule, r.severity) for r in
            stack.rows("select patient_id, rule, severity from alerts where status <> 'resolved'")}


def test_file_ingested_end_to_end_raises_the_expected_alerts(stack: Stack) -> None:
    stack.start_worker()
    f = write(stack.tmp / "feed.ndjson", cohort())
    r = stack.cli("ingest", str(f), "--as-of", AS_OF, "--json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["accepted"] == 10 and counts["quarantined"] == 0
    stack.wait_settled()
    alerts = open_alerts(stack)
    assert ("P-CSA", "csa_trough_low", "warning") in alerts
    assert ("P-ALB", "albumin_low_thrombosis", "critical") in alerts
    assert not [a for a in alerts if a[0] == "P-QUIET"]
    evidence = stack.scalar("select evidence::text from alerts where rule = 'csa_trough_low'")
    assert '"value": 70' in str(evidence)


def test_same_file_twice_gives_no_duplicate_events_or_alerts(stack: Stack) -> None:
    stack.start_worker()
    f = write(stack.tmp / "feed.ndjson", cohort())
    assert stack.cli("ingest", str(f), "--as-of", AS_OF).returncode == 0
    stack.wait_settled()
    events, alerts, outbox = (stack.scalar(f"select count(*) from {t}") for t in ("events", "alerts", "outbox"))
    again = stack.cli("ingest", str(f), "--as-of", AS_OF, "--json")
    assert again.returncode == 0, again.stderr
    stack.wait_settled()
    assert json.loads(again.stdout).get("accepted", 0) == 0
    # the same bytes are the same inbox row: nothing is parsed or stored twice
    assert stack.scalar("select count(*) from inbox") == 1
    same_lines_new_name = write(stack.tmp / "copy.ndjson", cohort()[::-1])
    third = json.loads(stack.cli("ingest", str(same_lines_new_name), "--as-of", AS_OF, "--json").stdout)
    stack.wait_settled()
    assert third["duplicate"] == 10 and third["accepted"] == 0
    assert (events, alerts, outbox) == tuple(stack.scalar(f"select count(*) from {t}") for t in ("events", "alerts", "outbox"))


def test_out_of_order_result_lands_in_clinical_order(stack: Stack) -> None:
    stack.start_worker()
    assert stack.cli("ingest", str(write(stack.tmp / "a.ndjson", cohort())), "--as-of", AS_OF).returncode == 0
    stack.wait_settled()
    # an older, normal trough arrives late: the latest by clinical time is still 70 ng/mL
    late = write(stack.tmp / "late.ndjson", [lab("P-CSA", "csa_trough", 150, "ng/mL", "2025-07-01", "CSA-0")])
    assert stack.cli("ingest", str(late), "--as-of", AS_OF).returncode == 0
    stack.wait_settled()
    assert ("P-CSA", "csa_trough_low", "warning") in open_alerts(stack)
    patient = json.loads(stack.cli("patient", "P-CSA", "--as-of", AS_OF, "--json").stdout)
    troughs = [t for t in patient["timeline"] if t["analyte"] == "csa_trough"]
    assert [t["value"] for t in troughs] == [150, 70]


def test_correction_that_removes_the_condition_resolves_the_alert(stack: Stack) -> None:
    stack.start_worker()
    assert stack.cli("ingest", str(write(stack.tmp / "a.ndjson", cohort())), "--as-of", AS_OF).returncode == 0
    stack.wait_settled()
    fix = write(stack.tmp / "fix.ndjson", [lab("P-CSA", "csa_trough", 170, "ng/mL", "2025-08-20", "CSA-1",
                                              status="corrected")])
    r = stack.cli("ingest", str(fix), "--as-of", AS_OF, "--json")
    assert json.loads(r.stdout)["corrected"] == 1
    stack.wait_settled()
    row = stack.rows("select status, resolution, resolved_reason from alerts where rule = 'csa_trough_low'")[0]
    assert row.status == "resolved" and row.resolution == "auto" and row.resolved_reason
    versions = stack.rows("select version, is_current, status from events where identity like '%CSA-1' order by version")
    assert [(v.version, v.is_current, v.status) for v in versions] == [(1, False, "final"), (2, True, "corrected")]


def test_bad_lines_are_quarantined_with_reasons_while_good_lines_land(stack: Stack) -> None:
    stack.start_worker()
    good = cohort()
    filler = [lab("P-QUIET", "serum_albumin", 40 + i % 5, "g/L", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", f"F-{i}")
              for i in range(700)]
    bad = ['{"type":"lab","patient_id":"P-QUIET","analyte":"serum_albumin","value":15,"unit":"parsecs","effective_at":"2025-03-02"}',
           "this is not json"]
    lines = [json.dumps(e) for e in good + filler[:600]] + [bad[0]] + [json.dumps(e) for e in filler[600:]] + [bad[1]]
    f = stack.tmp / "mixed.ndjson"
    f.write_text("\n".join(lines) + "\n")
    r = stack.cli("ingest", str(f), "--as-of", AS_OF, "--json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["batches"] == 2 and counts["quarantined"] == 2 and counts["accepted"] == 710
    stack.wait_settled()
    q = stack.rows("select line, field, reason from quarantine order by line")
    assert [(x.line, x.field) for x in q] == [(611, "unit"), (712, "(line)")]
    assert "parsecs" in q[0].reason and "JSON" in q[1].reason
    assert stack.scalar("select count(*) from events where kind = 'lab'") == 706
