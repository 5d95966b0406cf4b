"""The nightly run on PostgreSQL: claimed once per date, idempotent when re-run."""

from __future__ import annotations

import json
import threading
from datetime import date

import pytest

from tasks import jobs, service
from tasks.ingest import accept
from tests.integration.pipeline.test_pipeline import cohort, lab

pytestmark = pytest.mark.integration


def ingest(rt, events: list[dict], as_of: date) -> None:  # type: ignore[no-untyped-def]
    data = ("\n".join(json.dumps(e) for e in events) + "\n").encode()
    service.process(rt, [a.inbox_id for a in accept(rt, data, "ndjson", "t.ndjson")], as_of)


def counts(rt) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with rt.engine.connect() as c:
        return tuple(c.exec_driver_sql(f"select count(*) from {t}").scalar() for t in ("alerts", "alert_audit", "outbox"))


def test_second_scheduler_does_not_double_run_a_date(pg_runtime) -> None:  # type: ignore[no-untyped-def]
    rt = pg_runtime
    ingest(rt, cohort(), date(2025, 8, 1))
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def scheduler_instance(name: str) -> None:
        barrier.wait()
        results.append(jobs.run_nightly(rt, date(2025, 9, 1), name))

    threads = [threading.Thread(target=scheduler_instance, args=(f"s{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    with rt.engine.connect() as c:
        row = c.exec_driver_sql("select state, finished_at from nightly_runs where as_of = '2025-09-01'").one()
    assert row.state == "finished" and row.finished_at is not None


def test_rerunning_a_date_creates_no_duplicate_alerts_or_notifications(pg_runtime) -> None:  # type: ignore[no-untyped-def]
    rt = pg_runtime
    ingest(rt, cohort(), date(2025, 8, 1))
    service.reassess_everyone(rt, date(2025, 9, 1))
    first = counts(rt)
    assert first[0] >= 2 and first[2] >= 2  # alerts fired, with notifications in the outbox
    service.reassess_everyone(rt, date(2025, 9, 1))
    service.reassess_everyone(rt, date(2025, 9, 1))
    assert counts(rt) == first


def test_time_based_rule_fires_at_night_without_new_results(pg_runtime) -> None:  # type: ignore[no-untyped-def]
    """Six months after rituximab with no response, nothing new arrives, yet the nightly run fires."""
    rt = pg_runtime
    events = [
        {"type": "patient", "patient_id": "P-RTX", "birth_date": "1970-05-05", "sex": "male"},
        lab("P-RTX", "proteinuria_24h", 8.0, "g/d", "2025-01-05", "R-1"),
        lab("P-RTX", "anti_pla2r", 180, "RU/mL", "2025-01-05", "R-2"),
        {"type": "medication", "patient_id": "P-RTX", "drug": "rituximab", "dose": 1000, "unit": "mg",
         "start": "2025-01-10", "source": "pharm", "source_id": "RTX-1"},
        {"type": "medication", "patient_id": "P-RTX", "drug": "rituximab", "dose": 1000, "unit": "mg",
         "start": "2025-01-24", "source": "pharm", "source_id": "RTX-2"},
        lab("P-RTX", "proteinuria_24h", 7.5, "g/d", "2025-06-20", "R-3"),
        lab("P-RTX", "anti_pla2r", 150, "RU/mL", "2025-06-20", "R-4"),
    ]
    ingest(rt, events, date(2025, 6, 21))
    with rt.engine.connect() as c:
        before = c.exec_driver_sql("select count(*) from alerts where rule = 'rtx_non_response'").scalar()
    assert before == 0  # 162 days after the first dose: too early to call
    assert jobs.run_nightly(rt, date(2025, 7, 15), "test")
    with rt.engine.connect() as c:
        row = c.exec_driver_sql("select severity, status from alerts where rule = 'rtx_non_response'").one()
    assert row.severity == "critical" and row.status == "firing"
